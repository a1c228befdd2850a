//! `loadtest --profile`: a CPU profile of the embedded reference service while the scenarios run.
//!
//! The embedded service is this binary re-executed with `--serve-reference` (see `target.rs`),
//! so the generator and the service are two processes and only the service is sampled. With
//! `--profile` the parent starts it with [`FOLDED_ENV`], [`SVG_ENV`] and [`HZ_ENV`] set; the
//! service then starts its sampler (pprof-rs's collector; a thread that signals every running
//! thread at random intervals, stacks unwound in process, system calls included; see
//! `benches/sampler.rs`) on the line `profile start` on its stdin and stops it on
//! `profile stop` (or at shutdown), and then writes:
//!
//! - `<result stem>.folded`: the samples as folded stacks (`root;...;leaf COUNT`; symbols
//!   demangled without their hashes, so two builds of the same code fold alike);
//! - `<result stem>.flamegraph.svg`: inferno's flamegraph of them.
//!
//! The parent sends `profile start` just before the first scenario and `profile stop` after the
//! last, waits for the folded stacks (written last, by a rename), stops the service as usual and
//! names both files in the result's `metadata.profile`
//! ([`aiops_bench::result::TargetProfile`], paths relative to the result file's folder).
//!
//! An external service (`--url`, `--target-pid`) is not this process's child: pprof-rs samples
//! only the process it runs in, so `--profile` refuses both and says how to profile it instead.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::sampler::{self, folded, folded_text, parse_folded, render, top_self};
use aiops_bench::result::TargetProfile;

/// Where the service writes its folded stacks (set by the parent).
pub const FOLDED_ENV: &str = "AIOPS_LOADTEST_PROFILE_FOLDED";
/// Where the service writes its flamegraph (set by the parent).
pub const SVG_ENV: &str = "AIOPS_LOADTEST_PROFILE_SVG";
/// Sampling frequency the service uses (set by the parent from [`FREQUENCY_ENV`]).
pub const HZ_ENV: &str = "AIOPS_LOADTEST_PROFILE_HZ";
/// The user's sampling frequency, the same variable as the benchmarks' profiler.
pub const FREQUENCY_ENV: &str = "AIOPS_PROFILE_HZ";
/// Default sampling frequency of each running thread (a prime). Lower than the benchmarks' 997
/// Hz: a load test runs for many seconds, and every sample interrupts a request in flight (a
/// signal and an unwind: about 75 µs of a benchmark's thread, from scripts/profile-check's +7 % at
/// 930 samples per second); at 199 Hz a 3 s webhook load
/// of 3,000 req/s gives 319-360 samples, at 997 Hz 1,403-1,478
/// (`scripts/results/loadtest-profile-2026-12-04-sampler*`).
pub const DEFAULT_HZ: u32 = 199;
/// How long the service may take to symbolize its samples and write the files.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(120);
/// What the service is told on its stdin.
pub const START: &str = "profile start";
/// See [`START`].
pub const STOP: &str = "profile stop";

// ---------------------------------------------------------------------------------------------
// The load tester's side.

/// A profile asked for with `--profile`: where the files go.
#[derive(Debug, Clone)]
pub struct Session {
    folded: PathBuf,
    svg: PathBuf,
    folded_rel: String,
    svg_rel: String,
    hz: u32,
}

impl Session {
    /// The session `--profile` asks for (`None` without it); `Err` when the target cannot be
    /// profiled from here (`--url`, `--target-pid`) or [`FREQUENCY_ENV`] is bad.
    pub fn asked(
        profile: bool,
        url: Option<&str>,
        target_pid: Option<u32>,
        output: &Path,
    ) -> Result<Option<Self>, String> {
        if !profile {
            return Ok(None);
        }
        if let Some(url) = url {
            return Err(format!(
                "--profile samples the embedded reference service from inside its own process; it cannot profile the service at --url {url}: drop --url, or profile that service with its own tools (for example `perf record -g -p PID` while loadtest runs)"
            ));
        }
        if let Some(pid) = target_pid {
            return Err(format!(
                "--profile cannot profile --target-pid {pid}: pprof samples only the process it runs in (the embedded reference service), and another process is not supported; drop --target-pid, or profile that process with its own tools (for example `perf record -g -p {pid}`)"
            ));
        }
        Self::new(output).map(Some)
    }

    /// The files next to the result file `output` (`load_results.json` →
    /// `load_results.folded` and `load_results.flamegraph.svg`); stale ones are removed. `Err`
    /// names a bad [`FREQUENCY_ENV`].
    pub fn new(output: &Path) -> Result<Self, String> {
        let hz = match std::env::var(FREQUENCY_ENV) {
            Err(_) => DEFAULT_HZ,
            Ok(v) => match v.trim().parse::<u32>() {
                Ok(hz) if (1..=10_000).contains(&hz) => hz,
                _ => {
                    return Err(format!(
                        "{FREQUENCY_ENV}={v}: use a sampling frequency of 1 to 10000 Hz for --profile (default {DEFAULT_HZ})"
                    ))
                }
            },
        };
        let stem = output
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "load_results".to_string());
        let folded_rel = format!("{stem}.folded");
        let svg_rel = format!("{stem}.flamegraph.svg");
        let dir = match output.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        let s = Session {
            folded: dir.join(&folded_rel),
            svg: dir.join(&svg_rel),
            folded_rel,
            svg_rel,
            hz,
        };
        for f in [&s.folded, &s.svg] {
            let _ = std::fs::remove_file(f);
        }
        Ok(s)
    }

    /// The environment of the embedded service that turns its profiler on.
    pub fn child_env(&self) -> Vec<(String, OsString)> {
        vec![
            (FOLDED_ENV.into(), self.folded.clone().into_os_string()),
            (SVG_ENV.into(), self.svg.clone().into_os_string()),
            (HZ_ENV.into(), self.hz.to_string().into()),
        ]
    }

    /// After `profile stop` was sent: wait until the service has written the profile, while
    /// `alive` says it runs, for at most [`WRITE_TIMEOUT`].
    pub fn wait_written(&self, mut alive: impl FnMut() -> bool) {
        let deadline = Instant::now() + WRITE_TIMEOUT;
        while !self.folded.exists() && alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// After the service wrote its profile: what it wrote, for the result's `metadata.profile`, and the
    /// console lines about it.
    pub fn finish(&self, process: String, scenarios: Vec<String>) -> (TargetProfile, String) {
        let mut p = TargetProfile {
            process,
            scenarios,
            frequency_hz: self.hz,
            ..TargetProfile::default()
        };
        let text = match std::fs::read_to_string(&self.folded) {
            Ok(t) => t,
            Err(e) => {
                p.problem = Some(format!(
                    "the embedded service wrote no profile to {} ({e}); see its messages above",
                    self.folded.display()
                ));
                let line = format!(
                    "Profile          : none: {}",
                    p.problem.as_deref().unwrap_or_default()
                );
                return (p, line);
            }
        };
        let stacks = parse_folded(&text);
        p.samples = stacks.values().sum();
        p.folded = Some(self.folded_rel.clone());
        if self.svg.is_file() {
            p.flamegraph = Some(self.svg_rel.clone());
        }
        if p.samples == 0 {
            p.problem = Some(
                "no samples: the service used no CPU time while the scenarios ran (a run too short?) or its sampler could not start (see its messages above); no flamegraph"
                    .into(),
            );
        } else if p.flamegraph.is_none() {
            p.problem = Some(format!(
                "the embedded service wrote no flamegraph to {}; see its messages above",
                self.svg.display()
            ));
        }
        let mut line = format!(
            "Profile          : {} samples at {} Hz of the {}",
            p.samples, p.frequency_hz, p.process
        );
        match &p.flamegraph {
            Some(_) => {
                let _ = write!(
                    line,
                    "\n                   flamegraph {} (folded stacks {})\n                   most samples of their own:\n{}",
                    self.svg.display(),
                    self.folded.display(),
                    top_self(&stacks, 5, "                   ")
                );
            }
            None => {
                let _ = write!(
                    line,
                    "\n                   {}",
                    p.problem.as_deref().unwrap_or_default()
                );
            }
        }
        (p, line)
    }
}

// ---------------------------------------------------------------------------------------------
// The embedded service's side.

/// The service's profiler: configured from the environment, driven by its stdin.
pub struct ChildProfiler {
    folded: PathBuf,
    svg: PathBuf,
    hz: u32,
    state: Mutex<ChildState>,
}

#[derive(Default)]
struct ChildState {
    sampler: Option<sampler::Sampler>,
    /// Whether the profile was written (once per run).
    written: bool,
}

impl ChildProfiler {
    /// `Some` when the parent asked for a profile ([`FOLDED_ENV`] and [`SVG_ENV`] set).
    pub fn from_env() -> Option<Arc<Self>> {
        let folded = std::env::var_os(FOLDED_ENV).filter(|v| !v.is_empty())?;
        let svg = std::env::var_os(SVG_ENV).filter(|v| !v.is_empty())?;
        let hz = std::env::var(HZ_ENV)
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|hz| (1..=10_000).contains(hz))
            .unwrap_or(DEFAULT_HZ);
        Some(Arc::new(ChildProfiler {
            folded: folded.into(),
            svg: svg.into(),
            hz,
            state: Mutex::new(ChildState::default()),
        }))
    }

    /// A line the parent sent on stdin ([`START`] or [`STOP`]; anything else is ignored).
    pub fn command(&self, line: &str) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match line.trim() {
            START if state.sampler.is_none() && !state.written => {
                match sampler::start(self.hz as i32) {
                    Ok(s) => state.sampler = Some(s),
                    Err(e) => eprintln!("error: loadtest --profile: cannot start pprof in the embedded service: {e}"),
                }
            }
            STOP => self.stop_and_write(&mut state),
            _ => {}
        }
    }

    /// At shutdown: the profile, if sampling is still on (`profile stop` never came).
    pub fn finish(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.sampler.is_none() {
            if !state.written {
                eprintln!("warning: loadtest --profile: the embedded service was never told to start profiling; no profile written");
            }
            return;
        }
        self.stop_and_write(&mut state);
    }

    /// Stop sampling and write the profile, once; without a running sampler (pprof could not
    /// start, as said on stderr) an empty one, so that the parent does not wait for it.
    fn stop_and_write(&self, state: &mut ChildState) {
        if state.written {
            return;
        }
        let stacks = match state.sampler.take() {
            None => BTreeMap::new(),
            Some(sampler) => match sampler.finish() {
                Ok(report) => folded(&report),
                Err(e) => {
                    eprintln!("error: loadtest --profile: cannot build pprof's report: {e}");
                    BTreeMap::new()
                }
            },
        };
        state.written = true;
        if let Err(e) = self.write(&stacks) {
            eprintln!(
                "error: loadtest --profile: cannot write the profile to {} / {}: {e}; pass a writable --output",
                self.folded.display(),
                self.svg.display()
            );
        }
    }

    fn write(&self, stacks: &BTreeMap<String, u64>) -> std::io::Result<()> {
        if let Some(dir) = self.folded.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = folded_text(stacks);
        let total: u64 = stacks.values().sum();
        if total > 0 {
            let subtitle = format!(
                "{total} samples at {} Hz while the load test's scenarios ran (loadtest --profile)",
                self.hz
            );
            let svg = render(&text, "aiops-service (embedded) under load", &subtitle)?;
            std::fs::write(&self.svg, svg)?;
        }
        // The folded file last and whole (a rename): the parent reads it as "the profile is
        // complete".
        let tmp = self.folded.with_extension("folded.tmp");
        std::fs::write(&tmp, &text)?;
        std::fs::rename(&tmp, &self.folded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_external_target_is_refused_with_the_reason() {
        let out = Path::new("r.json");
        assert!(Session::asked(false, Some("http://h:1"), Some(7), out)
            .unwrap()
            .is_none());
        let e = Session::asked(true, Some("http://h:1"), None, out).unwrap_err();
        assert!(
            e.contains("--url http://h:1") && e.contains("perf record"),
            "{e}"
        );
        let e = Session::asked(true, None, Some(7), out).unwrap_err();
        assert!(
            e.contains("--target-pid 7") && e.contains("not supported"),
            "{e}"
        );
        assert!(Session::asked(true, None, None, out).unwrap().is_some());
    }

    #[test]
    fn files_sit_next_to_the_result_file() {
        let s = Session::new(Path::new("out/run-7.json")).unwrap();
        assert_eq!(s.folded_rel, "run-7.folded");
        assert_eq!(s.svg_rel, "run-7.flamegraph.svg");
        assert!(s.svg.ends_with("out/run-7.flamegraph.svg"));
        assert!(s.folded.is_absolute());
    }

    #[test]
    fn finish_without_a_profile_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let s = Session::new(&dir.path().join("r.json")).unwrap();
        let (p, line) = s.finish("embedded reference service".into(), vec![]);
        assert_eq!((p.samples, p.flamegraph, p.folded), (0, None, None));
        assert!(p.problem.unwrap().contains("wrote no profile"), "{line}");
        std::fs::write(dir.path().join("r.folded"), "").unwrap();
        let (p, _) = s.finish("x".into(), vec![]);
        assert_eq!(p.folded.as_deref(), Some("r.folded"));
        assert!(p.flamegraph.is_none());
        assert!(p.problem.unwrap().starts_with("no samples"));
    }
}
