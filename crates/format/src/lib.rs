//! SQLite's own on-disk formats, parsed and validated exactly as SQLite does.
//!
//! This crate owns the byte layouts of the database header ([`db_header`]), the WAL
//! ([`wal`]: header, frames, the cumulative checksum in both word orders, the valid end of
//! the log as recovery decides it) and the wal-index (`-shm`) header ([`wal_index`]).
//! Parsers take byte slices or a [`std::io::Read`] and return typed values or typed errors
//! with the byte offset.
//!
//! It must never decide I/O policy (what to read when, locking, retries), never run
//! async code, and never allocate from a length read out of a file before checking it.
//!
//! ```
//! use walcast_format::{PageSize, WordOrder};
//! use walcast_format::wal::{Salts, WalHeader, WalSlice, WalWriter};
//! let header = WalHeader::new(WordOrder::native(), PageSize::new(4096)?, 0, Salts::default());
//! let mut wal = WalWriter::new(Vec::new(), header)?;
//! wal.write_frame(1, 1, &[0; 4096])?;
//! let bytes = wal.into_inner();
//! assert_eq!(WalSlice::parse(&bytes)?.recover().mx_frame(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod checksum;
pub mod db_header;
#[doc(hidden)]
pub mod fuzzing;
pub mod mapped;
mod page_size;
pub mod wal;
pub mod wal_index;

pub use checksum::{UnalignedChecksumInput, WalChecksum, WordOrder};
pub use page_size::{InvalidPageSize, PENDING_BYTE, PageSize};
