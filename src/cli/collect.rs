//! `aiops-bench collect`: criterion output (plus the per-operation HDR sidecars), callgrind
//! summaries and included result files into one result file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aiops_bench::import::criterion::{CriterionImporter, ImportReport};
use aiops_bench::io;
use aiops_bench::result::{BenchmarkResults, Entries};
use anyhow::{bail, Context, Result};

pub(crate) fn run(
    criterion_dir: &Path,
    baseline: Option<String>,
    callgrind_dir: Option<&Path>,
    include: &[PathBuf],
    output: &Path,
) -> Result<ExitCode> {
    let mut importer = CriterionImporter::new(criterion_dir);
    if let Some(name) = baseline {
        importer = importer.with_baseline(name);
    }
    let other_sources = callgrind_dir.is_some() || !include.is_empty();
    let mut entries = if other_sources && !criterion_dir.exists() {
        eprintln!(
            "warning: no criterion output at {}; collecting the other sources only",
            criterion_dir.display()
        );
        Entries::default()
    } else {
        let (entries, report) = importer.import_with_report().with_context(|| {
            format!(
                "cannot import criterion set `{}` from {}",
                importer.baseline,
                criterion_dir.display()
            )
        })?;
        print_import_report(criterion_dir, &importer.baseline, &report);
        entries
    };
    if let Some(dir) = callgrind_dir {
        let imported = aiops_bench::import::callgrind::import_dir(dir)
            .with_context(|| format!("cannot import callgrind summaries from {}", dir.display()))?;
        entries.instructions.extend(imported);
    }
    let mut resources = None;
    for path in include {
        let included = io::load(path)?;
        // The load test's resource figures travel with its benchmarks.
        resources = resources.or(included.resources.clone());
        entries.extend(included.into());
    }
    if entries.is_empty() {
        bail!(
            "no benchmarks found in {} (set {:?}); run `cargo bench` first or check --criterion-dir/--baseline",
            criterion_dir.display(),
            importer.baseline
        );
    }
    for s in &entries.skipped {
        eprintln!("SKIPPED {}: {}", s.name, s.reason);
    }
    let mut results = BenchmarkResults::new(entries);
    if callgrind_dir.is_some() {
        results.metadata.host_fingerprint = Some(aiops_bench::metadata::HostFingerprint::current());
    }
    results.resources = resources;
    io::validate(&results).map_err(|m| anyhow::anyhow!("collected results are invalid: {m}"))?;
    io::save(output, &results, true)?;
    println!(
        "wrote {} benchmarks ({} skipped, {} instruction counts) to {}",
        results.benchmarks.len() + results.skipped.len(),
        results.skipped.len(),
        results.instructions.len(),
        output.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Where the per-operation data came from, and what has none.
fn print_import_report(criterion_dir: &Path, set: &str, report: &ImportReport) {
    if !report.runs.is_empty() {
        let runs: Vec<String> = report
            .runs
            .iter()
            .map(|(id, n)| format!("{id} ({n} sidecar{})", if *n == 1 { "" } else { "s" }))
            .collect();
        println!(
            "criterion set `{set}`: per-operation data from run {}",
            runs.join(", ")
        );
    }
    if !report.without_sidecar.is_empty() {
        let n = report.without_sidecar.len();
        let shown: Vec<&str> = report
            .without_sidecar
            .iter()
            .take(5)
            .map(String::as_str)
            .collect();
        let more = if n > shown.len() {
            format!(" and {} more", n - shown.len())
        } else {
            String::new()
        };
        eprintln!(
            "warning: criterion set `{set}` holds no per-operation data for {n} benchmark(s) \
             ({}{more}): percentile_basis per_sample, p95/p99 null; rerun `cargo bench` \
             (with `-- --save-baseline {set}` for a saved baseline) to record them",
            shown.join(", ")
        );
    }
    if !report.legacy_sidecars.is_empty() {
        eprintln!(
            "warning: ignoring {} sidecar(s) of an older build in {} (they record no run and \
             belong to no criterion baseline); delete that folder",
            report.legacy_sidecars.len(),
            criterion_dir
                .join(aiops_bench::sidecar::LEGACY_SIDECAR_DIR)
                .display()
        );
    }
}
