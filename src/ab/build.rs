//! Building the two sides of an A/B run: the base revision in a cached git worktree, the head
//! from the working tree, both with `cargo bench --bench main --no-run` into the same target
//! folder (so dependencies are compiled once). The base's benchmark executable is copied to
//! `<target>/ab/bin/<commit>/` and reused by every later run against the same commit.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::AbError;

/// `git` in `dir`, returning trimmed stdout, or the error's stderr.
fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// The top folder of the repository containing `dir`.
pub fn repo_root(dir: &Path) -> Result<PathBuf, AbError> {
    git(dir, &["rev-parse", "--show-toplevel"])
        .map(PathBuf::from)
        .map_err(|e| AbError::NotARepository(format!("{}: {e}", dir.display())))
}

/// The commit `rev` names.
pub fn resolve(root: &Path, rev: &str) -> Result<String, AbError> {
    if rev.starts_with('-') || rev.is_empty() {
        return Err(AbError::BadRevision(
            rev.to_string(),
            "not a revision".into(),
        ));
    }
    git(
        root,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
    )
    .ok()
    .filter(|s| !s.is_empty())
    .ok_or_else(|| {
        AbError::BadRevision(
            rev.to_string(),
            "git knows no such commit (fetch it first, e.g. git fetch origin main)".into(),
        )
    })
}

/// `HEAD`'s commit and whether the working tree differs from it.
pub fn head_state(root: &Path) -> (Option<String>, bool) {
    let head = git(root, &["rev-parse", "HEAD"]).ok();
    let dirty = git(root, &["status", "--porcelain", "--untracked-files=no"])
        .map(|s| !s.is_empty())
        .unwrap_or(false);
    (head, dirty)
}

/// The cargo target folder: `$CARGO_TARGET_DIR`, else `<root>/target`.
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"))
}

/// Build the benchmark harness in `dir` and return its executable.
pub fn build_bench(dir: &Path, target: &Path, what: &str) -> Result<PathBuf, AbError> {
    eprintln!(
        "ab: building {what} (cargo bench --bench main --no-run) in {}",
        dir.display()
    );
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .args([
            "bench",
            "--bench",
            "main",
            "--no-run",
            "--message-format",
            "json-render-diagnostics",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| AbError::Build(what.to_string(), format!("cannot run cargo: {e}")))?;
    if !out.status.success() {
        return Err(AbError::Build(
            what.to_string(),
            format!("cargo exited with {} (its errors are above)", out.status),
        ));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "main")
        .filter(|v| {
            v["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bench"))
        })
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| {
            AbError::Build(
                what.to_string(),
                "cargo reported no executable for the bench target `main`".into(),
            )
        })
}

/// The base's benchmark executable for `commit`: from the cache, or built in a worktree.
pub fn base_binary(root: &Path, target: &Path, commit: &str) -> Result<PathBuf, AbError> {
    let cached = target
        .join("ab")
        .join("bin")
        .join(commit)
        .join("bench-main");
    if cached.is_file() {
        eprintln!(
            "ab: base {} already built: {}",
            &commit[..12.min(commit.len())],
            cached.display()
        );
        return Ok(cached);
    }
    let worktree = target.join("ab").join("worktrees").join(commit);
    if !worktree.join("Cargo.toml").is_file() {
        let _ = git(root, &["worktree", "prune"]);
        let path = worktree.to_string_lossy().to_string();
        git(
            root,
            &["worktree", "add", "--force", "--detach", &path, commit],
        )
        .map_err(|e| AbError::Build(format!("base {commit}"), format!("git worktree add: {e}")))?;
    }
    if !worktree.join("benches").join("main.rs").is_file() {
        return Err(AbError::NoProtocol(format!(
            "base {commit} has no benches/main.rs: it predates this benchmark suite"
        )));
    }
    let built = build_bench(&worktree, target, &format!("base {}", &commit[..12]))?;
    std::fs::create_dir_all(cached.parent().expect("cache path has a parent"))
        .and_then(|()| std::fs::copy(&built, &cached).map(|_| ()))
        .map_err(|e| AbError::Build("base".into(), format!("caching {}: {e}", cached.display())))?;
    Ok(cached)
}

/// The head's benchmark executable, built from the working tree and copied next to the base's
/// (so a later base build cannot overwrite it while it runs).
pub fn head_binary(root: &Path, target: &Path) -> Result<PathBuf, AbError> {
    let built = build_bench(root, target, "head (working tree)")?;
    let copy = target
        .join("ab")
        .join("bin")
        .join("head")
        .join("bench-main");
    std::fs::create_dir_all(copy.parent().expect("copy path has a parent"))
        .and_then(|()| std::fs::copy(&built, &copy).map(|_| ()))
        .map_err(|e| {
            AbError::Build("head".into(), format!("copying to {}: {e}", copy.display()))
        })?;
    Ok(copy)
}
