//! Helpers shared by the integration tests that run the `aiops-bench` binary.

use std::path::Path;
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

/// Run `aiops-bench compare [extra...] --baseline base current`: (exit code, stdout + stderr).
pub fn compare(base: &Path, current: &Path, extra: &[&str]) -> (i32, String) {
    let out = Command::cargo_bin("aiops-bench")
        .expect("aiops-bench binary")
        .arg("compare")
        .args(extra)
        .arg("--baseline")
        .arg(base)
        .arg(current)
        .output()
        .expect("run aiops-bench compare");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}
