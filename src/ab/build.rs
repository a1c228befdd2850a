//! Building the two sides of an A/B run: the base revision in a git worktree with its own target
//! folder (seeded with the working tree's compiled dependencies), the head from the working
//! tree, both with `cargo bench --bench main --no-run`. The base's benchmark executable is
//! copied to `<target>/ab/bin/<commit>/` and reused by every later run against that commit.

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

/// The target folder of base builds, `<target>/ab/base-target`: separate from the working
/// tree's, because cargo names a workspace crate's artifacts alike whatever folder it was built
/// from, and judges them fresh by the modification times of the sources it recorded. Built into
/// one folder, the base could reuse the head's crates (or the head the base's) and an A/B would
/// compare a build with itself. The first time, it is seeded with hard links to the working
/// tree's compiled dependencies, so only the workspace's own crates are compiled again.
fn base_target(target: &Path) -> Result<PathBuf, AbError> {
    let base = target.join("ab").join("base-target");
    let release = target.join("release");
    if !base.exists() && release.join("deps").is_dir() {
        std::fs::create_dir_all(&base)
            .map_err(|e| AbError::Io(format!("creating {}: {e}", base.display())))?;
        // Hard links cost no space; a failure only means a full first build.
        let _ = Command::new("cp")
            .arg("-al")
            .arg(&release)
            .arg(base.join("release"))
            .status();
    }
    Ok(base)
}

/// Remove the workspace's own crates from `target` (dependencies stay), so the next build
/// compiles them from the sources of `dir`.
fn clean_workspace_crates(dir: &Path, target: &Path) -> Result<(), AbError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let meta = Command::new(&cargo)
        .current_dir(dir)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| AbError::Build("base".into(), format!("cannot run cargo metadata: {e}")))?;
    let v: serde_json::Value = serde_json::from_slice(&meta.stdout)
        .map_err(|e| AbError::Build("base".into(), format!("cargo metadata gave no JSON: {e}")))?;
    let names: Vec<String> = v["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect();
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .args(["clean", "--release", "--quiet"]);
    for n in &names {
        cmd.args(["-p", n]);
    }
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .map_err(|e| AbError::Build("base".into(), format!("cannot run cargo clean: {e}")))?;
    if !status.success() {
        return Err(AbError::Build(
            "base".into(),
            format!("cargo clean of the workspace crates exited with {status}"),
        ));
    }
    Ok(())
}

/// The base's benchmark executable for `commit`: from the cache, or built in a fresh worktree.
pub fn base_binary(root: &Path, target: &Path, commit: &str) -> Result<PathBuf, AbError> {
    let cached = target
        .join("ab")
        .join("bin")
        .join(commit)
        .join("bench-main");
    if cached.is_file() {
        eprintln!(
            "ab: base {} already built: {}",
            crate::metadata::short_commit(commit),
            cached.display()
        );
        return Ok(cached);
    }
    let worktree = target.join("ab").join("worktrees").join(commit);
    let path = worktree.to_string_lossy().to_string();
    // A fresh checkout every time a base is built (a worktree left by an interrupted build
    // could hold anything).
    if worktree.exists() {
        let _ = git(root, &["worktree", "remove", "--force", &path]);
        let _ = std::fs::remove_dir_all(&worktree);
    }
    let _ = git(root, &["worktree", "prune"]);
    git(
        root,
        &["worktree", "add", "--force", "--detach", &path, commit],
    )
    .map_err(|e| AbError::Build(format!("base {commit}"), format!("git worktree add: {e}")))?;
    if !worktree.join("benches").join("main.rs").is_file() {
        return Err(AbError::NoProtocol(format!(
            "base {commit} has no benches/main.rs: it predates this benchmark suite"
        )));
    }
    let base_target = base_target(target)?;
    clean_workspace_crates(&worktree, &base_target)?;
    let built = build_bench(
        &worktree,
        &base_target,
        &format!("base {}", crate::metadata::short_commit(commit)),
    )?;
    install(&built, &cached)
        .map_err(|e| AbError::Build("base".into(), format!("caching {}: {e}", cached.display())))?;
    Ok(cached)
}

/// Copy `from` to `to` through a temporary file and a rename, so that a harness still running
/// from `to` (another `ab` in the same repository) keeps its file and nothing is half-written.
fn install(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to.parent().expect("an install path has a parent"))?;
    let tmp = to.with_extension(format!("tmp{}", std::process::id()));
    std::fs::copy(from, &tmp)?;
    std::fs::rename(&tmp, to)
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
    install(&built, &copy).map_err(|e| {
        AbError::Build("head".into(), format!("copying to {}: {e}", copy.display()))
    })?;
    Ok(copy)
}
