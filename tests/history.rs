//! `aiops-bench history add`: dedupe by commit and timestamp, ordering, and refusing bad input.

use std::path::{Path, PathBuf};

use aiops_bench::history::{order, same_run, Index, IndexEntry};
use assert_cmd::Command;
use predicates::prelude::*;
use proptest::prelude::*;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn entry(ts: &str, commit: Option<&str>) -> IndexEntry {
    let id = format!("{ts}-{}", commit.unwrap_or("nocommit"));
    IndexEntry {
        file: format!("runs/{id}.json"),
        id,
        timestamp: ts.to_string(),
        git_commit: commit.map(str::to_string),
        benchmarks: 1,
        instructions: 0,
    }
}

fn ts(sec: u32) -> String {
    format!(
        "2026-12-01T{:02}:{:02}:{:02}Z",
        sec / 3600,
        sec / 60 % 60,
        sec % 60
    )
}

proptest! {
    /// Whatever the order runs are added in (with repeats), the index holds each (commit,
    /// instant) once, in time order, and is the same index.
    #[test]
    fn dedupe_and_order_do_not_depend_on_insertion_order(
        runs in prop::collection::vec((0u32..40, prop::option::of(0usize..3)), 1..40),
        seed in any::<u64>(),
    ) {
        let commits = ["aaa", "bbb", "ccc"];
        let entries: Vec<IndexEntry> = runs
            .iter()
            .map(|&(t, c)| entry(&ts(t), c.map(|c| commits[c])))
            .collect();
        let mut a = Index::default();
        for e in &entries {
            a.insert(e.clone());
        }
        // The same runs in another order (a seeded shuffle), each added twice.
        let mut shuffled = entries.clone();
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        let mut b = Index::default();
        for e in shuffled.iter().chain(&shuffled) {
            b.insert(e.clone());
        }
        prop_assert_eq!(&a, &b);
        let unique: std::collections::BTreeSet<(u32, Option<usize>)> = runs.iter().copied().collect();
        prop_assert_eq!(a.runs.len(), unique.len());
        for w in a.runs.windows(2) {
            prop_assert_eq!(order(&w[0], &w[1]), std::cmp::Ordering::Less);
            prop_assert!(w[0].timestamp <= w[1].timestamp);
        }
        for (i, x) in a.runs.iter().enumerate() {
            for y in &a.runs[i + 1..] {
                prop_assert!(!same_run(x, y));
            }
        }
    }
}

#[test]
fn the_same_instant_spelled_differently_is_one_run() {
    let mut index = Index::default();
    assert!(index.insert(entry("2026-12-01T15:24:04Z", Some("abc"))));
    assert!(!index.insert(entry("2026-12-01T16:24:04+01:00", Some("abc"))));
    assert!(index.insert(entry("2026-12-01T15:24:04Z", Some("abd"))));
    assert!(index.insert(entry("2026-12-01T15:24:04Z", None)));
    assert_eq!(index.runs.len(), 3);
}

fn bin() -> Command {
    Command::cargo_bin("aiops-bench").unwrap()
}

#[test]
fn adds_runs_once_and_refuses_bad_input_without_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("history");
    bin()
        .args(["history", "add", "--dir"])
        .arg(&dir)
        .arg(fixture("tests/fixtures/results/run-2.json"))
        .arg(fixture("tests/fixtures/results/run-1.json"))
        .assert()
        .success()
        .stdout(predicate::str::contains("2 added, 0 already present"));
    bin()
        .args(["history", "add", "--dir"])
        .arg(&dir)
        .arg(fixture("tests/fixtures/results/run-1.json"))
        .arg(fixture("tests/fixtures/results/run-3.json"))
        .assert()
        .success()
        .stdout(
            predicate::str::contains("skipped")
                .and(predicate::str::contains("1 added, 1 already present; ")),
        );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let stamps: Vec<&str> = index["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["timestamp"].as_str().unwrap())
        .collect();
    assert_eq!(
        stamps,
        [
            "2026-12-01T15:24:04Z",
            "2026-12-01T15:26:10Z",
            "2026-12-01T15:27:38Z"
        ]
    );
    assert_eq!(std::fs::read_dir(dir.join("runs")).unwrap().count(), 3);

    // A bad file among good ones: exit 2, the file named, nothing written.
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, "{\"schema_version\": 2}").unwrap();
    let before = std::fs::read(dir.join("index.json")).unwrap();
    bin()
        .args(["history", "add", "--dir"])
        .arg(&dir)
        .arg(fixture("tests/fixtures/results/run-4.json"))
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("bad.json"));
    assert_eq!(std::fs::read(dir.join("index.json")).unwrap(), before);
    assert_eq!(std::fs::read_dir(dir.join("runs")).unwrap().count(), 3);
    // A missing file and no file at all are usage errors too.
    bin()
        .args(["history", "add", "--dir"])
        .arg(&dir)
        .arg(tmp.path().join("nope.json"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nope.json"));
    bin().args(["history", "add"]).assert().code(2);
    // report on a folder without a history says how to make one.
    bin()
        .args(["report", "--history"])
        .arg(tmp.path().join("empty"))
        .arg("--output")
        .arg(tmp.path().join("site"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("history add"));
}

/// A `loadtest --profile` result: its flamegraph and folded stacks go into the history with it
/// (named relative to the stored copy); a missing file is dropped with the reason; a path that
/// leaves the result's folder is refused (exit 2) and nothing is copied.
#[test]
fn add_keeps_the_profile_files_of_a_load_result() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("history");
    let src = fixture("tests/fixtures/history/load-3.json");
    bin()
        .args(["history", "add", "--dir"])
        .arg(&dir)
        .arg(&src)
        .assert()
        .success();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let id = index["runs"][0]["id"].as_str().unwrap().to_string();
    let stored = aiops_bench::io::load(&dir.join(format!("runs/{id}.json"))).unwrap();
    let p = stored.metadata.profile.expect("the profile is kept");
    assert_eq!(p.flamegraph, Some(format!("{id}/load-3.flamegraph.svg")));
    assert_eq!(p.folded, Some(format!("{id}/load-3.folded")));
    assert_eq!(p.problem, None);
    for rel in [p.flamegraph.unwrap(), p.folded.unwrap()] {
        let name = rel.rsplit('/').next().unwrap().to_string();
        assert_eq!(
            std::fs::read(dir.join("runs").join(&rel)).unwrap(),
            std::fs::read(fixture("tests/fixtures/history").join(name)).unwrap()
        );
    }

    // The result without its files (copied alone elsewhere): kept, the reason recorded.
    let alone = tmp.path().join("alone");
    std::fs::create_dir_all(&alone).unwrap();
    let mut moved = aiops_bench::io::load(&src).unwrap();
    moved.timestamp = "2026-12-01T00:00:00Z".into();
    aiops_bench::io::save(&alone.join("load-3.json"), &moved, true).unwrap();
    let dir2 = tmp.path().join("history2");
    bin()
        .args(["history", "add", "--dir"])
        .arg(&dir2)
        .arg(alone.join("load-3.json"))
        .assert()
        .success();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir2.join("index.json")).unwrap()).unwrap();
    let id = index["runs"][0]["id"].as_str().unwrap();
    let stored = aiops_bench::io::load(&dir2.join(format!("runs/{id}.json"))).unwrap();
    let p = stored.metadata.profile.unwrap();
    assert_eq!((p.flamegraph, p.folded), (None, None));
    assert!(p.problem.unwrap().contains("was not found"));

    // A hostile path: refused by the reader, nothing written.
    let mut hostile = moved.clone();
    hostile.metadata.profile.as_mut().unwrap().flamegraph = Some("../../etc/passwd".into());
    let text = serde_json::to_string(&hostile).unwrap();
    let bad = tmp.path().join("hostile.json");
    std::fs::write(&bad, text).unwrap();
    let dir3 = tmp.path().join("history3");
    bin()
        .args(["history", "add", "--dir"])
        .arg(&dir3)
        .arg(&bad)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("metadata.profile.flamegraph"));
    assert!(!dir3.join("runs").exists());
}
