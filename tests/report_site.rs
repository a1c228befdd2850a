//! `aiops-bench report`: the site built from real results (criterion runs, instruction counts,
//! load tests with HDR histograms, a load test with its time series, resource samples and
//! `loadtest --profile` flamegraph, an A/B report with `ab --profile` flamegraphs) has every
//! local link resolving, loads nothing from the network, its overview data is snapshot-tested,
//! and headless Chromium renders every chart (screenshots kept under
//! target/tmp/report-screenshots for CI to upload).

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use aiops_bench::report::{load_history, overview};
use assert_cmd::Command;
use regex::Regex;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

const RUNS: [&str; 9] = [
    "tests/fixtures/results/run-1.json",
    "tests/fixtures/results/run-2.json",
    "tests/fixtures/results/run-3.json",
    "tests/fixtures/results/run-4.json",
    "baselines/instructions.json",
    "tests/fixtures/v1/load.json",
    "tests/fixtures/history/load-1.json",
    "tests/fixtures/history/load-2.json",
    // `loadtest --duration 4 --rps 50 --profile`: timeseries, resources.timeseries, a flamegraph
    "tests/fixtures/history/load-3.json",
];

/// The A/B fixture with the real `ab --profile` output of scripts/profile-check (its
/// differential flamegraph of `webhook/parse/github_pull_request` with `extra-parse-work`) named
/// for that benchmark, relative to the report's folder as `ab` writes them.
fn ab_with_profile(tmp: &Path) -> PathBuf {
    let mut ab: serde_json::Value = serde_json::from_slice(
        &std::fs::read(fixture("tests/fixtures/history/ab-tail.json")).unwrap(),
    )
    .unwrap();
    let dir = tmp.join("ab/profiles/webhook__parse__github_pull_request");
    std::fs::create_dir_all(&dir).unwrap();
    let real = fixture("scripts/results/profile-check-2026-12-01");
    std::fs::copy(real.join("differential.svg"), dir.join("differential.svg")).unwrap();
    std::fs::copy(real.join("github_pull_request.svg"), dir.join("head.svg")).unwrap();
    let rel = "profiles/webhook__parse__github_pull_request";
    ab["benchmarks"][0]["profile"] = serde_json::json!({
        "dir": rel,
        "seconds": 5,
        "head_flamegraph": format!("{rel}/head.svg"),
        "differential_flamegraph": format!("{rel}/differential.svg"),
        "base_flamegraph": format!("{rel}/base.svg"),
        "problem": "the base's flamegraph is not part of this fixture",
    });
    let path = tmp.join("ab/ab.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&ab).unwrap()).unwrap();
    path
}

/// The id of the run made from `file` (by its timestamp).
fn run_id(history: &Path, file: &str) -> String {
    let results = aiops_bench::io::load(&fixture(file)).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(history.join("index.json")).unwrap()).unwrap();
    index["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["timestamp"] == results.timestamp.as_str())
        .and_then(|r| r["id"].as_str())
        .unwrap()
        .to_string()
}

/// A history of `files` in `tmp/history`, and the site `report` builds from it in `tmp/site`
/// with `extra` arguments; `report`'s stdout.
fn site_of(tmp: &Path, files: &[&str], extra: &[std::ffi::OsString]) -> (PathBuf, PathBuf, String) {
    let history = tmp.join("history");
    let site = tmp.join("site");
    let mut add = Command::cargo_bin("aiops-bench").unwrap();
    add.args(["history", "add", "--dir"]).arg(&history);
    for f in files {
        add.arg(fixture(f));
    }
    add.assert().success();
    let out = Command::cargo_bin("aiops-bench")
        .unwrap()
        .args(["report", "--history"])
        .arg(&history)
        .arg("--output")
        .arg(&site)
        .args(extra)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    (history, site, stdout)
}

/// A history of every real result fixture, and the site built from it.
fn build(tmp: &Path) -> (PathBuf, PathBuf) {
    let extra = [
        "--baseline".into(),
        fixture("tests/fixtures/results/run-1.json").into(),
        "--ab".into(),
        ab_with_profile(tmp).into(),
    ];
    let (history, site, stdout) = site_of(tmp, &RUNS, &extra);
    assert!(stdout.contains("for 9 runs and 66 benchmarks"), "{stdout}");
    (history, site)
}

fn html_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            html_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "html") {
            out.push(p);
        }
    }
}

#[test]
fn every_link_resolves_and_nothing_comes_from_the_network() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, site) = build(tmp.path());
    let mut pages = Vec::new();
    html_files(&site, &mut pages);
    // overview, runs list, ab, 66 benchmarks, 9 runs
    assert_eq!(pages.len(), 3 + 66 + 9);
    let link = Regex::new(r#"(?:href|src)="([^"]*)""#).unwrap();
    let remote = Regex::new(r#"(?:href|src|url)\s*[=(]\s*"?(?:https?:)?//"#).unwrap();
    let mut links = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        assert!(
            !remote.is_match(&text),
            "{} loads from the network",
            page.display()
        );
        for c in link.captures_iter(&text) {
            let target = c[1].split('#').next().unwrap();
            if target.is_empty() {
                continue;
            }
            let resolved = page.parent().unwrap().join(target);
            assert!(
                resolved.exists(),
                "{}: broken link {target}",
                page.display()
            );
            links += 1;
        }
        // Run pages have charts only where the run kept histograms (the load runs, below).
        if !page.ends_with("runs.html") && !page.parent().unwrap().ends_with("runs") {
            assert!(text.contains("<svg"), "{}: no chart", page.display());
        }
    }
    assert!(links > 1000, "{links} links checked");
    // The load run's page has one HDR chart per scenario; the A/B page one per statistic.
    let old = run_id(
        &tmp.path().join("history"),
        "tests/fixtures/history/load-2.json",
    );
    let run = std::fs::read_to_string(site.join(format!("runs/{old}.html"))).unwrap();
    assert_eq!(run.matches("<svg").count(), 3, "health, mixed, webhooks");
    assert!(run.contains("resident memory peak"));
    assert!(run.contains("no per-second time series"));
    assert!(!run.contains("CPU profile"));
    // The run with a time series: 3 HDR charts, 3 resource charts, 3 per scenario over time;
    // its flamegraph and folded stacks copied next to the page and linked.
    let new = run_id(
        &tmp.path().join("history"),
        "tests/fixtures/history/load-3.json",
    );
    let run = std::fs::read_to_string(site.join(format!("runs/{new}.html"))).unwrap();
    assert_eq!(run.matches("<svg").count(), 3 + 3 + 3 * 3);
    for title in [
        "load/webhook_ingest: requests per second",
        "load/webhook_ingest: latency per second",
        "load/webhook_ingest: requests in flight",
        "target CPU",
        "target resident memory",
    ] {
        assert!(run.contains(title), "run page has no chart {title:?}");
    }
    let flame = format!("href=\"{new}/load-3.flamegraph.svg\"");
    assert!(run.contains(&flame), "run page links {flame}");
    let svg =
        std::fs::read_to_string(site.join(format!("runs/{new}/load-3.flamegraph.svg"))).unwrap();
    assert_eq!(
        svg,
        std::fs::read_to_string(fixture("tests/fixtures/history/load-3.flamegraph.svg")).unwrap(),
        "the copied flamegraph is the run's"
    );
    assert!(site.join(format!("runs/{new}/load-3.folded")).is_file());
    // The A/B page: one chart per statistic, and the profile's files copied and linked.
    let ab = std::fs::read_to_string(site.join("ab.html")).unwrap();
    assert_eq!(ab.matches("<svg").count(), 3);
    let dir = "ab/webhook__parse__github_pull_request";
    assert!(
        ab.contains(&format!("href=\"{dir}/differential.svg\"")),
        "{ab}"
    );
    assert!(ab.contains(&format!("href=\"{dir}/head.svg\"")));
    assert!(
        ab.contains("base.svg not found"),
        "a missing file is said, not linked"
    );
    assert!(site.join(dir).join("differential.svg").is_file());
}

/// Run pages of a capacity search and of a soak (real outputs: `loadtest --find-capacity --only
/// health`, scripts/capacity-example; a 1 KiB/request leak of scripts/soak-study) draw their
/// steps and their memory slope.
#[test]
fn capacity_and_soak_runs_draw_their_steps_and_memory_slope() {
    let tmp = tempfile::tempdir().unwrap();
    let files = [
        "tests/fixtures/history/capacity-1.json",
        "tests/fixtures/history/soak-1.json",
    ];
    let (history, site, _) = site_of(tmp.path(), &files, &[]);
    let page = |file: &str| {
        std::fs::read_to_string(site.join(format!("runs/{}.html", run_id(&history, file)))).unwrap()
    };
    let capacity = page(files[0]);
    assert!(
        capacity.contains("<h2>Capacity search</h2>"),
        "no capacity section"
    );
    for title in [
        "load/health_check: latency per step (SLO p99&lt;50ms,errors&lt;0.1%), at least 25600 req/s, limited by the generator",
        "load/health_check: rate achieved per step",
    ] {
        assert!(capacity.contains(title), "no chart {title:?}");
    }
    // One table row per step, with its verdict.
    let c = aiops_bench::io::load(&fixture(files[0])).unwrap();
    let steps = c.benchmarks[0].capacity.as_ref().unwrap().steps.len();
    assert_eq!(capacity.matches("<td class=\"n\">51200</td>").count(), 1);
    assert_eq!(
        capacity.matches("</td><td>met").count()
            + capacity.matches("</td><td>generator-limited").count(),
        steps
    );
    assert!(!capacity.contains("<h2>Soak</h2>"));

    let soak = page(files[1]);
    assert!(soak.contains("<h2>Soak</h2>"), "no soak section");
    assert!(
        soak.contains(
            "load/health_check: target resident memory, leak (+725.2 MB/h [+724.9, +725.6])"
        ),
        "the memory chart names the verdict and the slope"
    );
    assert!(soak.contains("fitted slope") && soak.contains("end of warm-up"));
    assert!(soak.contains("load/health_check: p99 per interval"));
    assert!(!soak.contains("<h2>Capacity search</h2>"));
}

#[test]
fn overview_data_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let (history, _) = build(tmp.path());
    let baseline = aiops_bench::io::load(&fixture("tests/fixtures/results/run-1.json")).unwrap();
    let h = load_history(&history).unwrap();
    let rows = overview(&h, Some(&baseline));
    assert_eq!(rows.len(), 66);
    // The gate's reasons are compare's wording (tested with compare); the verdicts stay here.
    let mut data = serde_json::to_value(&rows).unwrap();
    for row in data.as_array_mut().unwrap() {
        row.as_object_mut().unwrap().remove("verdict_reason");
    }
    insta::assert_json_snapshot!("overview", data);
}

fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            Process::new("sh")
                .args(["-c", &format!("command -v {name}")])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        });
    if found.is_none() && std::env::var_os("AIOPS_REQUIRE_CHROMIUM").is_some() {
        panic!("AIOPS_REQUIRE_CHROMIUM is set but no chromium was found; run .ci/install-tools");
    }
    found
}

fn headless(chromium: &Path, extra: &[&str], page: &Path) -> (String, String) {
    let out = Process::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed on {}",
        page.display()
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn chromium_renders_every_chart_without_console_errors() {
    let Some(chromium) = chromium() else {
        eprintln!("skipped: no chromium (install it with .ci/install-tools)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (history, site) = build(tmp.path());
    let load_run = run_id(&history, "tests/fixtures/history/load-3.json");
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let pages = [
        ("overview", "index.html".to_string(), 2400),
        (
            "benchmark",
            "bench/cache~read~memory_1kb.html".to_string(),
            1200,
        ),
        (
            "load-benchmark",
            "bench/load~mixed_api.html".to_string(),
            1200,
        ),
        ("run", format!("runs/{load_run}.html"), 6400),
        ("ab", "ab.html".to_string(), 1200),
    ];
    let svg = Regex::new(r"(?s)<svg\b.*?</svg>").unwrap();
    let shape = Regex::new(r"<(polyline|polygon|circle|path|line|rect)\b").unwrap();
    for (name, rel, height) in &pages {
        let page = site.join(rel);
        let source = std::fs::read_to_string(&page).unwrap();
        let (dom, log) = headless(&chromium, &["--dump-dom"], &page);
        let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
        assert!(console.is_empty(), "{rel}: console messages: {console:#?}");
        let charts: Vec<&str> = svg.find_iter(&dom).map(|m| m.as_str()).collect();
        assert_eq!(
            charts.len(),
            source.matches("<svg").count(),
            "{rel}: every chart is in the rendered page"
        );
        assert!(!charts.is_empty(), "{rel}: no chart");
        for (i, c) in charts.iter().enumerate() {
            assert!(
                shape.find_iter(c).count() >= 2,
                "{rel}: chart {i} is empty: {}",
                &c[..c.len().min(300)]
            );
        }
        for (scheme, flag) in [("light", None), ("dark", Some("--force-dark-mode"))] {
            let png = shots.join(format!("{name}-{scheme}.png"));
            let _ = std::fs::remove_file(&png);
            let size = format!("--window-size=1280,{height}");
            let shot = format!("--screenshot={}", png.display());
            let mut args = vec![size.as_str(), shot.as_str(), "--hide-scrollbars"];
            args.extend(flag);
            let (_, log) = headless(&chromium, &args, &page);
            let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
            assert!(console.is_empty(), "{rel}: console messages: {console:#?}");
            let bytes = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
            assert!(
                bytes > 10_000,
                "{}: screenshot of {bytes} bytes",
                png.display()
            );
        }
    }
    eprintln!("screenshots in {}", shots.display());
}
