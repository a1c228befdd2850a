//! Run metadata: host description (sysinfo), git commit and tool versions.

use std::collections::BTreeMap;
use std::process::Command;

use crate::result::{HostInfo, RunMetadata};

/// Pinned criterion version whose private output layout the importer reads.
pub const CRITERION_VERSION: &str = "0.8.2";
/// Goose version the load tester is built with.
pub const GOOSE_VERSION: &str = "0.19";

/// Metadata of this process: git commit (if any), host, tool versions.
pub fn collect() -> RunMetadata {
    let mut tool_versions = BTreeMap::new();
    tool_versions.insert(
        "aiops-bench".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    );
    tool_versions.insert("criterion".to_string(), CRITERION_VERSION.to_string());
    tool_versions.insert("goose".to_string(), GOOSE_VERSION.to_string());
    if let Some(rustc) = command_line("rustc", &["--version"]) {
        tool_versions.insert("rustc".to_string(), rustc);
    }
    RunMetadata {
        git_commit: command_line("git", &["rev-parse", "HEAD"]),
        host: host(),
        tool_versions,
        runs: 1,
        target: None,
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
