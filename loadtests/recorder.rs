//! Per-worker recording of a load scenario: HDR histograms, counters, status codes and a
//! per-second time series, kept in shards (one per worker thread, picked by a thread-local
//! slot) and merged once at the end. The hot path takes only its own shard's lock, which no
//! other thread touches while the scenario runs (no global mutex per request), and allocates
//! nothing for a successful request (status codes are a fixed array, request kinds an index).
//!
//! What is recorded per request ([`Recorder::record`]):
//! - latency from sending to the end of the response body, into the request kind's `ok`
//!   histogram, or its `failed` histogram when the request failed (so fast failures do not pull
//!   the percentiles of real answers down);
//! - latency from the request's due time on the schedule (coordinated-omission corrected) for
//!   answered requests, plus one sample per dropped slot ([`Recorder::record_dropped`]: it waited
//!   at least until it was dropped);
//! - the generator's own lag, due time → sent;
//! - the time series: sent / answered / errors per second and the latencies of the requests
//!   answered in each second.
//!
//! Requests due during the warm-up are sent and appear in the time series but in no statistic.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use aiops_bench::result::{
    latency_with, HistogramUnit, LatencyMs, StoredHistogram, TimeseriesPoint,
};
use hdrhistogram::Histogram;

/// Largest latency the histograms track: one hour, in microseconds. Longer ones are clamped.
const MAX_TRACKABLE_US: u64 = 3_600_000_000;

/// Status codes are counted in a fixed array indexed by the code; 0 means "no response".
pub const STATUS_SLOTS: usize = 600;

/// A request starting this long after its due time counts as late (timers have ~1 ms grain).
pub const LATE_AFTER: Duration = Duration::from_millis(5);

/// Every latency of one request kind (or of a whole scenario): an HDR histogram in microseconds
/// (3 significant digits) plus the exact minimum, maximum and sum in nanoseconds.
#[derive(Debug, Clone)]
pub struct LatencyRecord {
    histogram_us: Histogram<u64>,
    min_ns: u64,
    max_ns: u64,
    sum_ns: u128,
}

impl Default for LatencyRecord {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyRecord {
    /// An empty record.
    pub fn new() -> Self {
        Self {
            histogram_us: Histogram::new_with_bounds(1, MAX_TRACKABLE_US, 3)
                .expect("static histogram bounds are valid"),
            min_ns: u64::MAX,
            max_ns: 0,
            sum_ns: 0,
        }
    }

    /// Record one latency.
    pub fn record(&mut self, latency: Duration) {
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        let us = (ns / 1_000).clamp(1, MAX_TRACKABLE_US);
        self.histogram_us.saturating_record(us);
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);
        self.sum_ns += u128::from(ns);
    }

    /// Add every latency of `other` to this record.
    pub fn merge(&mut self, other: &LatencyRecord) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.histogram_us.add(&other.histogram_us);
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
        self.sum_ns += other.sum_ns;
    }

    /// Number of latencies recorded.
    pub fn count(&self) -> u64 {
        self.histogram_us.len()
    }

    /// The histogram as stored in the result file (microseconds); `None` while empty.
    pub fn stored(&self) -> Option<StoredHistogram> {
        if self.count() == 0 {
            return None;
        }
        StoredHistogram::encode(&self.histogram_us, HistogramUnit::Us).ok()
    }

    /// Summary in milliseconds: exact minimum, maximum and mean, percentiles (p99.9 included)
    /// of the histogram by [`aiops_bench::result::latency_with`]; `None` while empty.
    pub fn to_latency_ms(&self) -> Option<LatencyMs> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let min_ms = self.min_ns as f64 / 1e6;
        let max_ms = self.max_ns as f64 / 1e6;
        let mut l = latency_with(
            &self.histogram_us,
            HistogramUnit::Us,
            min_ms,
            max_ms,
            self.sum_ns as f64 / count as f64 / 1e6,
        )?;
        l.p999 = aiops_bench::hdr::quantile(&self.histogram_us, 0.999)
            .map(|v| HistogramUnit::Us.to_ms(v as f64).clamp(min_ms, max_ms));
        Some(l)
    }
}

/// Everything recorded about one request kind.
#[derive(Debug, Clone)]
pub struct KindRecord {
    /// Latencies of answered, successful requests.
    pub ok: LatencyRecord,
    /// Latencies of failed requests (error status, transport error, timeout).
    pub failed: LatencyRecord,
    /// Status code → count; 0 is "no response".
    pub status: Box<[u64; STATUS_SLOTS]>,
    /// Error message → count.
    pub errors: BTreeMap<String, u64>,
}

impl KindRecord {
    fn new() -> Self {
        KindRecord {
            ok: LatencyRecord::new(),
            failed: LatencyRecord::new(),
            status: Box::new([0; STATUS_SLOTS]),
            errors: BTreeMap::new(),
        }
    }

    fn merge(&mut self, other: &KindRecord) {
        self.ok.merge(&other.ok);
        self.failed.merge(&other.failed);
        for (a, b) in self.status.iter_mut().zip(other.status.iter()) {
            *a += b;
        }
        for (message, n) in &other.errors {
            *self.errors.entry(message.clone()).or_default() += n;
        }
    }

    /// Requests measured (answered or failed).
    pub fn requests(&self) -> u64 {
        self.ok.count() + self.failed.count()
    }

    /// Status code → count, only the codes seen; `0` is "no response".
    pub fn status_codes(&self) -> BTreeMap<u16, u64> {
        self.status
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(code, n)| (code as u16, *n))
            .collect()
    }
}

/// One second of the time series, as recorded (before merging shards).
#[derive(Debug, Clone, Default)]
struct Second {
    sent: u64,
    answered: u64,
    errors: u64,
    /// Latencies (µs, 2 significant digits) of the requests answered in this second.
    latency_us: Option<Histogram<u32>>,
}

fn second_histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, MAX_TRACKABLE_US, 2).expect("static histogram bounds are valid")
}

/// How one request ended.
#[derive(Debug, Clone, Copy)]
pub enum Outcome<'a> {
    /// A response with a success status.
    Ok {
        /// The HTTP status code.
        status: u16,
    },
    /// A response with an error status, or no response.
    Failed {
        /// The status code, `None` when there was no response.
        status: Option<u16>,
        /// What went wrong (grouped by this text).
        error: &'a str,
    },
}

/// One finished request, as the hot path hands it over.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// Index of the request kind (the order of the names given to [`Recorder::new`]).
    pub kind: usize,
    /// Due time → sent (the generator's own lag).
    pub lag: Duration,
    /// Sent → end of the response body.
    pub latency: Duration,
    /// Second (since the schedule's start) the request was sent in.
    pub sent_second: u32,
    /// Second it finished in.
    pub done_second: u32,
    /// Outside the warm-up: counted in the statistics.
    pub measured: bool,
    /// How it ended.
    pub outcome: Outcome<'a>,
}

#[derive(Debug, Clone)]
struct Shard {
    kinds: Vec<KindRecord>,
    from_due: LatencyRecord,
    lag: LatencyRecord,
    late: u64,
    dropped: u64,
    seconds: Vec<Second>,
}

impl Shard {
    fn new(kinds: usize) -> Self {
        Shard {
            kinds: (0..kinds).map(|_| KindRecord::new()).collect(),
            from_due: LatencyRecord::new(),
            lag: LatencyRecord::new(),
            late: 0,
            dropped: 0,
            seconds: Vec::new(),
        }
    }

    fn second(&mut self, s: u32) -> &mut Second {
        let s = s as usize;
        if self.seconds.len() <= s {
            self.seconds.resize_with(s + 1, Second::default);
        }
        &mut self.seconds[s]
    }
}

/// The slot of the current thread, assigned on first use.
fn thread_slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    SLOT.with(|s| *s)
}

/// Recorder of one scenario, shared by all its users (see the module documentation).
pub struct Recorder {
    names: Vec<String>,
    shards: Box<[Mutex<Option<Shard>>]>,
    /// Every measured successful latency in ns, when kept ([`Recorder::keeping_raw`]).
    raw: Option<Mutex<Vec<u64>>>,
}

impl Recorder {
    /// A recorder for request kinds named `names` (index = [`Sample::kind`]), with one shard per
    /// worker thread the machine can run (twice that, so that two threads rarely share one).
    pub fn new(names: Vec<String>) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_shards(names, threads * 2)
    }

    /// A recorder with `shards` shards.
    pub fn with_shards(names: Vec<String>, shards: usize) -> Self {
        Recorder {
            names,
            shards: (0..shards.max(1)).map(|_| Mutex::new(None)).collect(),
            raw: None,
        }
    }

    /// Also keep every measured successful latency as it was measured (nanoseconds), for tests
    /// that check the histograms against the raw samples (`loadtest --raw-samples`). Costs a
    /// shared lock per request: not for real runs.
    pub fn keeping_raw(mut self) -> Self {
        self.raw = Some(Mutex::new(Vec::new()));
        self
    }

    fn with_shard<R>(&self, f: impl FnOnce(&mut Shard) -> R) -> R {
        let shard = &self.shards[thread_slot() % self.shards.len()];
        // A panic while recording leaves plain counters behind: keep using them.
        let mut guard = shard.lock().unwrap_or_else(|e| e.into_inner());
        let shard = guard.get_or_insert_with(|| Shard::new(self.names.len()));
        f(shard)
    }

    /// Record one finished request.
    pub fn record(&self, s: &Sample<'_>) {
        if let (Some(raw), true, Outcome::Ok { .. }) = (&self.raw, s.measured, s.outcome) {
            let ns = u64::try_from(s.latency.as_nanos()).unwrap_or(u64::MAX);
            raw.lock().unwrap_or_else(|e| e.into_inner()).push(ns);
        }
        self.with_shard(|shard| {
            let failed = matches!(s.outcome, Outcome::Failed { .. });
            shard.second(s.sent_second).sent += 1;
            let second = shard.second(s.done_second);
            second.answered += 1;
            if failed {
                second.errors += 1;
            } else {
                let us = (s.latency.as_micros() as u64).clamp(1, MAX_TRACKABLE_US);
                second
                    .latency_us
                    .get_or_insert_with(second_histogram)
                    .saturating_record(us);
            }
            if !s.measured {
                return;
            }
            shard.lag.record(s.lag);
            if s.lag > LATE_AFTER {
                shard.late += 1;
            }
            let kind = &mut shard.kinds[s.kind];
            match s.outcome {
                Outcome::Ok { status } => {
                    kind.ok.record(s.latency);
                    kind.status[usize::from(status).min(STATUS_SLOTS - 1)] += 1;
                    shard.from_due.record(s.lag + s.latency);
                }
                Outcome::Failed { status, error } => {
                    kind.failed.record(s.latency);
                    kind.status[usize::from(status.unwrap_or(0)).min(STATUS_SLOTS - 1)] += 1;
                    match kind.errors.get_mut(error) {
                        Some(n) => *n += 1,
                        None => {
                            kind.errors.insert(error.to_string(), 1);
                        }
                    }
                }
            }
        });
    }

    /// Record a slot that was never sent: it waited `waited` (due time → when it was dropped),
    /// which goes into the from-due-time histogram.
    pub fn record_dropped(&self, waited: Duration, measured: bool) {
        if !measured {
            return;
        }
        self.with_shard(|shard| {
            shard.dropped += 1;
            shard.from_due.record(waited);
        });
    }

    /// Merge every shard (call once the scenario is over).
    pub fn finish(&self) -> Recording {
        let mut total = Shard::new(self.names.len());
        let mut seconds: Vec<Second> = Vec::new();
        for shard in self.shards.iter() {
            let guard = shard.lock().unwrap_or_else(|e| e.into_inner());
            let Some(shard) = guard.as_ref() else {
                continue;
            };
            for (a, b) in total.kinds.iter_mut().zip(&shard.kinds) {
                a.merge(b);
            }
            total.from_due.merge(&shard.from_due);
            total.lag.merge(&shard.lag);
            total.late += shard.late;
            total.dropped += shard.dropped;
            if seconds.len() < shard.seconds.len() {
                seconds.resize_with(shard.seconds.len(), Second::default);
            }
            for (a, b) in seconds.iter_mut().zip(&shard.seconds) {
                a.sent += b.sent;
                a.answered += b.answered;
                a.errors += b.errors;
                if let Some(h) = &b.latency_us {
                    let _ = a.latency_us.get_or_insert_with(second_histogram).add(h);
                }
            }
        }
        Recording {
            kinds: self.names.iter().cloned().zip(total.kinds).collect(),
            from_due: total.from_due,
            lag: total.lag,
            late: total.late,
            dropped: total.dropped,
            timeseries: timeseries(&seconds),
            raw_ns: self
                .raw
                .as_ref()
                .map(|raw| raw.lock().unwrap_or_else(|e| e.into_inner()).clone())
                .unwrap_or_default(),
        }
    }
}

fn timeseries(seconds: &[Second]) -> Vec<TimeseriesPoint> {
    let mut in_flight: i64 = 0;
    seconds
        .iter()
        .enumerate()
        .map(|(t, s)| {
            in_flight += s.sent as i64 - s.answered as i64;
            let q = |q: f64| {
                s.latency_us
                    .as_ref()
                    .filter(|h| !h.is_empty())
                    .map(|h| h.value_at_quantile(q) as f64 / 1_000.0)
            };
            TimeseriesPoint {
                second: t as u32,
                sent_per_s: s.sent,
                answered_per_s: s.answered,
                p50_ms: q(0.5),
                p99_ms: q(0.99),
                errors: s.errors,
                in_flight: in_flight.max(0) as u64,
                queue_depth: None,
            }
        })
        .collect()
}

/// What a scenario recorded, merged.
#[derive(Debug, Clone)]
pub struct Recording {
    /// Each request kind's name and record, in the order given to [`Recorder::new`].
    pub kinds: Vec<(String, KindRecord)>,
    /// Latency from the due time: answered successful requests and dropped slots.
    pub from_due: LatencyRecord,
    /// The generator's own lag, due time → sent.
    pub lag: LatencyRecord,
    /// Requests sent more than [`LATE_AFTER`] after their due time.
    pub late: u64,
    /// Slots never sent (the generator was too far behind, or it was stopped).
    pub dropped: u64,
    /// Per-second time series of the whole run (warm-up included).
    pub timeseries: Vec<TimeseriesPoint>,
    /// Every measured successful latency in ns, when the recorder kept them (else empty).
    pub raw_ns: Vec<u64>,
}

impl Recording {
    /// Requests measured (sent outside the warm-up, answered or failed).
    #[cfg(test)]
    pub fn requests(&self) -> u64 {
        self.kinds.iter().map(|(_, k)| k.requests()).sum()
    }

    /// Failed requests measured.
    pub fn failed(&self) -> u64 {
        self.kinds.iter().map(|(_, k)| k.failed.count()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(kind: usize, ms: u64, second: u32) -> Sample<'static> {
        Sample {
            kind,
            lag: Duration::from_micros(100),
            latency: Duration::from_millis(ms),
            sent_second: second,
            done_second: second,
            measured: true,
            outcome: Outcome::Ok { status: 200 },
        }
    }

    #[test]
    fn record_keeps_exact_extremes_and_mean() {
        let mut r = LatencyRecord::new();
        for ms in [50u64, 51, 52, 53, 54] {
            r.record(Duration::from_micros(ms * 1_000 + 123));
        }
        let l = r.to_latency_ms().unwrap();
        assert_eq!(r.count(), 5);
        assert!((l.min - 50.123).abs() < 1e-9, "min {}", l.min);
        assert!((l.max - 54.123).abs() < 1e-9, "max {}", l.max);
        assert!((l.mean - 52.123).abs() < 1e-9, "mean {}", l.mean);
        assert!(l.median >= l.min && l.median <= l.max);
        assert!(l.p99.unwrap() <= l.p999.unwrap() && l.p999.unwrap() <= l.max);
    }

    #[test]
    fn merge_adds_counts_and_extremes() {
        let mut a = LatencyRecord::new();
        let mut b = LatencyRecord::new();
        a.record(Duration::from_millis(1));
        b.record(Duration::from_millis(9));
        b.record(Duration::from_millis(5));
        a.merge(&b);
        let l = a.to_latency_ms().unwrap();
        assert_eq!(a.count(), 3);
        assert_eq!((l.min, l.max, l.mean), (1.0, 9.0, 5.0));
    }

    #[test]
    fn empty_record_has_no_summary() {
        assert!(LatencyRecord::new().to_latency_ms().is_none());
        assert!(LatencyRecord::new().stored().is_none());
    }

    #[test]
    fn shards_merge_into_one_recording() {
        let r = Recorder::with_shards(vec!["GET /a".into(), "GET /b".into()], 3);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let r = &r;
                s.spawn(move || {
                    for i in 0..100u64 {
                        r.record(&ok((i % 2) as usize, 1 + t, (i / 50) as u32));
                    }
                });
            }
        });
        r.record(&Sample {
            outcome: Outcome::Failed {
                status: Some(503),
                error: "503 Service Unavailable",
            },
            ..ok(1, 2, 1)
        });
        r.record(&Sample {
            outcome: Outcome::Failed {
                status: None,
                error: "connection refused",
            },
            ..ok(1, 0, 1)
        });
        r.record_dropped(Duration::from_secs(3), true);
        r.record_dropped(Duration::from_secs(3), false);
        let rec = r.finish();
        assert_eq!(rec.requests(), 402);
        assert_eq!(rec.failed(), 2);
        assert_eq!(rec.dropped, 1);
        let (name, b) = &rec.kinds[1];
        assert_eq!(name, "GET /b");
        assert_eq!(b.ok.count(), 200);
        assert_eq!(b.failed.count(), 2);
        assert_eq!(
            b.status_codes(),
            BTreeMap::from([(0, 1), (200, 200), (503, 1)])
        );
        assert_eq!(b.errors.len(), 2);
        // Successes and the dropped slot are in the from-due-time histogram, failures are not.
        assert_eq!(rec.from_due.count(), 401);
        assert!(rec.from_due.to_latency_ms().unwrap().max >= 3_000.0);
        // Failed requests do not pull the latencies of answers down.
        assert!(b.ok.to_latency_ms().unwrap().min >= 1.0);
        // Time series: 2 seconds, everything sent was answered.
        assert_eq!(rec.timeseries.len(), 2);
        assert_eq!(
            rec.timeseries.iter().map(|p| p.sent_per_s).sum::<u64>(),
            402
        );
        assert_eq!(rec.timeseries[1].errors, 2);
        assert!(rec.timeseries.iter().all(|p| p.in_flight == 0));
    }

    #[test]
    fn warmup_requests_are_only_in_the_time_series() {
        let r = Recorder::with_shards(vec!["GET /".into()], 1);
        r.record(&Sample {
            measured: false,
            ..ok(0, 5, 0)
        });
        r.record(&ok(0, 7, 1));
        let rec = r.finish();
        assert_eq!(rec.requests(), 1);
        assert_eq!(rec.lag.count(), 1);
        assert_eq!(rec.timeseries.len(), 2);
        assert_eq!(rec.timeseries[0].sent_per_s, 1);
        assert!(rec.kinds[0].1.ok.to_latency_ms().unwrap().min >= 7.0);
    }

    #[test]
    fn in_flight_counts_requests_answered_in_a_later_second() {
        let r = Recorder::with_shards(vec!["GET /".into()], 1);
        r.record(&Sample {
            sent_second: 0,
            done_second: 2,
            ..ok(0, 2_500, 0)
        });
        let ts = r.finish().timeseries;
        let in_flight: Vec<u64> = ts.iter().map(|p| p.in_flight).collect();
        assert_eq!(in_flight, [1, 1, 0]);
        assert_eq!(ts[2].p99_ms.map(|v| v >= 2_400.0), Some(true));
    }
}
