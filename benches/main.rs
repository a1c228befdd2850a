//! The criterion suite over the reference service's real components: `cargo bench`.
//!
//! One harness, one module per component; every benchmark is named `component/operation/variant`
//! (criterion group `component`, function id `operation/variant`):
//! `cache/*` (cache.rs), `agent/*` (agent.rs), `webhook/*` (webhook.rs), `concurrency/*`
//! (concurrency.rs), `db/*` (db.rs), `workflow/*` (workflow.rs).
//!
//! Run modes: `cargo bench --bench main` (full, under 10 minutes on 2 cores),
//! `-- --quick` (under 2 minutes), `-- --test` (each benchmark once, CI smoke, writes no
//! sidecar), `-- --list`, and a name filter (`-- cache/read`).
//!
//! `aiops-bench ab` runs this harness in its A/B mode (`AIOPS_AB=1`, see `ab.rs`): no
//! criterion, each benchmark in slices on the driver's command.
//!
//! Beside criterion's estimates, each benchmark writes a per-operation latency sidecar
//! (HDR histogram, min/mean/median/p95/p99/max and grouped errors) into criterion's own folder
//! of each baseline the run saves: `target/criterion/<component>/<operation>_<variant>/new/
//! aiops-latency.json` and the same under `base/` (or `NAME/` with `--save-baseline NAME`);
//! `--baseline NAME` prints the per-operation change against NAME's (see
//! `aiops_bench::sidecar` and support.rs); `aiops-bench collect [--baseline NAME]` merges both.

use criterion::{criterion_group, Criterion};

mod ab;
mod agent;
mod cache;
mod concurrency;
mod db;
mod profile;
mod sampler;
mod support;
mod webhook;
mod workflow;

fn config() -> Criterion {
    // 20k bootstrap resamples instead of 100k: the confidence intervals barely move and the
    // analysis of ~40 benchmarks stays within the time budget on 2 cores.
    // `--profile-time`: flamegraphs and folded stacks per benchmark (profile.rs).
    Criterion::default()
        .nresamples(20_000)
        .with_profiler(profile::FlameProfiler::default())
}

criterion_group! {
    name = suite;
    config = config();
    targets = cache::benches, agent::benches, webhook::benches, concurrency::benches, db::benches,
        workflow::benches
}

// `criterion_main!(suite)`, plus the A/B mode of `aiops-bench ab` (see ab.rs).
fn main() {
    if ab::requested() {
        ab::hello();
        suite();
        ab::done();
        return;
    }
    suite();
    Criterion::default().configure_from_args().final_summary();
}
