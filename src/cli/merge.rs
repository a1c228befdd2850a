//! `aiops-bench merge`: the results of N load-test workers (`loadtest --workers N
//! --worker-index I`) merged exactly into one result, judged with the targets; exit 1 on a
//! breach or when a worker's share is missing (see `aiops_bench::distributed`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aiops_bench::distributed::merge_files;
use aiops_bench::io;
use aiops_bench::targets::{check, render, Targets};
use anyhow::{Context, Result};

pub(crate) fn run(files: &[PathBuf], output: &Path, targets: Option<&Path>) -> Result<ExitCode> {
    let targets = match targets {
        Some(path) => Targets::load(path)?,
        None => Targets::shipped(),
    };
    let merged = merge_files(files)?;
    io::save(output, &merged.results, true).with_context(|| {
        format!(
            "cannot write {}; pass a writable --output",
            output.display()
        )
    })?;
    print!("{}", merged.report);
    println!("Merged result written to {}", output.display());
    let outcomes = check(&targets, &merged.results);
    let report = render(&outcomes, true);
    print!("{}", report.text);
    Ok(if report.missed > 0 || !merged.complete() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
