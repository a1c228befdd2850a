//! `aiops-bench`: collect benchmark results into one format, keep baselines, compare runs
//! against them without crying wolf, check the spec's targets and export for other tools.
//!
//! Exit codes: 0 ok, 1 regression or target missed, 2 bad input, 3 inconclusive (compare).
//! Each subcommand lives in its own module under `src/cli/`.

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(2)
        }
    }
}
