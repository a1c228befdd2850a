//! Glue shared by every benchmark module: how this process was invoked (benchmark, `--test`,
//! `--list`...), one tokio runtime, and [`Probe`], which records each timed operation into an
//! [`aiops_bench::sidecar::LatencyRecorder`] and writes the sidecar when the benchmark ends.
//!
//! Criterion keeps only per-sample means. A [`Probe`] sees every single operation of a benchmark
//! run inside `iter_custom`: successes go into an HDR histogram, failures are grouped by message.
//! Operations run during criterion's warm-up are not recorded (criterion's warm-up loop stops once
//! the wall time spent in the routine exceeds the group's warm-up time; the probe replays that
//! rule), so the sidecar describes the same phase as criterion's estimates.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aiops_bench::sidecar::{self, LatencyRecorder};
use tokio::runtime::Runtime;

/// How criterion was asked to run, read from the process arguments (criterion does not expose
/// its mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunMode {
    /// `--list`: benchmarks are only named, never run.
    pub list: bool,
    /// `--test` (or no `--bench`, as with `cargo test --benches`): each benchmark runs once.
    pub test: bool,
    /// `--profile-time`: iterations without analysis.
    pub profile: bool,
    /// `--quick`: criterion skips its warm-up and stops early.
    pub quick: bool,
    /// Positional name filter, if any.
    pub filter: Option<String>,
    /// `--exact`: the filter must equal the whole benchmark name.
    pub exact: bool,
    /// Serving `aiops-bench ab` (environment variable [`crate::ab::ENV`]): benchmarks are run in
    /// slices on the driver's command, criterion measures nothing and no sidecar is written.
    pub ab: bool,
}

/// Criterion options that take a value (so their value is not mistaken for the name filter).
const OPTIONS_WITH_VALUE: &[&str] = &[
    "-c",
    "--color",
    "--colour",
    "-s",
    "--save-baseline",
    "-b",
    "--baseline",
    "--baseline-lenient",
    "--format",
    "--profile-time",
    "--load-baseline",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--plotting-backend",
    "--output-format",
];

impl RunMode {
    /// Parse criterion's command line (without the program name).
    pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> RunMode {
        let mut mode = RunMode {
            list: false,
            test: false,
            profile: false,
            quick: false,
            filter: None,
            exact: false,
            ab: false,
        };
        if crate::ab::requested() {
            // The driver passes `--list` so that a harness without the A/B protocol only lists.
            mode.ab = true;
            return mode;
        }
        let mut bench = false;
        let mut test = false;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let flag = arg.split('=').next().unwrap_or_default();
            match flag {
                "--bench" => bench = true,
                "--test" => test = true,
                "--list" => mode.list = true,
                "--quick" => mode.quick = true,
                "--exact" => mode.exact = true,
                "--profile-time" => mode.profile = true,
                _ => {}
            }
            if OPTIONS_WITH_VALUE.contains(&flag) {
                if !arg.contains('=') {
                    args.next();
                }
            } else if !arg.starts_with('-') && mode.filter.is_none() {
                mode.filter = Some(arg);
            }
        }
        // Criterion's own rule: `cargo bench` passes `--bench`; without it (`cargo test
        // --benches`) or with `--test`, every benchmark runs once.
        mode.test = !mode.list && (test || !bench);
        mode
    }

    /// Whether this run measures (and so writes sidecars).
    pub fn measuring(&self) -> bool {
        !self.list && !self.test && !self.profile
    }

    /// Whether `name` (`component/operation/variant`) may pass criterion's filter. Filters with
    /// regular-expression syntax are assumed to match (criterion decides); plain text filters are
    /// matched as criterion does (substring, or equality with `--exact`).
    pub fn may_select(&self, name: &str) -> bool {
        if self.ab {
            return crate::ab::selects(name);
        }
        match &self.filter {
            None => true,
            Some(filter) if self.exact => filter == name,
            Some(filter) if filter.contains(|c: char| "\\.+*?()|[]{}^$".contains(c)) => true,
            Some(filter) => name.contains(filter.as_str()),
        }
    }
}

/// The mode of this process.
pub fn mode() -> &'static RunMode {
    static MODE: OnceLock<RunMode> = OnceLock::new();
    MODE.get_or_init(|| RunMode::from_args(std::env::args().skip(1)))
}

/// The shared multi-threaded tokio runtime (2 workers: the machine has 2 cores). Benchmarks drive
/// it with `block_on` from the main thread; spawned tasks run on the workers.
pub fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("aiops-bench")
            .enable_all()
            .build()
            .expect("building the benchmark tokio runtime")
    })
}

/// A current-thread tokio runtime for sequential benchmarks (one operation at a time): the task
/// under test and the tasks it talks to (the Redis connection driver, hyper's connection) run on
/// the benchmark thread, so an operation is timed without cross-thread wake-ups. The
/// `concurrency/*` benchmarks use [`runtime`] instead.
pub fn local_runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building the benchmark tokio runtime")
    })
}

/// Records every operation of one benchmark; see the module documentation.
pub struct Probe {
    state: RefCell<ProbeState>,
}

struct ProbeState {
    recorder: LatencyRecorder,
    /// Criterion's warm-up time for this benchmark; `None` in `--quick` mode (no warm-up).
    warm_up: Option<Duration>,
    /// Wall time spent in routine calls so far (criterion's warm-up clock).
    routine_time: Duration,
}

impl Probe {
    /// A probe for benchmark `name` (`component/operation/variant`) in a group whose warm-up
    /// time is `warm_up`.
    pub fn new(name: impl Into<String>, warm_up: Duration) -> Probe {
        Probe::with_recorder(LatencyRecorder::new(name), warm_up)
    }

    /// Like [`Probe::new`], with a byte count per operation (throughput benchmarks).
    pub fn with_bytes(name: impl Into<String>, warm_up: Duration, bytes_per_op: u64) -> Probe {
        Probe::with_recorder(
            LatencyRecorder::new(name).with_bytes_per_op(bytes_per_op),
            warm_up,
        )
    }

    fn with_recorder(recorder: LatencyRecorder, warm_up: Duration) -> Probe {
        // `--quick` skips criterion's warm-up; `--test` runs each benchmark once and checks it.
        let warm_up = if mode().quick || mode().ab || !mode().measuring() {
            None
        } else {
            Some(warm_up)
        };
        Probe {
            state: RefCell::new(ProbeState {
                recorder,
                warm_up,
                routine_time: Duration::ZERO,
            }),
        }
    }

    /// Start one criterion routine call (one `iter_custom` invocation).
    pub fn call(&self) -> Call<'_> {
        let state = self.state.borrow();
        let warming = state
            .warm_up
            .is_some_and(|warm_up| state.routine_time <= warm_up);
        Call {
            probe: self,
            started: Instant::now(),
            warming,
            measured: Duration::ZERO,
        }
    }

    /// Successful operations recorded so far.
    pub fn count(&self) -> u64 {
        self.state.borrow().recorder.count()
    }

    /// The benchmark's name (`component/operation/variant`).
    pub fn name(&self) -> String {
        self.state.borrow().recorder.name().to_string()
    }

    /// What was recorded since the last call (or since the start), leaving the probe empty:
    /// one slice of an A/B run.
    pub fn take_slice(&self) -> LatencyRecorder {
        let mut state = self.state.borrow_mut();
        let fresh = LatencyRecorder::new(state.recorder.name());
        std::mem::replace(&mut state.recorder, fresh)
    }

    /// End the benchmark. Measuring runs write the sidecar (unless the benchmark did not run:
    /// one excluded by the name filter records nothing and leaves any earlier sidecar alone) and
    /// print its percentiles; `--test` runs panic when an operation failed.
    pub fn finish(self) {
        let state = self.state.into_inner();
        let summary = state.recorder.summary();
        if mode().test && summary.error_count > 0 {
            // The smoke run (`-- --test`, CI) must fail when an operation fails.
            panic!(
                "{}: {} operation(s) failed: {}",
                summary.name,
                summary.error_count,
                summary
                    .errors
                    .iter()
                    .map(|e| format!("{} (x{})", e.message, e.count))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        if !mode().measuring() || (summary.count == 0 && summary.error_count == 0) {
            return;
        }
        match state.recorder.write() {
            Ok(path) => {
                if summary.error_count > 0 {
                    eprintln!(
                        "warning: {}: {} of {} operations failed: {}",
                        summary.name,
                        summary.error_count,
                        summary.error_count + summary.count,
                        summary
                            .errors
                            .iter()
                            .map(|e| format!("{} x{}", e.message, e.count))
                            .collect::<Vec<_>>()
                            .join("; ")
                    );
                }
                println!(
                    "{:<48} per-op ns: p50 {} p95 {} p99 {} max {} (n={}) -> {}",
                    summary.name,
                    summary.median_ns,
                    summary.p95_ns,
                    summary.p99_ns,
                    summary.max_ns,
                    summary.count,
                    path.display()
                );
                if let Some(line) = summary
                    .disturbance
                    .and_then(|d| d.busy_warning(&summary.name))
                {
                    eprintln!("{line}");
                }
            }
            Err(e) => eprintln!(
                "error: could not write the latency sidecar of {} into {}: {e} \
                 (check that the folder is writable or set CRITERION_HOME)",
                summary.name,
                sidecar::sidecar_dir().display()
            ),
        }
    }
}

/// One routine call: records operation timings, then hands criterion their sum.
pub struct Call<'a> {
    probe: &'a Probe,
    started: Instant,
    warming: bool,
    measured: Duration,
}

impl Call<'_> {
    /// One successful operation that took `elapsed`.
    pub fn ok(&mut self, elapsed: Duration) {
        self.measured += elapsed;
        if !self.warming {
            self.probe.state.borrow_mut().recorder.record(elapsed);
        }
    }

    /// One failed operation that took `elapsed` (counted by message, not in the histogram).
    pub fn err(&mut self, elapsed: Duration, message: impl std::fmt::Display) {
        self.measured += elapsed;
        if !self.warming {
            self.probe.state.borrow_mut().recorder.record_error(message);
        }
    }

    /// One successful operation whose time is not part of the value returned by
    /// [`Call::finish`] (overlapping concurrent operations: use [`Call::finish_with`]).
    pub fn ok_untimed(&mut self, latency: Duration) {
        if !self.warming {
            self.probe.state.borrow_mut().recorder.record(latency);
        }
    }

    /// One failed operation, not timed (see [`Call::ok_untimed`]).
    pub fn err_untimed(&mut self, message: impl std::fmt::Display) {
        if !self.warming {
            self.probe.state.borrow_mut().recorder.record_error(message);
        }
    }

    /// Record a result: `Ok` as a success, `Err` as a grouped error.
    pub fn result<T, E: std::fmt::Display>(&mut self, elapsed: Duration, result: &Result<T, E>) {
        match result {
            Ok(_) => self.ok(elapsed),
            Err(e) => self.err(elapsed, e),
        }
    }

    /// End the call; criterion gets the sum of the recorded operation times (loop and
    /// bookkeeping overhead excluded).
    pub fn finish(self) -> Duration {
        let measured = self.measured;
        self.finish_with(measured)
    }

    /// End the call and give criterion `value` as its measured time (for example the wall time
    /// of whole concurrent batches rather than the sum of overlapping operations).
    pub fn finish_with(self, value: Duration) -> Duration {
        self.probe.state.borrow_mut().routine_time += self.started.elapsed();
        value
    }
}

/// Run one benchmark: with criterion (`iter_custom` over `routine`, then the sidecar), or, when
/// serving `aiops-bench ab`, in slices on the driver's command. `routine(probe, iters)` runs
/// `iters` operations, records each in `probe` and returns the time criterion should see.
/// Returns the number of successful operations recorded.
pub fn bench(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    probe: Probe,
    mut routine: impl FnMut(&Probe, u64) -> Duration,
) -> u64 {
    if mode().ab {
        crate::ab::serve(&probe, &mut routine);
        return 0;
    }
    group.bench_function(id, |b| b.iter_custom(|iters| routine(&probe, iters)));
    let count = probe.count();
    probe.finish();
    count
}

/// Record the skip of every benchmark in `names` that this run would have measured (the caller
/// prints the loud line).
pub fn skip_all(names: &[String], reason: &str) {
    if mode().ab {
        for name in names.iter().filter(|n| mode().may_select(n)) {
            crate::ab::skipped(name, reason);
        }
        return;
    }
    if !mode().measuring() {
        return;
    }
    for name in names.iter().filter(|n| mode().may_select(n)) {
        if let Err(e) = sidecar::write_skipped(name, reason) {
            eprintln!(
                "error: could not record the skip of {name} in {}: {e}",
                sidecar::sidecar_dir().display()
            );
        }
    }
}

/// Register benchmarks that only need a name (`--list`): criterion never runs them in this mode.
pub fn list_only<M: criterion::measurement::Measurement>(
    group: &mut criterion::BenchmarkGroup<'_, M>,
    ids: &[String],
) {
    for id in ids {
        group.bench_function(id.as_str(), |b| b.iter(|| ()));
    }
}

/// A JSON value shaped like a cached triage result whose compact serialization is `bytes` long
/// (within 2 %; at least about 100 bytes).
pub fn json_payload(bytes: usize) -> serde_json::Value {
    use serde_json::json;
    let mut value = json!({
        "severity": "critical",
        "summary": "disk 95% full on db-1",
        "suggested_action": "grow the volume",
        "notes": [],
    });
    let mut i = 0;
    while serde_json::to_string(&value).map_or(0, |s| s.len()) + 40 < bytes {
        value["notes"]
            .as_array_mut()
            .expect("notes is an array")
            .push(json!(format!("check {i:04} of the runbook")));
        i += 1;
    }
    let len = serde_json::to_string(&value).map_or(0, |s| s.len());
    if len < bytes {
        value["pad"] = json!("x".repeat(bytes.saturating_sub(len + 8)));
    }
    value
}
