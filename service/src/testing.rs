//! Test support shared by the test suites of the workspace (`service/tests`, `tests/`); not part
//! of the service's API.
//!
//! A test that cannot run its real subject for lack of a service (Redis, PostgreSQL) calls
//! [`skip`]. With `AIOPS_REQUIRE_REDIS=1` / `AIOPS_REQUIRE_POSTGRES=1` (as in `.ci/run`) that
//! panics, so the test fails. Otherwise it writes one line to the process's stderr:
//!
//! ```text
//! SKIP: ttl_expires: Redis not reachable at redis://127.0.0.1:1: cache backend unreachable: ...
//! ```
//!
//! and, when the test binary exits, one summary line per service and URL:
//!
//! ```text
//! 7 tests skipped: Redis not reachable at redis://127.0.0.1:1 (start it with `redis-server --daemonize yes`, or set REDIS_URL)
//! ```
//!
//! Both are written with `std::io::stderr().write_all`, which goes straight to file descriptor 2:
//! the test harness's output capture only catches the `print!`/`eprint!` family (a passing
//! test's `println!` is thrown away), so `cargo test` shows these lines whatever its capture
//! does. `service/tests/cache_redis.rs` (`skips_reach_stderr_of_the_test_process`) proves it by
//! running its own binary against a closed port. The summary is printed from an `atexit`
//! handler, which runs both when the harness returns from `main` (all passed) and when it calls
//! `process::exit(101)` (a test failed).

use std::fmt::Display;
use std::io::Write;
use std::sync::{Mutex, Once, PoisonError};

/// A service (or tool) some tests need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// Name in messages, e.g. `Redis`.
    pub name: &'static str,
    /// Environment variable that turns a skip into a failure when set to `1`.
    pub require_env: &'static str,
    /// How to make the service reachable, e.g. "start it with `...`, or set REDIS_URL".
    pub hint: &'static str,
}

/// Redis (`REDIS_URL`, default `redis://127.0.0.1:6379`; see [`redis_url`]).
pub const REDIS: Service = Service {
    name: "Redis",
    require_env: "AIOPS_REQUIRE_REDIS",
    hint: "start it with `redis-server --daemonize yes`, or set REDIS_URL",
};

/// PostgreSQL (`DATABASE_URL`).
pub const POSTGRES: Service = Service {
    name: "PostgreSQL",
    require_env: "AIOPS_REQUIRE_POSTGRES",
    hint: "start it (e.g. `sudo service postgresql start`), or set DATABASE_URL",
};

/// valgrind and gungraun-runner, for the instruction-count tests (not a service, same rule).
pub const VALGRIND: Service = Service {
    name: "valgrind",
    require_env: "AIOPS_REQUIRE_VALGRIND",
    hint: "install valgrind and gungraun-runner with .ci/install-tools",
};

/// Default Redis URL of the tests and benchmarks.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// `REDIS_URL` when set and not blank, else [`DEFAULT_REDIS_URL`].
pub fn redis_url() -> String {
    std::env::var("REDIS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_REDIS_URL.to_string())
}

/// Whether `service` is required (its `require_env` is `1`): tests fail instead of skipping.
pub fn required(service: &Service) -> bool {
    std::env::var(service.require_env).as_deref() == Ok("1")
}

/// Skips counted per (requirement, what is missing), in order of first skip, for the summary.
static SKIPS: Mutex<Vec<(Service, String, usize)>> = Mutex::new(Vec::new());
static SUMMARY_AT_EXIT: Once = Once::new();

/// The calling test cannot run its subject: `service` is not reachable at `url` (`reason`).
///
/// Panics (the test fails) when `service` is [`required`]. Otherwise writes the skip line to
/// stderr past the test harness's capture and counts it for the summary printed when the
/// process exits. The test's name is the name of the current thread (the harness names each
/// test's thread after the test); call this from the test's own thread.
#[track_caller]
pub fn skip(service: &Service, url: &str, reason: &dyn Display) {
    skip_because(
        service,
        &format!("{} not reachable at {url}", service.name),
        reason,
    );
}

/// [`skip`] for any missing requirement: `missing` says what is missing, e.g. `valgrind not
/// installed`; tests with the same `service` and `missing` share one summary line.
#[track_caller]
pub fn skip_because(service: &Service, missing: &str, reason: &dyn Display) {
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    if required(service) {
        panic!(
            "{test}: {missing}: {reason} ({}=1: failing instead of skipping; {})",
            service.require_env, service.hint
        );
    }
    {
        let mut skips = SKIPS.lock().unwrap_or_else(PoisonError::into_inner);
        match skips
            .iter_mut()
            .find(|(s, m, _)| s == service && m == missing)
        {
            Some((_, _, n)) => *n += 1,
            None => skips.push((*service, missing.to_string(), 1)),
        }
    }
    SUMMARY_AT_EXIT.call_once(|| {
        // SAFETY: `print_summary` is a plain `extern "C" fn()` that never unwinds.
        unsafe {
            libc::atexit(print_summary);
        }
    });
    to_stderr(&format!(
        "SKIP: {test}: {missing}: {reason} (set {}=1 to fail instead)\n",
        service.require_env
    ));
}

/// The summary lines of the skips so far (one per service and URL), each ending in `\n`.
pub fn summary() -> String {
    let skips = SKIPS.lock().unwrap_or_else(PoisonError::into_inner);
    skips
        .iter()
        .map(|(service, missing, n)| {
            format!(
                "{n} {} skipped: {missing} ({})\n",
                if *n == 1 { "test" } else { "tests" },
                service.hint
            )
        })
        .collect()
}

extern "C" fn print_summary() {
    // Never unwind out of an atexit handler.
    let _ = std::panic::catch_unwind(|| {
        let text = summary();
        if !text.is_empty() {
            to_stderr(&text);
        }
    });
}

/// Write to file descriptor 2 directly: not through `eprint!`, which the test harness captures.
fn to_stderr(text: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}
