//! `aiops-bench history add`: append result files to a history folder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aiops_bench::history::{self, Added};
use anyhow::Result;

pub(crate) fn add(dir: &Path, files: &[PathBuf]) -> Result<ExitCode> {
    let outcome = history::add(dir, files)?;
    let mut new = 0;
    for (file, added) in files.iter().zip(&outcome) {
        match added {
            Added::New(e) => {
                new += 1;
                println!(
                    "added {} as {} ({} benchmarks, {} instruction counts)",
                    file.display(),
                    dir.join(&e.file).display(),
                    e.benchmarks,
                    e.instructions
                );
            }
            Added::Duplicate(e) => println!(
                "skipped {}: already in the history as {} (same commit and timestamp)",
                file.display(),
                dir.join(&e.file).display()
            ),
        }
    }
    let total = history::read_index(dir)?.runs.len();
    println!(
        "{new} added, {} already present; {} now holds {total} runs",
        outcome.len() - new,
        dir.join(history::INDEX_FILE).display()
    );
    Ok(ExitCode::SUCCESS)
}
