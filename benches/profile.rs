//! Built-in profiling: criterion's [`Profiler`] over pprof-rs, called only under
//! `--profile-time` (`cargo bench --bench main -- --profile-time 5 NAME`).
//!
//! While criterion runs a benchmark in profile mode, pprof samples this process
//! ([`FREQUENCY_ENV`], default [`DEFAULT_HZ`] Hz, every thread: the `concurrency/*` benchmarks'
//! tokio workers too) by a timer signal, unwinding each sample's stack in process with DWARF
//! unwind tables (no frame pointers needed; release and bench builds keep limited debug info, so
//! inlined functions are named; see `sampler.rs` for what is sampled and how often).
//! When the benchmark ends, its criterion folder `<criterion home>/<group>/<function>/profile/`
//! (criterion's names: `webhook/parse/github_pull_request` lives in
//! `target/criterion/webhook/parse_github_pull_request/profile/`) receives:
//!
//! - `stacks.folded`: the samples as folded stacks (`root;...;leaf COUNT`, one line per distinct
//!   stack; symbols demangled without their hashes, so two builds of the same code fold alike);
//! - `flamegraph.svg`: inferno's flamegraph of them;
//! - `differential.svg` and `differential.folded`, when [`BASE_ENV`] names the criterion home of
//!   an earlier profile run that holds the same benchmark's `stacks.folded`: inferno's
//!   differential flamegraph of that base (A) against this run (B), the base's counts scaled to
//!   this run's total; red frames take more of the time in this run, blue ones less.
//!
//! It prints one line per benchmark with the paths and the functions with the most samples of
//! their own.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::sampler::{self, folded, folded_text, render, top_self};
use criterion::profiler::Profiler;

/// Sampling frequency in Hz; `0` runs `--profile-time` without sampling (to measure the
/// sampler's overhead, scripts/profile-check).
pub const FREQUENCY_ENV: &str = "AIOPS_PROFILE_HZ";
/// Default sampling frequency (a prime, so the timer does not beat with periodic work).
pub const DEFAULT_HZ: i32 = 997;
/// Criterion home of a base profile run, for differential flamegraphs.
pub const BASE_ENV: &str = "AIOPS_PROFILE_BASE";

/// The sampling frequency asked for; exits with status 2 on a bad value.
fn frequency() -> i32 {
    match std::env::var(FREQUENCY_ENV) {
        Err(_) => DEFAULT_HZ,
        Ok(v) => match v.trim().parse::<i32>() {
            Ok(hz) if (0..=10_000).contains(&hz) => hz,
            _ => {
                eprintln!(
                    "error: {FREQUENCY_ENV}={v}: use a sampling frequency of 0 (off) to 10000 Hz"
                );
                std::process::exit(2);
            }
        },
    }
}

/// Criterion's profiler hook: pprof from `start_profiling` to `stop_profiling`.
#[derive(Default)]
pub struct FlameProfiler {
    sampler: Option<sampler::Sampler>,
}

impl Profiler for FlameProfiler {
    fn start_profiling(&mut self, benchmark_id: &str, _benchmark_dir: &Path) {
        let hz = frequency();
        if hz == 0 {
            eprintln!("profile: {benchmark_id}: sampling off ({FREQUENCY_ENV}=0)");
            return;
        }
        match sampler::start(hz) {
            Ok(sampler) => self.sampler = Some(sampler),
            Err(e) => eprintln!("error: profile: {benchmark_id}: cannot start pprof: {e}"),
        }
    }

    fn stop_profiling(&mut self, benchmark_id: &str, benchmark_dir: &Path) {
        let Some(sampler) = self.sampler.take() else {
            return;
        };
        let report = match sampler.finish() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: profile: {benchmark_id}: cannot build pprof's report: {e}");
                return;
            }
        };
        let folded = folded(&report);
        match write_profile(benchmark_id, benchmark_dir, &folded) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!(
                "error: profile: {benchmark_id}: writing into {}: {e} (check that the folder is \
                 writable or set CRITERION_HOME)",
                benchmark_dir.display()
            ),
        }
    }
}

/// The base run's folded stacks for the benchmark in `benchmark_dir`
/// (`<home>/<group>/<function>/profile`): the same last three components under [`BASE_ENV`].
fn base_stacks(benchmark_dir: &Path) -> Option<(PathBuf, std::io::Result<String>)> {
    let base = PathBuf::from(std::env::var_os(BASE_ENV).filter(|v| !v.is_empty())?);
    let parts: Vec<_> = benchmark_dir.components().collect();
    let rel: PathBuf = parts[parts.len().saturating_sub(3)..].iter().collect();
    let path = base.join(rel).join("stacks.folded");
    let text = std::fs::read_to_string(&path);
    Some((path, text))
}

fn write_profile(
    benchmark_id: &str,
    dir: &Path,
    stacks: &BTreeMap<String, u64>,
) -> std::io::Result<String> {
    std::fs::create_dir_all(dir)?;
    let total: u64 = stacks.values().sum();
    let text = folded_text(stacks);
    let folded_path = dir.join("stacks.folded");
    std::fs::write(&folded_path, &text)?;
    let svg_path = dir.join("flamegraph.svg");
    if total == 0 {
        let _ = std::fs::remove_file(&svg_path);
        return Ok(format!(
            "profile: {benchmark_id}: no samples (a --profile-time too short?) -> {}",
            folded_path.display()
        ));
    }
    let subtitle = format!("{total} samples at {} Hz", frequency());
    std::fs::write(&svg_path, render(&text, benchmark_id, &subtitle)?)?;
    let mut line = format!(
        "profile: {benchmark_id}: {total} samples -> {} ({})\n  most samples of their own:\n{}",
        svg_path.display(),
        folded_path.display(),
        top_self(stacks, 5, "    ")
    );
    match base_stacks(dir) {
        None => {}
        Some((path, Err(e))) => {
            let _ = write!(
                line,
                "\n  no differential flamegraph: the base profile {} cannot be read: {e}",
                path.display()
            );
        }
        Some((path, Ok(base))) => {
            let mut diff = Vec::new();
            inferno::differential::from_readers(
                inferno::differential::Options {
                    normalize: true,
                    strip_hex: true,
                },
                base.as_bytes(),
                text.as_bytes(),
                &mut diff,
            )?;
            let diff = String::from_utf8_lossy(&diff).into_owned();
            let diff_folded = dir.join("differential.folded");
            std::fs::write(&diff_folded, &diff)?;
            let diff_svg = dir.join("differential.svg");
            let subtitle = format!(
                "base {} against this run; red: more of the time here, blue: less (base scaled to {total} samples)",
                path.display()
            );
            std::fs::write(
                &diff_svg,
                render(&diff, &format!("{benchmark_id}: differential"), &subtitle)?,
            )?;
            let _ = write!(
                line,
                "\n  differential flamegraph against {}: {}",
                path.display(),
                diff_svg.display()
            );
        }
    }
    Ok(line)
}
