//! Glue shared by every benchmark module: how this process was invoked (benchmark, `--test`,
//! `--list`...), one tokio runtime, and [`Probe`], which records each timed operation into an
//! [`aiops_bench::sidecar::LatencyRecorder`] and writes the sidecar when the benchmark ends.
//!
//! Criterion keeps only per-sample means. A [`Probe`] sees every single operation of a benchmark
//! run inside `iter_custom`: successes go into an HDR histogram, failures are grouped by message.
//! Operations run during criterion's warm-up are not recorded (criterion's warm-up loop stops once
//! the wall time spent in the routine exceeds the group's warm-up time; the probe replays that
//! rule), so the sidecar describes the same phase as criterion's estimates.
//!
//! Sidecars follow criterion's baselines (see [`aiops_bench::sidecar`]): a run writes each
//! benchmark's sidecar into `<criterion dir>/<benchmark>/new/` and, like criterion, into the
//! saved baseline (`base`, or `NAME` of `--save-baseline NAME`); `--baseline NAME` compares the
//! per-operation percentiles with NAME's; `--load-baseline NAME --baseline OTHER` prints NAME's
//! against OTHER's; `--discard-baseline` writes nothing. Each sidecar records this process's run
//! id and the fingerprint of the `sample.json` criterion wrote in the same run.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use aiops_bench::import::criterion::check_sidecar_run;
use aiops_bench::sidecar::{
    self, BaselineFlags, LatencyRecorder, LatencySidecar, SidecarRun, SIDECAR_FILE,
};
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
    /// Criterion's baseline flags: which sets this run writes and compares with.
    pub baselines: BaselineFlags,
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
            baselines: BaselineFlags::default(),
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
                let value = match arg.split_once('=') {
                    Some((_, value)) => Some(value.to_string()),
                    None => args.next(),
                };
                let b = &mut mode.baselines;
                match flag {
                    "-s" | "--save-baseline" => b.save_baseline = value,
                    "-b" | "--baseline" | "--baseline-lenient" => b.baseline = value,
                    "--load-baseline" => b.load_baseline = value,
                    _ => {}
                }
            } else if flag == "--discard-baseline" {
                mode.baselines.discard = true;
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

    /// Whether `name` (`component/operation/variant`) passes criterion's filter: a regular
    /// expression searched in the name, or the whole name with `--exact` (an invalid expression,
    /// on which criterion panics, selects everything).
    pub fn may_select(&self, name: &str) -> bool {
        if self.ab {
            return crate::ab::selects(name);
        }
        match &self.filter {
            None => true,
            Some(filter) if self.exact => filter == name,
            Some(filter) => regex::Regex::new(filter).map_or(true, |re| re.is_match(name)),
        }
    }
}

/// The mode of this process.
pub fn mode() -> &'static RunMode {
    static MODE: OnceLock<RunMode> = OnceLock::new();
    MODE.get_or_init(|| {
        run_id();
        RunMode::from_args(std::env::args().skip(1))
    })
}

/// This process's run id, recorded in every sidecar it writes (see
/// [`sidecar::SidecarRun::new_id`]).
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| SidecarRun::new_id(chrono::Utc::now()))
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

    /// End the benchmark that started at `started`, `previous` being the per-operation data of
    /// the set criterion compared it with, read before the run. Measuring runs write the
    /// sidecar into every set criterion wrote (unless the benchmark did not run: one excluded
    /// by the name filter records nothing and leaves its earlier sidecars alone) and print its
    /// percentiles and their change; `--test` runs panic when an operation failed.
    fn finish(self, started: SystemTime, previous: Saved) {
        let state = self.state.into_inner();
        let mut summary = state.recorder.summary();
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
        if mode().profile && summary.count > 0 {
            // The profiled run's pace (scripts/profile-check compares it with sampling off).
            println!(
                "profile: {}: {} operations, mean {:.0} ns per operation",
                summary.name, summary.count, summary.mean_ns
            );
        }
        if !mode().measuring() {
            return;
        }
        let flags = &mode().baselines;
        let dir = sidecar::benchmark_dir(&sidecar::criterion_home(), &summary.name);
        if let Some(loaded) = &flags.load_baseline {
            // Criterion analysed the saved samples of `loaded` (against `--baseline`) instead of
            // running the benchmark: show that baseline's per-operation data the same way.
            if mode().may_select(&summary.name) {
                print_loaded(
                    &summary.name,
                    &dir,
                    loaded,
                    &flags.compared_with(),
                    &previous,
                );
            }
            return;
        }
        if summary.count == 0 && summary.error_count == 0 {
            return;
        }
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
        let sets = flags.sets_written();
        let mut destination = String::from("not saved (--discard-baseline)");
        if !sets.is_empty() {
            match fresh_sample_fingerprint(&dir, started) {
                Ok(fingerprint) => {
                    summary.run = Some(SidecarRun {
                        id: run_id().to_string(),
                        at: chrono::Utc::now(),
                        criterion_sample: Some(fingerprint),
                    });
                    match write_sets(&dir, &sets, SIDECAR_FILE, &summary) {
                        Ok(first) => {
                            destination = format!("-> {}", first.display());
                            if let Some(saved) = sets.get(1) {
                                destination.push_str(&format!(" (and baseline `{saved}`)"));
                            }
                            LAST.with(|last| {
                                *last.borrow_mut() = Some(Written {
                                    name: summary.name.clone(),
                                    dir: dir.clone(),
                                    sets: sets.clone(),
                                    run: summary.run.clone(),
                                });
                            });
                        }
                        Err(e) => {
                            eprintln!("error: could not write the latency sidecar of {}: {e} (check that the folder is writable or set CRITERION_HOME)", summary.name);
                            destination = "not saved".into();
                        }
                    }
                }
                Err(why) => {
                    eprintln!(
                        "warning: {}: {why}; its per-operation data is not saved",
                        summary.name
                    );
                    destination = "not saved".into();
                }
            }
        }
        println!(
            "{:<48} per-op ns: p50 {} p95 {} p99 {} max {} (n={}) {destination}",
            summary.name,
            summary.median_ns,
            summary.p95_ns,
            summary.p99_ns,
            summary.max_ns,
            summary.count,
        );
        print_change(
            &summary,
            &flags.compared_with(),
            &previous,
            flags.baseline.is_some(),
        );
        if let Some(line) = summary
            .disturbance
            .and_then(|d| d.busy_warning(&summary.name))
        {
            eprintln!("{line}");
        }
    }
}

/// Per-operation data of one benchmark in one criterion set.
enum Saved {
    /// The sidecar, recorded in the run of the criterion data beside it.
    Found(Box<LatencySidecar>),
    /// No sidecar (or no set).
    Missing,
    /// A sidecar that does not belong to the criterion data beside it (why).
    Stale(String),
}

/// Read the sidecar of benchmark `name` in set `set` of its folder `dir`, checked against the
/// criterion data beside it.
fn load_saved(dir: &Path, set: &str) -> Saved {
    let set_dir = dir.join(set);
    let path = set_dir.join(SIDECAR_FILE);
    if !path.is_file() {
        return Saved::Missing;
    }
    match sidecar::read_sidecar(&path) {
        Ok(s) if s.skipped.is_some() => Saved::Missing,
        Ok(s) => match check_sidecar_run(&set_dir, &path, &s) {
            Ok(()) => Saved::Found(Box::new(s)),
            Err(e) => Saved::Stale(e.to_string()),
        },
        Err(e) => Saved::Stale(e.to_string()),
    }
}

/// The fingerprint of the `sample.json` criterion wrote for this benchmark in this run (its
/// modification time is not before the benchmark started, to the second); criterion writes
/// none when it rejects a measurement.
fn fresh_sample_fingerprint(dir: &Path, started: SystemTime) -> Result<String, String> {
    let set_dir = dir.join(sidecar::NEW_SET);
    let sample = set_dir.join("sample.json");
    let modified = std::fs::metadata(&sample)
        .and_then(|m| m.modified())
        .map_err(|e| format!("criterion saved no {} ({e})", sample.display()))?;
    let floor = |t: SystemTime| {
        t.duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    };
    if floor(modified) < floor(started) {
        return Err(format!(
            "criterion did not save this run ({} is older than the benchmark)",
            sample.display()
        ));
    }
    sidecar::criterion_sample_fingerprint(&set_dir)
        .map_err(|e| format!("cannot read {}: {e}", sample.display()))
}

/// Write `summary` as `file_name` into each set of `dir`; the path in the first set.
fn write_sets(
    dir: &Path,
    sets: &[String],
    file_name: &str,
    summary: &LatencySidecar,
) -> std::io::Result<PathBuf> {
    let mut first = None;
    for set in sets {
        let path = sidecar::write_sidecar(&dir.join(set), file_name, summary)?;
        first.get_or_insert(path);
    }
    Ok(first.unwrap_or_else(|| dir.to_path_buf()))
}

/// Relative change of `now` against `before`, as `+12.3%`.
fn change(before: u64, now: u64) -> String {
    if before == 0 {
        return "n/a".into();
    }
    format!("{:+.1}%", (now as f64 / before as f64 - 1.0) * 100.0)
}

/// The per-operation change against the compared set (criterion's "change:" for percentiles).
fn print_change(now: &LatencySidecar, set: &str, previous: &Saved, asked: bool) {
    let indent = "";
    match previous {
        Saved::Found(before) => println!(
            "{indent:<48} per-op change vs baseline `{set}`: p50 {} p95 {} p99 {} (its run {})",
            change(before.median_ns, now.median_ns),
            change(before.p95_ns, now.p95_ns),
            change(before.p99_ns, now.p99_ns),
            before.run.as_ref().map_or("?", |r| r.id.as_str()),
        ),
        // Only worth a line when a comparison was asked for (`--baseline`): a first run has
        // nothing to compare with.
        Saved::Missing if asked => println!(
            "{indent:<48} baseline `{set}` holds no per-operation data for {}: criterion's per-sample comparison only",
            now.name
        ),
        Saved::Missing => {}
        Saved::Stale(why) => eprintln!(
            "warning: per-operation data of baseline `{set}` not compared: {why}"
        ),
    }
}

/// `--load-baseline LOADED --baseline BASE`: LOADED's per-operation data and its change.
fn print_loaded(name: &str, dir: &Path, loaded: &str, base: &str, previous: &Saved) {
    match load_saved(dir, loaded) {
        Saved::Found(s) => {
            println!(
                "{:<48} per-op ns: p50 {} p95 {} p99 {} max {} (n={}) loaded from baseline `{loaded}`",
                s.name, s.median_ns, s.p95_ns, s.p99_ns, s.max_ns, s.count
            );
            print_change(&s, base, previous, true);
        }
        Saved::Missing => println!(
            "{name:<48} baseline `{loaded}` holds no per-operation data: criterion's per-sample comparison only"
        ),
        Saved::Stale(why) => eprintln!(
            "warning: per-operation data of baseline `{loaded}` not shown: {why}"
        ),
    }
}

/// The last sidecar this thread wrote, for the extra measurements of the same benchmark run.
struct Written {
    name: String,
    dir: PathBuf,
    sets: Vec<String>,
    run: Option<SidecarRun>,
}

thread_local! {
    static LAST: RefCell<Option<Written>> = const { RefCell::new(None) };
}

/// Save an extra measurement of benchmark `main`'s run that just ended (for example
/// `agent/real_provider/ttft` beside `agent/real_provider/chat`) beside its sidecar, in the
/// same sets and with the same run.
pub fn write_extra(main: &str, recorder: &LatencyRecorder) {
    if recorder.count() == 0 {
        return;
    }
    LAST.with(|last| {
        let last = last.borrow();
        let Some(written) = last.as_ref().filter(|w| w.name == main) else {
            eprintln!(
                "warning: {} not saved: the per-operation data of {main} was not saved in this run",
                recorder.name()
            );
            return;
        };
        let mut summary = recorder.summary();
        summary.run = written.run.clone();
        let file_name = sidecar::sidecar_file_name(main, recorder.name());
        match write_sets(&written.dir, &written.sets, &file_name, &summary) {
            Ok(path) => println!(
                "{:<48} per-op ns: p50 {} p95 {} p99 {} max {} (n={}) -> {}",
                summary.name,
                summary.median_ns,
                summary.p95_ns,
                summary.p99_ns,
                summary.max_ns,
                summary.count,
                path.display()
            ),
            Err(e) => eprintln!(
                "error: could not write the sidecar of {} into {}: {e}",
                recorder.name(),
                written.dir.display()
            ),
        }
    });
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
    let name = probe.name();
    let previous = if mode().measuring() && mode().may_select(&name) {
        // Read before criterion runs: with `--save-baseline` criterion overwrites the set it
        // compares with.
        let dir = sidecar::benchmark_dir(&sidecar::criterion_home(), &name);
        load_saved(&dir, &mode().baselines.compared_with())
    } else {
        Saved::Missing
    };
    let started = SystemTime::now();
    group.bench_function(id, |b| b.iter_custom(|iters| routine(&probe, iters)));
    let count = probe.count();
    probe.finish(started, previous);
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
    let sets = mode().baselines.sets_written();
    for name in names.iter().filter(|n| mode().may_select(n)) {
        let dir = sidecar::benchmark_dir(&sidecar::criterion_home(), name);
        let record = sidecar::skip_record(name, reason, run_id());
        if let Err(e) = write_sets(&dir, &sets, SIDECAR_FILE, &record) {
            eprintln!(
                "error: could not record the skip of {name} in {}: {e}",
                dir.display()
            );
        }
    }
}

/// Whether a server URL points at this machine (`127.0.0.1`, `localhost`, `[::1]`).
pub fn is_loopback(url: &str) -> bool {
    url.contains("127.0.0.1") || url.contains("localhost") || url.contains("[::1]")
}

/// Count every local process whose name (`/proc/PID/comm`) `is_ours` accepts as part of the
/// benchmark, not as a disturbance (`aiops_bench::disturbance::register_partner`): the local
/// server a benchmark drives does half of its work. Returns how many were registered.
pub fn register_local_partners(is_ours: impl Fn(&str) -> bool) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut counted = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .is_ok_and(|comm| is_ours(comm.trim_end()))
        {
            aiops_bench::disturbance::register_partner(pid);
            counted += 1;
        }
    }
    counted
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
