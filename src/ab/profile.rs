//! `aiops-bench ab --profile`: where a benchmark regressed, profile it on both sides and say
//! *where* the time went.
//!
//! Each side's harness is run once more, outside the A/B protocol, as
//! `HARNESS --bench --profile-time SECS --exact NAME` (the harness's own criterion profiler,
//! benches/profile.rs: pprof sampling, folded stacks and an inferno flamegraph), the base first.
//! The head runs with `AIOPS_PROFILE_BASE` pointing at the base's output and `--env-b`'s
//! variables, so the head harness also renders the differential flamegraph (inferno: base
//! scaled to the head's sample count; red frames take more of the time on the head). The files
//! are gathered into one folder per benchmark:
//!
//! `<target>/ab/profiles/<run>/<component>__<operation>__<variant>/` with `base.folded`,
//! `head.folded`, `base.svg`, `head.svg`, `differential.folded`, `differential.svg` and the two
//! harnesses' logs.
//!
//! The flamegraphs are made by the harness, so this library needs no profiler or SVG code
//! (the results library stays light); a base from before built-in profiling writes no profile,
//! and the report says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

/// The profile of one regressed benchmark. Paths are absent when the file was not made; the
/// reason is in `problem`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AbProfile {
    /// The folder holding the files below and the harnesses' logs.
    pub dir: PathBuf,
    /// Seconds of profiling per side.
    pub seconds: u64,
    /// Base (A) samples as folded stacks.
    pub base_folded: Option<PathBuf>,
    /// Head (B) samples as folded stacks.
    pub head_folded: Option<PathBuf>,
    /// Flamegraph of the base.
    pub base_flamegraph: Option<PathBuf>,
    /// Flamegraph of the head.
    pub head_flamegraph: Option<PathBuf>,
    /// Differential flamegraph, base against head (red: more time on the head).
    pub differential_flamegraph: Option<PathBuf>,
    /// The differential's folded lines (`stack base_count head_count`).
    pub differential_folded: Option<PathBuf>,
    /// What went wrong, when a file is missing.
    pub problem: Option<String>,
}

/// A file name for a benchmark name (`component/operation/variant` →
/// `component__operation__variant`).
pub fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '/' => "__".to_string(),
            c if c.is_ascii_alphanumeric() || "-_.".contains(c) => c.to_string(),
            _ => "_".to_string(),
        })
        .collect()
}

/// The first file called `file` under `dir` (depth-first).
fn find(dir: &Path, file: &str) -> Option<PathBuf> {
    let candidate = dir.join(file);
    if candidate.is_file() {
        return Some(candidate);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    entries.iter().find_map(|d| find(d, file))
}

/// Run one harness in profile mode; `Err` says why it failed.
fn run_harness(
    bin: &Path,
    root: &Path,
    name: &str,
    seconds: u64,
    home: &Path,
    env: &[(String, String)],
    log: &Path,
) -> Result<(), String> {
    let out = std::fs::File::create(log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("creating {}: {e}", log.display()))?;
    let status = Command::new(bin)
        .current_dir(root)
        .args([
            "--bench",
            "--profile-time",
            &seconds.to_string(),
            "--exact",
            name,
        ])
        .env_remove("AIOPS_AB")
        .env_remove("AIOPS_AB_FILTER")
        .env("CRITERION_HOME", home)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} exited with {status} (log: {})",
            bin.display(),
            log.display()
        ))
    }
}

/// Copy `file` found under `home` to `dir/to`.
fn gather(home: &Path, file: &str, dir: &Path, to: &str) -> Option<PathBuf> {
    let from = find(home, file)?;
    let dest = dir.join(to);
    std::fs::copy(&from, &dest).ok()?;
    Some(dest)
}

/// Profile benchmark `name` with the base harness `bin_a` and the head harness `bin_b` (with
/// `env_b`), `seconds` each, into `<out>/<file_name(name)>/`.
pub fn profile(
    bin_a: &Path,
    bin_b: &Path,
    root: &Path,
    out: &Path,
    name: &str,
    seconds: u64,
    env_b: &[(String, String)],
) -> AbProfile {
    let dir = out.join(file_name(name));
    let mut p = AbProfile {
        dir: dir.clone(),
        seconds,
        ..AbProfile::default()
    };
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        p.problem = Some(format!("creating {}: {e}", dir.display()));
        return p;
    }
    let (home_a, home_b) = (dir.join("base-criterion"), dir.join("head-criterion"));
    let mut problems = Vec::new();
    eprintln!("ab: --profile: {name}: profiling the base for {seconds} s");
    if let Err(e) = run_harness(
        bin_a,
        root,
        name,
        seconds,
        &home_a,
        &[],
        &dir.join("base.log"),
    ) {
        problems.push(format!("base: {e}"));
    }
    p.base_folded = gather(&home_a, "stacks.folded", &dir, "base.folded");
    p.base_flamegraph = gather(&home_a, "flamegraph.svg", &dir, "base.svg");
    if problems.is_empty() && p.base_folded.is_none() {
        problems.push(
            "the base's harness wrote no profile (a base from before built-in profiling, \
             benches/profile.rs): no base flamegraph and no differential"
                .into(),
        );
    }
    eprintln!("ab: --profile: {name}: profiling the head for {seconds} s");
    let mut env: Vec<(String, String)> = env_b.to_vec();
    env.push((
        "AIOPS_PROFILE_BASE".into(),
        home_a.to_string_lossy().into_owned(),
    ));
    if let Err(e) = run_harness(
        bin_b,
        root,
        name,
        seconds,
        &home_b,
        &env,
        &dir.join("head.log"),
    ) {
        problems.push(format!("head: {e}"));
    }
    p.head_folded = gather(&home_b, "stacks.folded", &dir, "head.folded");
    p.head_flamegraph = gather(&home_b, "flamegraph.svg", &dir, "head.svg");
    p.differential_folded = gather(&home_b, "differential.folded", &dir, "differential.folded");
    p.differential_flamegraph = gather(&home_b, "differential.svg", &dir, "differential.svg");
    if p.head_folded.is_none() && problems.iter().all(|m| !m.starts_with("head")) {
        problems.push(format!(
            "the head's harness wrote no profile (see {})",
            dir.join("head.log").display()
        ));
    }
    for home in [&home_a, &home_b] {
        let _ = std::fs::remove_dir_all(home);
    }
    if !problems.is_empty() {
        p.problem = Some(problems.join("; "));
    }
    match &p.differential_flamegraph {
        Some(svg) => eprintln!(
            "ab: --profile: {name}: differential flamegraph {}",
            svg.display()
        ),
        None => eprintln!(
            "ab: --profile: {name}: no differential flamegraph: {}",
            p.problem.as_deref().unwrap_or("unknown reason")
        ),
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_the_benchmark_readable() {
        assert_eq!(
            file_name("webhook/parse/github_pull_request"),
            "webhook__parse__github_pull_request"
        );
        assert_eq!(file_name("a b/../c"), "a_b__..__c");
    }

    #[test]
    fn find_descends_into_criterion_folders() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("webhook/parse_x/profile");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("stacks.folded"), "a;b 1\n").unwrap();
        assert_eq!(
            find(dir.path(), "stacks.folded"),
            Some(deep.join("stacks.folded"))
        );
        assert_eq!(find(dir.path(), "differential.svg"), None);
    }
}
