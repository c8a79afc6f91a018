//! Indexes to create: [`IndexModel`] (a key pattern and [`IndexOptions`]), as the official
//! driver has them. Each model becomes one entry of a `createIndexes` command's `indexes`.

use std::time::Duration;

use bson::{Bson, Document};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use typed_builder::TypedBuilder;

use crate::collation::Collation;
use crate::error::{Error, Result};

/// An index to create: its key pattern and options. Build one with
/// `IndexModel::builder().keys(doc! { "a": 1 }).options(opts).build()`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
#[serde(rename_all = "camelCase")]
pub struct IndexModel {
    /// The key pattern, e.g. `{ "a": 1 }`: each field indexed and the index type.
    #[serde(rename = "key")]
    pub keys: Document,

    /// The index's options; its `name` is generated from the keys when absent.
    #[serde(flatten)]
    pub options: Option<IndexOptions>,
}

impl IndexModel {
    /// An index on `keys` with `options`.
    pub fn new(keys: Document, options: Option<IndexOptions>) -> IndexModel {
        IndexModel { keys, options }
    }

    /// The index's name: the one given, else the server's convention (`a_1_b_-1`).
    pub fn name(&self) -> String {
        if let Some(name) = self.options.as_ref().and_then(|o| o.name.as_ref()) {
            return name.clone();
        }
        self.keys
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Bson::Int32(n) => n.to_string(),
                    Bson::Int64(n) => n.to_string(),
                    Bson::Double(n) => n.to_string(),
                    Bson::String(s) => s.clone(),
                    other => other.to_string(),
                };
                format!("{k}_{v}")
            })
            .collect::<Vec<_>>()
            .join("_")
    }

    /// The model as one entry of `createIndexes`' `indexes`: `key`, `name`, then the options
    /// that are set, under the names the server takes.
    pub(crate) fn into_spec(self, name: &str) -> Result<Document> {
        let mut spec = bson::doc! { "key": self.keys, "name": name };
        if let Some(options) = self.options {
            let options = bson::serialize_to_document(&options).map_err(Error::ser)?;
            spec.extend(options.into_iter().filter(|(k, _)| k != "name"));
        }
        Ok(spec)
    }
}

/// The options of an [`IndexModel`]: the fields of an index specification in
/// [`createIndexes`](https://www.mongodb.com/docs/manual/reference/command/createIndexes/#definition).
/// Unset fields are not sent.
#[derive(Clone, Debug, Default, Deserialize, Serialize, TypedBuilder)]
#[builder(field_defaults(default, setter(into)))]
#[serde(rename_all = "camelCase")]
pub struct IndexOptions {
    /// Build the index in the background (ignored by servers since 4.2).
    #[deprecated = "This option is no longer supported and has no effect."]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub background: Option<bool>,

    /// A TTL: documents expire this long after the indexed date (`expireAfterSeconds`).
    #[serde(
        rename = "expireAfterSeconds",
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::serde_util::duration_option_as_int_seconds"
    )]
    pub expire_after: Option<Duration>,

    /// A name other than the generated one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,

    /// Index only the documents that have the indexed field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sparse: Option<bool>,

    /// Storage engine options for this index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_engine: Option<Document>,

    /// Refuse documents whose key is already in the index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique: Option<bool>,

    /// The index version (`v`).
    #[serde(rename = "v", skip_serializing_if = "Option::is_none")]
    pub version: Option<IndexVersion>,

    /// For text indexes: the language of the stop words, stemmer and tokenizer.
    #[serde(rename = "default_language", skip_serializing_if = "Option::is_none")]
    pub default_language: Option<String>,

    /// For text indexes: the field holding each document's language.
    #[serde(rename = "language_override", skip_serializing_if = "Option::is_none")]
    pub language_override: Option<String>,

    /// The text index version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_index_version: Option<TextIndexVersion>,

    /// For text indexes: field to weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<Document>,

    /// The `2dsphere` index version.
    #[serde(
        rename = "2dsphereIndexVersion",
        skip_serializing_if = "Option::is_none"
    )]
    pub sphere_2d_index_version: Option<Sphere2DIndexVersion>,

    /// For `2d` indexes: the precision of the stored geohash (1 to 32 bits).
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::serde_util::option_u32_as_i32"
    )]
    pub bits: Option<u32>,

    /// For `2d` indexes: the inclusive upper bound of longitude and latitude.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,

    /// For `2d` indexes: the inclusive lower bound of longitude and latitude.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,

    /// For `geoHaystack` indexes: the size of a bucket.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::serde_util::option_u32_as_i32"
    )]
    pub bucket_size: Option<u32>,

    /// Index only the documents that match this filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partial_filter_expression: Option<Document>,

    /// The index's collation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collation: Option<Collation>,

    /// For wildcard indexes: the field paths to include or exclude.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wildcard_projection: Option<Document>,

    /// Hide the index from the query planner.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden: Option<bool>,

    /// Whether the index is clustered: read from `list_indexes`, never set to create one
    /// (a clustered index comes with its collection). The official driver keeps this field
    /// private; it is public here so that the options can be written as a struct literal.
    #[builder(default, setter(skip))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clustered: Option<bool>,
}

impl IndexOptions {
    /// Whether the index is clustered (as `list_indexes` reports it).
    pub fn clustered(&self) -> Option<bool> {
        self.clustered
    }
}

/// Defines an index version number: its named versions and `Custom(n)`, sent as an `i32`.
macro_rules! version_number {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $n:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
            /// Another version, for versions newer than this driver.
            Custom(u32),
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                #[allow(deprecated)]
                let n = match self {
                    $($name::$variant => $n,)+
                    $name::Custom(n) => (*n).min(i32::MAX as u32) as i32,
                };
                s.serialize_i32(n)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                #[allow(deprecated)]
                Ok(match i32::deserialize(d)? {
                    $($n => $name::$variant,)+
                    n => $name::Custom(n.try_into().map_err(serde::de::Error::custom)?),
                })
            }
        }
    };
}

version_number!(
    /// The version of an index (version 0 is refused by servers since 3.2).
    IndexVersion {
        /// Version 0.
        #[deprecated]
        V0 = 0,
        /// Version 1.
        V1 = 1,
        /// Version 2.
        V2 = 2,
    }
);

version_number!(
    /// The version of a `text` index.
    TextIndexVersion {
        /// Version 1.
        V1 = 1,
        /// Version 2.
        V2 = 2,
        /// Version 3.
        V3 = 3,
    }
);

version_number!(
    /// The version of a `2dsphere` index.
    Sphere2DIndexVersion {
        /// Version 2.
        V2 = 2,
        /// Version 3.
        V3 = 3,
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn index_models_become_create_indexes_entries() {
        let model = IndexModel::builder()
            .keys(doc! { "a": 1, "b": -1 })
            .options(
                IndexOptions::builder()
                    .unique(true)
                    .expire_after(Duration::from_secs(60))
                    .partial_filter_expression(doc! { "a": { "$gt": 1 } })
                    .default_language("fr".to_string())
                    .version(IndexVersion::V2)
                    .build(),
            )
            .build();
        assert_eq!(model.name(), "a_1_b_-1");
        assert_eq!(
            model.into_spec("a_1_b_-1").unwrap(),
            doc! {
                "key": { "a": 1, "b": -1 },
                "name": "a_1_b_-1",
                "expireAfterSeconds": 60i64,
                "unique": true,
                "v": 2,
                "default_language": "fr",
                "partialFilterExpression": { "a": { "$gt": 1 } },
            }
        );
        let named = IndexModel::new(
            doc! { "x": "text" },
            Some(IndexOptions {
                name: Some("by_x".into()),
                ..Default::default()
            }),
        );
        assert_eq!(named.name(), "by_x");
        assert_eq!(
            named.into_spec("by_x").unwrap(),
            doc! { "key": { "x": "text" }, "name": "by_x" }
        );
        // An index as listIndexes describes it reads back.
        let listed: IndexModel = bson::deserialize_from_document(
            doc! { "v": 2, "key": { "_id": 1 }, "name": "_id_", "clustered": true },
        )
        .unwrap();
        let options = listed.options.unwrap();
        assert_eq!(options.clustered(), Some(true));
        assert_eq!(options.version, Some(IndexVersion::V2));
    }
}
