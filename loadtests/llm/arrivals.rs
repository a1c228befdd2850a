//! Open-model arrivals of `loadtest --only llm`: the due time of every request, fixed before
//! the run starts (so no response can move a later request).

use std::time::Duration;

/// Arrival process (`--arrival`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Arrival {
    /// Request i is due at i / rate.
    Constant,
    /// Exponential gaps with mean 1 / rate (a Poisson process), from a seeded generator: the
    /// same seed gives the same schedule.
    Poisson,
}

impl Arrival {
    /// `constant` or `poisson`.
    pub fn as_str(self) -> &'static str {
        match self {
            Arrival::Constant => "constant",
            Arrival::Poisson => "poisson",
        }
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut x = *state;
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Due times (offsets from the start) of every request in `[0, length)` at `rps` per second.
pub fn offsets(arrival: Arrival, rps: u64, length: Duration, seed: u64) -> Vec<Duration> {
    let rps = rps.max(1) as f64;
    let length = length.as_secs_f64();
    match arrival {
        Arrival::Constant => {
            let n = (rps * length).round() as u64;
            (0..n)
                .map(|i| Duration::from_secs_f64(i as f64 / rps))
                .collect()
        }
        Arrival::Poisson => {
            let mut state = seed;
            let mut t = 0.0f64;
            let mut out = Vec::with_capacity((rps * length * 1.1) as usize + 8);
            loop {
                // Uniform in (0, 1]: never ln(0).
                let u = ((splitmix64(&mut state) >> 11) + 1) as f64 / (1u64 << 53) as f64;
                t += -u.ln() / rps;
                if t >= length {
                    return out;
                }
                out.push(Duration::from_secs_f64(t));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_is_exact() {
        let o = offsets(Arrival::Constant, 5, Duration::from_secs(10), 0);
        assert_eq!(o.len(), 50);
        assert_eq!(o[0], Duration::ZERO);
        assert_eq!(o[49], Duration::from_millis(9_800));
    }

    #[test]
    fn poisson_has_the_mean_rate_exponential_gaps_and_is_seeded() {
        let o = offsets(Arrival::Poisson, 100, Duration::from_secs(200), 7);
        // 20,000 expected; the standard deviation is 141.
        assert!((19_400..=20_600).contains(&o.len()), "{}", o.len());
        assert!(o.windows(2).all(|w| w[0] <= w[1]));
        let gaps: Vec<f64> = o.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        // Exponential: the standard deviation equals the mean, and P(gap > mean) = 1/e.
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!((sd / mean - 1.0).abs() < 0.05, "sd/mean {}", sd / mean);
        let above = gaps.iter().filter(|g| **g > mean).count() as f64 / gaps.len() as f64;
        assert!((above - (-1.0f64).exp()).abs() < 0.02, "{above}");
        assert_eq!(
            o,
            offsets(Arrival::Poisson, 100, Duration::from_secs(200), 7)
        );
        assert_ne!(
            o,
            offsets(Arrival::Poisson, 100, Duration::from_secs(200), 8)
        );
    }
}
