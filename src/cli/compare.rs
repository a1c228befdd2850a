//! `aiops-bench compare`: a result file against a baseline; exit 1 on a regression, 3 when
//! inconclusive.

use std::path::PathBuf;
use std::process::ExitCode;

use aiops_bench::compare::{compare, CompareOptions, Metric};
use aiops_bench::export::{json::Json, markdown::Markdown, table::Table, ComparisonExporter};
use aiops_bench::io;
use anyhow::{bail, Result};

use super::{MetricArg, ReportFormat};

/// The parsed flags of `compare`.
pub(crate) struct Args {
    pub baseline: PathBuf,
    pub current: PathBuf,
    pub metric: MetricArg,
    pub threshold: f64,
    pub instructions_threshold: f64,
    pub noise_floor: f64,
    pub multi_run_noise_floor: f64,
    pub no_normalize: bool,
    pub no_confirm: bool,
    pub max_disturbance: f64,
    pub format: ReportFormat,
}

pub(crate) fn run(a: Args) -> Result<ExitCode> {
    for (flag, v) in [
        ("--threshold", a.threshold),
        ("--instructions-threshold", a.instructions_threshold),
        ("--noise-floor", a.noise_floor),
        ("--multi-run-noise-floor", a.multi_run_noise_floor),
        ("--max-disturbance", a.max_disturbance),
    ] {
        if !v.is_finite() || v < 0.0 {
            bail!("{flag} {v}: expected a percentage >= 0");
        }
    }
    let base = io::load(&a.baseline)?;
    let cur = io::load(&a.current)?;
    let options = CompareOptions {
        metric: match a.metric {
            MetricArg::P95 => Metric::P95,
            MetricArg::Mean => Metric::Mean,
            MetricArg::Median => Metric::Median,
        },
        threshold_pct: a.threshold,
        instructions_threshold_pct: a.instructions_threshold,
        noise_floor_pct: a.noise_floor,
        multi_run_noise_floor_pct: a.multi_run_noise_floor,
        normalize: !a.no_normalize,
        max_disturbance_pct: a.max_disturbance,
        confirm: !a.no_confirm,
        ..CompareOptions::default()
    };
    let comparison = compare(&base, &cur, &options);
    let exporter: &dyn ComparisonExporter = match a.format {
        ReportFormat::Table => &Table,
        ReportFormat::Markdown => &Markdown,
        ReportFormat::Json => &Json,
    };
    print!("{}", exporter.render(&comparison));
    Ok(ExitCode::from(comparison.outcome().exit_code()))
}
