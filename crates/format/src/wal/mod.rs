//! The write-ahead log (`<db>-wal`): header, frames, the checksum chain, and the valid end
//! of the log exactly as SQLite's recovery (`walIndexRecover`) decides it.
//!
//! Byte layout (every integer big-endian; wal.c `walFrames`, `walEncodeFrame`):
//!
//! ```text
//! WAL header, 32 bytes
//! offset  size  field
//!      0     4  magic 0x377f0682 (checksum words little-endian) or 0x377f0683 (big-endian)
//!      4     4  format version 3007000
//!      8     4  page size (65536 stored as is)
//!     12     4  checkpoint sequence (the writing connection's private counter)
//!     16     4  salt-1
//!     20     4  salt-2
//!     24     8  checksum of bytes 0..24, seed (0, 0)
//!
//! Frame N (1-based) at 32 + (N-1) * (page size + 24)
//!      0     4  page number (never 0)
//!      4     4  database size in pages after this commit; 0 for a non-commit frame
//!      8     8  salt-1, salt-2: must equal the header's (compared, not checksummed)
//!     16     8  checksum of frame bytes 0..8 and the page, seeded with the previous
//!               frame's checksum (frame 1: the header's)
//!     24  page  the page image
//! ```
//!
//! Recovery scans whole frames from frame 1 and stops at the first one whose salts differ,
//! whose page number is 0 or whose chained checksum fails. Valid frames after the last
//! commit frame belong to no transaction; the last valid commit frame is `mxFrame`.
//!
//! Readers here never trust a length from the file to size a buffer: the only allocation is
//! one frame, sized from a validated [`PageSize`](crate::PageSize).
//!
//! Three ways in, sharing one verification step ([`FrameChain`]):
//! - [`WalSlice`]: a WAL in memory or mapped (offline files only);
//! - [`WalReader`]: streaming over any [`std::io::Read`], one frame of memory;
//! - [`FrameChain::resume`]: continue a chain at frame N+1 from a saved [`WalPosition`].

mod chain;
mod header;
mod reader;
mod recovery;
mod slice;
mod writer;

pub use chain::{FrameChain, FrameHeader, Stop, StopReason, WalFrame, WalPosition};
pub use header::{
    FRAME_HEADER_SIZE, Salts, WAL_FORMAT_VERSION, WAL_HEADER_SIZE, WAL_MAGIC_BIG, WAL_MAGIC_LITTLE,
    WalHeader, WalHeaderError, frame_offset, frames_in_len,
};
pub use reader::{PositionedRead, WalReadError, WalReader};
pub use recovery::{CommitPoint, RecoveryTally, Transaction, WalRecovery};
pub use slice::{WalFrames, WalSlice};
pub use writer::{FrameDamage, WalWriter, other_generation};
