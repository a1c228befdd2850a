//! `--slo 'ttft<500ms,tpot<50ms'`: the bounds a request must meet to count as goodput.

use std::time::Duration;

/// One bound, `< limit` or `<= limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// The limit.
    pub limit: Duration,
    /// `<=` (true) or `<` (false).
    pub inclusive: bool,
}

impl Bound {
    fn met(&self, value: Duration) -> bool {
        if self.inclusive {
            value <= self.limit
        } else {
            value < self.limit
        }
    }
}

/// The service-level objective of goodput: bounds on TTFT, TPOT and end-to-end latency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slo {
    /// As given.
    pub text: String,
    /// Time to first token, counted from the request's due time.
    pub ttft: Option<Bound>,
    /// Time per output token after the first chunk.
    pub tpot: Option<Bound>,
    /// End to end, counted from the request's due time.
    pub e2e: Option<Bound>,
}

/// The default `--slo`.
pub const DEFAULT: &str = "ttft<500ms,tpot<50ms";

const HELP: &str = "expected comma-separated bounds such as 'ttft<500ms,tpot<50ms' (keys ttft, tpot, e2e; operators < and <=; units us, ms, s)";

fn duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("us").or_else(|| text.strip_suffix("µs")) {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else {
        return None;
    };
    let value: f64 = number.trim().parse().ok()?;
    (value.is_finite() && value > 0.0 && value * scale < 86_400.0)
        .then(|| Duration::from_secs_f64(value * scale))
}

impl Slo {
    /// Parse `--slo`.
    pub fn parse(text: &str) -> Result<Slo, String> {
        let mut slo = Slo {
            text: text.trim().to_string(),
            ttft: None,
            tpot: None,
            e2e: None,
        };
        for part in text.split(',').map(str::trim) {
            if part.is_empty() {
                return Err(format!("invalid --slo {text:?}: an empty bound; {HELP}"));
            }
            let (key, inclusive, value) = if let Some((k, v)) = part.split_once("<=") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('<') {
                (k, false, v)
            } else {
                return Err(format!("invalid --slo bound {part:?}: no < or <=; {HELP}"));
            };
            let limit = duration(value).ok_or_else(|| {
                format!(
                    "invalid --slo bound {part:?}: {value:?} is not a positive duration; {HELP}"
                )
            })?;
            let slot = match key.trim() {
                "ttft" => &mut slo.ttft,
                "tpot" => &mut slo.tpot,
                "e2e" => &mut slo.e2e,
                other => {
                    return Err(format!(
                        "invalid --slo bound {part:?}: unknown key {other:?}; {HELP}"
                    ))
                }
            };
            if slot.is_some() {
                return Err(format!(
                    "invalid --slo {text:?}: {} is bounded twice; keep one bound per key",
                    key.trim()
                ));
            }
            *slot = Some(Bound { limit, inclusive });
        }
        Ok(slo)
    }

    /// Whether an answered request meets every bound. `tpot` is `None` for an answer in a
    /// single chunk: no token after the first to time, so the TPOT bound does not apply.
    pub fn met(&self, ttft: Duration, tpot: Option<Duration>, e2e: Duration) -> bool {
        self.ttft.is_none_or(|b| b.met(ttft))
            && self.tpot.is_none_or(|b| tpot.is_none_or(|t| b.met(t)))
            && self.e2e.is_none_or(|b| b.met(e2e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn default_parses_and_judges_both_sides() {
        let slo = Slo::parse(DEFAULT).unwrap();
        assert_eq!(
            slo.ttft,
            Some(Bound {
                limit: MS(500),
                inclusive: false
            })
        );
        assert_eq!(slo.tpot.unwrap().limit, MS(50));
        assert!(slo.e2e.is_none());
        assert!(slo.met(MS(499), Some(MS(49)), MS(9_000)));
        assert!(!slo.met(MS(500), Some(MS(49)), MS(900)));
        assert!(!slo.met(MS(100), Some(MS(50)), MS(900)));
        // A one-chunk answer has no TPOT: only the TTFT bound applies.
        assert!(slo.met(MS(100), None, MS(100)));
    }

    #[test]
    fn units_inclusive_bounds_and_e2e() {
        let slo = Slo::parse(" ttft<=0.5s , e2e<2s,tpot<20000us").unwrap();
        assert!(slo.met(MS(500), Some(MS(19)), MS(1_999)));
        assert!(!slo.met(MS(500), Some(MS(19)), MS(2_000)));
        assert!(!slo.met(MS(500), Some(MS(20)), MS(100)));
    }

    #[test]
    fn bad_slos_name_the_problem() {
        for (bad, says) in [
            ("", "empty"),
            ("ttft<500", "not a positive duration"),
            ("ttft>500ms", "no <"),
            ("itl<5ms", "unknown key"),
            ("ttft<1s,ttft<2s", "twice"),
            ("ttft<-1ms", "not a positive"),
        ] {
            let e = Slo::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
