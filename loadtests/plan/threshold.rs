//! Thresholds of a plan: `p95 < 100ms`, `p99 <= 1.5s`, `mean < 20ms`, `errors < 1%`.
//!
//! They become targets of the run's verdict (`aiops_bench::targets`), judged by the same code
//! as the targets file, where a value equal to the limit passes.

/// One threshold.
#[derive(Debug, Clone, PartialEq)]
pub enum Threshold {
    /// A latency statistic (`p95`, `p99`, `mean`, `median`) at most `max_ms`.
    Latency {
        /// The statistic's name as the targets file spells it.
        metric: &'static str,
        /// Limit in milliseconds.
        max_ms: f64,
    },
    /// Error rate at most `max_percent`.
    Errors {
        /// Limit in percent.
        max_percent: f64,
    },
}

/// Parse one threshold; the error says what is accepted.
pub fn parse(text: &str) -> Result<Threshold, String> {
    const HELP: &str = "write `<p50|median|p95|p99|mean> < <number><ms|s>` or `errors < <number>%`";
    let t = text.trim();
    let (left, right) = match t.split_once("<=").or_else(|| t.split_once('<')) {
        Some(parts) => parts,
        None => return Err(format!("{text:?} has no `<`; {HELP}")),
    };
    let left = left.trim().to_ascii_lowercase();
    let right = right.trim().to_ascii_lowercase();
    let number = |s: &str| -> Result<f64, String> {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("{text:?}: {s:?} is not a number; {HELP}"))?;
        if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(format!("{text:?}: the limit must be a number >= 0"))
        }
    };
    if left == "errors" || left == "error_rate" {
        let Some(n) = right.strip_suffix('%') else {
            return Err(format!("{text:?}: an error limit is a percentage; {HELP}"));
        };
        let max_percent = number(n)?;
        if max_percent > 100.0 {
            return Err(format!("{text:?}: a percentage is at most 100"));
        }
        return Ok(Threshold::Errors { max_percent });
    }
    let metric = match left.as_str() {
        "p95" => "p95",
        "p99" => "p99",
        "mean" => "mean",
        "median" | "p50" => "median",
        other => return Err(format!("{text:?}: unknown statistic {other:?}; {HELP}")),
    };
    let max_ms = if let Some(n) = right.strip_suffix("ms") {
        number(n)?
    } else if let Some(n) = right
        .strip_suffix("us")
        .or_else(|| right.strip_suffix("µs"))
    {
        number(n)? / 1_000.0
    } else if let Some(n) = right.strip_suffix('s') {
        number(n)? * 1_000.0
    } else {
        return Err(format!(
            "{text:?}: a latency limit needs a unit (ms or s); {HELP}"
        ));
    };
    Ok(Threshold::Latency { metric, max_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_examples_parse() {
        assert_eq!(
            parse("p95 < 100ms"),
            Ok(Threshold::Latency {
                metric: "p95",
                max_ms: 100.0
            })
        );
        assert_eq!(
            parse("errors < 1%"),
            Ok(Threshold::Errors { max_percent: 1.0 })
        );
    }

    #[test]
    fn units_and_spellings() {
        let ms = |t: &str| match parse(t).unwrap() {
            Threshold::Latency { max_ms, .. } => max_ms,
            other => panic!("{other:?}"),
        };
        assert_eq!(ms("p99 <= 1.5s"), 1500.0);
        assert_eq!(ms("P95<250 ms"), 250.0);
        assert_eq!(ms("mean < 500us"), 0.5);
        assert_eq!(
            parse("p50 < 3ms"),
            Ok(Threshold::Latency {
                metric: "median",
                max_ms: 3.0
            })
        );
        assert_eq!(
            parse("errors <= 0%"),
            Ok(Threshold::Errors { max_percent: 0.0 })
        );
    }

    #[test]
    fn mistakes_say_what_is_accepted() {
        for bad in [
            "p95 100ms",
            "p95 < 100",
            "p90 < 1ms",
            "errors < 1",
            "errors < 120%",
            "p95 < -1ms",
            "p95 < fast",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }
}
