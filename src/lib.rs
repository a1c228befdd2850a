//! `aiops_bench`: one result format for criterion and Goose output, baselines and a regression
//! gate that does not cry wolf.

pub mod ab;
pub mod capacity;
pub mod compare;
pub mod distributed;
pub mod disturbance;
pub mod export;
pub mod hdr;
pub mod history;
pub mod import;
pub mod io;
pub mod merge;
pub mod metadata;
#[cfg(feature = "report")]
pub mod report;
pub mod result;
pub mod sidecar;
pub mod soak;
pub mod targets;
