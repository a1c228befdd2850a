//! `aiops-bench report`: a static site from a history folder ([`crate::history`]) that opens
//! from `file://` and from GitHub Pages: plain HTML pages with the charts inline as SVG (drawn
//! by plotters, [`charts`]), one stylesheet, no script, nothing loaded from the network.
//!
//! * `index.html`: every benchmark's latest value, its change against the previous run and the
//!   baseline, the gate's verdict and a sparkline of its last runs ([`data::overview`]);
//! * `bench/<name>.html`: p50/p95/p99 over the runs with the noise band shaded and change
//!   points marked, each point a link to its run;
//! * `runs/<id>.html`: a run's HDR percentile distributions (one chart per group), its
//!   resources and every benchmark;
//! * `ab.html`: an `aiops-bench ab BASE_REV --output FILE` JSON report, when given.
//!
//! Run pages also draw a load test's `timeseries` (rates, latency, requests in flight per
//! second) and the target's resources over time, and link the flamegraph and folded stacks of
//! `loadtest --profile` (copied to `runs/<id>/`); the A/B page links the flamegraphs of
//! `ab --profile` (copied to `ab/<benchmark>/`).
//!
//! The overview stays light whatever the history's length (sparklines of the last
//! [`SPARK_RUNS`] runs); the long series live on the per-benchmark pages.

pub mod charts;
pub mod data;
mod pages;

use std::path::{Path, PathBuf};

pub use data::{change_points, overview, History, OverviewRow, Run};

use crate::history::{self, HistoryError};
use crate::io::{self, ResultsError};

/// Runs shown by an overview sparkline.
pub const SPARK_RUNS: usize = 30;
/// Runs before a point that make its noise band.
pub const BAND_RUNS: usize = 10;

/// Why a site could not be built. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The history is unusable.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// The baseline is unusable.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// The A/B report is unusable.
    #[error("{}: not an aiops-bench ab JSON report ({message}); write one with aiops-bench ab BASE_REV --output FILE", path.display())]
    Ab { path: PathBuf, message: String },
    /// The history has no run.
    #[error("{}: the history has no runs; add some with aiops-bench history add FILE... --dir {}", path.display(), path.display())]
    Empty { path: PathBuf },
    /// A chart could not be drawn.
    #[error("cannot draw {what}: {message}")]
    Draw { what: String, message: String },
    /// A page could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What [`build`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Runs in the history.
    pub runs: usize,
    /// Benchmarks (series).
    pub benchmarks: usize,
    /// Pages written.
    pub pages: usize,
    /// Bytes written in all.
    pub bytes: u64,
    /// Size of `index.html` in bytes.
    pub overview_bytes: u64,
    /// Size of the largest page in bytes.
    pub largest_page_bytes: u64,
}

/// Inputs of [`build`].
pub struct Options<'a> {
    /// History folder.
    pub history: &'a Path,
    /// Site folder (created; existing pages are overwritten).
    pub output: &'a Path,
    /// Baseline result file to compare the latest values with.
    pub baseline: Option<&'a Path>,
    /// `aiops-bench ab` JSON report for the A/B page.
    pub ab: Option<&'a Path>,
}

/// Load a history folder as [`Run`]s, oldest first.
pub fn load_history(dir: &Path) -> Result<History, ReportError> {
    let runs: Vec<Run> = history::load(dir)?
        .into_iter()
        .map(|(entry, results)| Run { entry, results })
        .collect();
    if runs.is_empty() {
        return Err(ReportError::Empty {
            path: dir.to_path_buf(),
        });
    }
    let mut history = History::new(runs);
    history.root = Some(dir.to_path_buf());
    Ok(history)
}

/// Build the site.
pub fn build(o: &Options) -> Result<Summary, ReportError> {
    let baseline = o.baseline.map(io::load).transpose()?;
    let ab =
        o.ab.map(|path| {
            let bytes = std::fs::read(path).map_err(|e| ReportError::Ab {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
            let mut report =
                serde_json::from_slice::<crate::ab::AbReport>(&bytes).map_err(|e| {
                    ReportError::Ab {
                        path: path.to_path_buf(),
                        message: e.to_string(),
                    }
                })?;
            resolve_ab_profiles(&mut report, path);
            Ok::<_, ReportError>(report)
        })
        .transpose()?;
    let history = load_history(o.history)?;
    write_site(&history, o.output, baseline.as_ref(), ab.as_ref())
}

/// `ab --profile` names its files as the `ab` run saw them (relative to where it ran, usually
/// the repository root): a relative path that does not exist from here is tried next to the
/// A/B report's file too.
fn resolve_ab_profiles(report: &mut crate::ab::AbReport, ab_file: &Path) {
    let beside = ab_file.parent().unwrap_or(Path::new("."));
    for p in report
        .benchmarks
        .iter_mut()
        .filter_map(|b| b.profile.as_mut())
    {
        for path in [
            &mut p.base_flamegraph,
            &mut p.head_flamegraph,
            &mut p.differential_flamegraph,
            &mut p.base_folded,
            &mut p.head_folded,
            &mut p.differential_folded,
        ]
        .into_iter()
        .flatten()
        {
            if path.is_relative() && !path.exists() && beside.join(&*path).exists() {
                *path = beside.join(&*path);
            }
        }
    }
}

/// Write the site of `history` (already loaded) to `output`.
pub fn write_site(
    history: &History,
    output: &Path,
    baseline: Option<&crate::result::BenchmarkResults>,
    ab: Option<&crate::ab::AbReport>,
) -> Result<Summary, ReportError> {
    let rows = overview(history, baseline);
    let mut site = pages::Site::new(output);
    site.write_all(history, &rows, baseline.is_some(), ab)?;
    Ok(Summary {
        runs: history.runs.len(),
        benchmarks: history.series.len(),
        pages: site.pages,
        bytes: site.bytes,
        overview_bytes: site.overview_bytes,
        largest_page_bytes: site.largest_page_bytes,
    })
}
