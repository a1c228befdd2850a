//! Waiting for a slot's due time precisely.
//!
//! tokio's timer has a 1 ms resolution and rounds every deadline up to its next tick, so a
//! request paced by `tokio::time::sleep_until` alone starts up to ~1 ms (plus the worker's wake-up)
//! after its due time. That delay is the generator's, not the target's, yet it is counted in the
//! from-due-time latency: at 5,000 req/s it made our from-due p99 3.3x oha's on the same target.
//!
//! [`sleep_until`] splits the wait in three:
//! - more than [`COARSE_ABOVE`] away (low rates, many users): tokio's timer until
//!   `due - COARSE_MARGIN` (no entry held for long in the precise timer);
//! - then, more than [`SPIN_BELOW`] away: one OS thread, [`PreciseTimer`], sleeps to the
//!   earliest registered deadline with a nanosecond timeout (its timer slack set to 1 µs on
//!   Linux) and wakes the task whose slot is due;
//! - the last [`SPIN_BELOW`]: the task yields to the runtime until the clock reaches `due` (at
//!   high rates the next slot is usually that close, and a thread hand-off would cost more than
//!   the wait).
//!
//! Never early: every path returns only once `Instant::now() >= due`.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Waits longer than [`COARSE_ABOVE`] first sleep on tokio's (1 ms) timer until this long
/// before the due time.
pub const COARSE_MARGIN: Duration = Duration::from_millis(2);
/// Shorter waits go to the precise timer at once: a stop on tokio's timer first would cost the
/// worker thread one more wake-up per request (measured with scripts/generator-cost: 66 µs of
/// CPU per request at 5,000 req/s with a 1.5 ms margin on every wait, against 28 µs with
/// tokio's timer alone).
pub const COARSE_ABOVE: Duration = Duration::from_millis(50);
/// Waits shorter than this yield-spin on the runtime.
pub const SPIN_BELOW: Duration = Duration::from_micros(60);

/// How slots wait for their due time (`loadtest --pacing`, for measuring the generator).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pacing {
    /// tokio's timer, then the precise timer thread, then a yield-spin (the default).
    Precise,
    /// tokio's timer alone (1 ms ticks, deadlines rounded up): how the generator paced before
    /// the precise timer, kept to measure what it bought.
    Tokio,
}

static TOKIO_ONLY: AtomicBool = AtomicBool::new(false);

/// Choose the pacing for the whole process (before the run starts).
pub fn set_pacing(pacing: Pacing) {
    TOKIO_ONLY.store(pacing == Pacing::Tokio, AtomicOrdering::Relaxed);
}

/// Wait until `due`, returning no earlier and, on an idle machine, a few µs later.
pub async fn sleep_until(due: Instant) {
    let now = Instant::now();
    if due <= now {
        return;
    }
    if TOKIO_ONLY.load(AtomicOrdering::Relaxed) {
        tokio::time::sleep_until(due.into()).await;
        return;
    }
    if due - now > COARSE_ABOVE {
        tokio::time::sleep_until((due - COARSE_MARGIN).into()).await;
    }
    let now = Instant::now();
    if due > now && due - now > SPIN_BELOW {
        PreciseTimer::global().wait(due).await;
    }
    while Instant::now() < due {
        tokio::task::yield_now().await;
    }
}

struct Entry {
    due: Instant,
    seq: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
}

/// One thread that wakes registered tasks at their deadlines, with OS-timer precision.
pub struct PreciseTimer {
    queue: Mutex<Queue>,
    changed: Condvar,
}

impl PreciseTimer {
    /// The process's timer (its thread starts on first use).
    pub fn global() -> &'static PreciseTimer {
        static TIMER: OnceLock<&'static PreciseTimer> = OnceLock::new();
        TIMER.get_or_init(|| {
            let timer: &'static PreciseTimer = Box::leak(Box::new(PreciseTimer {
                queue: Mutex::new(Queue::default()),
                changed: Condvar::new(),
            }));
            std::thread::Builder::new()
                .name("aiops-pacer".into())
                .spawn(move || timer.run())
                .expect("spawn the pacing timer thread");
            timer
        })
    }

    /// Resolves at `due` or a little after (never before).
    pub async fn wait(&self, due: Instant) {
        let (wake, woken) = oneshot::channel();
        {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.seq += 1;
            let seq = q.seq;
            let earliest = q.heap.peek().is_none_or(|Reverse(top)| due < top.due);
            q.heap.push(Reverse(Entry { due, seq, wake }));
            if earliest {
                self.changed.notify_one();
            }
        }
        // The sender is only dropped after sending; a closed channel cannot happen, but the
        // caller re-checks the clock anyway.
        let _ = woken.await;
    }

    fn run(&self) {
        #[cfg(target_os = "linux")]
        // SAFETY: prctl(PR_SET_TIMERSLACK) only changes this thread's timer slack.
        unsafe {
            libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong, 0, 0, 0);
        }
        let mut due_now = Vec::new();
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            while q.heap.peek().is_some_and(|Reverse(top)| top.due <= now) {
                if let Some(Reverse(entry)) = q.heap.pop() {
                    due_now.push(entry.wake);
                }
            }
            if !due_now.is_empty() {
                drop(q);
                for wake in due_now.drain(..) {
                    let _ = wake.send(());
                }
                q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                continue;
            }
            q = match q.heap.peek() {
                None => self.changed.wait(q).unwrap_or_else(|e| e.into_inner()),
                Some(Reverse(top)) => {
                    let timeout = top.due.saturating_duration_since(now);
                    self.changed
                        .wait_timeout(q, timeout)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_early_and_in_deadline_order() {
        let start = Instant::now();
        let offsets_us = [3_000u64, 200, 900, 40, 2_500, 0, 1_200];
        let mut tasks = Vec::new();
        for us in offsets_us {
            let due = start + Duration::from_micros(us);
            tasks.push(tokio::spawn(async move {
                sleep_until(due).await;
                (due, Instant::now())
            }));
        }
        for t in tasks {
            let (due, woke) = t.await.unwrap();
            assert!(woke >= due, "woke {:?} before its due time", due - woke);
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn precise_timer_is_later_less_than_the_millisecond_tick() {
        // 300 µs waits, alternating tokio's timer and ours (A B A B in one run): tokio's
        // rounds each deadline up to its next 1 ms tick. Compared as medians of the same run.
        let mut tokio_late = Vec::new();
        let mut ours_late = Vec::new();
        for _ in 0..100 {
            let due = Instant::now() + Duration::from_micros(300);
            tokio::time::sleep_until(due.into()).await;
            tokio_late.push(Instant::now().saturating_duration_since(due));
            let due = Instant::now() + Duration::from_micros(300);
            PreciseTimer::global().wait(due).await;
            ours_late.push(Instant::now().saturating_duration_since(due));
        }
        tokio_late.sort();
        ours_late.sort();
        let (t, o) = (tokio_late[50], ours_late[50]);
        assert!(o < t, "median lateness: ours {o:?}, tokio's {t:?}");
    }
}
