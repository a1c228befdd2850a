//! Distributed load (issue 18) against the reference service: 4 local worker processes at a
//! quarter of the rate each are one open model, merged exactly; a worker killed mid-run is
//! named with what is missing.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aiops_bench::result::{BenchmarkResults, WorkerStatus};
use assert_cmd::cargo::CommandCargoExt;

const SCENARIO: &str = "load/health_check";

fn loadtest() -> Command {
    Command::cargo_bin("loadtest").expect("loadtest binary is built")
}

fn scenario(r: &BenchmarkResults) -> &aiops_bench::result::Benchmark {
    r.benchmarks
        .iter()
        .find(|b| b.name == SCENARIO)
        .unwrap_or_else(|| panic!("no {SCENARIO} entry"))
}

/// Raw samples (ns) a worker wrote with the hidden `--raw-samples`.
fn raw_samples(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(entry, _)| *entry == SCENARIO)
        .map(|(_, ns)| ns.parse().unwrap())
        .collect()
}

/// Whether `value_ms` (a merged percentile) is, within HDR precision (3 significant digits: a
/// bucket is at most 1/1024 of its value wide, plus the histogram's 1 µs unit), a sample of
/// `sorted_ns` ranked at `q` (nearest rank, one rank either side for rounding).
fn matches_rank(sorted_ns: &[u64], q: f64, value_ms: f64) -> bool {
    let n = sorted_ns.len();
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    (rank.saturating_sub(2)..(rank + 1).min(n)).any(|i| {
        let x = sorted_ns[i] as f64 / 1e6;
        (value_ms - x).abs() <= x / 1024.0 + 0.001
    })
}

#[test]
fn four_local_workers_at_a_quarter_each_are_one_open_model_merged_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("merged.json");
    let raw = dir.path().join("raw");
    let (rps, duration) = (200u64, 3u64);
    let output = loadtest()
        .args(["--workers", "4", "--only", "health", "--no-thresholds"])
        .args([
            "--rps",
            &rps.to_string(),
            "--duration",
            &duration.to_string(),
        ])
        .arg("--raw-samples")
        .arg(&raw)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("Merged 4 of 4 worker result(s)"),
        "{stdout}"
    );
    let merged = aiops_bench::io::load(&out).unwrap();
    let m = scenario(&merged);
    let asked = rps * duration;
    // One open model at the whole rate: the merged count is R x duration within 1%.
    let diff = m.iterations.abs_diff(asked);
    assert!(
        diff * 100 <= asked,
        "{} requests merged, {asked} asked",
        m.iterations
    );
    assert_eq!(m.schedule.unwrap().scheduled, asked);
    let d = merged
        .metadata
        .distributed
        .as_ref()
        .expect("metadata.distributed");
    assert!(d.complete, "{d:?}");
    // Each worker sent its share, a quarter of the schedule, and checked its clock: on one
    // machine the target's clock is its own, so the offset's bounds contain 0.
    let mut pooled: Vec<u64> = Vec::new();
    let mut sum = 0;
    for i in 0..4u32 {
        let file = dir.path().join(format!("merged.worker-{i}.json"));
        let w = aiops_bench::io::load(&file).unwrap();
        let info = w.metadata.worker.as_ref().expect("metadata.worker");
        assert_eq!((info.index, info.workers), (i, 4));
        let b = scenario(&w);
        assert_eq!(b.schedule.unwrap().scheduled, asked / 4);
        assert_eq!(b.schedule.unwrap().target_rps, rps as f64 / 4.0);
        sum += b.iterations;
        assert!(info.clock.target_samples > 0, "{:?}", info.clock);
        let offset = info
            .clock
            .target_offset_ms
            .expect("an offset to the target");
        assert!(offset.min <= 0.0 && 0.0 <= offset.max, "{offset:?}");
        let mut name = raw.as_os_str().to_owned();
        name.push(format!(".{i}"));
        pooled.extend(raw_samples(&PathBuf::from(name)));
    }
    assert_eq!(m.iterations, sum, "counts add up");
    // The merged percentiles are the percentiles of every worker's raw samples pooled.
    pooled.sort_unstable();
    assert_eq!(m.sample_count, Some(pooled.len() as u64));
    assert_eq!(m.latency_ms.max, *pooled.last().unwrap() as f64 / 1e6);
    assert_eq!(m.latency_ms.min, pooled[0] as f64 / 1e6);
    for (q, v) in [
        (0.5, m.latency_ms.median),
        (0.99, m.latency_ms.p99.unwrap()),
    ] {
        assert!(
            matches_rank(&pooled, q, v),
            "p{q}: merged {v} ms is not the pooled samples' (around {} ms)",
            pooled[((q * pooled.len() as f64) as usize).min(pooled.len() - 1)] as f64 / 1e6
        );
    }
}

/// The reference service as an external target; its base URL.
fn reference_service() -> (Child, String) {
    let mut service = loadtest()
        .args(["--serve-reference", "127.0.0.1:0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(service.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("aiops-service listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (service, base)
}

#[cfg(unix)]
#[test]
fn a_worker_killed_mid_run_is_named_with_what_is_missing() {
    let (mut service, base) = reference_service();
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let start_at = format!("{:.3}", now + 4.0);
    let files: Vec<PathBuf> = (0..4)
        .map(|i| dir.path().join(format!("worker-{i}.json")))
        .collect();
    let mut workers: Vec<Child> = files
        .iter()
        .enumerate()
        .map(|(i, file)| {
            loadtest()
                .args(["--url", &base, "--only", "health", "--no-self-check"])
                .args(["--rps", "80", "--duration", "4", "--workers", "4"])
                .args(["--worker-index", &i.to_string(), "--start-at", &start_at])
                .arg("--output")
                .arg(file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // 1.5 s into the schedule: worker 2 is killed outright, worker 3 is interrupted.
    std::thread::sleep(Duration::from_millis(5_500));
    workers[2].kill().unwrap();
    let status = Command::new("kill")
        .args(["-INT", &workers[3].id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let codes: Vec<Option<i32>> = workers
        .iter_mut()
        .map(|w| w.wait().unwrap().code())
        .collect();
    let _ = service.kill();
    let _ = service.wait();
    assert_eq!(codes, [Some(0), Some(0), None, Some(130)]);
    assert!(!files[2].exists());

    let merged = aiops_bench::distributed::merge_files(&files).unwrap();
    assert!(!merged.complete());
    let report = &merged.report;
    let d = merged.results.metadata.distributed.as_ref().unwrap();
    assert_eq!(d.each[2].status, WorkerStatus::Missing, "{report}");
    assert!(report.contains("no result for worker 2"), "{report}");
    assert!(
        report.contains("80 of 320 scheduled requests each"),
        "{report}"
    );
    assert_eq!(d.each[3].status, WorkerStatus::Incomplete, "{report}");
    let missing = d.each[3].missing.as_deref().unwrap();
    assert!(
        missing.contains("load/health_check was interrupted"),
        "{missing}"
    );
    assert!(
        report.contains("INCOMPLETE: worker 2 missing, worker 3 interrupted"),
        "{report}"
    );
    // Nothing made up: the merge holds exactly what workers 0, 1 and 3 sent.
    let sent: u64 = [0, 1, 3]
        .iter()
        .map(|&i| scenario(&aiops_bench::io::load(&files[i]).unwrap()).iterations)
        .sum();
    let m = scenario(&merged.results);
    assert_eq!(m.iterations, sent);
    assert!(sent < 320 * 3 / 4, "{sent}");
    assert_eq!(m.schedule.unwrap().scheduled, 320, "the whole schedule");
}
