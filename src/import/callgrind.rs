//! Callgrind importer: instruction counts from the CI gate's callgrind benchmarks.
//! Written by the CI engineer.
