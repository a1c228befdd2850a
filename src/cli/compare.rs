//! `aiops-bench compare`: a result file against a baseline; exit 1 on a regression, 3 when
//! inconclusive.

use std::path::PathBuf;
use std::process::ExitCode;

use aiops_bench::compare::{compare, CompareOptions, Metric};
use aiops_bench::export::{json::Json, markdown::Markdown, table::Table, ComparisonExporter};
use aiops_bench::io;
use anyhow::{bail, Result};

use super::{MetricArg, ReportFormat};

/// The flags of `compare` (also its clap definition).
#[derive(clap::Args, Debug)]
pub(crate) struct Args {
    /// Baseline result file.
    #[arg(long)]
    pub baseline: PathBuf,
    /// Current result file.
    pub current: PathBuf,
    /// Wall-clock statistic compared.
    #[arg(long, value_enum, default_value_t = MetricArg::P95)]
    pub metric: MetricArg,
    /// Allowed change beyond the noise band, in percent.
    #[arg(long, default_value_t = 10.0)]
    pub threshold: f64,
    /// Allowed change of deterministic instruction counts, in percent.
    #[arg(long, default_value_t = 2.0)]
    pub instructions_threshold: f64,
    /// Noise band around the baseline value, in percent (always applied).
    #[arg(long, default_value_t = 60.0)]
    pub noise_floor: f64,
    /// Margin around a multi-run baseline's spread and the mean's CI (and around the
    /// run-to-run noise the run factor is judged against), in percent.
    #[arg(long, default_value_t = 20.0)]
    pub multi_run_noise_floor: f64,
    /// Judge raw changes: do not divide by the run factor (see below).
    #[arg(long)]
    pub no_normalize: bool,
    /// Judge wall-clock regressions on the noise band alone, without confirmation by the
    /// distributions (see below); for a quiet, dedicated machine, with a lower --noise-floor.
    #[arg(long)]
    pub no_confirm: bool,
    /// A wall-clock measurement during which other processes (and the hypervisor) used
    /// more than this share of the CPUs, in percent of all cores, is inconclusive.
    #[arg(long, default_value_t = aiops_bench::disturbance::DEFAULT_MAX_DISTURBANCE_PCT)]
    pub max_disturbance: f64,
    /// Report format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
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
