//! A circuit breaker: after repeated failures of a dependency (Redis, the LLM provider) calls stop
//! going to it at once, until a probe shows it is back.
//!
//! States (the value of the `aiops_<name>_breaker_state` gauge):
//! - **closed** (0): calls go through; `failure_threshold` consecutive failures open it;
//! - **open** (1): calls are refused at once ([`CircuitBreaker::try_acquire`] returns `None`) and
//!   the caller takes its fallback; it turns half-open after `open_for` (when set) or when a health
//!   probe succeeds ([`CircuitBreaker::probe_succeeded`]);
//! - **half-open** (2): one call at a time goes through as a trial: success closes the breaker,
//!   failure opens it again. A second successful health probe also closes it.
//!
//! [`CircuitBreaker::trip`] opens it from any state (a failed health probe). Outcomes of calls that
//! started before the last state change are ignored, so a slow call that started while closed
//! cannot close a breaker opened since.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::core::Collector;
use prometheus::{IntCounter, IntGauge};
use serde::Serialize;

/// The three states, with their gauge values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// When a breaker opens and how it probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failed calls that open a closed breaker (at least 1).
    pub failure_threshold: u32,
    /// Time after which an open breaker lets one trial call through; `None`: only a successful
    /// [`CircuitBreaker::probe_succeeded`] does (a background health probe drives it).
    pub open_for: Option<Duration>,
}

/// What `/health` shows of a breaker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerStatus {
    /// `closed`, `open` or `half_open`.
    pub state: &'static str,
    /// Seconds since the last state change.
    pub since_seconds: u64,
    /// Times it opened since the start.
    pub opened_total: u64,
    /// Failed calls in a row (reset by a success).
    pub consecutive_failures: u32,
    /// Why it last failed, `null` before any failure.
    pub last_error: Option<String>,
}

struct Inner {
    state: BreakerState,
    /// Bumped on every state change; an [`Attempt`] from an older epoch reports nothing.
    epoch: u64,
    consecutive_failures: u32,
    changed_at: Instant,
    probe_in_flight: bool,
    last_error: Option<String>,
}

/// A circuit breaker; see the module documentation. Share it behind an `Arc`.
pub struct CircuitBreaker {
    config: BreakerConfig,
    inner: Mutex<Inner>,
    state_gauge: IntGauge,
    opened_total: IntCounter,
}

/// Permission for one call, from [`CircuitBreaker::try_acquire`]. Report the outcome with
/// [`Attempt::success`] or [`Attempt::failure`]; dropping it reports nothing (a trial call's slot
/// is then released for the next one).
pub struct Attempt {
    breaker: Arc<CircuitBreaker>,
    epoch: u64,
    probe: bool,
    reported: bool,
}

impl CircuitBreaker {
    /// A closed breaker exporting `aiops_<name>_breaker_state` and
    /// `aiops_<name>_breaker_opened_total`; `what` names the dependency in their help texts.
    pub fn new(
        name: &str,
        what: &str,
        config: BreakerConfig,
    ) -> Result<CircuitBreaker, prometheus::Error> {
        let state_gauge = IntGauge::new(
            format!("aiops_{name}_breaker_state"),
            format!(
                "State of the circuit breaker in front of {what}: 0 closed, 1 open, 2 half-open"
            ),
        )?;
        let opened_total = IntCounter::new(
            format!("aiops_{name}_breaker_opened_total"),
            format!("Times the circuit breaker in front of {what} opened"),
        )?;
        Ok(CircuitBreaker {
            config: BreakerConfig {
                failure_threshold: config.failure_threshold.max(1),
                ..config
            },
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                epoch: 0,
                consecutive_failures: 0,
                changed_at: Instant::now(),
                probe_in_flight: false,
                last_error: None,
            }),
            state_gauge,
            opened_total,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_state(&self, inner: &mut Inner, state: BreakerState) {
        if inner.state == state {
            return;
        }
        if state == BreakerState::Open {
            self.opened_total.inc();
        }
        inner.state = state;
        inner.epoch += 1;
        inner.changed_at = Instant::now();
        inner.probe_in_flight = false;
        if state == BreakerState::Closed {
            inner.consecutive_failures = 0;
        }
        self.state_gauge.set(state as i64);
    }

    /// Open → half-open when `open_for` has passed.
    fn advance(&self, inner: &mut Inner) {
        if inner.state == BreakerState::Open {
            if let Some(open_for) = self.config.open_for {
                if inner.changed_at.elapsed() >= open_for {
                    self.set_state(inner, BreakerState::HalfOpen);
                }
            }
        }
    }

    /// Permission for one call, or `None` when the caller must take its fallback now (open, or
    /// half-open with the trial call already running).
    pub fn try_acquire(self: &Arc<Self>) -> Option<Attempt> {
        let mut inner = self.lock();
        self.advance(&mut inner);
        let probe = match inner.state {
            BreakerState::Closed => false,
            BreakerState::Open => return None,
            BreakerState::HalfOpen if inner.probe_in_flight => return None,
            BreakerState::HalfOpen => {
                inner.probe_in_flight = true;
                true
            }
        };
        Some(Attempt {
            breaker: self.clone(),
            epoch: inner.epoch,
            probe,
            reported: false,
        })
    }

    /// Whether [`Self::try_acquire`] would give a permit now (without taking it).
    pub fn would_allow(&self) -> bool {
        let mut inner = self.lock();
        self.advance(&mut inner);
        match inner.state {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => !inner.probe_in_flight,
        }
    }

    /// When an open breaker will let a trial through by itself (`None` when closed, half-open or
    /// driven by health probes only).
    pub fn retry_at(&self) -> Option<Instant> {
        let inner = self.lock();
        match (inner.state, self.config.open_for) {
            (BreakerState::Open, Some(open_for)) => Some(inner.changed_at + open_for),
            _ => None,
        }
    }

    /// A health probe failed: open now, whatever the state.
    pub fn trip(&self, reason: impl Into<String>) {
        let mut inner = self.lock();
        inner.last_error = Some(reason.into());
        self.set_state(&mut inner, BreakerState::Open);
    }

    /// A health probe succeeded: open → half-open (the next call is the trial); half-open without
    /// a trial running → closed.
    pub fn probe_succeeded(&self) {
        let mut inner = self.lock();
        match inner.state {
            BreakerState::Open => self.set_state(&mut inner, BreakerState::HalfOpen),
            BreakerState::HalfOpen if !inner.probe_in_flight => {
                self.set_state(&mut inner, BreakerState::Closed)
            }
            _ => {}
        }
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        let mut inner = self.lock();
        self.advance(&mut inner);
        inner.state
    }

    /// What `/health` shows.
    pub fn status(&self) -> BreakerStatus {
        let mut inner = self.lock();
        self.advance(&mut inner);
        BreakerStatus {
            state: inner.state.as_str(),
            since_seconds: inner.changed_at.elapsed().as_secs(),
            opened_total: self.opened_total.get(),
            consecutive_failures: inner.consecutive_failures,
            last_error: inner.last_error.clone(),
        }
    }

    /// Times it opened so far.
    pub fn opened_total(&self) -> u64 {
        self.opened_total.get()
    }

    /// Its Prometheus metrics, to register in a registry.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        vec![
            Box::new(self.state_gauge.clone()),
            Box::new(self.opened_total.clone()),
        ]
    }
}

impl Attempt {
    /// The call succeeded: a trial closes the breaker; a call in a closed breaker resets the
    /// failure count.
    pub fn success(mut self) {
        self.reported = true;
        let breaker = self.breaker.clone();
        let mut inner = breaker.lock();
        if inner.epoch != self.epoch {
            return;
        }
        if self.probe {
            breaker.set_state(&mut inner, BreakerState::Closed);
        } else {
            inner.consecutive_failures = 0;
        }
    }

    /// The call failed because the dependency is down (timeout, refused, 5xx...): a trial opens
    /// the breaker again; in a closed breaker the threshold-th failure in a row opens it.
    pub fn failure(mut self, reason: impl Into<String>) {
        self.reported = true;
        let breaker = self.breaker.clone();
        let mut inner = breaker.lock();
        inner.last_error = Some(reason.into());
        if inner.epoch != self.epoch {
            return;
        }
        inner.consecutive_failures = inner.consecutive_failures.saturating_add(1);
        if self.probe || inner.consecutive_failures >= breaker.config.failure_threshold {
            breaker.set_state(&mut inner, BreakerState::Open);
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if self.reported || !self.probe {
            return;
        }
        let mut inner = self.breaker.lock();
        if inner.epoch == self.epoch {
            inner.probe_in_flight = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, open_for: Option<Duration>) -> Arc<CircuitBreaker> {
        Arc::new(
            CircuitBreaker::new(
                "test",
                "a test dependency",
                BreakerConfig {
                    failure_threshold: threshold,
                    open_for,
                },
            )
            .unwrap(),
        )
    }

    #[test]
    fn opens_after_the_threshold_and_refuses_calls() {
        let b = breaker(3, None);
        b.try_acquire().unwrap().failure("down");
        b.try_acquire().unwrap().failure("down");
        assert_eq!(b.state(), BreakerState::Closed);
        b.try_acquire().unwrap().failure("down");
        assert_eq!(b.state(), BreakerState::Open);
        assert!(b.try_acquire().is_none());
        assert!(!b.would_allow());
        assert_eq!(b.opened_total(), 1);
        assert_eq!(b.status().last_error.as_deref(), Some("down"));
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let b = breaker(2, None);
        b.try_acquire().unwrap().failure("down");
        b.try_acquire().unwrap().success();
        b.try_acquire().unwrap().failure("down");
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn probe_then_trial_success_closes() {
        let b = breaker(1, None);
        b.trip("ping failed");
        assert_eq!(b.state(), BreakerState::Open);
        b.probe_succeeded();
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let trial = b.try_acquire().expect("one trial");
        assert!(b.try_acquire().is_none(), "only one trial at a time");
        trial.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.try_acquire().is_some());
    }

    #[test]
    fn failed_trial_reopens_and_dropped_trial_frees_the_slot() {
        let b = breaker(1, None);
        b.trip("x");
        b.probe_succeeded();
        drop(b.try_acquire().expect("trial"));
        let trial = b.try_acquire().expect("slot released by the drop");
        trial.failure("still down");
        assert_eq!(b.state(), BreakerState::Open);
        assert_eq!(b.opened_total(), 2);
    }

    #[test]
    fn two_good_probes_close_without_traffic() {
        let b = breaker(1, None);
        b.trip("x");
        b.probe_succeeded();
        b.probe_succeeded();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn open_for_turns_half_open_by_itself() {
        let b = breaker(1, Some(Duration::from_millis(20)));
        b.try_acquire().unwrap().failure("x");
        assert!(b.try_acquire().is_none());
        assert!(b.retry_at().is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.would_allow());
        b.try_acquire().expect("trial").success();
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn stale_outcomes_are_ignored() {
        let b = breaker(1, None);
        let slow = b.try_acquire().unwrap();
        b.trip("ping failed");
        slow.success();
        assert_eq!(
            b.state(),
            BreakerState::Open,
            "a call from before the trip cannot close it"
        );
    }
}
