//! Fuzz target over the result-file reader (issue 21), on stable Rust: bolero's harness runs
//! under plain `cargo test`.
//!
//! Each input is either a whole file (the committed corpus, `fuzz/tests/__fuzz__/result_reader/corpus/`:
//! real result files, a merged baseline, version 1 files, `baselines/instructions.json`) or,
//! for bolero's random inputs, a mutation script applied to one of those files: number tokens
//! replaced by hostile ones (NaN-like, out of range, negative, huge), strings by non-ASCII,
//! control-character and huge ones, ranges deleted or repeated, JSON nested deeply. The result
//! goes through `io::parse` and, when it reads, through every command's library function
//! (`compare` against itself and against a real run, `check` with the shipped targets, both
//! exporters, the merge `baseline save` does). A panic anywhere is a failure.
//!
//! `cargo test --manifest-path fuzz/Cargo.toml` runs the corpus and then random inputs for 1 s;
//! `.ci/run` runs it for 60 s (`BOLERO_RANDOM_TEST_TIME_MS=60000`). A failure prints its
//! input (and `BOLERO_RANDOM_SEED=...` to replay it); the file it produced goes into
//! `fuzz/tests/__fuzz__/result_reader/crashes/`, which every run replays, and becomes a named
//! regression test below.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use aiops_bench::compare::{compare, CompareOptions, Metric};
use aiops_bench::export::{
    bmf::Bmf, github_action_benchmark::GithubActionBenchmark, table::Table, ComparisonExporter,
    ResultsExporter,
};
use aiops_bench::io;
use aiops_bench::result::BenchmarkResults;
use aiops_bench::targets::{self, Targets};

/// Seeds of the mutation scripts (the corpus files, compiled in).
const SEEDS: &[&str] = &[
    include_str!("__fuzz__/result_reader/corpus/criterion-with-sidecars.json"),
    include_str!("__fuzz__/result_reader/corpus/load-v2.json"),
    include_str!("__fuzz__/result_reader/corpus/instructions.json"),
    include_str!("__fuzz__/result_reader/corpus/merged-v1.json"),
];

const NUMBERS: &[&str] = &[
    "NaN",
    "Infinity",
    "-Infinity",
    "1e400",
    "-1e400",
    "1e-400",
    "-0",
    "-1",
    "-0.5",
    "0",
    "1e308",
    "1e15",
    "1.0000000000000002e15",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "4294967296",
    "0.1",
    "2",
    "null",
    "\"7\"",
    "[]",
    "{}",
    "true",
];

const SCALES: &[f64] = &[0.0, 0.5, 0.999_999, 1.000_001, 1.5, 2.0, 10.0, 1e6];

const STRINGS: &[&str] = &[
    "",
    "aéééééééééééé",
    "名前/ベンチ/🚀",
    "line\\nbreak",
    "\\u0000",
    "\\u001b[31m",
    "\\ud800",
    "e\u{301}\u{301}",
    "\u{202e}rtl",
    "micro",
    "load",
    "per_sample",
    "per_operation",
    "per_request",
    "hdr-v2-deflate-base64",
    "HISTFAAAACR4nJNpmSzMwMDAyAABzFCaEUzOmLLsKpTOAADQ5gZ+",
];

/// A byte range `start..end` of a file's text.
type Span = (usize, usize);

/// Byte ranges of the number tokens and of the string contents of `text` (a rough lexer: good
/// enough to aim mutations, never trusted for anything else).
fn tokens(text: &[u8]) -> (Vec<Span>, Vec<Span>) {
    let (mut numbers, mut strings) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    if text[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                strings.push((start, i.min(text.len())));
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < text.len()
                    && matches!(text[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                numbers.push((start, i));
            }
            _ => i += 1,
        }
    }
    (numbers, strings)
}

/// `seed` changed by the script `ops` (3 bytes per step: operation, then two choices; inputs
/// are at most 10 bytes, so up to 3 steps: most results still read, a few changes away from a
/// real file).
fn mutate(seed: &str, ops: &[u8]) -> Vec<u8> {
    let mut text = seed.as_bytes().to_vec();
    for op in ops.chunks(3) {
        let [kind, a, b] = [op[0], *op.get(1).unwrap_or(&0), *op.get(2).unwrap_or(&0)];
        let (numbers, strings) = tokens(&text);
        // Never the first token: `"schema_version": 2` (a file of another version stops
        // there, and bolero's inputs lean to zeros).
        let pick = |list: &[Span], x: u8, y: u8| {
            (list.len() > 1)
                .then(|| list[1 + (usize::from(x) << 8 | usize::from(y)) % (list.len() - 1)])
        };
        match kind % 8 {
            0 | 1 => {
                // Scale a number: files stay readable often, and edge cases of ordering,
                // spreads and bands get hit.
                if let Some((s, e)) = pick(&numbers, a, b) {
                    let token = String::from_utf8_lossy(&text[s..e]).into_owned();
                    if let Ok(v) = token.parse::<f64>() {
                        let k = SCALES[usize::from(a ^ b) % SCALES.len()];
                        let scaled = if token.contains(['.', 'e', 'E']) {
                            format!("{:?}", v * k)
                        } else {
                            format!("{}", (v * k).round() as u64)
                        };
                        text.splice(s..e, scaled.bytes());
                    }
                }
            }
            2 => {
                if let Some((s, e)) = pick(&numbers, a, b) {
                    let with = NUMBERS[usize::from(a ^ b) % NUMBERS.len()];
                    text.splice(s..e, with.bytes());
                }
            }
            3 | 4 => {
                if let Some((s, e)) = pick(&strings, a, b) {
                    let with = STRINGS[usize::from(a.wrapping_add(b)) % STRINGS.len()];
                    let with = if b % 16 == 0 {
                        with.repeat(5_000)
                    } else {
                        with.to_string()
                    };
                    text.splice(s..e, with.bytes());
                }
            }
            5 => {
                // Delete a range.
                let s = (usize::from(a) << 8 | usize::from(b)) % (text.len() + 1);
                let e = (s + usize::from(b) % 64).min(text.len());
                text.drain(s..e);
            }
            6 => {
                // Repeat a range (duplicate entries, broken structure).
                let s = (usize::from(a) << 8 | usize::from(b)) % (text.len() + 1);
                let e = (s + usize::from(a)).min(text.len());
                let copy = text[s..e].to_vec();
                text.splice(e..e, copy);
            }
            _ => {
                // Nest deeply where a number was.
                if let Some((s, e)) = pick(&numbers, a, b) {
                    let depth = usize::from(a) * 40;
                    let deep = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
                    text.splice(s..e, deep.bytes());
                }
            }
        }
    }
    text
}

/// Everything a reading command does with a file that reads.
fn every_command(r: &BenchmarkResults, real: &BenchmarkResults) {
    for metric in [Metric::P95, Metric::Mean, Metric::Median] {
        let o = CompareOptions {
            metric,
            ..CompareOptions::default()
        };
        for (a, b) in [(r, r), (r, real), (real, r)] {
            let c = compare(a, b, &o);
            let _ = Table.render(&c);
            let _ = c.outcome();
        }
    }
    let outcomes = targets::check(&Targets::shipped(), r);
    let _ = targets::render(&outcomes, true);
    let _ = Bmf.render(r);
    let _ = GithubActionBenchmark.render(r);
    let merged = aiops_bench::compare::merge_runs(&[r.clone(), real.clone(), r.clone()]);
    if let Err(e) = io::validate(&merged) {
        panic!("merging valid files made an invalid one: {e}");
    }
}

static INPUTS: AtomicUsize = AtomicUsize::new(0);
static READ: AtomicUsize = AtomicUsize::new(0);

fn read(bytes: &[u8], real: &BenchmarkResults) {
    INPUTS.fetch_add(1, Ordering::Relaxed);
    match io::parse(Path::new("fuzz.json"), bytes) {
        Ok(r) => {
            READ.fetch_add(1, Ordering::Relaxed);
            every_command(&r, real);
        }
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.starts_with("fuzz.json") && !text.contains('\n'),
                "{text}"
            );
        }
    }
}

#[test]
fn result_reader() {
    let real = io::parse(Path::new("seed.json"), SEEDS[0].as_bytes()).expect("the seed reads");
    bolero::check!(name = "result_reader")
        .with_max_len(10)
        .for_each(|input: &[u8]| {
            // A whole file (the corpus) starts like JSON; anything else is a script.
            match input.first() {
                None => read(input, &real),
                Some(b'{' | b' ' | b'\n' | b'[') => read(input, &real),
                Some(&which) => {
                    let seed = SEEDS[usize::from(which) % SEEDS.len()];
                    read(&mutate(seed, &input[1..]), &real);
                }
            }
        });
    let (inputs, read) = (INPUTS.load(Ordering::Relaxed), READ.load(Ordering::Relaxed));
    eprintln!(
        "fuzz result_reader: {inputs} inputs, {read} read and run through every command, {} refused",
        inputs - read
    );
    // Mutations aimed at single tokens leave many files readable: the commands are exercised.
    assert!(
        inputs < 200 || read * 20 > inputs,
        "only {read} of {inputs} inputs read"
    );
}

/// The mutations do change files, and the seeds themselves read.
#[test]
fn the_mutator_breaks_files_and_the_seeds_read() {
    for seed in SEEDS {
        assert!(io::parse(Path::new("seed.json"), seed.as_bytes()).is_ok());
        let (numbers, strings) = tokens(seed.as_bytes());
        assert!(!numbers.is_empty() && !strings.is_empty());
    }
    let broken = mutate(SEEDS[0], &[2, 0, 3]);
    assert_ne!(broken, SEEDS[0].as_bytes());
    let deep = mutate(SEEDS[2], &[7, 200, 1]);
    assert!(io::parse(Path::new("deep.json"), &deep).is_err());
}
