//! The in-process CPU sampler both profilers use: criterion's (`benches/profile.rs`, under
//! `--profile-time`) and the load test's (`loadtests/profile.rs`, `loadtest --profile`, which
//! includes this file with `#[path]`): pprof-rs started safely, its samples as folded stacks,
//! inferno's flamegraph of them.
//!
//! **What is sampled.** pprof-rs arms the process's CPU-time timer (`setitimer(ITIMER_PROF)`) and
//! unwinds the interrupted thread's stack in the signal handler (libgcc's unwinder through
//! backtrace-rs, DWARF unwind tables, no frame pointers needed). Linux charges CPU time to a
//! thread at its scheduler tick (`CONFIG_HZ`, 250 on our machines), so a CPU-time timer fires at
//! most once per tick: a thread busy all along gives at most `CONFIG_HZ` samples per second,
//! whatever the asked frequency, and a service using 7% of a core about 17 per second. The
//! samples are a fair draw of where the CPU time went, just fewer than the frequency suggests;
//! profile longer to get more.
//!
//! **Nothing in libc is dropped.** The usual advice (pprof-rs's README) is a blocklist of libc,
//! libgcc, pthread and the vDSO: samples whose program counter lies there are thrown away,
//! because libgcc's unwinder was not safe in a signal handler. A service under load spends much
//! of its CPU in system calls, whose samples land in libc's wrappers (`writev`, `epoll_wait`,
//! `syscall`: 38% of a webhook load's samples): that advice hid them. With glibc 2.35 and gcc 12
//! or later libgcc finds unwind tables with `_dl_find_object`, which takes no lock, so unwinding
//! from libc is safe; we drop only samples inside libgcc itself (an unwinder interrupted while
//! unwinding) and the vDSO (whose unwind tables some distributions ship wrong).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use pprof::{ProfilerGuard, ProfilerGuardBuilder, Report};

/// Starts sampling this process at `hz` (every thread, CPU time).
pub fn start(hz: i32) -> Result<ProfilerGuard<'static>, pprof::Error> {
    ProfilerGuardBuilder::default()
        .frequency(hz)
        .blocklist(&["libgcc", "vdso"])
        .build()
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
