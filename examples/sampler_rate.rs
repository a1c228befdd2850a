//! Study: how many samples the in-process sampler (benches/sampler.rs) takes per CPU second.
//! THREADS threads each alternate BUSY_US of computation and SLEEP_US of sleep for SECS seconds
//! while pprof samples at HZ; prints samples kept, the process's CPU time, and their ratio.
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

#[inline(never)]
fn busy(us: u64) {
    let end = Instant::now() + Duration::from_micros(us);
    let mut x = 1u64;
    while Instant::now() < end {
        for i in 0..200u64 {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
    }
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
    let guard = sampler::start(hz).expect("pprof starts");
    let cpu0 = process_cpu();
    let stop = Instant::now() + Duration::from_secs(secs);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                while Instant::now() < stop {
                    busy(busy_us);
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
    let report = guard.report().build().expect("report");
    let stacks = sampler::folded(&report);
    let samples: u64 = stacks.values().sum();
    let in_busy: u64 = stacks
        .iter()
        .filter(|(k, _)| k.contains("busy"))
        .map(|(_, v)| v)
        .sum();
    println!(
        "threads {threads} busy {busy_us} us sleep {sleep_us} us: cpu {:.3} s, samples {samples} ({in_busy} in busy), {:.0} per CPU second",
        cpu.as_secs_f64(),
        samples as f64 / cpu.as_secs_f64()
    );
}
