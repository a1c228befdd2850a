//! No input panics the CLI (issue 21): result files with hostile values, run through every
//! command that reads them.
//!
//! Two generators:
//! * **from the schema**: [`aiops_bench::result::json_schema`] (what `baselines/schema.json`
//!   holds) is walked and every field gets hostile values of its type: non-ASCII, control
//!   characters and huge strings, huge, negative and fractional numbers, missing and extra
//!   fields, empty lists, then text-level damage (NaN-like and out-of-range number tokens,
//!   deeply nested JSON, truncation); nearly all of these are refused, so they test the
//!   refusal paths (never a panic, one line naming the file);
//! * **well-formed runs with one planted contradiction**: consistent benchmarks (ordered
//!   latencies, spreads and confidence intervals around their values, histograms and the
//!   percentiles computed from them) into which one [`Plant`] puts min > median, a spread that
//!   does not contain its value, a negative count, a duplicate name, ...
//!
//! Properties: reading never panics; a planted contradiction is always refused, naming the
//! file, the benchmark and the field; a file without one is read back exactly. On what reads,
//! every command's library function runs (`compare`, `check`, `export`, `baseline save`'s
//! merge and save) and its verdict must be one the values support: a regressed row moved up,
//! an improved one down, a file compared with itself has no change, every reported number is
//! finite, a merged baseline is itself a valid file. A smaller number of cases run the real
//! binary: exit codes only 0, 1, 2, 3, no panic, exit 2 is one line naming the file and prints
//! no verdict.

use std::path::{Path, PathBuf};

use aiops_bench::compare::{compare, CompareOptions, Metric, Outcome, Verdict};
use aiops_bench::export::{
    bmf::Bmf, github_action_benchmark::GithubActionBenchmark, json::Json, markdown::Markdown,
    table::Table, ComparisonExporter, ResultsExporter,
};
use aiops_bench::io;
use aiops_bench::result::{
    latency_of, Benchmark, BenchmarkResults, ConfidenceInterval, HistogramUnit, InstructionCount,
    Kind, LatencyMs, LoadSchedule, MinMax, PercentileBasis, RunMetadata, SkippedBenchmark, Spread,
    StoredHistogram, SCHEMA_VERSION,
};
use aiops_bench::targets::{self, Targets};
use assert_cmd::Command;
use hdrhistogram::Histogram;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

// ---------------------------------------------------------------------------------------------
// Hostile values

fn hostile_string() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[a-z_]{1,10}",
        1 => Just(String::new()),
        1 => Just("aéééééééééééé".to_string()),
        1 => Just("名前/ベンチ/🚀🚀🚀".to_string()),
        1 => Just("line\nbreak\tand\u{1b}[31mescape".to_string()),
        1 => Just("\u{202e}right-to-left\u{0}nul".to_string()),
        1 => Just("e\u{301}\u{301}\u{301} combining".to_string()),
        2 => any::<String>(),
        1 => (1usize..20_000).prop_map(|n| "é".repeat(n)),
    ]
    .boxed()
}

fn hostile_number() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => (0.0f64..1e4).prop_map(|v| json!(v)),
        1 => Just(json!(0.0)),
        1 => Just(json!(-0.0)),
        1 => Just(json!(-1.0)),
        1 => Just(json!(1e308)),
        1 => Just(json!(f64::MAX)),
        1 => Just(json!(-f64::MAX)),
        1 => Just(json!(5e-324)),
        1 => Just(json!(u64::MAX)),
        1 => Just(json!(i64::MIN)),
        1 => any::<f64>().prop_filter_map("finite", |v| v.is_finite().then(|| json!(v))),
    ]
    .boxed()
}

fn hostile_integer() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => (0u64..1000).prop_map(|v| json!(v)),
        1 => Just(json!(-1)),
        1 => Just(json!(u64::MAX)),
        1 => Just(json!(i64::MIN)),
        1 => Just(json!(u64::from(u32::MAX) + 1)),
        1 => Just(json!(1.5)),
        1 => Just(json!(1e300)),
    ]
    .boxed()
}

/// A real encoded histogram (1..=n values of `scale` units), for `histogram.data` fields.
fn encoded_histogram(n: u64, scale: u64) -> String {
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
    for v in 1..=n {
        h.record(v * scale).unwrap();
    }
    aiops_bench::hdr::encode(&h).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Generator 1: from the JSON Schema

/// Values of the schema node `node` (resolving `$ref` against `root`), hostile within the
/// node's type most of the time and of another type sometimes.
fn from_schema(node: &Value, root: &Value, field: &str) -> BoxedStrategy<Value> {
    if let Some(r) = node.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        return from_schema(&root["$defs"][name], root, field);
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = node.get(key).and_then(Value::as_array) {
            let strategies: Vec<BoxedStrategy<Value>> = options
                .iter()
                .map(|o| from_schema(o, root, field))
                .collect();
            return proptest::strategy::Union::new(strategies).boxed();
        }
    }
    if let Some(c) = node.get("const") {
        return prop_oneof![8 => Just(c.clone()), 1 => hostile_string().prop_map(Value::from)]
            .boxed();
    }
    if let Some(values) = node.get("enum").and_then(Value::as_array) {
        let values = values.clone();
        return prop_oneof![
            8 => proptest::sample::select(values),
            1 => hostile_string().prop_map(Value::from),
        ]
        .boxed();
    }
    let types: Vec<String> = match node.get("type") {
        Some(Value::String(t)) => vec![t.clone()],
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect(),
        _ => vec!["null".into()],
    };
    let strategies: Vec<BoxedStrategy<Value>> = types
        .iter()
        .map(|t| of_type(t, node, root, field))
        .collect();
    proptest::strategy::Union::new(strategies).boxed()
}

fn of_type(t: &str, node: &Value, root: &Value, field: &str) -> BoxedStrategy<Value> {
    match t {
        "null" => Just(Value::Null).boxed(),
        "boolean" => any::<bool>().prop_map(Value::from).boxed(),
        "integer" => {
            let (min, max) = (node.get("minimum"), node.get("maximum"));
            match (min, max) {
                // schema_version: mostly the one version, or nothing past it is reached.
                (Some(a), Some(b)) if a == b => {
                    prop_oneof![9 => Just(a.clone()), 1 => hostile_integer()].boxed()
                }
                _ => hostile_integer(),
            }
        }
        "number" => hostile_number(),
        "string" if field == "data" => prop_oneof![
            3 => (1u64..500, 1u64..10_000).prop_map(|(n, s)| Value::from(encoded_histogram(n, s))),
            1 => hostile_string().prop_map(Value::from),
        ]
        .boxed(),
        "string" if field == "encoding" => prop_oneof![
            8 => Just(Value::from("hdr-v2-deflate-base64")),
            1 => hostile_string().prop_map(Value::from),
        ]
        .boxed(),
        "string" => hostile_string().prop_map(Value::from).boxed(),
        "array" => {
            let item = from_schema(&node["items"], root, field);
            let max = if field == "benchmarks" { 6 } else { 3 };
            proptest::collection::vec(item, 0..max)
                .prop_map(Value::Array)
                .boxed()
        }
        "object" => object(node, root).boxed(),
        _ => Just(Value::Null).boxed(),
    }
}

fn object(node: &Value, root: &Value) -> impl Strategy<Value = Value> {
    let props: Vec<(String, BoxedStrategy<Option<Value>>)> = node
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .map(|(k, v)| {
                    let s = prop_oneof![
                        12 => from_schema(v, root, k).prop_map(Some),
                        1 => Just(None),
                    ]
                    .boxed();
                    (k.clone(), s)
                })
                .collect()
        })
        .unwrap_or_default();
    let (keys, values): (Vec<String>, Vec<BoxedStrategy<Option<Value>>>) =
        props.into_iter().unzip();
    let extra = match node.get("additionalProperties") {
        Some(v @ Value::Object(_)) => {
            proptest::collection::vec((hostile_string(), from_schema(v, root, "")), 0..3).boxed()
        }
        _ => proptest::collection::vec(
            (hostile_string(), hostile_string().prop_map(Value::from)),
            0..2,
        )
        .prop_filter("rarely", |v| v.is_empty() || v.len() == 1)
        .boxed(),
    };
    (values, extra).prop_map(move |(values, extra)| {
        let mut m = Map::new();
        for (k, v) in keys.iter().zip(values) {
            if let Some(v) = v {
                m.insert(k.clone(), v);
            }
        }
        for (k, v) in extra {
            m.entry(k).or_insert(v);
        }
        Value::Object(m)
    })
}

/// Text-level damage the JSON value cannot carry.
#[derive(Debug, Clone)]
enum Damage {
    None,
    /// A number token replaced by `NaN`, `Infinity`, `1e400`, `-0`, `0x10`, ...
    Token(usize, &'static str),
    /// A value replaced by JSON nested this deep.
    Nested(usize),
    /// The text cut after this many bytes.
    Truncate(usize),
    /// A benchmark entry repeated (duplicate names).
    Duplicate,
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        6 => Just(Damage::None),
        2 => (any::<usize>(), proptest::sample::select(vec![
            "NaN", "-NaN", "Infinity", "-Infinity", "1e400", "-1e400", "-0", "0x10", "1.", ".5",
            "18446744073709551616", "-9223372036854775809", "1e-400", "00",
        ]))
            .prop_map(|(i, t)| Damage::Token(i, t)),
        1 => prop_oneof![Just(100usize), Just(129), Just(5_000), Just(100_000)]
            .prop_map(Damage::Nested),
        1 => any::<usize>().prop_map(Damage::Truncate),
        1 => Just(Damage::Duplicate),
    ]
}

fn apply_damage(mut v: Value, d: &Damage) -> Vec<u8> {
    if let Damage::Duplicate = d {
        if let Some(list) = v.get_mut("benchmarks").and_then(Value::as_array_mut) {
            if let Some(first) = list.first().cloned() {
                list.push(first);
            }
        }
    }
    let text = serde_json::to_string_pretty(&v).unwrap();
    match d {
        Damage::Token(i, token) => {
            let re = regex::Regex::new(r"-?\d+(\.\d+)?([eE][-+]?\d+)?").unwrap();
            let found: Vec<_> = re.find_iter(&text).collect();
            match found.get(i % found.len().max(1)) {
                Some(m) => {
                    format!("{}{token}{}", &text[..m.start()], &text[m.end()..]).into_bytes()
                }
                None => text.into_bytes(),
            }
        }
        Damage::Nested(depth) => {
            let deep = format!("{}{}", "[".repeat(*depth), "]".repeat(*depth));
            match text.find("\"metadata\": ") {
                Some(i) => {
                    let at = i + "\"metadata\": ".len();
                    format!(
                        "{}{{\"deep\": {deep}, \"x\": {}",
                        &text[..at],
                        &text[at + 1..]
                    )
                    .into_bytes()
                }
                None => deep.into_bytes(),
            }
        }
        Damage::Truncate(at) => {
            let bytes = text.into_bytes();
            let at = at % (bytes.len() + 1);
            bytes[..at].to_vec()
        }
        Damage::None | Damage::Duplicate => text.into_bytes(),
    }
}

/// File contents, shown as text when a case fails.
#[derive(Clone)]
struct FileBytes(Vec<u8>);

impl std::fmt::Debug for FileBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = String::from_utf8_lossy(&self.0);
        let cut: String = text.chars().take(4000).collect();
        write!(f, "{} bytes: {cut}", self.0.len())
    }
}

fn schema_file() -> impl Strategy<Value = FileBytes> {
    let schema = aiops_bench::result::json_schema();
    (from_schema(&schema, &schema, ""), damage()).prop_map(|(v, d)| FileBytes(apply_damage(v, &d)))
}

// ---------------------------------------------------------------------------------------------
// Generator 2: well-formed runs, then one planted contradiction

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z]{1,6}/[a-z_]{1,8}/[a-z0-9]{1,4}",
        1 => Just("cache/ключ/名前".to_string()),
        1 => Just("aé/ééééé/🚀".to_string()),
        1 => (1usize..5_000).prop_map(|n| format!("huge/{}", "é".repeat(n))),
        1 => "\\PC{1,12}",
    ]
}

/// A base scale in ms, from sub-nanosecond to 11 days (scaled by up to 100 x 256 x 2 in a
/// current run, still below `io::MAX_VALUE`).
fn scale() -> impl Strategy<Value = f64> {
    prop_oneof![
        1 => Just(0.0),
        2 => 1e-9f64..1e-3,
        4 => 1e-3f64..1e3,
        1 => 1e3f64..1e9,
    ]
}

/// `min <= median <= p95 <= p99 <= max`, `min <= mean <= max`.
fn latency(with_tail: bool) -> impl Strategy<Value = LatencyMs> {
    (
        scale(),
        proptest::array::uniform4(0.0f64..3.0),
        0.0f64..=1.0,
    )
        .prop_map(move |(min, steps, t)| {
            let median = min * (1.0 + steps[0]);
            let p95 = median * (1.0 + steps[1]);
            let p99 = p95 * (1.0 + steps[2]);
            let max = p99 * (1.0 + steps[3]);
            let mean = (min + t * (max - min)).clamp(min, max);
            LatencyMs {
                min,
                max,
                mean,
                median,
                p95: with_tail.then_some(p95),
                p99: with_tail.then_some(p99),
                p999: None,
            }
        })
}

/// Spread around `v`.
fn around(v: f64, a: f64, b: f64) -> MinMax {
    MinMax {
        min: v * (1.0 - a),
        max: v * (1.0 + b),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// criterion sample means only: no p95/p99, a confidence interval of the mean.
    PerSample,
    /// Per-operation statistics from an HDR histogram (kept in the file).
    Histogram,
    /// A load scenario with a schedule and from-due latency.
    Load,
}

fn benchmark() -> impl Strategy<Value = Benchmark> {
    (
        name(),
        prop_oneof![
            Just(Shape::PerSample),
            Just(Shape::Histogram),
            Just(Shape::Load)
        ],
        latency(false),
        latency(true),
        (1u64..2_000, 1u64..100_000, any::<bool>()),
        (
            prop_oneof![Just(0u64), 1u64..1_000_000, Just(u64::MAX)],
            0.0f64..=1.0,
        ),
        proptest::option::of(0.0f64..1e9),
        proptest::option::of((2u32..6, 0.0f64..0.5, 0.0f64..0.5)),
        proptest::option::of((0.0f64..=100.0, 0.0f64..=1.0)),
        (0.0f64..1e4, 0.0f64..0.3, 0.0f64..0.3),
    )
        .prop_map(
            |(name, shape, per_sample, tailed, hist, counts, tp, spread, disturbance, misc)| {
                let (n, unit_scale, ns) = hist;
                let (lat, basis, histogram, kind) = match shape {
                    Shape::PerSample => (per_sample, PercentileBasis::PerSample, None, Kind::Micro),
                    Shape::Histogram => {
                        let mut h =
                            Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).unwrap();
                        for v in 1..=n {
                            h.record(v * unit_scale).unwrap();
                        }
                        let unit = if ns {
                            HistogramUnit::Ns
                        } else {
                            HistogramUnit::Us
                        };
                        (
                            latency_of(&h, unit).unwrap(),
                            PercentileBasis::PerOperation,
                            Some(StoredHistogram::encode(&h, unit).unwrap()),
                            Kind::Micro,
                        )
                    }
                    Shape::Load => (tailed, PercentileBasis::PerRequest, None, Kind::Load),
                };
                let mut b = Benchmark::new(name, kind, "criterion", lat, basis);
                b.histogram = histogram;
                b.sample_count = Some(n);
                let (iterations, error_share) = counts;
                b.iterations = iterations;
                b.error_count = (iterations as f64 * error_share) as u64;
                b.error_count = b.error_count.min(iterations);
                b.success_rate = (iterations > 0)
                    .then(|| (iterations - b.error_count) as f64 * 100.0 / iterations as f64);
                b.throughput_ops_per_second = tp;
                b.total_time_seconds = misc.0;
                if shape == Shape::PerSample {
                    b.mean_ci = Some(ConfidenceInterval {
                        lower_ms: lat.mean * (1.0 - misc.1),
                        upper_ms: lat.mean * (1.0 + misc.2),
                        confidence_level: 0.95,
                    });
                }
                if shape == Shape::Load {
                    b.schedule = Some(LoadSchedule {
                        target_rps: misc.0,
                        scheduled: iterations,
                        dropped: b.error_count,
                        late: b.error_count,
                        warmup_seconds: 0.0,
                    });
                    b.latency_from_due_ms = Some(LatencyMs {
                        min: lat.min,
                        max: lat.max * 2.0,
                        mean: lat.mean,
                        median: lat.median,
                        p95: lat.p95,
                        p99: lat.p99,
                        p999: lat.p999,
                    });
                }
                if let Some((runs, a, c)) = spread {
                    b.spread = Some(Spread {
                        runs,
                        mean_ms: Some(around(lat.mean, a, c)),
                        median_ms: Some(around(lat.median, a, c)),
                        p95_ms: lat.p95.map(|v| around(v, a, c)),
                        p99_ms: lat.p99.map(|v| around(v, a, c)),
                        throughput_ops_per_second: tp.map(|v| around(v, a, c)),
                    });
                }
                b.disturbance =
                    disturbance.map(|(other, steal)| aiops_bench::disturbance::Disturbance {
                        other_cpu_pct: other,
                        steal_pct: other * steal,
                    });
                b
            },
        )
}

fn instruction_count() -> impl Strategy<Value = InstructionCount> {
    (
        name(),
        prop_oneof![Just(0u64), 1u64..10_000_000, Just(u64::MAX)],
        proptest::option::of((0.0f64..0.1, 0.0f64..0.1)),
    )
        .prop_map(|(name, n, spread)| {
            let mut i = InstructionCount::new(format!("callgrind/{name}"), "x", n);
            i.spread = spread.map(|(a, b)| around(n as f64, a, b));
            i
        })
}

fn metadata() -> impl Strategy<Value = RunMetadata> {
    (
        proptest::option::of(prop_oneof![
            Just("aéééééééééééé".to_string()),
            Just("58f3634e0fe63f44af98a6ff743330abffe1dd7a".to_string()),
            hostile_string(),
        ]),
        prop_oneof![Just(1u32), 2u32..5, Just(u32::MAX)],
        any::<bool>(),
    )
        .prop_map(|(git_commit, runs, fingerprint)| {
            let mut m = RunMetadata {
                git_commit,
                runs,
                ..RunMetadata::default()
            };
            if fingerprint {
                m.host_fingerprint = Some(aiops_bench::metadata::HostFingerprint {
                    cpu_model: Some("cpu".into()),
                    valgrind: Some("valgrind-3.19.0".into()),
                    rustc: Some("rustc".into()),
                    glibc: Some("2.36".into()),
                });
            }
            m
        })
}

fn results() -> impl Strategy<Value = BenchmarkResults> {
    (
        proptest::collection::vec(benchmark(), 0..8),
        proptest::collection::vec(instruction_count(), 0..3),
        proptest::collection::vec((name(), "[a-z ]{0,20}"), 0..2),
        metadata(),
        hostile_string(),
    )
        .prop_map(|(benchmarks, instructions, skipped, metadata, timestamp)| {
            let mut r = BenchmarkResults {
                schema_version: SCHEMA_VERSION,
                timestamp,
                metadata,
                resources: None,
                benchmarks,
                skipped: skipped
                    .into_iter()
                    .map(|(n, why)| SkippedBenchmark::new(n, Kind::Micro, "criterion", why))
                    .collect(),
                instructions,
            };
            // Names unique across the three lists, as a real file has them.
            let mut n = 0;
            let mut unique = |name: &mut String| {
                n += 1;
                name.push_str(&format!("#{n}"));
            };
            r.benchmarks.iter_mut().for_each(|b| unique(&mut b.name));
            r.skipped.iter_mut().for_each(|b| unique(&mut b.name));
            r.instructions.iter_mut().for_each(|b| unique(&mut b.name));
            if r.benchmarks.is_empty() && r.skipped.is_empty() && r.instructions.is_empty() {
                r.skipped.push(SkippedBenchmark::new(
                    "only/skipped",
                    Kind::Micro,
                    "criterion",
                    "nothing ran",
                ));
            }
            r
        })
}

/// One contradiction planted in a well-formed file, and the field the refusal must name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plant {
    Nothing,
    MinAboveMedian,
    MedianAboveP95,
    P95AboveP99,
    P99AboveMax,
    MeanAboveMax,
    NegativeLatency,
    HugeLatency,
    SpreadMissesValue,
    SpreadReversed,
    CiReversed,
    CiMissesMean,
    NegativeCount,
    ErrorsAboveIterations,
    SuccessRateOver100,
    DroppedAboveScheduled,
    DuplicateName,
    ControlCharacterInName,
    HistogramContradicts,
    NegativeInstructions,
    EmptyLists,
    MissingBenchmarks,
}

const PLANTS: [Plant; 22] = [
    Plant::Nothing,
    Plant::MinAboveMedian,
    Plant::MedianAboveP95,
    Plant::P95AboveP99,
    Plant::P99AboveMax,
    Plant::MeanAboveMax,
    Plant::NegativeLatency,
    Plant::HugeLatency,
    Plant::SpreadMissesValue,
    Plant::SpreadReversed,
    Plant::CiReversed,
    Plant::CiMissesMean,
    Plant::NegativeCount,
    Plant::ErrorsAboveIterations,
    Plant::SuccessRateOver100,
    Plant::DroppedAboveScheduled,
    Plant::DuplicateName,
    Plant::ControlCharacterInName,
    Plant::HistogramContradicts,
    Plant::NegativeInstructions,
    Plant::EmptyLists,
    Plant::MissingBenchmarks,
];

/// The file text with `plant` in it: `(bytes, benchmark named by the refusal, field named)`,
/// or `None` when the file has no entry the plant needs.
fn plant(r: &BenchmarkResults, plant: Plant) -> Option<(Vec<u8>, Option<String>, &'static str)> {
    let mut v = serde_json::to_value(r).unwrap();
    let pick = |pred: &dyn Fn(&Benchmark) -> bool| r.benchmarks.iter().position(pred);
    let set = |v: &mut Value, i: usize, path: &[&str], x: Value| {
        let mut at = &mut v["benchmarks"][i];
        for p in path {
            at = &mut at[*p];
        }
        *at = x;
    };
    let name = |i: usize| Some(r.benchmarks[i].name.clone());
    let positive = |b: &Benchmark| b.latency_ms.max > 0.0;
    let out = match plant {
        Plant::Nothing => (None, ""),
        Plant::MinAboveMedian => {
            let i = pick(&|b| positive(b) && b.histogram.is_none())?;
            let l = r.benchmarks[i].latency_ms;
            set(
                &mut v,
                i,
                &["latency_ms", "min"],
                json!(l.median * 1.5 + 1e-9),
            );
            (name(i), "latency_ms.min")
        }
        Plant::MedianAboveP95 => {
            let i = pick(&|b| positive(b) && b.latency_ms.p95.is_some() && b.histogram.is_none())?;
            let l = r.benchmarks[i].latency_ms;
            set(
                &mut v,
                i,
                &["latency_ms", "median"],
                json!(l.p95.unwrap() * 1.5 + 1e-9),
            );
            (name(i), "latency_ms.median")
        }
        Plant::P95AboveP99 => {
            let i = pick(&|b| positive(b) && b.latency_ms.p95.is_some() && b.histogram.is_none())?;
            let l = r.benchmarks[i].latency_ms;
            set(
                &mut v,
                i,
                &["latency_ms", "p95"],
                json!(l.p99.unwrap() * 1.5 + 1e-9),
            );
            (name(i), "latency_ms.p95")
        }
        Plant::P99AboveMax => {
            let i = pick(&|b| positive(b) && b.latency_ms.p99.is_some() && b.histogram.is_none())?;
            let l = r.benchmarks[i].latency_ms;
            set(&mut v, i, &["latency_ms", "p99"], json!(l.max * 1.5 + 1e-9));
            (name(i), "latency_ms.p99")
        }
        Plant::MeanAboveMax => {
            let i = pick(&|b| b.histogram.is_none())?;
            let l = r.benchmarks[i].latency_ms;
            set(
                &mut v,
                i,
                &["latency_ms", "mean"],
                json!(l.max * 1.5 + 1e-9),
            );
            (name(i), "latency_ms.mean")
        }
        Plant::NegativeLatency => {
            let i = pick(&|_| true)?;
            set(&mut v, i, &["latency_ms", "min"], json!(-1.0));
            (name(i), "latency_ms.min")
        }
        Plant::HugeLatency => {
            let i = pick(&|_| true)?;
            set(&mut v, i, &["latency_ms", "max"], json!(1e300));
            (name(i), "latency_ms.max")
        }
        Plant::SpreadMissesValue => {
            let i = pick(&|b| b.spread.is_some() && b.latency_ms.median > 0.0)?;
            let m = r.benchmarks[i].latency_ms.median;
            set(
                &mut v,
                i,
                &["spread", "median_ms"],
                json!({"min": m * 2.0, "max": m * 3.0}),
            );
            (name(i), "spread.median_ms")
        }
        Plant::SpreadReversed => {
            let i = pick(&|b| b.spread.is_some() && b.latency_ms.mean > 0.0)?;
            let m = r.benchmarks[i].latency_ms.mean;
            set(
                &mut v,
                i,
                &["spread", "mean_ms"],
                json!({"min": m * 2.0, "max": m / 2.0}),
            );
            (name(i), "spread.mean_ms")
        }
        Plant::CiReversed => {
            let i = pick(&|b| b.mean_ci.is_some() && b.latency_ms.mean > 0.0)?;
            let m = r.benchmarks[i].latency_ms.mean;
            set(
                &mut v,
                i,
                &["mean_ci"],
                json!({"lower_ms": m * 2.0, "upper_ms": m / 2.0, "confidence_level": 0.95}),
            );
            (name(i), "mean_ci.lower_ms")
        }
        Plant::CiMissesMean => {
            let i = pick(&|b| {
                b.mean_ci.is_some()
                    && b.latency_ms.mean > 0.0
                    && b.spread.as_ref().is_none_or(|s| s.runs < 2)
            })?;
            let m = r.benchmarks[i].latency_ms.mean;
            set(
                &mut v,
                i,
                &["mean_ci"],
                json!({"lower_ms": m * 2.0, "upper_ms": m * 3.0, "confidence_level": 0.95}),
            );
            (name(i), "mean_ci")
        }
        Plant::NegativeCount => {
            let i = pick(&|_| true)?;
            set(&mut v, i, &["error_count"], json!(-1));
            (name(i), "error_count")
        }
        Plant::ErrorsAboveIterations => {
            let i = pick(&|b| b.iterations < u64::MAX)?;
            let n = r.benchmarks[i].iterations;
            set(&mut v, i, &["error_count"], json!(n + 1));
            (name(i), "error_count")
        }
        Plant::SuccessRateOver100 => {
            let i = pick(&|_| true)?;
            set(&mut v, i, &["success_rate"], json!(100.5));
            (name(i), "success_rate")
        }
        Plant::DroppedAboveScheduled => {
            let i = pick(&|b| b.schedule.is_some_and(|s| s.scheduled < u64::MAX))?;
            let n = r.benchmarks[i].schedule.unwrap().scheduled;
            set(&mut v, i, &["schedule", "dropped"], json!(n + 1));
            (name(i), "schedule.dropped")
        }
        Plant::DuplicateName => {
            let first = r.benchmarks.first()?;
            let other = if r.benchmarks.len() > 1 {
                &mut v["benchmarks"][1]["name"]
            } else if !r.skipped.is_empty() {
                &mut v["skipped"][0]["name"]
            } else {
                return None;
            };
            *other = json!(first.name);
            (Some(first.name.clone()), "twice")
        }
        Plant::ControlCharacterInName => {
            let i = pick(&|_| true)?;
            let bad = format!("{}\nOK: 0 regressed", r.benchmarks[i].name);
            set(&mut v, i, &["name"], json!(bad));
            (Some(bad), "control character")
        }
        Plant::HistogramContradicts => {
            let i = pick(&|b| b.histogram.is_some())?;
            let l = r.benchmarks[i].latency_ms;
            // Still ordered, but not the histogram's median.
            let m = (l.median + l.p95.unwrap()) / 2.0;
            if m == l.median || (m - l.median).abs() <= 1e-6 * m {
                return None;
            }
            set(&mut v, i, &["latency_ms", "median"], json!(m));
            (name(i), "histogram")
        }
        Plant::NegativeInstructions => {
            let first = r.instructions.first()?;
            v["instructions"][0]["instructions"] = json!(-5);
            (Some(first.name.clone()), "instructions")
        }
        Plant::EmptyLists => {
            v["benchmarks"] = json!([]);
            v["skipped"] = json!([]);
            v["instructions"] = json!([]);
            (None, "empty")
        }
        Plant::MissingBenchmarks => {
            v.as_object_mut().unwrap().remove("benchmarks");
            (None, "benchmarks")
        }
    };
    Some((serde_json::to_vec_pretty(&v).unwrap(), out.0, out.1))
}

/// `r` with every latency of some benchmarks scaled: a plausible current run.
fn rescaled(r: &BenchmarkResults, factors: &[f64]) -> BenchmarkResults {
    let mut c = r.clone();
    c.metadata.runs = 1;
    for (i, b) in c.benchmarks.iter_mut().enumerate() {
        let k = factors[i % factors.len()];
        b.spread = None;
        b.histogram = None;
        let l = &mut b.latency_ms;
        for x in [&mut l.min, &mut l.max, &mut l.mean, &mut l.median] {
            *x *= k;
        }
        l.p95 = l.p95.map(|x| x * k);
        l.p99 = l.p99.map(|x| x * k);
        if let Some(ci) = b.mean_ci.as_mut() {
            ci.lower_ms *= k;
            ci.upper_ms *= k;
        }
        if let Some(d) = b.latency_from_due_ms.as_mut() {
            for x in [&mut d.min, &mut d.max, &mut d.mean, &mut d.median] {
                *x *= k;
            }
            d.p95 = d.p95.map(|x| x * k);
            d.p99 = d.p99.map(|x| x * k);
        }
    }
    for i in c.instructions.iter_mut() {
        i.spread = None;
        i.instructions = (i.instructions as f64 * factors[0]).min(u64::MAX as f64) as u64;
    }
    c
}

// ---------------------------------------------------------------------------------------------
// What every reading command does with a file, and what its verdict may claim

/// Every finite, or the verdict reports a number the values cannot hold.
fn finite(what: &str, v: Option<f64>) {
    if let Some(v) = v {
        assert!(v.is_finite(), "{what} is {v}");
    }
}

/// `compare`: its verdict must be one the values support.
fn check_comparison(base: &BenchmarkResults, cur: &BenchmarkResults, o: &CompareOptions) {
    let c = compare(base, cur, o);
    let outcome = c.outcome();
    for r in &c.rows {
        for (what, v) in [
            ("baseline", r.baseline),
            ("current", r.current),
            ("change_pct", r.change_pct),
            ("normalized_change_pct", r.normalized_change_pct),
            ("regression_limit_pct", r.regression_limit_pct),
            ("detectable_change_pct", r.detectable_change_pct),
            ("detectable_tail_change_pct", r.detectable_tail_change_pct),
        ] {
            finite(&format!("{} {what}", r.name), v);
        }
        let moved = r.normalized_change_pct.or(r.change_pct);
        let (b, cv) = (r.baseline.unwrap_or(0.0), r.current.unwrap_or(0.0));
        match r.verdict {
            Verdict::Regressed => {
                assert!(
                    moved.map_or(cv > b, |m| m > 0.0),
                    "{} regressed but did not move up: {r:?}",
                    r.name
                );
            }
            Verdict::Improved => {
                assert!(
                    moved.map_or(cv < b, |m| m < 0.0),
                    "{} improved but did not move down: {r:?}",
                    r.name
                );
            }
            _ => {}
        }
    }
    if let Some(f) = &c.run_factor {
        assert!(f.value.is_finite() && f.value >= 0.0, "run factor {f:?}");
        if f.verdict == Verdict::Regressed {
            assert!(f.value > 1.0, "run factor regressed at {}", f.value);
        }
    }
    match &outcome {
        Outcome::Ok => {
            assert!(!c.has_regression());
            assert!(
                c.rows.iter().any(|r| r.verdict.is_judged()),
                "OK with nothing judged"
            );
        }
        Outcome::Regression => assert!(c.has_regression()),
        Outcome::Inconclusive(_) => assert!(!c.has_regression()),
    }
    let table = Table.render(&c);
    assert!(
        table.contains(outcome.as_str()),
        "table without {}",
        outcome.as_str()
    );
    let _ = Markdown.render(&c);
    let json: Value = serde_json::from_str(&Json.render(&c)).expect("compare --format json");
    assert_eq!(json["rows"].as_array().map(Vec::len), Some(c.rows.len()));
}

/// Every library function a reading command runs on `r`, with what it may claim.
fn every_command(r: &BenchmarkResults, other: &BenchmarkResults, dir: &Path) {
    // compare: against itself (nothing changed) and against another run, with each knob.
    for metric in [Metric::P95, Metric::Mean, Metric::Median] {
        let o = CompareOptions {
            metric,
            ..CompareOptions::default()
        };
        let same = compare(r, r, &o);
        for row in &same.rows {
            assert!(
                !matches!(row.verdict, Verdict::Regressed | Verdict::Improved),
                "a file compared with itself: {row:?}"
            );
        }
        assert!(!same.has_regression());
        check_comparison(r, other, &o);
        check_comparison(other, r, &o);
    }
    for (normalize, confirm) in [(false, false), (true, false), (false, true)] {
        let o = CompareOptions {
            normalize,
            confirm,
            noise_floor_pct: 0.0,
            ..CompareOptions::default()
        };
        check_comparison(r, other, &o);
    }
    // check
    let outcomes = targets::check(&Targets::shipped(), r);
    let report = targets::render(&outcomes, true);
    let missed = outcomes
        .iter()
        .filter(|o| o.status == targets::TargetStatus::Missed)
        .count();
    assert_eq!(report.missed, missed);
    assert_eq!(report.text.contains("target(s) missed"), missed > 0);
    // export
    for text in [Bmf.render(r), GithubActionBenchmark.render(r)] {
        let _: Value = serde_json::from_str(&text).expect("export is JSON");
        assert!(
            !text.contains(": null"),
            "export holds a null (a non-finite number)"
        );
    }
    // baseline save (merge of two runs, then save and load back) and collect --include
    let merged = aiops_bench::compare::merge_runs(&[r.clone(), other.clone()]);
    if let Err(e) = io::validate(&merged) {
        panic!("merging two valid files made an invalid one: {e}");
    }
    let path = dir.join("baseline.json");
    io::save(&path, &merged, true).unwrap();
    assert_eq!(io::load(&path).unwrap(), merged);
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Files from the schema with hostile values: reading never panics, and what it accepts
    /// is consistent and goes through every command.
    #[test]
    fn files_from_the_schema_never_panic(bytes in schema_file()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hostile.json");
        match io::parse(&path, &bytes.0) {
            Ok(r) => {
                io::validate(&r).unwrap();
                every_command(&r, &r, dir.path());
            }
            Err(e) => {
                let text = format!("{e}");
                prop_assert!(text.contains(&path.display().to_string()), "{text}");
                prop_assert!(!text.contains('\n'), "more than one line: {text}");
            }
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// A planted contradiction is refused, naming the file, the benchmark and the field; a
    /// file without one is read back exactly and every command's verdict holds.
    #[test]
    fn contradictions_are_refused_and_the_rest_judged_soundly(
        r in results(),
        which in prop_oneof![
            1 => Just(Plant::Nothing),
            2 => proptest::sample::select(PLANTS.to_vec()),
        ],
        factors in proptest::collection::vec(
            prop_oneof![Just(0.1), Just(0.5), Just(1.0), Just(1.02), Just(1.5), Just(3.0), Just(100.0)],
            1..6,
        ),
    ) {
        let Some((bytes, bench, field)) = plant(&r, which) else { return Ok(()) };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        match io::parse(&path, &bytes) {
            Ok(read) => {
                prop_assert_eq!(which, Plant::Nothing, "a {:?} was accepted", which);
                prop_assert_eq!(&read, &r);
                let other = rescaled(&r, &factors);
                io::validate(&other).unwrap();
                every_command(&r, &other, dir.path());
            }
            Err(e) => {
                prop_assert_ne!(which, Plant::Nothing, "a valid file was refused: {}", e);
                let text = format!("{e}");
                prop_assert!(text.contains(&path.display().to_string()), "{}", text);
                if let Some(b) = bench {
                    prop_assert!(text.contains(&format!("{b:?}")), "{:?} does not name {:?}: {}", which, b, text);
                }
                prop_assert!(text.contains(field), "{:?} does not name {}: {}", which, field, text);
                prop_assert!(!text.contains('\n'), "more than one line: {}", text);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Through the real binary

fn bin() -> Command {
    Command::cargo_bin("aiops-bench").unwrap()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&std::ffi::OsStr], dir: &Path) -> Run {
    let out = bin()
        .current_dir(dir)
        .args(args)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every command that reads result files, on `file` (and a valid `good` one).
fn cli_commands(file: &Path, good: &Path, dir: &Path) -> Vec<(String, Vec<std::ffi::OsString>)> {
    let f = file.as_os_str().to_owned();
    let g = good.as_os_str().to_owned();
    let s = |x: &str| std::ffi::OsString::from(x);
    let bdir = dir.join("baselines");
    std::fs::create_dir_all(&bdir).unwrap();
    std::fs::copy(file, bdir.join("hostile.json")).unwrap();
    vec![
        (
            "compare (current)".into(),
            vec![s("compare"), s("--baseline"), g.clone(), f.clone()],
        ),
        (
            "compare (baseline)".into(),
            vec![
                s("compare"),
                s("--format"),
                s("json"),
                s("--baseline"),
                f.clone(),
                g.clone(),
            ],
        ),
        (
            "check".into(),
            vec![
                s("check"),
                s("--targets"),
                dir.join("targets.toml").into(),
                f.clone(),
            ],
        ),
        (
            "export bmf".into(),
            vec![s("export"), s("--format"), s("bmf"), f.clone()],
        ),
        (
            "export gab".into(),
            vec![
                s("export"),
                s("--format"),
                s("github-action-benchmark"),
                f.clone(),
            ],
        ),
        (
            "collect --include".into(),
            vec![
                s("collect"),
                s("--criterion-dir"),
                dir.join("none").into(),
                s("--include"),
                f.clone(),
                s("--output"),
                dir.join("collected.json").into(),
            ],
        ),
        (
            "baseline save".into(),
            vec![
                s("baseline"),
                s("save"),
                s("saved"),
                s("--force"),
                s("--dir"),
                dir.join("saved").into(),
                s("--from"),
                f.clone(),
                s("--from"),
                g.clone(),
            ],
        ),
        (
            "baseline list".into(),
            vec![s("baseline"), s("list"), s("--dir"), bdir.into()],
        ),
    ]
}

fn check_cli(file: &Path, good: &Path, dir: &Path) -> Result<(), TestCaseError> {
    std::fs::write(dir.join("targets.toml"), targets::SHIPPED).unwrap();
    let readable = io::load(file).is_ok();
    for (what, args) in cli_commands(file, good, dir) {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let r = run(&args, dir);
        prop_assert!(
            [0, 1, 2, 3].contains(&r.code),
            "{}: exit {} ({})",
            what,
            r.code,
            r.stderr
        );
        prop_assert!(!r.stderr.contains("panicked"), "{}: {}", what, r.stderr);
        if r.code == 2 {
            prop_assert!(
                !readable || what.starts_with("baseline save"),
                "{}: a readable file refused: {}",
                what,
                r.stderr
            );
            // One error line naming the file (warnings, such as collect's "no criterion
            // output", are lines of their own).
            let errors: Vec<&str> = r
                .stderr
                .lines()
                .filter(|l| !l.starts_with("warning: "))
                .collect();
            prop_assert_eq!(errors.len(), 1, "{}: not one line: {}", what, r.stderr);
            prop_assert!(errors[0].starts_with("Error: "), "{}: {}", what, r.stderr);
            prop_assert!(
                errors[0].contains(&file.display().to_string()),
                "{}: does not name the file: {}",
                what,
                r.stderr
            );
            prop_assert!(
                r.stdout.is_empty(),
                "{}: exit 2 printed a verdict: {}",
                what,
                r.stdout
            );
        } else if what != "baseline list" {
            prop_assert!(
                readable,
                "{}: exit {} on a file the library refuses",
                what,
                r.code
            );
        }
        if what == "baseline list" {
            prop_assert_eq!(r.code, 0);
            if !readable {
                prop_assert!(r.stderr.contains("hostile.json"), "{}", r.stderr);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(12))]

    /// The real binary on files from the schema and on planted contradictions.
    #[test]
    fn the_binary_never_panics(
        bytes in prop_oneof![
            schema_file(),
            (results(), proptest::sample::select(PLANTS.to_vec()))
                .prop_filter_map("plantable", |(r, p)| plant(&r, p).map(|x| FileBytes(x.0))),
        ],
        good in results(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hostile.json");
        std::fs::write(&file, &bytes.0).unwrap();
        let good_path = dir.path().join("good.json");
        io::save(&good_path, &good, true).unwrap();
        check_cli(&file, &good_path, dir.path())?;
    }
}

/// The issue's example: `baseline list` on a commit id whose 12th byte is inside a character.
#[test]
fn baseline_list_with_a_non_ascii_commit() {
    let dir = tempfile::tempdir().unwrap();
    let mut r: BenchmarkResults = io::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/baselines/instructions.json"
    )))
    .unwrap();
    r.metadata.git_commit = Some("aééééééééééé".into());
    io::save(&dir.path().join("odd.json"), &r, true).unwrap();
    r.metadata.git_commit = Some("x\n\u{1b}[2Jfake line".into());
    io::save(&dir.path().join("newline.json"), &r, true).unwrap();
    let out = bin()
        .args(["baseline", "list", "--dir"])
        .arg(dir.path())
        .assert()
        .code(0);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(stdout.contains("commit aééééééééééé\n"), "{stdout}");
    assert!(stdout.contains("commit x??[2Jfake l\n"), "{stdout}");
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
}

/// A file over the size limit is refused before it is parsed, as is an endless one.
#[test]
fn files_over_the_size_limit_are_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    std::fs::write(&big, vec![b' '; 4096]).unwrap();
    let out = bin()
        .env(io::MAX_FILE_BYTES_ENV, "1024")
        .args(["export", "--format", "bmf"])
        .arg(&big)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("big.json") && stderr.contains("over the size limit of 1024 bytes"),
        "{stderr}"
    );
    assert!(stderr.contains("the file is 4096 bytes"), "{stderr}");
    // /dev/zero has no length and never ends: the limit still stops the read.
    if Path::new("/dev/zero").exists() {
        let out = bin()
            .env(io::MAX_FILE_BYTES_ENV, "1048576")
            .args(["compare", "--baseline", "/dev/zero", "/dev/zero"])
            .timeout(std::time::Duration::from_secs(60))
            .assert()
            .code(2);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(
            stderr.contains("/dev/zero") && stderr.contains("1 MiB"),
            "{stderr}"
        );
    }
    // The targets file too.
    let out = bin()
        .env(io::MAX_FILE_BYTES_ENV, "1024")
        .args(["check", "--targets"])
        .arg(&big)
        .arg(&big)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("big.json") && stderr.contains("targets file"),
        "{stderr}"
    );
    // A limit that is not a number is said so.
    let out = bin()
        .env(io::MAX_FILE_BYTES_ENV, "lots")
        .args(["export", "--format", "bmf"])
        .arg(&big)
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains(io::MAX_FILE_BYTES_ENV), "{stderr}");
    assert_eq!(io::MAX_RESULT_FILE_BYTES, 256 * 1024 * 1024);
}

/// Targets files with limits no comparison can honestly judge are bad input, named.
#[test]
fn targets_with_nan_or_negative_limits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("r.json");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/baselines/instructions.json"),
        &result,
    )
    .unwrap();
    for (toml, says) in [
        (
            "[[latency]]\nname = \"n\"\nbenchmarks = [\"*\"]\nmetric = \"p95\"\nmax_ms = nan\n",
            "max_ms is NaN",
        ),
        (
            "[[throughput]]\nname = \"t\"\nbenchmarks = [\"*\"]\nmin_ops_per_second = -inf\n",
            "min_ops_per_second is -inf",
        ),
        (
            "[[errors]]\nname = \"e\"\nbenchmarks = [\"*\"]\nmax_error_rate_percent = 150.0\n",
            "percentage from 0 to 100",
        ),
        (
            "[[throughput]]\nname = \"t\"\nbenchmarks = [\"*\"]\nmin_ops_per_second = 1.0\naggregate = \"avg\"\n",
            "aggregate \"avg\"",
        ),
        ("\u{feff}\u{0}\u{ff}", "targets.toml"),
    ] {
        let path = dir.path().join("targets.toml");
        std::fs::write(&path, toml).unwrap();
        let out = bin()
            .args(["check", "--targets"])
            .arg(&path)
            .arg(&result)
            .assert()
            .code(2);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(
            stderr.contains("targets.toml") && stderr.contains(says),
            "{says}: {stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    }
}

/// Field errors name the benchmark and the field, not only a line and column.
#[test]
fn a_negative_count_names_the_benchmark_and_the_field() {
    let mut v: Value = serde_json::from_slice(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/baselines/instructions.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let name = v["instructions"][1]["name"].as_str().unwrap().to_string();
    v["instructions"][1]["instructions"] = json!(-3);
    let path = PathBuf::from("neg.json");
    let e = io::parse(&path, &serde_json::to_vec_pretty(&v).unwrap()).unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("neg.json:")
            && text.contains(&format!(
                "benchmark {name:?} (instructions[1]): instructions:"
            ))
            && text.contains("-3"),
        "{text}"
    );
}
