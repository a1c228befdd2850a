//! The `aiops-bench ab` command line.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{report, AbError, AbOptions};

/// How verdicts are decided, for `--help`.
pub const AB_HELP: &str = "\
How it works:
  A is BASE_REV, B the working tree (HEAD plus uncommitted changes and untracked files), both
  built in one git worktree at one path, <target>/ab/src, so unchanged code gives the same
  executable (A's harness is kept in <target>/ab/bin/<commit> and reused). Both run the
  criterion suite's harness in its A/B mode on this machine. For each benchmark: one warm-up
  slice per side, then --rounds rounds of one --slice-ms slice per side back to back (A B, then
  B A, ...). The whole run is made --passes times, each time with freshly started harnesses; a
  benchmark whose earlier passes already rule out a regression (one pass with its median, p95
  and p99 all within their thresholds) is not measured again. A benchmark that every pass put
  past a threshold, but whose interval still reaches below it, gets further passes, up to
  --max-passes (3). Every operation is timed into an HDR histogram. Both harnesses run with
  address-space randomization off (and the same environment size), so identical code has an
  identical memory layout: with it on, two processes of the same binary measured one benchmark
  9.5% apart, consistently. Both are pinned to the same CPU (the last this process may use;
  --no-pin to turn it off), so A and B always measure on the same core: a virtual machine's
  cores do not all run at one speed. A round in which other processes
  used more than --max-disturbance of the CPUs is run again (at most a third of --rounds times; a machine busy all along stays busy).
Verdicts, per benchmark:
  For each round, B/A of the slices' median, p95 and p99; over the rounds, the Hodges-Lehmann
  estimate of those ratios with a distribution-free --confidence interval (Wilcoxon).
    regressed     the interval's lower bound is above +threshold (median: --threshold,
                  p95/p99: --tail-threshold) over all rounds, and every pass's own
                  estimate is past it too, or operations fail on B only       (exit 1)
                  (two processes of the same binary kept a 230 ns cache read 10% apart
                  for as long as they lived: hash seeds, memory placement; a fresh pair
                  of processes tells that from the code)
    improved      the median's upper bound is below -threshold
    unchanged     the median's whole interval lies within +-threshold
    inconclusive  the median's interval crosses the threshold: this run cannot tell; rerun
                  with more --rounds or on a quieter machine                   (exit 3)
  Tails only add regressions they are sure of: a noisy p99 never makes a row inconclusive.
  Busy machine: when at least half of a benchmark's rounds were disturbed, the rounds depend
  on each other, so a statistic is a regression only if its interval, doubled around its
  estimate on the log scale, still starts past the threshold; otherwise the row is
  inconclusive (busy) and says so.
Exit codes: 0 no regression, 1 regression, 2 bad input or a failed build, 3 inconclusive.
Examples:
  aiops-bench ab origin/main                        the whole suite (5 to 6 minutes here)
  aiops-bench ab HEAD --filter '^webhook/parse'     a few benchmarks, under 2 minutes
  aiops-bench ab HEAD --env-b AIOPS_INJECT_SLOWDOWN=webhook.parse:5   prove the gate
  aiops-bench ab origin/main --profile              and, on a regression, where the time went:
                                                    flamegraphs of both sides and a differential
                                                    one (red: more time on B) per regressed benchmark";

/// Output format of the report on stdout.
#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum AbFormat {
    /// Plain table.
    Table,
    /// Markdown (pull-request summaries).
    Markdown,
    /// JSON (the whole report).
    Json,
}

/// `aiops-bench ab` arguments.
#[derive(Args, Debug)]
pub struct AbArgs {
    /// Base revision (A): a commit, branch or tag, for example origin/main or HEAD~1.
    pub base_rev: String,
    /// Only benchmarks whose full name matches this regular expression.
    #[arg(long)]
    pub filter: Option<String>,
    /// KEY=VALUE set in side B's environment only (repeatable).
    #[arg(long = "env-b", value_name = "KEY=VALUE", value_parser = super::parse_env)]
    pub env_b: Vec<(String, String)>,
    /// Independent process pairs: the run is repeated with freshly started harnesses and a
    /// regression must show in every pair (1 to 10); a benchmark settled by an earlier pair (no
    /// statistic past its threshold) is not measured again.
    #[arg(long, default_value_t = 2)]
    pub passes: usize,
    /// Most process pairs per benchmark (--passes to 10): a benchmark that every pair put past a
    /// threshold but whose interval still reaches below it is measured by further pairs
    /// [default: the larger of 3 and --passes].
    #[arg(long, value_name = "N")]
    pub max_passes: Option<usize>,
    /// Measured rounds per benchmark and pass (at least 6). Many short rounds rather than a
    /// few long ones: A and B measured closer in time share more of the machine's drift, and
    /// the interval trims more outlying rounds (30 x 50 ms gave narrower intervals than
    /// 10 x 150 ms on the same injected slowdown, in less time).
    #[arg(long, default_value_t = 30)]
    pub rounds: usize,
    /// Milliseconds per slice (one side's turn).
    #[arg(long, default_value_t = 50)]
    pub slice_ms: u64,
    /// Two-sided confidence level of the intervals.
    #[arg(long, default_value_t = 0.99)]
    pub confidence: f64,
    /// Threshold of the median, in percent.
    #[arg(long, default_value_t = 3.0)]
    pub threshold: f64,
    /// Threshold of p95 and p99, in percent.
    #[arg(long, default_value_t = 10.0)]
    pub tail_threshold: f64,
    /// Rerun a round when other processes used more than this share of the CPUs (percent of
    /// all cores) during one of its slices.
    #[arg(long, default_value_t = 25.0)]
    pub max_disturbance: f64,
    /// Do not pin the two harnesses to one CPU (by default both run on the last CPU this
    /// process may use, so A and B always measure on the same core).
    #[arg(long)]
    pub no_pin: bool,
    /// On a regression, profile each regressed benchmark on both sides (pprof in the harness,
    /// --profile-time seconds each): folded stacks and flamegraphs of base and head and a
    /// differential flamegraph, under <target>/ab/profiles/, named in the report.
    #[arg(long)]
    pub profile: bool,
    /// Seconds of profiling per side and regressed benchmark (with --profile).
    #[arg(long, value_name = "SECS", default_value_t = 5, requires = "profile")]
    pub profile_time: u64,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = AbFormat::Table)]
    pub format: AbFormat,
    /// Also write the whole report as JSON to this file.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

/// Run the command; returns the exit code (0, 1 or 3) or an error (exit 2).
pub fn run(args: AbArgs) -> Result<u8, AbError> {
    let options = AbOptions {
        base_rev: args.base_rev,
        filter: args.filter,
        env_b: args.env_b,
        passes: args.passes,
        max_passes: args.max_passes.unwrap_or(args.passes.max(3)),
        rounds: args.rounds,
        slice_ms: args.slice_ms,
        confidence: args.confidence,
        threshold_pct: args.threshold,
        tail_threshold_pct: args.tail_threshold,
        max_disturbance_pct: args.max_disturbance,
        pin: !args.no_pin,
        profile_secs: args.profile.then_some(args.profile_time),
    };
    options.validate()?;
    if let Some(path) = &args.output {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                return Err(AbError::BadOption(format!(
                    "--output {}: folder {} does not exist",
                    path.display(),
                    parent.display()
                )));
            }
        }
    }
    let cwd = std::env::current_dir().map_err(|e| AbError::Io(format!("current folder: {e}")))?;
    let report = super::run(&cwd, &options)?;
    if let Some(path) = &args.output {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, report::json(&report))
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| AbError::Io(format!("writing {}: {e}", path.display())))?;
    }
    print!(
        "{}",
        match args.format {
            AbFormat::Table => report::table(&report),
            AbFormat::Markdown => report::markdown(&report),
            AbFormat::Json => report::json(&report) + "\n",
        }
    );
    Ok(report.exit_code())
}
