//! `aiops-bench check`: a result file against performance targets; exit 1 on a miss.

use std::path::Path;
use std::process::ExitCode;

use aiops_bench::io;
use aiops_bench::targets::{check, render, Targets};
use anyhow::Result;

pub(crate) fn run(targets: &Path, current: &Path) -> Result<ExitCode> {
    let targets = Targets::load(targets)?;
    let results = io::load(current)?;
    let outcomes = check(&targets, &results);
    let report = render(&outcomes, true);
    print!("{}", report.text);
    Ok(if report.missed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
