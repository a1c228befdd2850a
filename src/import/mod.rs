//! Importers: one trait, one file per source. Each turns a tool's output into
//! [`Entries`] of the one result format (measured benchmarks, skipped ones, instruction counts).
//! Goose metrics are imported by the load tester itself (package `aiops-loadtest`), so this
//! library does not depend on Goose.

use std::path::PathBuf;

use crate::result::Entries;

pub mod callgrind;
pub mod criterion;

/// Why an import failed. Every variant names the file involved.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file or folder could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid JSON or does not have the expected shape.
    #[error("{}:{line}:{column}: malformed json: {message}", path.display())]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A file parses but its content makes no sense (for example a negative time).
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    /// A per-operation sidecar was not recorded in the run of the criterion data beside it.
    #[error("{}: {message}", sidecar.display())]
    Stale { sidecar: PathBuf, message: String },
}

impl ImportError {
    /// Build [`ImportError::Json`] from a serde_json error.
    pub fn json(path: impl Into<PathBuf>, e: &serde_json::Error) -> Self {
        ImportError::Json {
            path: path.into(),
            line: e.line(),
            column: e.column(),
            message: strip_position(e),
        }
    }
}

/// A source of benchmark entries.
pub trait Importer {
    /// Short source name, as written to each entry's `source` (for example `criterion`).
    fn source(&self) -> &'static str;
    /// Read the source and return its entries.
    fn import(&self) -> Result<Entries, ImportError>;
}

/// serde_json's message without its trailing " at line L column C" (the position is printed
/// separately as `file:line:column`).
pub(crate) fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
