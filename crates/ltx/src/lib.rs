//! LTX v3, the replica file format of Litestream 0.5, read and written byte for byte
//! as Litestream 0.5.17 (superfly/ltx v0.5.2) does.
//!
//! This crate owns the LTX header ([`Header`]), page frames (LZ4 block, and the older
//! LZ4 frame for reading), the page index, the trailer ([`Trailer`]), the CRC-64/GO-ISO
//! file checksum ([`Crc64`]), the page-set database checksum ([`DatabaseChecksum`]),
//! transaction IDs and file names ([`TxId`], [`LtxFileName`]), the streaming
//! [`Encoder`] and [`Decoder`], and the streaming [`merge`] of several files into one.
//!
//! File layout (each part's byte layout is in its module):
//!
//! ```text
//! header (100 bytes) | page frames … | 6 zero bytes | page index | trailer (16 bytes)
//! ```
//!
//! It must never hand out a page as genuine before the file's checksum verified
//! (decoded pages are [`ProvisionalPage`]s; [`VerifiedFile`] is the proof), never buffer
//! a whole file, never allocate from a length read from a file without a bound, never
//! panic on hostile input, and never know where files are stored.
//!
//! Every file Litestream writes has the NoChecksum flag; Litestream 0.5.17's restore
//! and compaction re-encode their inputs with NoChecksum and fail on an input whose
//! trailer carries a post-apply checksum, so files meant for Litestream must be written
//! with [`HeaderFlags::NO_CHECKSUM`].

#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod checksum;
pub mod decoder;
pub mod encoder;
mod error;
mod header;
mod index;
mod lz4_frame;
pub mod merge;
mod page;
mod source;
mod trailer;
mod txid;

#[doc(hidden)]
pub mod fuzzing;

pub use checksum::{Checksum, Crc64, DatabaseChecksum, page_checksum};
pub use decoder::{Decoder, ProvisionalPage, VerifiedFile, verify};
pub use encoder::{EncodedFile, Encoder};
pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use header::{HEADER_SIZE, Header, HeaderError, HeaderFlags, MAGIC, rfc3339_millis};
pub use lz4_frame::Lz4FrameError;
pub use merge::{MergeChecksums, MergeError, MergeOptions, Merged, merge};
pub use page::{PAGE_HEADER_SIZE, PageOrderError, max_compressed_size};
pub use trailer::{TRAILER_SIZE, Trailer};
pub use txid::{LtxFileName, ParseLtxFileNameError, ParseTxIdError, TxId};
