//! LTX v3, the replica file format of Litestream 0.5, read and written byte for byte
//! as Litestream 0.5.17 does.
//!
//! This crate owns the LTX header, page frames (LZ4 block, and the older LZ4 frame for
//! reading), the page index, the trailer, the CRC-64/GO-ISO file checksum, the page-set
//! database checksum, and streaming merges of several LTX files.
//!
//! It must never apply pages from a file whose checksum failed, never buffer a whole
//! file, and never know where files are stored.

#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]
