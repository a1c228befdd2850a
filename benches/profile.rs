//! Built-in profiling: criterion's [`Profiler`] over pprof-rs, called only under
//! `--profile-time` (`cargo bench --bench main -- --profile-time 5 NAME`).
//!
//! While criterion runs a benchmark in profile mode, pprof samples this process
//! ([`FREQUENCY_ENV`], default [`DEFAULT_HZ`] Hz, every thread: the `concurrency/*` benchmarks'
//! tokio workers too) by a timer signal, unwinding each sample's stack in process (no frame
//! pointers needed; release and bench builds keep line tables, so inlined functions are named).
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

use criterion::profiler::Profiler;
use pprof::{ProfilerGuard, ProfilerGuardBuilder, Report};

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
    guard: Option<ProfilerGuard<'static>>,
}

impl Profiler for FlameProfiler {
    fn start_profiling(&mut self, benchmark_id: &str, _benchmark_dir: &Path) {
        let hz = frequency();
        if hz == 0 {
            eprintln!("profile: {benchmark_id}: sampling off ({FREQUENCY_ENV}=0)");
            return;
        }
        // Unwinding through libc, libgcc or the vDSO from a signal handler can deadlock.
        match ProfilerGuardBuilder::default()
            .frequency(hz)
            .blocklist(&["libc", "libgcc", "pthread", "vdso"])
            .build()
        {
            Ok(guard) => self.guard = Some(guard),
            Err(e) => eprintln!("error: profile: {benchmark_id}: cannot start pprof: {e}"),
        }
    }

    fn stop_profiling(&mut self, benchmark_id: &str, benchmark_dir: &Path) {
        let Some(guard) = self.guard.take() else {
            return;
        };
        let report = match guard.report().build() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: profile: {benchmark_id}: cannot build pprof's report: {e}");
                return;
            }
        };
        drop(guard);
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

/// A symbol's demangled name without its hash, with `;` (the folded format's separator) replaced.
fn symbol_name(raw: Option<&[u8]>) -> String {
    let Some(raw) = raw else {
        return "[unknown]".into();
    };
    let raw = String::from_utf8_lossy(raw);
    let name = match rustc_demangle::try_demangle(&raw) {
        Ok(d) => format!("{d:#}"),
        Err(_) => raw.into_owned(),
    };
    name.replace(';', ",")
}

/// pprof's samples as folded stacks (root first), sorted, counts merged. Thread names are left
/// out: the main thread is named after the executable, which differs between two builds.
pub fn folded(report: &Report) -> BTreeMap<String, u64> {
    let mut stacks: BTreeMap<String, u64> = BTreeMap::new();
    for (frames, count) in &report.data {
        let mut line = String::new();
        for frame in frames.frames.iter().rev() {
            for symbol in frame.iter().rev() {
                if !line.is_empty() {
                    line.push(';');
                }
                line.push_str(&symbol_name(symbol.name.as_deref()));
            }
        }
        if line.is_empty() || *count <= 0 {
            continue;
        }
        *stacks.entry(line).or_insert(0) += *count as u64;
    }
    stacks
}

/// Folded stacks as text, one `stack count` line each.
pub fn folded_text(stacks: &BTreeMap<String, u64>) -> String {
    let mut out = String::new();
    for (stack, count) in stacks {
        let _ = writeln!(out, "{stack} {count}");
    }
    out
}

/// Render a flamegraph of folded lines into an SVG (inferno colours lines with two counts, a
/// differential, by their change).
fn render(lines: &str, title: &str, subtitle: &str) -> std::io::Result<Vec<u8>> {
    let mut options = inferno::flamegraph::Options::default();
    options.title = title.to_string();
    options.subtitle = Some(subtitle.to_string());
    options.count_name = "samples".into();
    // Stable colours across runs: a frame keeps its colour in every graph.
    options.hash = true;
    options.deterministic = true;
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut options, lines.lines(), &mut svg)
        .map_err(std::io::Error::other)?;
    Ok(svg)
}

/// The `n` functions with the most samples of their own (leaf frames), with their share.
fn top_self(stacks: &BTreeMap<String, u64>, n: usize) -> String {
    let total: u64 = stacks.values().sum();
    let mut leaves: BTreeMap<&str, u64> = BTreeMap::new();
    for (stack, count) in stacks {
        let leaf = stack.rsplit(';').next().unwrap_or(stack);
        *leaves.entry(leaf).or_insert(0) += count;
    }
    let mut leaves: Vec<(&str, u64)> = leaves.into_iter().collect();
    leaves.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    leaves
        .iter()
        .take(n)
        .map(|(leaf, c)| {
            let short: String = leaf.chars().take(90).collect();
            format!(
                "    {:5.1}%  {short}",
                100.0 * *c as f64 / total.max(1) as f64
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
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
        top_self(stacks, 5)
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
