//! The in-process CPU sampler both profilers use: criterion's (`benches/profile.rs`, under
//! `--profile-time`) and the load test's (`loadtests/profile.rs`, `loadtest --profile`, which
//! includes this file with `#[path]`): pprof-rs started safely, its samples as folded stacks,
//! inferno's flamegraph of them.
//!
//! **When a sample is taken.** pprof-rs alone arms the process's CPU-time timer
//! (`setitimer(ITIMER_PROF)`). Linux checks CPU-time timers only at its scheduler tick
//! (`CONFIG_HZ`, 250 on our machines) and only for the thread that tick interrupts: at most 250
//! samples per CPU second whatever the frequency asked, and, under a load of regular arrivals
//! (the load test's constant rate), the ticks fall on the same few phases of every request
//! cycle. Five profiled runs of one webhook load at 3,000 req/s kept 19 to 575 samples and
//! disagreed on where the time went (`sha256` in one, `writev` in another). So pprof's timer is
//! disarmed and a sampler thread of ours takes the samples instead ([`Sampler`]): it wakes at
//! random intervals (exponential, mean `1 / hz`: no phase to lock onto) on a high-resolution
//! clock, and sends pprof's signal (`SIGPROF`, `tgkill`) to every other thread of the process
//! that is on a CPU or ready to run (state `R` in `/proc/self/task/TID/stat`); pprof's handler
//! unwinds that thread's stack (libgcc's unwinder through backtrace-rs, DWARF unwind tables, no
//! frame pointers needed). A thread busy all along thus gets about 90 % of `hz` samples per second (872-922
//! at 997 Hz in `scripts/results/sampler-overhead-2026-12-04/runs.txt`: the sampler's own
//! wake-ups run late).
//! A thread waiting in a system call is not `R` and gets none; one inside a system call that
//! works (a `write` copying data) is, and its sample lands where the call returns.
//!
//! **Nothing in libc is dropped.** The usual advice (pprof-rs's README) is a blocklist of libc,
//! libgcc, pthread and the vDSO: samples whose program counter lies there are thrown away,
//! because libgcc's unwinder was not safe in a signal handler. A service under load spends much
//! of its CPU in system calls, whose samples land in libc's wrappers (`writev`, `syscall`):
//! that advice hid them. With glibc 2.35 and gcc 12 or later libgcc finds unwind tables with
//! `_dl_find_object`, which takes no lock, so unwinding from libc is safe; we drop only samples
//! inside libgcc itself (an unwinder interrupted while unwinding) and the vDSO (whose unwind
//! tables some distributions ship wrong).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pprof::{ProfilerGuard, ProfilerGuardBuilder, Report};

/// How often the sampler thread looks for new threads in `/proc/self/task`.
const RESCAN: Duration = Duration::from_millis(50);

/// A running profile of this process: pprof's collector and signal handler, and our sampler
/// thread that sends the signals. Dropping it (or [`Sampler::finish`]) stops the thread first.
pub struct Sampler {
    guard: Option<ProfilerGuard<'static>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Starts sampling this process's threads at about `hz` samples per second each while they run.
pub fn start(hz: i32) -> Result<Sampler, pprof::Error> {
    let guard = ProfilerGuardBuilder::default()
        .frequency(hz)
        .blocklist(&["libgcc", "vdso"])
        .build()?;
    // pprof's own timer off: its handler stays, our thread sends the signals.
    disarm_prof_timer();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let mean = Duration::from_secs_f64(1.0 / f64::from(hz.max(1)));
    let thread = std::thread::Builder::new()
        .name("aiops-sampler".into())
        .spawn(move || sample_loop(mean, &flag))
        .map_err(pprof::Error::IoError)?;
    Ok(Sampler {
        guard: Some(guard),
        stop,
        thread: Some(thread),
    })
}

impl Sampler {
    /// Stops sampling and returns pprof's report of what was sampled.
    pub fn finish(mut self) -> Result<Report, pprof::Error> {
        self.stop_thread();
        let guard = self.guard.take().expect("a running sampler has its guard");
        guard.report().build()
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        // The thread stops before pprof's handler goes (pprof then ignores SIGPROF).
        self.stop_thread();
    }
}

fn disarm_prof_timer() {
    let zero = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
    };
    // SAFETY: valid pointers; disarming a timer has no other effect.
    unsafe { libc::setitimer(libc::ITIMER_PROF, &zero, std::ptr::null_mut()) };
}

/// The sampler thread: until `stop`, sleep a random interval of mean `mean`, then signal every
/// other runnable thread.
fn sample_loop(mean: Duration, stop: &AtomicBool) {
    // 1 µs timer slack instead of 50 µs: the sleeps are short.
    // SAFETY: prctl with an integer argument.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong) };
    let pid = std::process::id() as libc::pid_t;
    // SAFETY: gettid has no arguments.
    let me = unsafe { libc::syscall(libc::SYS_gettid) } as libc::pid_t;
    let mut threads: Vec<(libc::pid_t, File)> = Vec::new();
    let mut scanned: Option<Instant> = None;
    let mut rng =
        Instant::now().elapsed().as_nanos() as u64 ^ 0x9E37_79B9_7F4A_7C15 ^ u64::from(me as u32);
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::Relaxed) {
        // Exponential interval: -ln(U) * mean, U in (0, 1]; at most 10 means.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let u = ((rng >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        std::thread::sleep(mean.mul_f64((-u.ln()).min(10.0)));
        if scanned.is_none_or(|t| t.elapsed() >= RESCAN) {
            rescan(me, &mut threads);
            scanned = Some(Instant::now());
        }
        threads.retain(|(tid, stat)| {
            let n = match stat.read_at(&mut buf, 0) {
                Ok(n) if n > 0 => n,
                _ => return false, // the thread is gone
            };
            if running(&buf[..n]) {
                // SAFETY: tgkill on a thread of this process with pprof's handler installed.
                unsafe { libc::syscall(libc::SYS_tgkill, pid, *tid, libc::SIGPROF) };
            }
            true
        });
    }
}

/// The threads of this process but `me`, each with its open stat file (kept from `threads`).
fn rescan(me: libc::pid_t, threads: &mut Vec<(libc::pid_t, File)>) {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for entry in dir.flatten() {
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        if tid == me || threads.iter().any(|(t, _)| *t == tid) {
            continue;
        }
        if let Ok(f) = File::open(entry.path().join("stat")) {
            threads.push((tid, f));
        }
    }
}

/// Whether a `/proc/.../stat` line says the thread is running or ready to run (state `R`, the
/// field after the command name in parentheses, which may itself hold `)`).
fn running(stat: &[u8]) -> bool {
    let Some(close) = stat.iter().rposition(|&b| b == b')') else {
        return false;
    };
    stat[close + 1..]
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'R')
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

/// pprof's samples as folded stacks (root first), sorted, counts merged.
/// Thread names are left out: the main thread is named after the executable, which differs
/// between two builds, and two profiles of the same code must fold alike.
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

/// Folded lines back into stacks (malformed lines are skipped).
#[allow(dead_code)] // the load test's side only
pub fn parse_folded(text: &str) -> BTreeMap<String, u64> {
    let mut stacks = BTreeMap::new();
    for line in text.lines() {
        if let Some((stack, count)) = line.rsplit_once(' ') {
            if let Ok(n) = count.trim().parse::<u64>() {
                *stacks.entry(stack.to_string()).or_insert(0) += n;
            }
        }
    }
    stacks
}

/// Render a flamegraph of folded lines into an SVG (inferno colours lines with two counts, a
/// differential, by their change).
pub fn render(lines: &str, title: &str, subtitle: &str) -> std::io::Result<Vec<u8>> {
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

/// The `n` functions with the most samples of their own (leaf frames), with their share, one
/// line each indented by `indent`.
pub fn top_self(stacks: &BTreeMap<String, u64>, n: usize, indent: &str) -> String {
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
                "{indent}{:5.1}%  {short}",
                100.0 * *c as f64 / total.max(1) as f64
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    // The benchmark harness (harness = false) compiles this module without its tests.
    #[allow(unused_imports)]
    use super::*;

    #[test]
    fn the_state_field_comes_after_the_last_parenthesis() {
        assert!(running(b"123 (tokio-runtime-w) R 1 2 3"));
        assert!(!running(b"123 (tokio-runtime-w) S 1 2 3"));
        assert!(!running(b"123 (a) R) S 1 2 3"));
        assert!(running(b"123 (a) S) R 1 2 3"));
        assert!(!running(b"garbage"));
    }

    #[test]
    fn folded_text_reads_back_and_names_the_busiest_leaf() {
        let mut stacks = BTreeMap::new();
        stacks.insert("main;serve;handle_webhook;parse".to_string(), 30);
        stacks.insert("main;serve;idle".to_string(), 10);
        let back = parse_folded(&folded_text(&stacks));
        assert_eq!(back.values().sum::<u64>(), 40);
        let top = top_self(&back, 1, "  ");
        assert!(top.contains("75.0%") && top.ends_with("parse"), "{top}");
    }
}
