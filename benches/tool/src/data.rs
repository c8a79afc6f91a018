//! The benchmark's documents: MongoDB's DriverBench data sets, unpacked at run time from
//! `../shared/specs/benchmarking/data/*.tgz` (or `$MAY_MONGO_SPECS/benchmarking/data`) into a
//! folder outside the repository, and read as each driver's own `Document` type.
//!
//! The matrix uses the same files: its find workloads return the spec's tweet, its inserts
//! send the spec's small document.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The members of the spec's tarballs the tool reads, by short name.
const FILES: &[(&str, &str, &str)] = &[
    (
        "tweet",
        "single_and_multi_document",
        "single_and_multi_document/tweet.json",
    ),
    (
        "small_doc",
        "single_and_multi_document",
        "single_and_multi_document/small_doc.json",
    ),
    (
        "large_doc",
        "single_and_multi_document",
        "single_and_multi_document/large_doc.json",
    ),
    ("flat_bson", "extended_bson", "extended_bson/flat_bson.json"),
    ("deep_bson", "extended_bson", "extended_bson/deep_bson.json"),
    ("full_bson", "extended_bson", "extended_bson/full_bson.json"),
];

/// The unpacked data sets.
#[derive(Clone)]
pub struct Data {
    pub dir: PathBuf,
}

/// Where the spec files live: `$MAY_MONGO_SPECS`, else `../shared/specs` beside the repository.
fn specs_root() -> PathBuf {
    std::env::var_os("MAY_MONGO_SPECS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/specs"))
}

impl Data {
    /// Unpacks the needed members into `<temp>/may_mongo_bench_data` (with `tar`), once.
    pub fn unpack() -> Result<Data, String> {
        let tarballs = specs_root().join("benchmarking/data");
        let dir = std::env::temp_dir().join("may_mongo_bench_data");
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        for &(_, tarball, member) in FILES {
            if dir.join(member).is_file() {
                continue;
            }
            let tgz = tarballs.join(format!("{tarball}.tgz"));
            if !tgz.is_file() {
                return Err(format!(
                    "MongoDB's benchmark data is missing: {} does not exist. Put the specs beside \
                     the repository (../shared/specs) or set MAY_MONGO_SPECS.",
                    tgz.display()
                ));
            }
            let out = Command::new("tar")
                .arg("xzf")
                .arg(&tgz)
                .arg("-C")
                .arg(&dir)
                .arg(member)
                .output()
                .map_err(|e| format!("running tar: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "tar xzf {} {member}: {}",
                    tgz.display(),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        Ok(Data { dir })
    }

    /// The file of a data set by short name (`tweet`, `small_doc`, ...).
    pub fn path(&self, name: &str) -> PathBuf {
        let (_, _, member) = FILES
            .iter()
            .find(|f| f.0 == name)
            .unwrap_or_else(|| panic!("no data set named {name}"));
        self.dir.join(member)
    }

    /// The file's size in bytes: the spec scores tasks by it.
    pub fn file_len(&self, name: &str) -> u64 {
        std::fs::metadata(self.path(name))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    fn json(&self, name: &str) -> serde_json::Value {
        let path = self.path(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
    }

    /// As this project's `bson` 3 `Document` (Extended JSON understood).
    pub fn ours(&self, name: &str) -> bson::Document {
        match bson::Bson::try_from(self.json(name)) {
            Ok(bson::Bson::Document(d)) => d,
            other => panic!("{name} is not a document: {other:?}"),
        }
    }

    /// As the official driver's `Document` (its `bson` 2).
    pub fn theirs(&self, name: &str) -> mongodb::bson::Document {
        match mongodb::bson::Bson::try_from(self.json(name)) {
            Ok(mongodb::bson::Bson::Document(d)) => d,
            other => panic!("{name} is not a document: {other:?}"),
        }
    }
}
