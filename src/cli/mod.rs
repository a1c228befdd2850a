//! Command line of `aiops-bench`: the argument types and one module per subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

mod baseline;
mod check;
mod collect;
mod compare;
mod export;
mod history;
mod merge;
#[cfg(feature = "report")]
mod report;

pub(crate) const COMPARE_HELP: &str = "\
Exit codes: 0 ok, 1 regression, 2 bad input, 3 inconclusive (nothing could be judged: every
row inconclusive or no benchmark in both files, or a whole kind of measurement present in both
files, wall clock or instruction counts, could not be judged).

How verdicts are decided (wall-clock statistics: p95, mean, median):
  Disturbance: each benchmark records how much CPU other processes and the hypervisor used
  while it ran (a local Redis server it talks to counts as its own). With a busy neighbour,
  Redis round trips of identical code measured 10-28x slower here while in-process code barely
  moved: no band separates that from a regression. A measurement disturbed by more than
  --max-disturbance (default 10% of all cores) on either side is 'inconclusive', with the
  reason. Rerun it quietly.
  Run factor: the median of current/baseline over every wall-clock benchmark in both files
  (at least 5) measures how much slower or faster the whole run is, the part a busy neighbour
  adds to every benchmark at once. Each wall-clock value is divided by it before it is judged,
  so a benchmark is judged on how it moved relative to the rest of its own run. The run factor
  itself is judged against the baseline's measured run-to-run noise: for a baseline saved from
  several runs, U = the median over benchmarks of spread.max / value (the most any of its runs
  moved as a whole), band 1 + (U - 1) x (1 + margin), plus the threshold; for a 1-run baseline,
  which measured none, the floor below. A change that slows most benchmarks at once fails
  there. --no-normalize judges raw changes.
  The baseline value b gets a noise band:
    hi = max(b x (1 + floor), max(spread.max, ci.upper) x (1 + margin))
    lo = min(b / (1 + floor), min(spread.min, ci.lower) / (1 + margin))
  floor is --noise-floor (default 60%) and always applies: on the shared 2-core machines
  criterion means of identical code moved up to 1.7x between runs. spread is the min/max of
  the statistic across the runs merged into the baseline (baseline save --from A --from B ...),
  ci the baseline's confidence interval of the mean (mean metric only), margin is
  --multi-run-noise-floor (default 20%). A multi-run spread can only widen the band: a few runs
  often miss the full swing. Lower --noise-floor on a quiet, dedicated machine.
    regressed     current > hi x (1 + threshold)        (exit 1)
                  and confirmed (unless --no-confirm): the current median or mean must
                  also exceed the baseline run's own p95 by the threshold, and for p95
                  the median must regress by both rules too. On quiet runs of identical code a
                  Redis write's median moved 7x (two latency modes: 10 and 76 us); a change
                  inside the baseline's own distribution is 'within noise'.
                  Tail rule (p95, median unconfirmed): a regression of the tail when p99 is
                  beyond its band too and, for a 1-run baseline, the current p95 is beyond the
                  baseline's own p99 plus the threshold (a pipelined Redis read's p95 moved 3x
                  between quiet runs, into where its p99 already was; a multi-run baseline's
                  spread widens such a benchmark's bands instead).
                  Subset rule: when at least 3 and 10% of the judged benchmarks have their
                  statistic and median beyond their bands at once, all of them regressed,
                  confirmed or not (one benchmark jumps between latency modes, not a tenth of
                  the suite).
    improved      current < lo / (1 + threshold)
    unchanged     |change| <= 1%
    within noise  anything else
    inconclusive  measured on a busy machine (see Disturbance)
  Every judged row states the smallest slowdown of that benchmark it could have called a
  regression (detectable_change_pct, the 'sees' column) and, for p95, of its tail alone.
  p95 falls back to the mean (on both sides) when a side has only criterion sample means.
Instruction counts (the instructions list) are compared tightly:
  regressed above max(b, spread.max) x (1 + --instructions-threshold, default 2%).
  Counts depend on the host (CPU model, valgrind, rustc, glibc), recorded by collect
  --callgrind-dir as metadata.host_fingerprint: counts of files whose fingerprints differ, or
  of a file without one, are 'inconclusive', naming what differs; re-record the baseline on
  the machine you compare on (baselines/README.md).
new: only in the current run. missing: only in the baseline, or skipped in the current run.
A file compared with itself is always 'unchanged'. Every row says why.";

#[derive(Parser, Debug)]
#[command(
    name = "aiops-bench",
    version,
    about = "One result format for criterion and Goose output, baselines and a noise-aware regression gate",
    after_help = "Exit codes: 0 ok, 1 regression or target missed, 2 bad input, one line naming the file, benchmark and field (missing, malformed or oversized file, unknown schema_version, no entry, values that contradict each other: NaN, negative or huge numbers, min > median > p95 > p99 > max, a spread or confidence interval not around its value, more errors than iterations, duplicate names; a targets file with a NaN or negative limit; size limit 256 MiB, AIOPS_BENCH_MAX_FILE_BYTES), 3 inconclusive (compare: nothing could be judged, for example every measurement taken on a busy machine, or instruction counts of different hosts)."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Paired A/B of the criterion suite: BASE_REV (A) against the working tree (B) on this
    /// machine, judged with confidence intervals; exit 1 on a regression, 3 inconclusive.
    #[command(after_help = aiops_bench::ab::cli::AB_HELP)]
    Ab(aiops_bench::ab::cli::AbArgs),
    /// Turn criterion output (plus the per-operation HDR sidecars) into one result file.
    Collect {
        /// Criterion output folder.
        #[arg(long, default_value = "target/criterion")]
        criterion_dir: PathBuf,
        /// Read a criterion baseline saved with `cargo bench -- --save-baseline NAME` (its
        /// estimates and the per-operation data saved with it) instead of the last run (`new`).
        /// `base` is the baseline every plain `cargo bench` run saves.
        #[arg(long)]
        baseline: Option<String>,
        /// Also import gungraun/callgrind summaries (instruction counts) below this folder,
        /// for example target/gungraun.
        #[arg(long)]
        callgrind_dir: Option<PathBuf>,
        /// Also include the benchmarks of these result files (for example load_results.json).
        #[arg(long)]
        include: Vec<PathBuf>,
        /// Where to write the result file.
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Save or list baselines (a baseline is a saved result file).
    Baseline {
        #[command(subcommand)]
        command: BaselineCommand,
    },
    /// Compare a result file against a baseline; exit 1 on a regression, 3 when inconclusive.
    #[command(after_help = COMPARE_HELP)]
    Compare(compare::Args),
    /// Check a result file against performance targets; exit 1 on a miss.
    Check {
        /// Targets file (TOML).
        #[arg(long, default_value = "baselines/targets.toml")]
        targets: PathBuf,
        /// Result file.
        current: PathBuf,
    },
    /// Merge the results of load-test workers (`loadtest --workers N --worker-index I`, one
    /// share each of one open-model schedule) into one result, exactly: histograms added,
    /// percentiles of the merged histogram (never averaged), counts, status codes, errors and
    /// resources added; then judge it with the targets. Each worker's achieved rate, lag and
    /// clock are printed, so one slow worker shows. Exit 1 on a missed target or when a
    /// worker's share is missing (no file, an unreadable or truncated one, or an interrupted
    /// worker: the report names it and what is missing); 2 on files of different runs.
    #[command(
        after_help = "Example: aiops-bench merge results/worker-*.json --output merged.json
        The thresholds of a loadtest --plan are not in the worker files: give them with --targets."
    )]
    Merge {
        /// Worker result files (one per worker; a worker without a file is reported missing).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Where to write the merged result.
        #[arg(long, short, value_name = "FILE")]
        output: PathBuf,
        /// Targets file the merged result is judged with (default: the repository's
        /// baselines/targets.toml, compiled in).
        #[arg(long, value_name = "FILE")]
        targets: Option<PathBuf>,
    },
    /// Print the JSON Schema of result files (schema version 2), generated from the types;
    /// baselines/schema.json is this output.
    Schema,
    /// Export a result file for Bencher (bmf) or github-action-benchmark.
    Export {
        /// Output format.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Result file.
        current: PathBuf,
        /// Write here instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Keep a history of runs in a folder (one file per run plus index.json; suits git and a
    /// gh-pages branch).
    History {
        #[command(subcommand)]
        command: HistoryCommand,
    },
    #[cfg(feature = "report")]
    /// Build a static site (HTML + inline SVG charts, no script, works from file:// and GitHub
    /// Pages) from a history folder: overview, one page per benchmark and per run, A/B page.
    Report {
        /// History folder (written by `history add`).
        #[arg(long, default_value = "history")]
        history: PathBuf,
        /// Site folder to write (created; pages in it are overwritten).
        #[arg(long, short)]
        output: PathBuf,
        /// Baseline result file: the overview shows each latest value against it and the
        /// gate's verdict (else the gate judges the latest run against the previous one).
        #[arg(long)]
        baseline: Option<PathBuf>,
        /// An `aiops-bench ab BASE_REV --output FILE` JSON report: adds an A/B comparison
        /// page (ab.html).
        #[arg(long)]
        ab: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum HistoryCommand {
    /// Add result files (any kind: micro, load, instruction counts) to the history; a run
    /// already there (same git commit and timestamp) is skipped. Nothing is written when a
    /// file is unusable (exit 2).
    Add {
        /// Result files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// History folder (created when missing).
        #[arg(long, default_value = "history")]
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum BaselineCommand {
    /// Save result file(s) as baselines/NAME.json; several --from files are merged into one
    /// baseline that keeps their spread (median value, min/max across runs).
    Save {
        /// Baseline name (file baselines/NAME.json).
        name: String,
        /// Result file(s) to save; repeat to merge several runs.
        #[arg(long, required = true)]
        from: Vec<PathBuf>,
        /// Overwrite an existing baseline.
        #[arg(long)]
        force: bool,
        /// Baselines folder.
        #[arg(long, default_value = "baselines")]
        dir: PathBuf,
    },
    /// List saved baselines.
    List {
        /// Baselines folder.
        #[arg(long, default_value = "baselines")]
        dir: PathBuf,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum MetricArg {
    P95,
    Mean,
    Median,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum ReportFormat {
    Table,
    Markdown,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum ExportFormat {
    Bmf,
    GithubActionBenchmark,
}

/// Parse the command line and run the subcommand. Usage errors are printed by clap and exit 2
/// (`--help` and `--version` exit 0); every other error is returned.
pub fn run() -> Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return Ok(if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            });
        }
    };
    match cli.command {
        Command::Ab(args) => Ok(ExitCode::from(aiops_bench::ab::cli::run(args)?)),
        Command::Collect {
            criterion_dir,
            baseline,
            callgrind_dir,
            include,
            output,
        } => collect::run(
            &criterion_dir,
            baseline,
            callgrind_dir.as_deref(),
            &include,
            &output,
        ),
        Command::Baseline { command } => match command {
            BaselineCommand::Save {
                name,
                from,
                force,
                dir,
            } => baseline::save(&name, &from, force, &dir),
            BaselineCommand::List { dir } => baseline::list(&dir),
        },
        Command::Compare(args) => compare::run(args),
        Command::Check { targets, current } => check::run(&targets, &current),
        Command::Merge {
            files,
            output,
            targets,
        } => merge::run(&files, &output, targets.as_deref()),
        Command::Schema => {
            let schema = aiops_bench::result::json_schema();
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Export {
            format,
            current,
            output,
        } => export::run(format, &current, output.as_deref()),
        Command::History { command } => match command {
            HistoryCommand::Add { files, dir } => history::add(&dir, &files),
        },
        #[cfg(feature = "report")]
        Command::Report {
            history,
            output,
            baseline,
            ab,
        } => report::run(&history, &output, baseline.as_deref(), ab.as_deref()),
    }
}
