//! Calibrated slowdown injection, for proving that a regression gate fires on a slowdown of a
//! known size (and only then). Never on by default: it is compiled in only with the `inject`
//! feature (benchmark and test builds of this workspace turn it on) and acts only when
//! `AIOPS_INJECT_SLOWDOWN` is set. Without the feature every call here is an empty inline
//! function; with it and the variable unset, one initialised-once load and a branch.
//!
//! `AIOPS_INJECT_SLOWDOWN` is a comma-separated list of rules, one per site:
//!
//! - `SITE:PCT`: every operation at SITE takes PCT percent longer, for example
//!   `webhook.parse:5`: a busy loop for PCT % of the operation's own time. An operation of 2 µs
//!   or more is timed itself (less the guard's two clock reads); a shorter one gets PCT % of a
//!   running estimate of the site's median operation time, from one operation in 128 timed, as a
//!   calibrated loop with no clock read (timing each would add about 75 ns to a 200 ns read);
//! - `SITE:tail:EVERY:MICROS`: every EVERY-th operation at SITE takes MICROS µs longer (busy
//!   loop), the others are untouched, for example `webhook.parse:tail:20:1000`.
//!
//! Sites: `webhook.parse`, `webhook.verify`, `cache.get` (every cache backend, so a Redis round
//! trip with Redis), `agent.triage`, `http.request` (every request the API router answers).
//! A malformed value panics at the first instrumented operation with a message naming the
//! variable, so a study never runs silently without its injection.
//!
//! `AIOPS_INJECT_LEAK_BYTES=N` (same feature, same rule) is a memory leak of a known size: every
//! request the API router answers keeps N bytes (written, so they are resident) forever, for
//! proving the leak verdict of `loadtest --soak` from both sides. N is a whole number from 1 to
//! 16 MiB.

/// An instrumented place in the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// `webhook::parse`.
    WebhookParse,
    /// `webhook::verify`.
    WebhookVerify,
    /// `Cache::get` of every backend.
    CacheGet,
    /// `Agent::triage`.
    AgentTriage,
    /// One HTTP request through the API router.
    HttpRequest,
}

impl Site {
    /// Every site, in the order of [`Site::name`]'s table.
    pub const ALL: [Site; 5] = [
        Site::WebhookParse,
        Site::WebhookVerify,
        Site::CacheGet,
        Site::AgentTriage,
        Site::HttpRequest,
    ];

    /// The name used in `AIOPS_INJECT_SLOWDOWN`.
    pub fn name(self) -> &'static str {
        match self {
            Site::WebhookParse => "webhook.parse",
            Site::WebhookVerify => "webhook.verify",
            Site::CacheGet => "cache.get",
            Site::AgentTriage => "agent.triage",
            Site::HttpRequest => "http.request",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The environment variable that turns injection on.
pub const ENV: &str = "AIOPS_INJECT_SLOWDOWN";

/// What to do at one site.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// Every operation `pct` percent longer.
    Proportional {
        /// Extra time as a percentage of the operation's own time.
        pct: f64,
    },
    /// Every `every`-th operation `micros` µs longer.
    Tail {
        /// Period in operations (≥ 1).
        every: u64,
        /// Extra time in microseconds.
        micros: u64,
    },
}

/// Parse a value of `AIOPS_INJECT_SLOWDOWN` into one optional rule per site (indexed as
/// [`Site::ALL`]).
pub fn parse(spec: &str) -> Result<[Option<Rule>; 5], String> {
    let mut rules = [None; 5];
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let fields: Vec<&str> = part.split(':').collect();
        let site = Site::ALL
            .into_iter()
            .find(|s| s.name() == fields[0])
            .ok_or_else(|| {
                format!(
                    "{ENV}: unknown site '{}' in '{part}' (sites: {})",
                    fields[0],
                    Site::ALL.map(Site::name).join(", ")
                )
            })?;
        let rule = match fields[1..] {
            [pct] => {
                let pct: f64 = pct
                    .parse()
                    .ok()
                    .filter(|p: &f64| p.is_finite() && *p > 0.0 && *p <= 10_000.0)
                    .ok_or_else(|| {
                        format!("{ENV}: '{part}': the percentage must be a number in (0, 10000]")
                    })?;
                Rule::Proportional { pct }
            }
            ["tail", every, micros] => {
                let every: u64 = every.parse().ok().filter(|e| *e >= 1).ok_or_else(|| {
                    format!("{ENV}: '{part}': EVERY must be a whole number of at least 1")
                })?;
                let micros: u64 = micros.parse().ok().filter(|m| *m >= 1).ok_or_else(|| {
                    format!("{ENV}: '{part}': MICROS must be a whole number of at least 1")
                })?;
                Rule::Tail { every, micros }
            }
            _ => {
                return Err(format!(
                    "{ENV}: '{part}' is neither SITE:PCT nor SITE:tail:EVERY:MICROS"
                ))
            }
        };
        if rules[site.index()].replace(rule).is_some() {
            return Err(format!("{ENV}: site '{}' is given twice", site.name()));
        }
    }
    Ok(rules)
}

#[cfg(feature = "inject")]
mod active {
    use super::{parse, Rule, Site, ENV};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    static RULES: OnceLock<[Option<Rule>; 5]> = OnceLock::new();
    static COUNTERS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];
    /// Per site, the running estimate of the median operation's own time in ns (`f64` bits;
    /// 0: none yet), from the operations that are timed.
    static OWN_NS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

    /// Operations at least this long (by the running estimate) are each timed, and each gets
    /// PCT % of its own time: two clock reads are small beside them.
    const TIME_EVERY_OP_FROM_NS: f64 = 2_000.0;
    /// Shorter ones are timed one in this many, and every one gets PCT % of the running
    /// estimate: timing each of them would itself make a 200 ns cache read 40 % slower (two
    /// clock reads and the guard's check, about 75 ns here), so a `cache.get:5` measured +50 %.
    /// One in 128 stays under 1 % of the operations, so the timed ones' extra clock reads do
    /// not reach the p99 either.
    const SAMPLE_EVERY: u64 = 128;
    /// Step of the running estimate: it moves by this fraction of itself towards each timing,
    /// up or down, so it settles on the *median* operation time (within about 3 %), whatever the
    /// tail: a mean would follow a 200 ns cache read's rare 50 µs preemptions and inject 10 % to
    /// 50 % instead of 5 % (measured: `scripts/results/gate-study-2026-12-04-s5/NOTES.md`).
    const MEDIAN_STEP: f64 = 1.0 / 32.0;

    /// Whether operation `n` of a site is timed: one in [`SAMPLE_EVERY`], spread by a hash of
    /// `n` rather than every 128th. A benchmark runs its operations in batches of a power of two,
    /// so every 128th would always be the same place in a batch: on `cache/read/memory_1kb` that
    /// place was a slow one, the estimate settled above 2 µs and every read was timed (+42 %).
    fn sampled(n: u64) -> bool {
        (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32).is_multiple_of(SAMPLE_EVERY)
    }

    fn rules() -> &'static [Option<Rule>; 5] {
        RULES.get_or_init(|| match std::env::var(ENV) {
            Ok(spec) => match parse(&spec) {
                Ok(rules) => {
                    clock_read();
                    spins_per_ns();
                    eprintln!("aiops-service: {ENV}={spec}: slowdown injection is ON");
                    rules
                }
                Err(e) => panic!("{e}"),
            },
            Err(_) => [None; 5],
        })
    }

    fn spin_until(until: Instant) {
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }

    /// What one clock read costs (`Instant::now` then `elapsed`, the median of many): a timed
    /// operation's measured time includes one, and the guard's own work about two more.
    fn clock_read() -> Duration {
        static COST: OnceLock<Duration> = OnceLock::new();
        *COST.get_or_init(|| {
            let mut samples: Vec<Duration> = (0..2001)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(Instant::now());
                    t.elapsed()
                })
                .collect();
            samples.sort();
            samples[samples.len() / 2] / 2
        })
    }

    /// Iterations of [`spin_iterations`]'s loop per nanosecond: the fastest of 21 timed runs
    /// (a run slowed by another process would make every later slowdown too small).
    fn spins_per_ns() -> f64 {
        static RATE: OnceLock<f64> = OnceLock::new();
        *RATE.get_or_init(|| {
            const N: u64 = 200_000;
            let best = (0..21)
                .map(|_| {
                    let t = Instant::now();
                    spin_iterations(N);
                    t.elapsed()
                })
                .min()
                .expect("21 runs");
            N as f64 / (best.as_nanos().max(1) as f64)
        })
    }

    /// Busy work of `n` iterations with no clock read.
    #[inline(never)]
    fn spin_iterations(n: u64) {
        let mut x = 0u64;
        for i in 0..n {
            x = std::hint::black_box(x.wrapping_add(i));
        }
        std::hint::black_box(x);
    }

    /// `ns` nanoseconds of busy work: by the clock from 1 µs on, below by calibrated iterations.
    fn spin_ns(ns: f64) {
        if ns >= 1_000.0 {
            spin_until(Instant::now() + Duration::from_nanos(ns as u64));
        } else if ns > 0.0 {
            spin_iterations((ns * spins_per_ns()).round() as u64);
        }
    }

    /// Times one operation at a site; the extra work happens when it is dropped.
    #[must_use = "the slowdown is applied when the guard is dropped at the end of the operation"]
    pub struct Guard {
        armed: Option<(Rule, usize, Option<Instant>, u64)>,
    }

    /// Start one operation at `site`.
    #[inline]
    pub fn start(site: Site) -> Guard {
        let armed = rules()[site.index()].map(|rule| {
            let i = site.index();
            let n = COUNTERS[i].fetch_add(1, Ordering::Relaxed) + 1;
            let timed = match rule {
                Rule::Proportional { .. } => {
                    let own = f64::from_bits(OWN_NS[i].load(Ordering::Relaxed));
                    own == 0.0 || own >= TIME_EVERY_OP_FROM_NS || sampled(n)
                }
                Rule::Tail { .. } => false,
            };
            (rule, i, timed.then(Instant::now), n)
        });
        Guard { armed }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            match self.armed {
                None => {}
                Some((Rule::Proportional { pct }, i, started, _)) => {
                    let mut own = f64::from_bits(OWN_NS[i].load(Ordering::Relaxed));
                    if let Some(started) = started {
                        let measured =
                            started.elapsed().saturating_sub(clock_read()).as_nanos() as f64;
                        own = if own == 0.0 {
                            measured
                        } else if measured > own {
                            own * (1.0 + MEDIAN_STEP)
                        } else {
                            own * (1.0 - MEDIAN_STEP)
                        };
                        OWN_NS[i].store(own.to_bits(), Ordering::Relaxed);
                        if own >= TIME_EVERY_OP_FROM_NS {
                            // Long operations: PCT % of this one's own time, less the two
                            // clock reads the guard added to it, spun by the clock (the
                            // calibrated loop made a 6 µs parse 6 % to 9 % slower, not 5 %:
                            // `scripts/results/gate-study-2026-12-04-s5/NOTES.md`).
                            let guard = 2.0 * clock_read().as_nanos() as f64;
                            let extra = measured * pct / 100.0 - guard;
                            if extra > 0.0 {
                                spin_until(Instant::now() + Duration::from_nanos(extra as u64));
                            }
                            return;
                        }
                    }
                    spin_ns(own * pct / 100.0);
                }
                Some((Rule::Tail { every, micros }, _, _, n)) if n % every == 0 => {
                    spin_until(Instant::now() + Duration::from_micros(micros));
                }
                Some((Rule::Tail { .. }, _, _, _)) => {}
            }
        }
    }
}

/// The environment variable of the leak injector.
pub const LEAK_ENV: &str = "AIOPS_INJECT_LEAK_BYTES";

/// Most bytes the leak injector may keep per request.
pub const MAX_LEAK_BYTES: usize = 16 << 20;

/// Parse a value of `AIOPS_INJECT_LEAK_BYTES`: bytes kept per request.
pub fn parse_leak(spec: &str) -> Result<usize, String> {
    spec.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_LEAK_BYTES).contains(n))
        .ok_or_else(|| {
            format!(
                "{LEAK_ENV}={spec:?}: expected a whole number of bytes from 1 to {MAX_LEAK_BYTES}"
            )
        })
}

#[cfg(feature = "inject")]
mod leak {
    use super::{parse_leak, LEAK_ENV};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Mutex, OnceLock};

    static BYTES: OnceLock<usize> = OnceLock::new();
    static KEPT: Mutex<Vec<Box<[u8]>>> = Mutex::new(Vec::new());
    static LEAKED: AtomicU64 = AtomicU64::new(0);

    fn bytes() -> usize {
        *BYTES.get_or_init(|| match std::env::var(LEAK_ENV) {
            Ok(spec) => match parse_leak(&spec) {
                Ok(n) => {
                    eprintln!(
                        "aiops-service: {LEAK_ENV}={spec}: leak injection is ON ({n} bytes kept per request, forever)"
                    );
                    n
                }
                Err(e) => panic!("{e}"),
            },
            Err(_) => 0,
        })
    }

    /// Keep the configured number of bytes forever (nothing when the variable is unset).
    #[inline]
    pub fn leak_request() {
        let n = bytes();
        if n == 0 {
            return;
        }
        let seq = LEAKED.fetch_add(n as u64, Ordering::Relaxed);
        // Written (not zeroed pages the kernel may not back yet), so it is resident memory.
        let kept = vec![(seq as u8) | 1; n].into_boxed_slice();
        KEPT.lock().unwrap_or_else(|e| e.into_inner()).push(kept);
    }

    /// Bytes kept so far.
    pub fn leaked_bytes() -> u64 {
        LEAKED.load(Ordering::Relaxed)
    }
}

#[cfg(feature = "inject")]
pub use leak::{leak_request, leaked_bytes};

/// Without the `inject` feature: nothing at all.
#[cfg(not(feature = "inject"))]
#[inline(always)]
pub fn leak_request() {}

/// Without the `inject` feature: nothing is ever kept.
#[cfg(not(feature = "inject"))]
pub fn leaked_bytes() -> u64 {
    0
}

#[cfg(feature = "inject")]
pub use active::{start, Guard};

/// Without the `inject` feature: nothing at all.
#[cfg(not(feature = "inject"))]
pub struct Guard;

/// Without the `inject` feature: nothing at all.
#[cfg(not(feature = "inject"))]
#[inline(always)]
pub fn start(_site: Site) -> Guard {
    Guard
}

/// Whether this build can inject slowdowns (the `inject` feature).
pub const COMPILED_IN: bool = cfg!(feature = "inject");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proportional_and_tail_rules() {
        let rules = parse("webhook.parse:5, cache.get:tail:20:1000").unwrap();
        assert_eq!(rules[0], Some(Rule::Proportional { pct: 5.0 }));
        assert_eq!(
            rules[2],
            Some(Rule::Tail {
                every: 20,
                micros: 1000
            })
        );
        assert_eq!(rules[1], None);
        assert_eq!(parse("").unwrap(), [None; 5]);
    }

    #[test]
    fn leak_sizes_are_whole_bytes_within_bounds() {
        assert_eq!(parse_leak("1024"), Ok(1024));
        assert_eq!(parse_leak(" 1 "), Ok(1));
        for bad in ["0", "-1", "1k", "", "16777217"] {
            let e = parse_leak(bad).unwrap_err();
            assert!(e.starts_with(LEAK_ENV), "{bad}: {e}");
        }
    }

    #[cfg(feature = "inject")]
    #[test]
    fn the_leak_is_off_without_the_variable() {
        // The test process never sets AIOPS_INJECT_LEAK_BYTES.
        if std::env::var_os(LEAK_ENV).is_none() {
            leak_request();
            assert_eq!(leaked_bytes(), 0);
        }
    }

    #[test]
    fn refuses_bad_rules_naming_them() {
        for bad in [
            "webhook.parsed:5",
            "webhook.parse:-5",
            "webhook.parse:NaN",
            "webhook.parse:tail:0:10",
            "webhook.parse:tail:5",
            "webhook.parse:5,webhook.parse:6",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with(ENV), "{bad}: {err}");
        }
    }
}
