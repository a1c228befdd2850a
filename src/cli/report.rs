//! `aiops-bench report`: the static site of a history.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use aiops_bench::report::{self, Options};
use anyhow::Result;

pub(crate) fn run(
    history: &Path,
    output: &Path,
    baseline: Option<&Path>,
    ab: Option<&Path>,
) -> Result<ExitCode> {
    let start = Instant::now();
    eprintln!("report: reading {} ...", history.display());
    let summary = report::build(&Options {
        history,
        output,
        baseline,
        ab,
    })?;
    println!(
        "wrote {} pages ({:.1} MiB; overview {:.0} KiB) for {} runs and {} benchmarks to {} in {:.1} s; open {}",
        summary.pages,
        summary.bytes as f64 / 1048576.0,
        summary.overview_bytes as f64 / 1024.0,
        summary.runs,
        summary.benchmarks,
        output.display(),
        start.elapsed().as_secs_f64(),
        output.join("index.html").display()
    );
    Ok(ExitCode::SUCCESS)
}
