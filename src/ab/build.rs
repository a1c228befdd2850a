//! Building the two sides of an A/B run, both with `cargo bench --bench main --no-run`, both in
//! **one** git worktree at a fixed path, `<target>/ab/src`, with their own target folder
//! (seeded with the working tree's compiled dependencies): the base checked out at its commit,
//! the head checked out at `HEAD` with the working tree's uncommitted changes and untracked files
//! copied in. The base's executable is copied to `<target>/ab/bin/<commit>/` and reused by every
//! later run against that commit; a clean working tree is `HEAD`, so its head build is that cache.
//!
//! Why one path: cargo hashes a workspace crate's source path into its symbol names, and the
//! linker lays functions out by them. Built in two folders, the same code gave two executables
//! whose `.text` differed by 64 bytes of alignment, and such layout shifts moved single
//! benchmarks by several percent for as long as the processes lived (measured: identical code
//! called 4.8% slower, `agent/triage/cache_hit`, on a quiet machine, in both independent
//! process pairs). From one path, the same code builds to the same executable, so an A/B of
//! unchanged code (a docs-only pull request) compares a program with itself. A real code change
//! can still shift the layout of code it did not touch: that bias is the program's, and the
//! gate's threshold (3% on the median) is what absorbs it.

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

/// The one folder both sides are built in (see the module's documentation).
fn build_src(target: &Path) -> PathBuf {
    target.join("ab").join("src")
}

/// A fresh checkout of `commit` at `<target>/ab/src` (a worktree left by an interrupted build,
/// or by the other side, could hold anything).
fn checkout(root: &Path, target: &Path, commit: &str, what: &str) -> Result<PathBuf, AbError> {
    let worktree = build_src(target);
    let path = worktree.to_string_lossy().to_string();
    if worktree.exists() {
        let _ = git(root, &["worktree", "remove", "--force", &path]);
        let _ = std::fs::remove_dir_all(&worktree);
    }
    let _ = git(root, &["worktree", "prune"]);
    git(
        root,
        &["worktree", "add", "--force", "--detach", &path, commit],
    )
    .map_err(|e| AbError::Build(what.to_string(), format!("git worktree add: {e}")))?;
    if !worktree.join("benches").join("main.rs").is_file() {
        return Err(AbError::NoProtocol(format!(
            "{what} has no benches/main.rs: it predates this benchmark suite"
        )));
    }
    Ok(worktree)
}

/// Build the harness in the checkout at `<target>/ab/src`, with the workspace's own crates
/// compiled afresh, and copy it to `dest`.
fn build_checkout(
    worktree: &Path,
    target: &Path,
    what: &str,
    dest: &Path,
) -> Result<PathBuf, AbError> {
    let base_target = base_target(target)?;
    clean_workspace_crates(worktree, &base_target)?;
    let built = build_bench(worktree, &base_target, what)?;
    install(&built, dest).map_err(|e| {
        AbError::Build(what.to_string(), format!("caching {}: {e}", dest.display()))
    })?;
    Ok(dest.to_path_buf())
}

fn cached_binary(target: &Path, commit: &str) -> PathBuf {
    target
        .join("ab")
        .join("bin")
        .join(commit)
        .join("bench-main")
}

/// The base's benchmark executable for `commit`: from the cache, or built at `<target>/ab/src`.
pub fn base_binary(root: &Path, target: &Path, commit: &str) -> Result<PathBuf, AbError> {
    let cached = cached_binary(target, commit);
    if cached.is_file() {
        eprintln!(
            "ab: base {} already built: {}",
            crate::metadata::short_commit(commit),
            cached.display()
        );
        return Ok(cached);
    }
    let what = format!("base {}", crate::metadata::short_commit(commit));
    let worktree = checkout(root, target, commit, &what)?;
    build_checkout(&worktree, target, &what, &cached)
}

/// Files in the working tree that git neither tracks nor ignores (new sources not yet added),
/// relative to `root`.
fn untracked(root: &Path) -> Result<Vec<PathBuf>, AbError> {
    let list = git(root, &["ls-files", "--others", "--exclude-standard", "-z"])
        .map_err(|e| AbError::Build("head".into(), format!("git ls-files: {e}")))?;
    Ok(list
        .split('\0')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect())
}

/// Copy `from` to `to` through a temporary file and a rename, so that a harness still running
/// from `to` (another `ab` in the same repository) keeps its file and nothing is half-written.
fn install(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to.parent().expect("an install path has a parent"))?;
    let tmp = to.with_extension(format!("tmp{}", std::process::id()));
    std::fs::copy(from, &tmp)?;
    std::fs::rename(&tmp, to)
}

/// The head's benchmark executable: the working tree (HEAD plus its uncommitted changes and
/// untracked files), built at the same path as the base. A clean working tree is HEAD's commit,
/// so its executable is the cached one of that commit (built now if it is not cached).
pub fn head_binary(root: &Path, target: &Path) -> Result<PathBuf, AbError> {
    let (head, dirty) = head_state(root);
    let head = head.ok_or_else(|| {
        AbError::Build(
            "head".into(),
            "the repository has no HEAD commit; commit something first".into(),
        )
    })?;
    let extra = untracked(root)?;
    if !dirty && extra.is_empty() {
        eprintln!(
            "ab: the working tree is HEAD {} unchanged: B is that commit's build",
            crate::metadata::short_commit(&head)
        );
        return base_binary(root, target, &head);
    }
    let what = "head (working tree)";
    let worktree = checkout(root, target, &head, what)?;
    // The uncommitted changes as git sees them (binary-safe), then the untracked files.
    let diff = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["diff", "HEAD", "--binary"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| AbError::Build(what.into(), format!("cannot run git diff: {e}")))?;
    if !diff.status.success() {
        return Err(AbError::Build(
            what.into(),
            format!(
                "git diff HEAD: {}",
                String::from_utf8_lossy(&diff.stderr).trim()
            ),
        ));
    }
    if !diff.stdout.is_empty() {
        let mut apply = Command::new("git")
            .arg("-C")
            .arg(&worktree)
            .args(["apply", "--binary", "--whitespace=nowarn", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| AbError::Build(what.into(), format!("cannot run git apply: {e}")))?;
        {
            use std::io::Write;
            let mut stdin = apply.stdin.take().expect("piped stdin");
            stdin
                .write_all(&diff.stdout)
                .map_err(|e| AbError::Build(what.into(), format!("git apply: {e}")))?;
        }
        let out = apply
            .wait_with_output()
            .map_err(|e| AbError::Build(what.into(), format!("git apply: {e}")))?;
        if !out.status.success() {
            return Err(AbError::Build(
                what.into(),
                format!(
                    "applying the working tree's changes to a checkout of HEAD failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
    }
    for rel in &extra {
        let (from, to) = (root.join(rel), worktree.join(rel));
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| AbError::Io(format!("creating {}: {e}", parent.display())))?;
        }
        std::fs::copy(&from, &to)
            .map_err(|e| AbError::Io(format!("copying {} to the build: {e}", from.display())))?;
    }
    let dest = target
        .join("ab")
        .join("bin")
        .join("head")
        .join("bench-main");
    build_checkout(&worktree, target, what, &dest)
}
