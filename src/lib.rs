//! `aiops_bench`: one result format for criterion and Goose output, baselines and a regression
//! gate that does not cry wolf.

pub mod ab;
pub mod compare;
pub mod disturbance;
pub mod export;
pub mod hdr;
pub mod import;
pub mod io;
pub mod merge;
pub mod metadata;
pub mod result;
pub mod sidecar;
pub mod targets;
