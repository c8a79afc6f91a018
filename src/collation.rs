//! Collations: the string comparison rules of a query, an index or a collection, as the
//! official driver's `options::Collation` has them. Sent as the `collation` document the
//! server takes (`{ locale: "fr", strength: 2, ... }`, unset fields left out).

use serde::{Deserialize, Serialize};
use typed_builder::TypedBuilder;

use crate::error::Error;

/// A collation. See the MongoDB
/// [documentation](https://www.mongodb.com/docs/manual/reference/collation/) for each field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, TypedBuilder)]
#[serde(rename_all = "camelCase")]
#[builder(field_defaults(default, setter(into)))]
pub struct Collation {
    /// The ICU locale (`"fr"`, `"en_US"`, `"simple"`, ...).
    #[builder(!default)]
    pub locale: String,

    /// The level of comparison.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strength: Option<CollationStrength>,

    /// Whether to include a separate level for case differences.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_level: Option<bool>,

    /// The order of case differences at the tertiary level.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_first: Option<CollationCaseFirst>,

    /// Whether to compare numeric strings as numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub numeric_ordering: Option<bool>,

    /// Whether whitespace and punctuation are base characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alternate: Option<CollationAlternate>,

    /// Up to which characters are ignorable when `alternate` is `Shifted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_variable: Option<CollationMaxVariable>,

    /// Whether to check whether text needs normalization, and normalize it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub normalization: Option<bool>,

    /// Whether strings with diacritics sort from the back of the string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backwards: Option<bool>,
}

impl From<Collation> for bson::Bson {
    /// The `collation` document a command carries.
    fn from(collation: Collation) -> bson::Bson {
        bson::serialize_to_bson(&collation).expect("a collation is strings, numbers and bools")
    }
}

/// The level of comparison (ICU's comparison levels), sent as the numbers 1 to 5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CollationStrength {
    /// Base characters only (level 1).
    Primary,
    /// Accents too (level 2).
    Secondary,
    /// Case too (level 3, the default).
    Tertiary,
    /// Punctuation too, when ignored at levels 1–3 (level 4).
    Quaternary,
    /// Code points as the tie-breaker (level 5).
    Identical,
}

impl From<CollationStrength> for u32 {
    fn from(strength: CollationStrength) -> u32 {
        match strength {
            CollationStrength::Primary => 1,
            CollationStrength::Secondary => 2,
            CollationStrength::Tertiary => 3,
            CollationStrength::Quaternary => 4,
            CollationStrength::Identical => 5,
        }
    }
}

impl TryFrom<u32> for CollationStrength {
    type Error = Error;

    fn try_from(level: u32) -> Result<CollationStrength, Error> {
        Ok(match level {
            1 => CollationStrength::Primary,
            2 => CollationStrength::Secondary,
            3 => CollationStrength::Tertiary,
            4 => CollationStrength::Quaternary,
            5 => CollationStrength::Identical,
            _ => {
                return Err(Error::invalid_argument(format!(
                    "invalid collation strength: {level}"
                )));
            }
        })
    }
}

impl Serialize for CollationStrength {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i32(u32::from(*self) as i32)
    }
}

impl<'de> Deserialize<'de> for CollationStrength {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let level = u32::deserialize(deserializer)?;
        CollationStrength::try_from(level).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for CollationStrength {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&u32::from(*self), f)
    }
}

/// Defines a string enum of the collation document: its variants, their names, `FromStr`,
/// `as_str` and `Display`.
macro_rules! collation_names {
    ($(#[$doc:meta])* $name:ident, $what:literal, { $($(#[$vdoc:meta])* $variant:ident = $s:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl std::str::FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                match s {
                    $($s => Ok($name::$variant),)+
                    _ => Err(Error::invalid_argument(format!(concat!("invalid ", $what, ": {}"), s))),
                }
            }
        }

        impl $name {
            /// The name the server uses.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $s,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Display::fmt(self.as_str(), f)
            }
        }
    };
}

collation_names!(
    /// The order of case differences at the tertiary level.
    CollationCaseFirst, "CollationCaseFirst", {
        /// Upper case first.
        Upper = "upper",
        /// Lower case first.
        Lower = "lower",
        /// The default: like `Lower`, with slight differences.
        Off = "off",
    }
);

collation_names!(
    /// Whether whitespace and punctuation are base characters.
    CollationAlternate, "collation alternate", {
        /// They are base characters.
        NonIgnorable = "non-ignorable",
        /// They are not, and are told apart only above strength 3.
        Shifted = "shifted",
    }
);

collation_names!(
    /// Which characters are ignorable when `alternate` is `Shifted`.
    CollationMaxVariable, "collation max variable", {
        /// Whitespace and punctuation.
        Punct = "punct",
        /// Whitespace only.
        Space = "space",
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn a_collation_is_the_document_the_server_takes() {
        let c = Collation::builder()
            .locale("fr")
            .strength(CollationStrength::Secondary)
            .case_first(CollationCaseFirst::Upper)
            .alternate(CollationAlternate::NonIgnorable)
            .max_variable(CollationMaxVariable::Space)
            .numeric_ordering(true)
            .build();
        let expected = doc! {
            "locale": "fr",
            "strength": 2,
            "caseFirst": "upper",
            "numericOrdering": true,
            "alternate": "non-ignorable",
            "maxVariable": "space",
        };
        assert_eq!(
            bson::Bson::from(c.clone()),
            bson::Bson::Document(expected.clone())
        );
        let back: Collation = bson::deserialize_from_document(expected).unwrap();
        assert_eq!(back, c);
        assert!(CollationStrength::try_from(6).is_err());
        assert_eq!(
            "shifted".parse::<CollationAlternate>().unwrap(),
            CollationAlternate::Shifted
        );
    }
}
