//! `aiops-bench export`: a result file for Bencher (bmf) or github-action-benchmark.

use std::path::Path;
use std::process::ExitCode;

use aiops_bench::export::{
    bmf::Bmf, github_action_benchmark::GithubActionBenchmark, ResultsExporter,
};
use aiops_bench::io;
use anyhow::{Context, Result};

use super::ExportFormat;

pub(crate) fn run(format: ExportFormat, current: &Path, output: Option<&Path>) -> Result<ExitCode> {
    let results = io::load(current)?;
    let exporter: &dyn ResultsExporter = match format {
        ExportFormat::Bmf => &Bmf,
        ExportFormat::GithubActionBenchmark => &GithubActionBenchmark,
    };
    let text = exporter.render(&results);
    match output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write export file {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
