//! `aiops-bench ab`: bad input is refused with exit 2 and a message naming the flag or value,
//! before anything is built. (A real A/B builds the suite twice: `.ci/run` runs one through
//! `scripts/gate-study --smoke`, which also proves that an injected slowdown is caught.)

use assert_cmd::Command;
use predicates::prelude::*;

fn ab(args: &[&str]) -> assert_cmd::assert::Assert {
    Command::cargo_bin("aiops-bench")
        .unwrap()
        .arg("ab")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .assert()
}

#[test]
fn bad_input_exits_2_naming_the_problem() {
    for (args, message) in [
        (
            &["no-such-revision-anywhere"][..],
            "base revision 'no-such-revision-anywhere'",
        ),
        (&["HEAD", "--rounds", "3"], "--rounds 3"),
        (&["HEAD", "--filter", "(unclosed"], "--filter '(unclosed'"),
        (&["HEAD", "--confidence", "1.5"], "--confidence 1.5"),
        (&["HEAD", "--threshold=-1"], "--threshold -1"),
        (&["HEAD", "--slice-ms", "1"], "--slice-ms 1"),
        (
            &["HEAD", "--passes", "3", "--max-passes", "2"],
            "--max-passes 2: use 3 (--passes) to 10",
        ),
        (
            &["HEAD", "--env-b", "NOEQUALS"],
            "'NOEQUALS' is not KEY=VALUE",
        ),
        (
            &["HEAD", "--output", "/no/such/folder/report.json"],
            "--output /no/such/folder/report.json",
        ),
        (&[], "BASE_REV"),
        (
            &["HEAD", "--profile", "--profile-time", "0"],
            "--profile-time 0",
        ),
        (&["HEAD", "--profile-time", "5"], "--profile"),
    ] {
        ab(args).code(2).stderr(
            predicate::str::contains(message).and(predicate::str::contains("panicked").not()),
        );
    }
}

#[test]
fn help_explains_the_verdicts_and_exit_codes() {
    Command::cargo_bin("aiops-bench")
        .unwrap()
        .args(["ab", "--help"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("Hodges-Lehmann")
                .and(predicate::str::contains("inconclusive"))
                .and(predicate::str::contains("3 inconclusive"))
                .and(predicate::str::contains("--env-b")),
        );
}
