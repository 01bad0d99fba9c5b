//! The 32-byte WAL header and frame arithmetic (layout in the parent module).
//!
//! A [`WalHeader`] exists only if SQLite's recovery would accept the header: valid magic,
//! a page size that is a power of two in 512..=65536, a matching header checksum, and
//! version 3007000 — checked in `walIndexRecover`'s order.

use nom::Parser;
use nom::number::complete::be_u32;

use crate::checksum::{WalChecksum, WordOrder};
use crate::page_size::PageSize;

/// Length of the WAL header.
pub const WAL_HEADER_SIZE: usize = 32;
/// Length of a frame header; a frame is this plus one page.
pub const FRAME_HEADER_SIZE: usize = 24;
/// Magic of a WAL whose checksum words are little-endian.
pub const WAL_MAGIC_LITTLE: u32 = 0x377f_0682;
/// Magic of a WAL whose checksum words are big-endian.
pub const WAL_MAGIC_BIG: u32 = 0x377f_0683;
/// The only WAL format version (`WAL_MAX_VERSION`); wal2's 3021000 is refused.
pub const WAL_FORMAT_VERSION: u32 = 3_007_000;

/// The two salts that tie frames to one generation of the WAL. An opaque generation id:
/// never derive a restart count from them (reference §2 caveat).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Salts {
    /// Salt-1 (header offset 16).
    pub salt1: u32,
    /// Salt-2 (header offset 20).
    pub salt2: u32,
}

impl Salts {
    /// The 8 bytes as stored in the WAL (and copied raw into the wal-index).
    pub fn to_be_bytes(self) -> [u8; 8] {
        let [a, b, c, d] = self.salt1.to_be_bytes();
        let [e, f, g, h] = self.salt2.to_be_bytes();
        [a, b, c, d, e, f, g, h]
    }
}

/// A WAL header SQLite's recovery would accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalHeader {
    /// Word order of every checksum in this WAL (from the magic's low bit).
    pub word_order: WordOrder,
    /// Page size of every frame.
    pub page_size: PageSize,
    /// Checkpoint sequence: informational only, not monotonic across connections.
    pub checkpoint_seq: u32,
    /// Generation salts.
    pub salts: Salts,
    /// Checksum of header bytes 0..24: the seed of frame 1's checksum.
    pub checksum: WalChecksum,
}

/// Why 32 bytes are not a WAL header SQLite would use. SQLite treats such a WAL as empty
/// (or refuses to open it, for a valid header of another version).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WalHeaderError {
    /// Fewer than 32 bytes.
    #[error("offset {len}: the file ends inside the 32-byte WAL header (truncated)")]
    Truncated {
        /// Bytes available.
        len: usize,
    },
    /// Offset 0 is not 0x377f0682 or 0x377f0683.
    #[error("offset 0: WAL magic is {0:#010x}, expected 0x377f0682 or 0x377f0683")]
    BadMagic(u32),
    /// Offset 8 is not a power of two in 512..=65536.
    #[error("offset 8: WAL page size {0} is not a power of two from 512 to 65536")]
    InvalidPageSize(u32),
    /// Offset 24 does not match the checksum of bytes 0..24; SQLite ignores the whole WAL.
    #[error(
        "offset 24: WAL header checksum is {stored:08x?}, bytes 0..24 sum to {computed:08x?}; SQLite ignores this WAL"
    )]
    ChecksumMismatch {
        /// Stored (s1, s2).
        stored: [u32; 2],
        /// Computed (s1, s2).
        computed: [u32; 2],
    },
    /// Offset 4 is not 3007000 (a wal2 log, or a future format).
    #[error("offset 4: WAL format version {0} is not supported (only 3007000)")]
    UnsupportedVersion(u32),
}

type RawWalHeader = (u32, u32, u32, u32, u32, u32, u32, u32);

fn raw_header(input: &[u8]) -> nom::IResult<&[u8], RawWalHeader> {
    (
        be_u32, be_u32, be_u32, be_u32, be_u32, be_u32, be_u32, be_u32,
    )
        .parse(input)
}

impl WalHeader {
    /// Builds a header with its checksum, as SQLite's `walFrames` writes one.
    pub fn new(
        word_order: WordOrder,
        page_size: PageSize,
        checkpoint_seq: u32,
        salts: Salts,
    ) -> Self {
        let mut header = Self {
            word_order,
            page_size,
            checkpoint_seq,
            salts,
            checksum: WalChecksum::ZERO,
        };
        header.checksum = header.compute_checksum();
        header
    }

    /// Parses and validates the first 32 bytes of a WAL (recovery's order: magic, page
    /// size, checksum, then version).
    pub fn parse(bytes: &[u8]) -> Result<Self, WalHeaderError> {
        let head = bytes
            .get(..WAL_HEADER_SIZE)
            .ok_or(WalHeaderError::Truncated { len: bytes.len() })?;
        let (_, (magic, version, size, checkpoint_seq, salt1, salt2, c1, c2)) =
            raw_header(head).map_err(|_| WalHeaderError::Truncated { len: bytes.len() })?;
        let word_order = match magic {
            WAL_MAGIC_LITTLE => WordOrder::Little,
            WAL_MAGIC_BIG => WordOrder::Big,
            other => return Err(WalHeaderError::BadMagic(other)),
        };
        let page_size = PageSize::new(size).map_err(|_| WalHeaderError::InvalidPageSize(size))?;
        let header = Self {
            word_order,
            page_size,
            checkpoint_seq,
            salts: Salts { salt1, salt2 },
            checksum: WalChecksum { s1: c1, s2: c2 },
        };
        // The checksum covers the version field, so it is verified over the raw bytes.
        let computed = WalChecksum::ZERO
            .extend(word_order, head.get(..24).unwrap_or_default())
            .unwrap_or_default();
        if computed != header.checksum {
            return Err(WalHeaderError::ChecksumMismatch {
                stored: [c1, c2],
                computed: [computed.s1, computed.s2],
            });
        }
        if version != WAL_FORMAT_VERSION {
            return Err(WalHeaderError::UnsupportedVersion(version));
        }
        Ok(header)
    }

    /// The 32 bytes of this header; the checksum field is written as stored in `self`.
    pub fn encode(&self) -> [u8; WAL_HEADER_SIZE] {
        let mut out = [0u8; WAL_HEADER_SIZE];
        let magic = match self.word_order {
            WordOrder::Little => WAL_MAGIC_LITTLE,
            WordOrder::Big => WAL_MAGIC_BIG,
        };
        let words = [
            magic,
            WAL_FORMAT_VERSION,
            self.page_size.get(),
            self.checkpoint_seq,
            self.salts.salt1,
            self.salts.salt2,
            self.checksum.s1,
            self.checksum.s2,
        ];
        put_be_words(&mut out, &words);
        out
    }

    fn compute_checksum(&self) -> WalChecksum {
        let bytes = self.encode();
        WalChecksum::ZERO
            .extend(self.word_order, bytes.get(..24).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Bytes in one frame: 24-byte frame header plus a page.
    pub fn frame_size(&self) -> usize {
        FRAME_HEADER_SIZE + self.page_size.as_usize()
    }

    /// Byte offset of frame `n` (1-based) in this WAL.
    pub fn frame_offset(&self, n: u32) -> u64 {
        frame_offset(self.page_size, n)
    }
}

/// Writes `words` big-endian, one after another, from the start of `out` (WAL and frame
/// headers are runs of big-endian u32 words).
pub(crate) fn put_be_words(out: &mut [u8], words: &[u32]) {
    for (dst, word) in out.chunks_exact_mut(4).zip(words) {
        dst.copy_from_slice(&word.to_be_bytes());
    }
}

/// Byte offset of frame `n` (1-based; 0 is treated as 1) in a WAL of `page_size` pages
/// (`walFrameOffset`).
pub fn frame_offset(page_size: PageSize, n: u32) -> u64 {
    let frame = FRAME_HEADER_SIZE as u64 + u64::from(page_size.get());
    WAL_HEADER_SIZE as u64 + u64::from(n.saturating_sub(1)) * frame
}

/// Whole frames in a WAL file of `len` bytes, as recovery counts them
/// (`(size - 32) / frame size`, saturated to `u32`).
pub fn frames_in_len(page_size: PageSize, len: u64) -> u32 {
    let frame = FRAME_HEADER_SIZE as u64 + u64::from(page_size.get());
    let frames = len.saturating_sub(WAL_HEADER_SIZE as u64) / frame;
    u32::try_from(frames).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(order: WordOrder) -> WalHeader {
        WalHeader::new(
            order,
            PageSize::new(4096).unwrap(),
            3,
            Salts {
                salt1: 0x1111_2222,
                salt2: 0x3333_4444,
            },
        )
    }

    #[test]
    fn encode_parse_round_trip_in_both_orders() {
        for order in [WordOrder::Little, WordOrder::Big] {
            let h = sample(order);
            assert_eq!(WalHeader::parse(&h.encode()), Ok(h));
        }
        assert_eq!(sample(WordOrder::Big).encode()[3], 0x83);
        assert_eq!(sample(WordOrder::Little).encode()[3], 0x82);
    }

    #[test]
    fn validation_follows_recovery_order() {
        let good = sample(WordOrder::Little).encode();
        let mut bad = good;
        bad[0] = 0;
        assert!(matches!(
            WalHeader::parse(&bad),
            Err(WalHeaderError::BadMagic(_))
        ));
        let mut bad = good;
        bad[10] = 0x11;
        assert!(matches!(
            WalHeader::parse(&bad),
            Err(WalHeaderError::InvalidPageSize(_))
        ));
        let mut bad = good;
        bad[17] ^= 1;
        assert!(matches!(
            WalHeader::parse(&bad),
            Err(WalHeaderError::ChecksumMismatch { .. })
        ));
        // A checksummed header of another version is refused, not ignored.
        let mut other = good;
        other[4..8].copy_from_slice(&3_021_000u32.to_be_bytes());
        let sum = WalChecksum::ZERO
            .extend(WordOrder::Little, &other[..24])
            .unwrap();
        other[24..32].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(
            WalHeader::parse(&other),
            Err(WalHeaderError::UnsupportedVersion(3_021_000))
        );
    }

    #[test]
    fn frame_arithmetic() {
        let ps = PageSize::new(65536).unwrap();
        assert_eq!(frame_offset(ps, 1), 32);
        assert_eq!(frame_offset(ps, 3), 32 + 2 * 65560);
        assert_eq!(frames_in_len(ps, 32 + 2 * 65560 + 65559), 2);
        assert_eq!(frames_in_len(ps, 10), 0);
    }
}
