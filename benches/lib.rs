//! Shared setup for walcast's criterion benches (inputs built the same way every run).
//! The benches themselves live in `benches/benches/*.rs`; figures in `benches/README.md`.

pub mod ltx_input;
