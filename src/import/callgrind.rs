//! Callgrind importer: instruction counts from the CI gate's gungraun benchmarks.
//!
//! `cargo bench --features callgrind --bench instructions` with `GUNGRAUN_SAVE_SUMMARY=json` (or `-- --save-summary`)
//! writes one `summary.json` per benchmark below `target/gungraun/<package>/<bench>/<group>/
//! <function>.<id>/`. This importer walks a folder for those files and turns each into one
//! [`InstructionCount`] (the result file's `instructions` list), so `aiops-bench compare` gates
//! it tightly (2 % by default). The name is `callgrind/<group>/<function>/<id>` (`/<id>` left out when the benchmark
//! has none), for example `callgrind/webhook/parse/github`.
//!
//! Only the fields needed are read from gungraun's summary (schema version 7 of
//! gungraun-runner 0.20): `function_name`, `group`, `id`, `profiles[].tool`,
//! `profiles[].duration_ns` and `profiles[].data.total.metrics.Ir.values.new` (the count of the
//! run that wrote the file; `old`, when present, is gungraun's own previous run and is ignored).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ImportError, Importer};
use crate::result::{sources, Entries, InstructionCount};

/// File name gungraun gives each benchmark's summary.
pub const SUMMARY_FILE: &str = "summary.json";

/// Name prefix of every imported benchmark (keeps them apart from criterion names).
pub const NAME_PREFIX: &str = "callgrind";

/// Reads every gungraun `summary.json` below a folder (usually `target/gungraun`).
#[derive(Debug, Clone)]
pub struct CallgrindImporter {
    /// Folder searched recursively for `summary.json` files.
    pub dir: PathBuf,
}

impl CallgrindImporter {
    /// Importer of the summaries below `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

impl Importer for CallgrindImporter {
    fn source(&self) -> &'static str {
        sources::CALLGRIND
    }

    fn import(&self) -> Result<Entries, ImportError> {
        Ok(Entries {
            instructions: import_dir(&self.dir)?,
            ..Entries::default()
        })
    }
}

#[derive(Debug, Deserialize)]
struct SummaryJson {
    function_name: String,
    group: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    profiles: Vec<ProfileJson>,
}

#[derive(Debug, Deserialize)]
struct ProfileJson {
    tool: String,
    #[serde(default)]
    duration_ns: u64,
    data: ProfileDataJson,
}

#[derive(Debug, Deserialize)]
struct ProfileDataJson {
    total: TotalJson,
}

#[derive(Debug, Deserialize)]
struct TotalJson {
    metrics: BTreeMap<String, MetricJson>,
}

#[derive(Debug, Deserialize)]
struct MetricJson {
    values: ValuesJson,
}

#[derive(Debug, Deserialize)]
struct ValuesJson {
    #[serde(default)]
    new: Option<serde_json::Value>,
}

/// Import every `summary.json` below `dir` (recursively), sorted by benchmark name.
///
/// Fails when `dir` is missing, when no summary is found, when a summary is malformed or has no
/// callgrind `Ir` count, or when two summaries map to the same benchmark name.
pub fn import_dir(dir: impl AsRef<Path>) -> Result<Vec<InstructionCount>, ImportError> {
    let dir = dir.as_ref();
    if !dir.is_dir() {
        return Err(ImportError::Invalid {
            path: dir.to_path_buf(),
            message: "callgrind folder not found; run `GUNGRAUN_SAVE_SUMMARY=json cargo bench \
                      --features callgrind --bench instructions` first or pass the folder that \
                      holds gungraun's output"
                .to_string(),
        });
    }
    let mut files = Vec::new();
    find_summaries(dir, &mut files)?;
    if files.is_empty() {
        return Err(ImportError::Invalid {
            path: dir.to_path_buf(),
            message: format!(
                "no gungraun {SUMMARY_FILE} found; run the benchmarks with \
                 GUNGRAUN_SAVE_SUMMARY=json (for example `GUNGRAUN_SAVE_SUMMARY=json cargo bench \
                 --features callgrind --bench instructions`)"
            ),
        });
    }
    files.sort();
    let mut by_name: BTreeMap<String, (PathBuf, InstructionCount)> = BTreeMap::new();
    for file in files {
        let bench = import_file(&file)?;
        if let Some((first, _)) = by_name.get(&bench.name) {
            return Err(ImportError::Invalid {
                path: file.clone(),
                message: format!(
                    "benchmark '{}' also comes from {}; pass a folder holding one gungraun run",
                    bench.name,
                    first.display()
                ),
            });
        }
        by_name.insert(bench.name.clone(), (file, bench));
    }
    Ok(by_name.into_values().map(|(_, b)| b).collect())
}

/// Import one gungraun `summary.json`.
pub fn import_file(path: impl AsRef<Path>) -> Result<InstructionCount, ImportError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let summary: SummaryJson =
        serde_json::from_str(&text).map_err(|e| ImportError::json(path, &e))?;
    let invalid = |message: String| ImportError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    let profile = summary
        .profiles
        .iter()
        .find(|p| p.tool == "Callgrind")
        .ok_or_else(|| {
            invalid(
                "no Callgrind profile in this summary; the instruction benchmarks must run with \
                 the default tool (callgrind)"
                    .into(),
            )
        })?;
    let ir = profile
        .data
        .total
        .metrics
        .get("Ir")
        .and_then(|m| m.values.new.as_ref())
        .ok_or_else(|| {
            invalid(
                "callgrind profile has no new Ir (instruction) count; do not restrict \
                 GUNGRAUN_CALLGRIND_METRICS without Ir"
                    .into(),
            )
        })?;
    let instructions = ir
        .as_u64()
        .or_else(|| {
            ir.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0)
                .map(|f| f as u64)
        })
        .ok_or_else(|| invalid(format!("Ir count {ir} is not a non-negative integer")))?;

    let group = summary.group.unwrap_or_else(|| "ungrouped".into());
    let mut name = format!("{NAME_PREFIX}/{group}/{}", summary.function_name);
    if let Some(id) = summary.id.as_deref().filter(|id| !id.is_empty()) {
        name.push('/');
        name.push_str(id);
    }
    let mut b = InstructionCount::new(name, group, instructions);
    b.total_time_seconds = profile.duration_ns as f64 / 1e9;
    Ok(b)
}

/// Collect every `summary.json` below `dir`.
fn find_summaries(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ImportError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ImportError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| ImportError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(|source| ImportError::Io {
            path: path.clone(),
            source,
        })?;
        if file_type.is_dir() {
            find_summaries(&path, out)?;
        } else if file_type.is_file() && entry.file_name() == SUMMARY_FILE {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/callgrind")
    }

    #[test]
    fn imports_real_gungraun_summaries() {
        let benches = import_dir(fixture_dir()).expect("fixture summaries import");
        let got: Vec<(&str, u64)> = benches
            .iter()
            .map(|b| (b.name.as_str(), b.instructions))
            .collect();
        // Names and counts of the real `cargo bench --features callgrind --bench instructions` run that produced the
        // fixture (also in baselines/instructions.json).
        assert_eq!(
            got,
            [
                ("callgrind/agent/answer/plain", 5685),
                ("callgrind/cache/get/hit", 4684),
                ("callgrind/cache/set/overwrite", 7552),
                ("callgrind/webhook/parse/github", 266_899),
                ("callgrind/webhook/verify/github", 1_507_233),
            ]
        );
        let parse = &benches[3];
        assert_eq!(parse.source, sources::CALLGRIND);
        assert_eq!(parse.group, "webhook");
        assert!(parse.spread.is_none());
        assert!(parse.total_time_seconds > 0.0);
    }

    #[test]
    fn importer_trait_reports_callgrind_source() {
        let imp = CallgrindImporter::new(fixture_dir());
        assert_eq!(imp.source(), "callgrind");
        let entries = imp.import().expect("imports");
        assert_eq!(entries.instructions.len(), 5);
        assert!(entries.benchmarks.is_empty() && entries.skipped.is_empty());
    }

    #[test]
    fn missing_folder_names_it() {
        let err = import_dir("/nonexistent/gungraun").unwrap_err().to_string();
        assert!(err.contains("/nonexistent/gungraun"), "{err}");
        assert!(
            err.contains("cargo bench --features callgrind --bench instructions"),
            "{err}"
        );
    }

    #[test]
    fn empty_folder_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = import_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no gungraun summary.json"), "{err}");
    }

    #[test]
    fn summary_without_ir_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("summary.json");
        std::fs::write(
            &p,
            r#"{"function_name":"f","group":"g","id":"x","profiles":[{"tool":"Callgrind",
               "duration_ns":1,"data":{"total":{"metrics":{"Dr":{"values":{"new":3}}}}}}]}"#,
        )
        .expect("write");
        let err = import_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("no new Ir"), "{err}");
        assert!(err.contains("summary.json"), "{err}");
    }

    #[test]
    fn malformed_summary_names_file_and_position() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("summary.json"), "{\n  \"function_name\": ").expect("w");
        let err = import_dir(dir.path()).unwrap_err();
        assert!(matches!(err, ImportError::Json { line: 2, .. }), "{err}");
    }
}
