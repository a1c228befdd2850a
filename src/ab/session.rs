//! One side of an A/B run: the benchmark harness started in its A/B mode, spoken to over its
//! stdin and stdout (the protocol is documented in `benches/ab.rs`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Deserialize;

use super::AbError;

/// A message from the harness.
#[derive(Debug)]
pub enum Message {
    /// The harness speaks the protocol.
    Hello,
    /// A benchmark is set up and waits.
    Ready(String),
    /// A benchmark cannot run on this side.
    Skip(String, String),
    /// The answer to `run`.
    Slice(Slice),
    /// Every benchmark has been served.
    Done,
}

/// One slice: what one side measured in one turn.
#[derive(Debug, Clone)]
pub struct Slice {
    /// Successful operations, in nanoseconds.
    pub histogram: Histogram<u64>,
    /// Failed operations by message.
    pub errors: Vec<(String, u64)>,
    /// Wall time of the slice.
    pub elapsed_ns: u64,
    /// CPU used by other processes and the hypervisor during the slice (% of all cores).
    pub disturbance_pct: Option<f64>,
}

#[derive(Deserialize)]
struct RawSlice {
    ok: u64,
    errors: Vec<(String, u64)>,
    elapsed_ns: u64,
    histogram: String,
    #[serde(default)]
    disturbance_pct: Option<f64>,
}

/// Start the harness with address-space randomization off, so that identical code has an
/// identical memory layout on both sides: with it on, one pair of processes of the *same
/// binary* measured a benchmark 9.5 % apart, consistently over 12 rounds (where its code and
/// data landed relative to cache sets), which no number of rounds averages out.
#[cfg(target_os = "linux")]
fn no_aslr(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: personality(2) is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // Where a sandbox forbids it, the run goes on with randomization (see aslr_off()).
            libc::personality(libc::ADDR_NO_RANDOMIZE as libc::c_ulong);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn no_aslr(_cmd: &mut Command) {}

/// The CPU both harnesses are pinned to: the last CPU this process may run on, when it may run
/// on at least two (the others are left to `ab` itself, a Redis or PostgreSQL server and the
/// rest of the machine). `None` (no pinning) on one CPU or where the set cannot be read.
///
/// Why: unpinned, each slice runs on whichever core the scheduler picks, and the cores of a
/// virtual machine do not run at one speed (their host threads have different neighbours): on
/// the same injected 5 % parse slowdown, two unpinned A/Bs caught 9 of 12 rows and two pinned
/// ones 12 of 12, run alternately (`scripts/results/ab-pinning-2026-12-04/`).
#[cfg(target_os = "linux")]
pub fn harness_cpu() -> Option<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let ok =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if ok != 0 {
        return None;
    }
    let allowed: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect();
    (allowed.len() >= 2).then(|| *allowed.last().expect("two or more CPUs"))
}

#[cfg(not(target_os = "linux"))]
pub fn harness_cpu() -> Option<usize> {
    None
}

#[cfg(target_os = "linux")]
fn pin(cmd: &mut Command, cpu: usize) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the set is built before the fork; sched_setaffinity(2) is a plain system call.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut set) };
    unsafe {
        cmd.pre_exec(move || {
            // A refusal (a container's cpuset) leaves the harness unpinned, as before.
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn pin(_cmd: &mut Command, _cpu: usize) {}

/// Whether a child process started like the harnesses runs without address randomization.
pub fn aslr_off() -> bool {
    #[cfg(target_os = "linux")]
    {
        let mut cmd = Command::new("cat");
        cmd.arg("/proc/self/personality").stdin(Stdio::null());
        no_aslr(&mut cmd);
        cmd.output()
            .ok()
            .and_then(|o| u64::from_str_radix(String::from_utf8_lossy(&o.stdout).trim(), 16).ok())
            .is_some_and(|p| p & libc::ADDR_NO_RANDOMIZE as u64 != 0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Environment for side A that takes as many bytes as `env_b` does for side B, so that the
/// stack starts at the same address on both sides (with randomization off, the environment's
/// size moves everything on the stack).
pub fn padding_for(env_b: &[(String, String)]) -> Vec<(String, String)> {
    let bytes: usize = env_b.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    const KEY: &str = "AIOPS_AB_PAD";
    if bytes < KEY.len() + 2 {
        return Vec::new();
    }
    vec![(KEY.to_string(), "x".repeat(bytes - KEY.len() - 2))]
}

/// A running harness.
pub struct Side {
    /// `A` (base) or `B` (head).
    pub label: &'static str,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<Option<String>>,
    log: PathBuf,
}

impl Side {
    /// Start `bin` in A/B mode; its stderr goes to `log`.
    pub fn start(
        label: &'static str,
        bin: &Path,
        dir: &Path,
        filter: Option<&str>,
        env: &[(String, String)],
        cpu: Option<usize>,
        log: PathBuf,
    ) -> Result<Side, AbError> {
        let err_file = std::fs::File::create(&log)
            .map_err(|e| AbError::Io(format!("creating {}: {e}", log.display())))?;
        let criterion_home = log.with_extension("criterion");
        let mut cmd = Command::new(bin);
        cmd.current_dir(dir)
            // `--list`: a harness from before the protocol lists its benchmarks and exits.
            .args(["--bench", "--list"])
            .env("AIOPS_AB", "1")
            .env("AIOPS_AB_SIDE", label)
            .env("CRITERION_HOME", &criterion_home)
            .env_remove("AIOPS_AB_FILTER")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(err_file));
        if let Some(filter) = filter {
            cmd.env("AIOPS_AB_FILTER", filter);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        no_aslr(&mut cmd);
        if let Some(cpu) = cpu {
            pin(&mut cmd, cpu);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| AbError::Io(format!("starting {}: {e}", bin.display())))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(line) => {
                        if let Some(rest) = line.strip_prefix("AB1 ") {
                            if tx.send(Some(rest.to_string())).is_err() {
                                return;
                            }
                        }
                    }
                    Err(_) => break,
                }
            }
            let _ = tx.send(None);
        });
        Ok(Side {
            label,
            child,
            stdin,
            lines: rx,
            log,
        })
    }

    /// The last lines the harness wrote to stderr, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(12)..].join("\n")
    }

    fn ended(&mut self, what: &str) -> AbError {
        let status = self
            .child
            .try_wait()
            .ok()
            .flatten()
            .map_or("still running".to_string(), |s| s.to_string());
        AbError::SideFailed(
            self.label,
            format!(
                "{what} (process {status}); its stderr ({}) ends with:\n{}",
                self.log.display(),
                self.log_tail()
            ),
        )
    }

    /// The next protocol message, waiting at most `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Result<Message, AbError> {
        let line = match self.lines.recv_timeout(timeout) {
            Ok(Some(line)) => line,
            Ok(None) | Err(RecvTimeoutError::Disconnected) => {
                return Err(self.ended("the benchmark harness ended unexpectedly"))
            }
            Err(RecvTimeoutError::Timeout) => {
                return Err(self.ended(&format!("no answer within {} s", timeout.as_secs())))
            }
        };
        let (word, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        Ok(match word {
            "hello" => Message::Hello,
            "done" => Message::Done,
            "ready" => Message::Ready(rest.to_string()),
            "skip" => {
                let (name, reason) = rest.split_once(' ').unwrap_or((rest, ""));
                Message::Skip(name.to_string(), reason.to_string())
            }
            "slice" => {
                let raw: RawSlice = serde_json::from_str(rest)
                    .map_err(|e| self.ended(&format!("malformed slice ({e})")))?;
                let histogram = crate::hdr::decode(&raw.histogram)
                    .map_err(|e| self.ended(&format!("malformed slice histogram ({e})")))?;
                if histogram.len() != raw.ok {
                    return Err(self.ended("slice histogram and count disagree"));
                }
                Message::Slice(Slice {
                    histogram,
                    errors: raw.errors,
                    elapsed_ns: raw.elapsed_ns,
                    disturbance_pct: raw.disturbance_pct,
                })
            }
            other => return Err(self.ended(&format!("unknown message '{other}'"))),
        })
    }

    /// Send one command.
    pub fn send(&mut self, command: &str) -> Result<(), AbError> {
        if writeln!(self.stdin, "{command}")
            .and_then(|()| self.stdin.flush())
            .is_err()
        {
            return Err(self.ended("the benchmark harness stopped reading"));
        }
        Ok(())
    }

    /// Run one slice of `ms` milliseconds of the current benchmark.
    pub fn slice(&mut self, ms: u64) -> Result<Slice, AbError> {
        self.send(&format!("run {ms}"))?;
        match self.recv(Duration::from_millis(ms * 20 + 60_000))? {
            Message::Slice(s) => Ok(s),
            other => Err(self.ended(&format!("expected a slice, got {other:?}"))),
        }
    }
}

impl Drop for Side {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
