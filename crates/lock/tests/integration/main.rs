//! Integration tests of walcast-lock against real SQLite running in other processes
//! (Python's sqlite3, crates/testbed). The test process holds walcast's OFD locks itself
//! or runs them in `walcast-lock-holder`; it never runs SQLite in-process.

mod attach;
mod handoff;
mod holder;
mod ofd_semantics;
mod position;
mod protected;
mod shared_lock;
mod support;
