//! A history of runs kept in a folder that suits git and a gh-pages branch: one result file per
//! run under `runs/` (never rewritten once added) and `index.json`, the list of runs ordered by
//! time, so that adding a run is one new file plus a few inserted index lines in a diff.
//!
//! ```text
//! history/
//!   index.json                               {"format": 1, "runs": [{"id", "file", "timestamp", ...}]}
//!   runs/20261201T152404Z-58f3634e0fe6.json  a result file (schema version 2)
//! ```
//!
//! A run is identified by its git commit and its timestamp: adding the same run twice (same
//! commit, same instant, however the timestamp is spelled) keeps the first copy.
//!
//! A load result made with `loadtest --profile` names its flamegraph and folded stacks
//! (`metadata.profile`, relative to the result file): they are copied to `runs/<id>/` and the
//! stored copy names them there, so the history (and the site built from it) keeps them.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::io::{self, ResultsError};
use crate::result::BenchmarkResults;

/// Name of the index file inside a history folder.
pub const INDEX_FILE: &str = "index.json";
/// Folder of the run files inside a history folder.
pub const RUNS_DIR: &str = "runs";
/// Version of the index format this crate writes and reads.
pub const INDEX_FORMAT: u32 = 1;

/// Why a history folder cannot be read or written. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// A result file (to add, or of the history) is unusable.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// The timestamp of a result file is not RFC 3339.
    #[error("{}: timestamp {timestamp:?} is not an RFC 3339 date and time (for example 2026-12-01T15:24:04Z); a history orders runs by it", path.display())]
    Timestamp { path: PathBuf, timestamp: String },
    /// The index could not be read or is malformed.
    #[error("{}: malformed history index: {message}; it lists the files of {RUNS_DIR}/, restore it from git", path.display())]
    Index { path: PathBuf, message: String },
    /// The folder has no index.
    #[error("{}: no history here (create one with aiops-bench history add FILE... --dir {})", path.display(), path.parent().map(|d| d.display().to_string()).unwrap_or_default())]
    Missing { path: PathBuf },
    /// A file could not be read or written.
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One run of the history, as listed in `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// Stable identifier: compact UTC timestamp and the first 12 digits of the commit.
    pub id: String,
    /// Path of the result file, relative to the history folder.
    pub file: String,
    /// The result's timestamp (RFC 3339).
    pub timestamp: String,
    /// The result's git commit, when recorded.
    pub git_commit: Option<String>,
    /// Number of measured benchmarks.
    pub benchmarks: usize,
    /// Number of instruction counts.
    pub instructions: usize,
}

/// The index of a history folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Index format version ([`INDEX_FORMAT`]).
    pub format: u32,
    /// Runs, oldest first (see [`order`]).
    pub runs: Vec<IndexEntry>,
}

impl Default for Index {
    fn default() -> Self {
        Self {
            format: INDEX_FORMAT,
            runs: Vec::new(),
        }
    }
}

fn instant(timestamp: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(timestamp)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The order of runs in a history: by instant, then commit, then id (a total order, so the
/// index is the same whatever order runs were added in).
pub fn order(a: &IndexEntry, b: &IndexEntry) -> Ordering {
    instant(&a.timestamp)
        .cmp(&instant(&b.timestamp))
        .then_with(|| a.git_commit.cmp(&b.git_commit))
        .then_with(|| a.id.cmp(&b.id))
}

/// Whether two entries are the same run: same commit and same instant.
pub fn same_run(a: &IndexEntry, b: &IndexEntry) -> bool {
    a.git_commit == b.git_commit
        && match (instant(&a.timestamp), instant(&b.timestamp)) {
            (Some(x), Some(y)) => x == y,
            _ => a.timestamp == b.timestamp,
        }
}

impl Index {
    /// Insert `entry` in order; `false` (and nothing changes) when the same run is already
    /// listed ([`same_run`]).
    pub fn insert(&mut self, entry: IndexEntry) -> bool {
        if self.runs.iter().any(|e| same_run(e, &entry)) {
            return false;
        }
        let at = self
            .runs
            .partition_point(|e| order(e, &entry) == Ordering::Less);
        self.runs.insert(at, entry);
        true
    }
}

/// The index entry of `results`; `path` is only used in messages.
pub fn entry_for(path: &Path, results: &BenchmarkResults) -> Result<IndexEntry, HistoryError> {
    let t = instant(&results.timestamp).ok_or_else(|| HistoryError::Timestamp {
        path: path.to_path_buf(),
        timestamp: results.timestamp.clone(),
    })?;
    let commit = results.metadata.git_commit.clone();
    let short: String = commit
        .as_deref()
        .unwrap_or("nocommit")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect();
    let id = format!("{}-{short}", t.format("%Y%m%dT%H%M%SZ"));
    Ok(IndexEntry {
        file: format!("{RUNS_DIR}/{id}.json"),
        id,
        timestamp: results.timestamp.clone(),
        git_commit: commit,
        benchmarks: results.benchmarks.len(),
        instructions: results.instructions.len(),
    })
}

/// Read `dir/index.json`; an empty index when the folder or file does not exist yet.
pub fn read_index(dir: &Path) -> Result<Index, HistoryError> {
    let path = dir.join(INDEX_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Index::default()),
        Err(source) => {
            return Err(HistoryError::Io {
                action: "read",
                path,
                source,
            })
        }
    };
    let index: Index = serde_json::from_slice(&bytes).map_err(|e| HistoryError::Index {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if index.format != INDEX_FORMAT {
        return Err(HistoryError::Index {
            path,
            message: format!(
                "unknown format {} (this aiops-bench reads {INDEX_FORMAT})",
                index.format
            ),
        });
    }
    Ok(index)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), HistoryError> {
    let io_err = |source| HistoryError::Io {
        action: "write",
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io_err)?;
    std::fs::rename(&tmp, path).map_err(io_err)
}

/// What [`add`] did with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// Added as this entry.
    New(IndexEntry),
    /// Already in the history (same commit and timestamp) as this entry; nothing written.
    Duplicate(IndexEntry),
}

/// Add result files to the history folder `dir` (created when missing). Every file is read and
/// validated first: when one is unusable nothing is written.
pub fn add(dir: &Path, files: &[PathBuf]) -> Result<Vec<Added>, HistoryError> {
    let mut loaded = Vec::new();
    for path in files {
        let results = io::load(path)?;
        let entry = entry_for(path, &results)?;
        loaded.push((path, results, entry));
    }
    let mut index = read_index(dir)?;
    let mut outcome = Vec::new();
    for (path, mut results, entry) in loaded {
        if let Some(existing) = index.runs.iter().find(|e| same_run(e, &entry)) {
            outcome.push(Added::Duplicate(existing.clone()));
            continue;
        }
        copy_profile(path, dir, &entry, &mut results)?;
        io::save(&dir.join(&entry.file), &results, true)?;
        index.insert(entry.clone());
        outcome.push(Added::New(entry));
    }
    let mut json = serde_json::to_vec_pretty(&index).expect("an index serializes");
    json.push(b'\n');
    write_atomic(&dir.join(INDEX_FILE), &json)?;
    Ok(outcome)
}

/// Copy the profile files `results` names (relative to `path`'s folder) to
/// `dir/runs/<id>/` and name them there (relative to the stored copy in `dir/runs/`). A file
/// that is not there is dropped from the stored copy, with the reason in `problem`.
fn copy_profile(
    path: &Path,
    dir: &Path,
    entry: &IndexEntry,
    results: &mut BenchmarkResults,
) -> Result<(), HistoryError> {
    let Some(profile) = results.metadata.profile.as_mut() else {
        return Ok(());
    };
    let from_dir = path.parent().unwrap_or(Path::new("."));
    let to_dir = dir.join(RUNS_DIR).join(&entry.id);
    let mut missing = Vec::new();
    for file in [&mut profile.flamegraph, &mut profile.folded] {
        let Some(rel) = file.take() else { continue };
        let from = from_dir.join(&rel);
        let name = Path::new(&rel)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| rel.clone());
        if !from.is_file() {
            missing.push(format!(
                "{} was not found when the run was added to the history",
                from.display()
            ));
            continue;
        }
        let to = to_dir.join(&name);
        let io_err = |source| HistoryError::Io {
            action: "copy the profile to",
            path: to.clone(),
            source,
        };
        std::fs::create_dir_all(&to_dir).map_err(io_err)?;
        std::fs::copy(&from, &to).map_err(io_err)?;
        *file = Some(format!("{}/{name}", entry.id));
    }
    if !missing.is_empty() {
        let mut problem = profile.problem.take().map(|p| vec![p]).unwrap_or_default();
        problem.extend(missing);
        profile.problem = Some(problem.join("; "));
    }
    Ok(())
}

/// Every run of the history folder `dir`, oldest first, with its index entry.
pub fn load(dir: &Path) -> Result<Vec<(IndexEntry, BenchmarkResults)>, HistoryError> {
    let index = read_index(dir)?;
    if index.runs.is_empty() && !dir.join(INDEX_FILE).exists() {
        return Err(HistoryError::Missing {
            path: dir.join(INDEX_FILE),
        });
    }
    index
        .runs
        .into_iter()
        .map(|e| {
            let results = io::load(&dir.join(&e.file))?;
            Ok((e, results))
        })
        .collect()
}
