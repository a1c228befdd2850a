//! The benchmark side of `aiops-bench ab`: when [`ENV`] is set, the harness does not run
//! criterion. It announces each benchmark and runs it in slices of the driver's choosing, so the
//! driver can alternate the base and the head build (A B, B A, ...) many times per benchmark and
//! judge each on per-operation samples taken under the same machine conditions.
//!
//! Protocol (version 1), one line per message. The harness writes to stdout (lines that do not
//! start with `AB1 ` are not protocol and are ignored by the driver):
//!
//! - `AB1 hello` once at start;
//! - `AB1 ready NAME` when benchmark NAME is set up and waits for commands;
//! - `AB1 skip NAME REASON` when NAME cannot run here (for example Redis unreachable);
//! - `AB1 slice JSON` after each `run`: `{"ok": N, "errors": [[message, count]...],
//!   "elapsed_ns": N, "histogram": BASE64, "disturbance_pct": X}` (per-operation
//!   nanoseconds, `aiops_bench::hdr`; the CPU other processes and the hypervisor used during the
//!   slice, in % of all cores, or null);
//! - `AB1 done` after the last benchmark.
//!
//! The driver writes to stdin: `run MS` (run the benchmark for MS milliseconds and answer with
//! a slice), `next` (go on to the next benchmark) and `quit`.
//!
//! The driver starts the harness with `--list` as well, so that a harness from before this
//! protocol only lists its benchmarks and exits instead of running the whole suite.

use std::io::{BufRead, Write};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::Probe;

/// Set to `1` by the driver.
pub const ENV: &str = "AIOPS_AB";
/// Regular expression over full benchmark names; unset selects every benchmark.
pub const FILTER_ENV: &str = "AIOPS_AB_FILTER";

/// Whether this process serves `aiops-bench ab`.
pub fn requested() -> bool {
    std::env::var_os(ENV).is_some_and(|v| v == "1")
}

fn filter() -> Option<&'static regex::Regex> {
    static FILTER: OnceLock<Option<regex::Regex>> = OnceLock::new();
    FILTER
        .get_or_init(|| {
            let text = std::env::var(FILTER_ENV).ok().filter(|t| !t.is_empty())?;
            match regex::Regex::new(&text) {
                Ok(re) => Some(re),
                Err(e) => {
                    eprintln!("error: {FILTER_ENV}: not a regular expression: {e}");
                    std::process::exit(2);
                }
            }
        })
        .as_ref()
}

/// Whether the driver's filter selects `name`.
pub fn selects(name: &str) -> bool {
    filter().is_none_or(|re| re.is_match(name))
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // A driver that went away ends this process: nothing is left to serve.
    if writeln!(out, "AB1 {line}")
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

fn command() -> Option<String> {
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim().to_string()),
    }
}

/// Announce the protocol.
pub fn hello() {
    say("hello");
}

/// The last benchmark has been served.
pub fn done() {
    say("done");
}

/// Benchmark `name` cannot run here.
pub fn skipped(name: &str, reason: &str) {
    say(&format!("skip {name} {}", reason.replace('\n', " ")));
}

/// Serve one benchmark until the driver says `next`.
pub fn serve(probe: &Probe, routine: &mut dyn FnMut(&Probe, u64) -> Duration) {
    let name = probe.name();
    if !selects(&name) {
        return;
    }
    say(&format!("ready {name}"));
    // Operations per routine call, grown until one call takes about a twentieth of a slice, so
    // the loop's own checks cost nothing measurable and a slice ends close to its budget.
    let mut iters = 1u64;
    loop {
        let Some(cmd) = command() else {
            std::process::exit(0)
        };
        let mut words = cmd.split_whitespace();
        match (words.next(), words.next()) {
            (Some("run"), Some(ms)) => {
                let Ok(ms) = ms.parse::<u64>() else {
                    eprintln!("error: ab protocol: bad slice length '{ms}'");
                    std::process::exit(2);
                };
                let budget = Duration::from_millis(ms);
                probe.take_slice();
                let started = Instant::now();
                while started.elapsed() < budget {
                    let call = Instant::now();
                    routine(probe, iters);
                    if call.elapsed() * 20 < budget {
                        iters = (iters * 2).min(1 << 20);
                    }
                }
                let elapsed = started.elapsed();
                let slice = probe.take_slice();
                let summary = slice.summary();
                let histogram = aiops_bench::hdr::encode(slice.histogram())
                    .expect("an in-memory histogram serializes");
                let errors: Vec<(String, u64)> = summary
                    .errors
                    .iter()
                    .map(|e| (e.message.clone(), e.count))
                    .collect();
                let json = serde_json::json!({
                    "ok": summary.count,
                    "errors": errors,
                    "elapsed_ns": elapsed.as_nanos() as u64,
                    "histogram": histogram,
                    "disturbance_pct": summary
                        .disturbance
                        .map(|d| d.other_cpu_pct + d.steal_pct),
                });
                say(&format!("slice {json}"));
            }
            (Some("next"), None) => return,
            (Some("quit"), None) => std::process::exit(0),
            _ => {
                eprintln!("error: ab protocol: unknown command '{cmd}'");
                std::process::exit(2);
            }
        }
    }
}
