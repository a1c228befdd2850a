//! Study: how many samples the in-process sampler (benches/sampler.rs) takes per CPU second, and
//! what sampling costs. THREADS threads each run SECS x 1e6 / (BUSY_US + SLEEP_US) bursts of a
//! fixed amount of computation (calibrated to BUSY_US unsampled) with SLEEP_US of sleep after
//! each, while the sampler runs at HZ (0: no sampler); prints the samples kept, the process's
//! CPU time and the samples per CPU second. The same work at HZ 0 and HZ N, alternated, gives
//! the CPU cost of sampling (scripts/sampler-overhead).
//!
//! `cargo run --release --example sampler_rate -- [THREADS] [BUSY_US] [SLEEP_US] [SECS] [HZ]`
#[allow(dead_code)] // the study uses the sampler, not its output helpers
#[path = "../benches/sampler.rs"]
mod sampler;

use std::time::{Duration, Instant};

fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// A fixed amount of computation: `rounds` x 200 multiply-adds.
#[inline(never)]
fn busy(rounds: u64) {
    let mut x = 1u64;
    for _ in 0..rounds {
        for i in 0..200u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
}

/// Rounds of [`busy`] that take `us` microseconds on this machine (unsampled).
fn calibrate(us: u64) -> u64 {
    let probe = 20_000;
    let t = Instant::now();
    busy(probe);
    let per_round = t.elapsed().as_secs_f64() / probe as f64;
    ((us as f64 * 1e-6) / per_round).max(1.0) as u64
}

fn main() {
    let a: Vec<u64> = std::env::args()
        .skip(1)
        .map(|v| v.parse().expect("a number"))
        .collect();
    let threads = *a.first().unwrap_or(&2);
    let busy_us = *a.get(1).unwrap_or(&200);
    let sleep_us = *a.get(2).unwrap_or(&2000);
    let secs = *a.get(3).unwrap_or(&3);
    let hz = *a.get(4).unwrap_or(&997) as i32;
    let rounds = calibrate(busy_us);
    let bursts = secs * 1_000_000 / (busy_us + sleep_us).max(1);
    let guard = (hz > 0).then(|| sampler::start(hz).expect("pprof starts"));
    let cpu0 = process_cpu();
    let wall = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..bursts {
                    busy(rounds);
                    if sleep_us > 0 {
                        std::thread::sleep(Duration::from_micros(sleep_us));
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let cpu = process_cpu() - cpu0;
    let wall = wall.elapsed();
    let Some(guard) = guard else {
        println!(
            "hz 0 threads {threads} busy {busy_us} us sleep {sleep_us} us: cpu {:.3} s, wall {:.3} s, samples 0",
            cpu.as_secs_f64(),
            wall.as_secs_f64()
        );
        return;
    };
    let report = guard.finish().expect("report");
    let stacks = sampler::folded(&report);
    let samples: u64 = stacks.values().sum();
    let in_busy: u64 = stacks
        .iter()
        .filter(|(k, _)| k.contains("busy"))
        .map(|(_, v)| v)
        .sum();
    if std::env::var_os("AIOPS_SAMPLER_SHOW").is_some() {
        let mut other: Vec<_> = stacks.iter().filter(|(k, _)| !k.contains("busy")).collect();
        other.sort_by(|a, b| b.1.cmp(a.1));
        for (k, v) in other.iter().take(8) {
            let tail: Vec<&str> = k.rsplit(';').take(4).collect();
            println!("  {v:5}  ... {}", tail.join(" <- "));
        }
    }
    println!(
        "hz {hz} threads {threads} busy {busy_us} us sleep {sleep_us} us: cpu {:.3} s, wall {:.3} s, samples {samples} ({in_busy} in busy), {:.0} per CPU second",
        cpu.as_secs_f64(),
        wall.as_secs_f64(),
        samples as f64 / cpu.as_secs_f64()
    );
}
