//! The 32-byte WAL header, checked as SQLite's recovery checks it — the minimum this crate
//! needs to seed a checksum chain and to tell a generation apart.
//!
//! ```text
//! offset  size  field (all big-endian)
//!      0     4  magic 0x377f0682 (little-endian checksum words) or 0x377f0683 (big)
//!      4     4  version 3007000
//!      8     4  page size in bytes (65536 stored as is)
//!     12     4  checkpoint sequence (informational, not monotonic)
//!     16     8  salt-1, salt-2
//!     24     8  checksum of bytes 0..24
//! ```
//!
//! Replace with `walcast_format`'s WAL header parser once it is on main; this module only
//! exists because that parser is being written concurrently.

use walcast_format::{PageSize, WalChecksum, WordOrder};

/// Length of the WAL header.
pub(crate) const WAL_HEADER_SIZE: usize = 32;
/// Length of a frame header.
pub(crate) const FRAME_HEADER_SIZE: usize = 24;
const MAGIC_LITTLE: u32 = 0x377f_0682;
const MAGIC_BIG: u32 = 0x377f_0683;
const VERSION: u32 = 3_007_000;

/// A WAL header SQLite's recovery would accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WalHeader {
    pub(crate) word_order: WordOrder,
    pub(crate) page_size: PageSize,
    pub(crate) salts: (u32, u32),
    /// Checksum of bytes 0..24: the seed of frame 1.
    pub(crate) checksum: WalChecksum,
}

/// Why 32 bytes are not a usable WAL header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WalHeaderProblem {
    /// The file is shorter than the header.
    #[error("the WAL is {len} bytes, shorter than its 32-byte header")]
    Truncated {
        /// Bytes available.
        len: usize,
    },
    /// Offset 0 holds neither magic.
    #[error("offset 0: WAL magic is {0:#010x}, expected 0x377f0682 or 0x377f0683")]
    BadMagic(u32),
    /// Offset 8 is not a valid page size.
    #[error("offset 8: WAL page size {0} is not a power of two from 512 to 65536")]
    BadPageSize(u32),
    /// Offset 24 does not match bytes 0..24.
    #[error("offset 24: WAL header checksum does not match bytes 0..24")]
    BadChecksum,
    /// A valid header of another version (wal2 writes 3021000).
    #[error("offset 4: WAL format version is {0}, only 3007000 is supported")]
    UnknownVersion(u32),
}

impl WalHeaderProblem {
    /// True if SQLite would refuse to open the database rather than ignore the WAL.
    pub(crate) fn is_unsupported_version(self) -> bool {
        matches!(self, Self::UnknownVersion(_))
    }
}

pub(crate) fn be_u32(bytes: &[u8], offset: usize) -> u32 {
    let mut word = [0u8; 4];
    if let Some(src) = bytes.get(offset..offset + 4) {
        word.copy_from_slice(src);
    }
    u32::from_be_bytes(word)
}

/// Reads 8 bytes at `offset` as a big-endian checksum pair (zeros past the end).
pub(crate) fn be_checksum(bytes: &[u8], offset: usize) -> WalChecksum {
    WalChecksum {
        s1: be_u32(bytes, offset),
        s2: be_u32(bytes, offset + 4),
    }
}

impl WalHeader {
    /// Validates a WAL header in `walIndexRecover`'s order: magic, page size, checksum,
    /// then version.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, WalHeaderProblem> {
        let head = bytes
            .get(..WAL_HEADER_SIZE)
            .ok_or(WalHeaderProblem::Truncated { len: bytes.len() })?;
        let word_order = match be_u32(head, 0) {
            MAGIC_LITTLE => WordOrder::Little,
            MAGIC_BIG => WordOrder::Big,
            other => return Err(WalHeaderProblem::BadMagic(other)),
        };
        let raw_size = be_u32(head, 8);
        let page_size =
            PageSize::new(raw_size).map_err(|_| WalHeaderProblem::BadPageSize(raw_size))?;
        let summed = head.get(..24).unwrap_or_default();
        let checksum = WalChecksum::ZERO
            .extend(word_order, summed)
            .map_err(|_| WalHeaderProblem::BadChecksum)?;
        if checksum != be_checksum(head, 24) {
            return Err(WalHeaderProblem::BadChecksum);
        }
        let version = be_u32(head, 4);
        if version != VERSION {
            return Err(WalHeaderProblem::UnknownVersion(version));
        }
        Ok(Self {
            word_order,
            page_size,
            salts: (be_u32(head, 16), be_u32(head, 20)),
            checksum,
        })
    }

    /// Byte offset of frame `n` (1-based), `walFrameOffset`.
    pub(crate) fn frame_offset(&self, n: u32) -> u64 {
        frame_offset(self.page_size, n)
    }
}

/// Byte offset of frame `n` (1-based) in a WAL of `page_size` pages.
pub(crate) fn frame_offset(page_size: PageSize, n: u32) -> u64 {
    let frame_size = FRAME_HEADER_SIZE as u64 + u64::from(page_size.get());
    WAL_HEADER_SIZE as u64 + u64::from(n.saturating_sub(1)) * frame_size
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header as SQLite's `walFrames` writes it, checksum included.
    pub(crate) fn header(magic: u32, version: u32, page_size: u32) -> [u8; 32] {
        let mut h = [0u8; 32];
        let words = [magic, version, page_size, 7, 0x1111_2222, 0x3333_4444];
        for (i, w) in words.iter().enumerate() {
            h[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
        }
        let order = if magic & 1 == 1 {
            WordOrder::Big
        } else {
            WordOrder::Little
        };
        let sum = WalChecksum::ZERO.extend(order, &h[..24]).unwrap();
        h[24..].copy_from_slice(&sum.to_be_bytes());
        h
    }

    #[test]
    fn accepts_both_magics() {
        for magic in [MAGIC_LITTLE, MAGIC_BIG] {
            let h = WalHeader::parse(&header(magic, VERSION, 4096)).unwrap();
            assert_eq!(h.salts, (0x1111_2222, 0x3333_4444));
            assert_eq!(h.page_size.get(), 4096);
        }
    }

    #[test]
    fn refuses_what_recovery_refuses() {
        assert_eq!(
            WalHeader::parse(&header(MAGIC_LITTLE, 3_021_000, 4096)),
            Err(WalHeaderProblem::UnknownVersion(3_021_000))
        );
        assert_eq!(
            WalHeader::parse(&header(MAGIC_LITTLE, VERSION, 1000)),
            Err(WalHeaderProblem::BadPageSize(1000))
        );
        let mut bad = header(MAGIC_LITTLE, VERSION, 4096);
        bad[17] ^= 1;
        assert_eq!(WalHeader::parse(&bad), Err(WalHeaderProblem::BadChecksum));
        assert_eq!(
            WalHeader::parse(&bad[..31]),
            Err(WalHeaderProblem::Truncated { len: 31 })
        );
        assert_eq!(
            WalHeader::parse(&[0; 32]),
            Err(WalHeaderProblem::BadMagic(0))
        );
    }

    #[test]
    fn frame_offsets_follow_wal_frame_offset() {
        let ps = PageSize::new(65536).unwrap();
        assert_eq!(frame_offset(ps, 1), 32);
        assert_eq!(frame_offset(ps, 3), 32 + 2 * 65560);
    }
}
