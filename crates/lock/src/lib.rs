//! Coordination with the applications' SQLite through SQLite's own lock bytes.
//!
//! This crate owns the OFD byte-range locks on the database and `-shm` files, SQLite's
//! lock offsets, the DMS protocol, read marks, the PROTECTED -> HANDOFF -> PROTECTED cycle
//! and the position token that detects WAL discontinuities.
//!
//! It must never take SQLite's WRITE, CKPT or RECOVER locks, never write the database or
//! the WAL, never release a protection before the next one is held, and never hand out
//! slices into the shared wal-index mapping.

#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]
