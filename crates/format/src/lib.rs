//! SQLite's own on-disk formats, parsed and validated exactly as SQLite does.
//!
//! This crate owns the byte layouts of the database header, the WAL (header, frames,
//! the cumulative checksum in both word orders) and the wal-index (`-shm`) header.
//! Parsers take byte slices and return typed values or typed errors with the byte offset.
//!
//! It must never decide I/O policy (what to read when, locking, retries), never run
//! async code, and never allocate from a length read out of a file before checking it.

#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod checksum;
mod page_size;
pub mod wal_index;

pub use checksum::{UnalignedChecksumInput, WalChecksum, WordOrder};
pub use page_size::{InvalidPageSize, PENDING_BYTE, PageSize};
