//! `aiops-bench baseline save|list`: a baseline is a saved result file; several runs merge
//! into one (distributions merged, spread kept: see `aiops_bench::merge`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aiops_bench::compare::merge_runs;
use aiops_bench::io;
use aiops_bench::metadata::short_commit;
use anyhow::{bail, Context, Result};

pub(crate) fn save(name: &str, from: &[PathBuf], force: bool, dir: &Path) -> Result<ExitCode> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        || name.starts_with('.')
    {
        bail!("baseline name {name:?} is invalid: use letters, digits, '-', '_' and '.'");
    }
    let runs = from
        .iter()
        .map(|p| io::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    let merged = if runs.len() == 1 {
        runs.into_iter().next().expect("one run")
    } else {
        merge_runs(&runs)
    };
    let path = dir.join(format!("{name}.json"));
    io::save(&path, &merged, force)?;
    println!(
        "saved baseline {name} ({} benchmarks, {} run(s)) to {}",
        merged.benchmarks.len() + merged.skipped.len() + merged.instructions.len(),
        merged.metadata.runs,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn list(dir: &Path) -> Result<ExitCode> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("no baselines in {}", dir.display());
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json") && !p.ends_with("schema.json"))
        .collect();
    paths.sort();
    let mut any = false;
    for p in paths {
        let name = p
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        match io::load(&p) {
            Ok(r) => {
                any = true;
                println!(
                    "{name}\t{}\t{} benchmarks\t{} run(s)\tcommit {}",
                    r.timestamp,
                    r.benchmarks.len() + r.skipped.len() + r.instructions.len(),
                    r.metadata.runs,
                    r.metadata
                        .git_commit
                        .as_deref()
                        .map_or_else(|| "unknown".to_string(), short_commit)
                );
            }
            Err(e) => eprintln!("warning: {e:#}"),
        }
    }
    if !any {
        println!("no baselines in {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}
