//! `walcast replicate` end to end: real SQLite writers in their own processes, walcast
//! in its own process, the real Litestream restoring the replica as an independent oracle.

mod support;

mod concurrency;
mod config;
mod crash;
mod exec;
mod footprint;
mod metrics;
mod refusals;
mod s3;
