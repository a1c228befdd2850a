//! Run metadata: host description (sysinfo), git commit and tool versions.

use std::collections::BTreeMap;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::result::{HostInfo, RunMetadata};

/// Pinned criterion version whose private output layout the importer reads.
pub const CRITERION_VERSION: &str = "0.8.2";

/// The first 12 characters of a commit id, for display: cut on a character boundary (a hand-edited
/// `git_commit` may hold any text) and with control characters shown as `?`, so one value
/// stays on one line.
pub fn short_commit(commit: &str) -> String {
    commit
        .chars()
        .take(12)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Metadata of this process: git commit (if any), host, tool versions.
pub fn collect() -> RunMetadata {
    let mut tool_versions = BTreeMap::new();
    tool_versions.insert(
        "aiops-bench".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    );
    tool_versions.insert("criterion".to_string(), CRITERION_VERSION.to_string());
    if let Some(rustc) = command_line("rustc", &["--version"]) {
        tool_versions.insert("rustc".to_string(), rustc);
    }
    RunMetadata {
        git_commit: command_line("git", &["rev-parse", "HEAD"]),
        host: host(),
        tool_versions,
        runs: 1,
        host_fingerprint: None,
        target: None,
        profile: None,
        worker: None,
        distributed: None,
    }
}

/// Description of this machine.
pub fn host() -> HostInfo {
    let mut sys = sysinfo::System::new();
    sys.refresh_cpu_all();
    sys.refresh_memory();
    let cpu_model = sys
        .cpus()
        .first()
        .map(|c| c.brand().trim().to_string())
        .unwrap_or_default();
    let os = match (sysinfo::System::name(), sysinfo::System::long_os_version()) {
        (_, Some(long)) => long,
        (Some(name), None) => name,
        (None, None) => std::env::consts::OS.to_string(),
    };
    HostInfo {
        cpu_model,
        cores: std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(sys.cpus().len() as u32),
        physical_cores: sysinfo::System::physical_core_count().map(|n| n as u32),
        memory_bytes: sys.total_memory(),
        os,
    }
}

/// What instruction counts depend on besides the code: callgrind counts of the same source
/// differ between CPU models (glibc picks CPU-specific `memcpy`/`memchr` routines, `sha2`
/// dispatches on CPU features), valgrind versions, compilers and C libraries. Each field is
/// null when it could not be determined.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HostFingerprint {
    /// CPU brand string (`/proc/cpuinfo` "model name", through sysinfo).
    #[serde(default)]
    pub cpu_model: Option<String>,
    /// `valgrind --version`, for example `valgrind-3.19.0`.
    #[serde(default)]
    pub valgrind: Option<String>,
    /// `rustc --version`, for example `rustc 1.95.0 (59807616e 2026-04-14)`.
    #[serde(default)]
    pub rustc: Option<String>,
    /// glibc version: `getconf GNU_LIBC_VERSION`, else the first line of `ldd --version`.
    #[serde(default)]
    pub glibc: Option<String>,
}

impl HostFingerprint {
    /// The fingerprint of this machine.
    pub fn current() -> Self {
        let cpu = host().cpu_model;
        Self {
            cpu_model: (!cpu.is_empty()).then_some(cpu),
            valgrind: command_line("valgrind", &["--version"]),
            rustc: command_line("rustc", &["--version"]),
            glibc: command_line("getconf", &["GNU_LIBC_VERSION"])
                .or_else(|| command_line("ldd", &["--version"])),
        }
    }

    /// The fields that differ, as `(name, this, other)` with "unknown" for a missing value.
    pub fn differences(&self, other: &Self) -> Vec<(&'static str, String, String)> {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
        [
            ("CPU", &self.cpu_model, &other.cpu_model),
            ("valgrind", &self.valgrind, &other.valgrind),
            ("rustc", &self.rustc, &other.rustc),
            ("glibc", &self.glibc, &other.glibc),
        ]
        .into_iter()
        .filter(|(_, a, b)| a != b)
        .map(|(name, a, b)| (name, show(a), show(b)))
        .collect()
    }
}

/// First line of a command's stdout, if it runs and succeeds.
fn command_line(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?.trim().to_string();
    (!line.is_empty()).then_some(line)
}
