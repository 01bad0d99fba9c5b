//! The wal-index (`-shm`) header: two copies of [`WalIndexHeader`] and the checkpoint info.
//!
//! Byte layout (wal.c; every integer in **host** byte order, except the salts, which are
//! the 8 raw big-endian bytes copied from the WAL header):
//!
//! ```text
//! offset  size  field
//!      0    48  WalIndexHdr copy A
//!     48    48  WalIndexHdr copy B (SQLite writes B, barrier, A; readers read A, barrier, B)
//!     96     4  nBackfill            frames already copied into the database
//!    100    20  aReadMark[0..5]      [0] is always 0; 0xffffffff = unused
//!    120     8  aLock[8]             lock bytes only: never read or written as data
//!    128     4  nBackfillAttempted   (same byte as the DMS lock)
//!    132     4  unused
//!
//! WalIndexHdr (relative to its copy):
//!      0     4  iVersion  = 3007000
//!      4     4  unused
//!      8     4  iChange   +1 per commit, 0 after recovery
//!     12     1  isInit    non-zero once written
//!     13     1  bigEndCksum   WAL checksum word order (magic & 1)
//!     14     2  szPage    (size & 0xff00) | (size >> 16); 0 before the first frame
//!     16     4  mxFrame   last committed frame
//!     20     4  nPage     database size in pages
//!     24     8  aFrameCksum   running WAL checksum after frame mxFrame
//!     32     8  aSalt     WAL salts, raw big-endian bytes
//!     40     8  aCksum    walChecksumBytes(host order, bytes 0..40, seed 0)
//! ```
//!
//! A header is trusted only as SQLite's `walIndexTryHdr` trusts it: copies A and B are
//! byte-identical, `isInit` is set, the checksum matches, and then the version is 3007000.
//! The checkpoint info has no checksum; its words are single atomic values in SQLite.

// The wal-index is host-local shared memory: host byte order is its definition.
#![allow(clippy::host_endian_bytes)]

use crate::checksum::{WalChecksum, WordOrder};
use crate::page_size::PageSize;

/// Size of the header region: two header copies plus the checkpoint info.
pub const WAL_INDEX_HEADER_SIZE: usize = 136;
/// Size of one header copy.
pub const HEADER_COPY_SIZE: usize = 48;
/// The only wal-index version this crate accepts (wal2's 3021000 is refused).
pub const WAL_INDEX_VERSION: u32 = 3_007_000;
/// A read mark no reader uses.
pub const READMARK_NOT_USED: u32 = 0xffff_ffff;

const COPY_B: usize = HEADER_COPY_SIZE;
const CKPT_INFO: usize = 2 * HEADER_COPY_SIZE;
const OFF_N_BACKFILL: usize = CKPT_INFO;
const OFF_READ_MARKS: usize = CKPT_INFO + 4;
const OFF_N_BACKFILL_ATTEMPTED: usize = CKPT_INFO + 32;
const REL_CKSUM: usize = 40;

/// Why a wal-index header cannot be trusted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WalIndexError {
    /// Fewer bytes than the 136-byte header region (a fresh `-shm` is 0 or 3 bytes long).
    #[error(
        "offset {len}: the wal-index ends inside its {WAL_INDEX_HEADER_SIZE}-byte header: no connection has initialised it"
    )]
    Truncated {
        /// Bytes available.
        len: usize,
    },
    /// The two header copies differ: a writer was updating them (retry) or the file is damaged.
    #[error(
        "wal-index header copies at offsets 0 and 48 differ (first difference at offset {offset}): a write was in progress"
    )]
    CopiesDiffer {
        /// Offset within the file of the first differing byte of copy A.
        offset: usize,
    },
    /// `isInit` (offset 12) is zero: no connection has finished recovery.
    #[error("wal-index header at offset 12 is not initialised (isInit = 0)")]
    NotInitialised,
    /// The header checksum (offset 40) does not match its contents.
    #[error("wal-index header checksum at offset 40 is {stored:08x?}, computed {computed:08x?}")]
    ChecksumMismatch {
        /// Checksum stored at offset 40.
        stored: [u32; 2],
        /// Checksum computed over offsets 0..40.
        computed: [u32; 2],
    },
    /// The version at offset 0 is not 3007000 (wal2 uses 3021000).
    #[error("wal-index version at offset 0 is {0}, only 3007000 is supported")]
    UnknownVersion(u32),
    /// `szPage` at offset 14 does not decode to a valid page size.
    #[error("wal-index page size field at offset 14 is {0:#06x}, not a valid page size")]
    InvalidPageSize(u16),
    /// `bigEndCksum` at offset 13 is neither 0 nor 1.
    #[error("wal-index checksum order flag at offset 13 is {0}, expected 0 or 1")]
    InvalidWordOrder(u8),
}

/// The validated wal-index header: SQLite's view of the committed WAL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalIndexHeader {
    /// `iChange`: incremented by every commit, reset to 0 by recovery.
    pub change: u32,
    /// Word order of the WAL checksums (`bigEndCksum`).
    pub word_order: WordOrder,
    /// Page size, or `None` before the first frame of the WAL was written.
    pub page_size: Option<PageSize>,
    /// `mxFrame`: the last committed frame (0 = the WAL holds nothing committed).
    pub mx_frame: u32,
    /// `nPage`: the database size in pages after the last commit.
    pub n_page: u32,
    /// Running WAL checksum after frame `mx_frame`.
    pub frame_checksum: WalChecksum,
    /// WAL salt-1 (big-endian in the file).
    pub salt1: u32,
    /// WAL salt-2 (big-endian in the file).
    pub salt2: u32,
}

/// The checkpoint info after the two header copies. No checksum protects it: each word is
/// a separate atomic value that SQLite reads and writes under its lock rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// `nBackfill`: frames 1..=n_backfill are copied into the database.
    pub n_backfill: u32,
    /// `aReadMark[0..5]`; [`READMARK_NOT_USED`] marks a free slot.
    pub read_marks: [u32; 5],
    /// `nBackfillAttempted`.
    pub n_backfill_attempted: u32,
}

/// The wal-index header region, validated as SQLite validates it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalIndex {
    /// The trusted header (copy A, equal to copy B).
    pub header: WalIndexHeader,
    /// The checkpoint info.
    pub checkpoint: CheckpointInfo,
}

fn ne_u32(bytes: &[u8], offset: usize) -> u32 {
    let mut word = [0u8; 4];
    if let Some(src) = bytes.get(offset..offset + 4) {
        word.copy_from_slice(src);
    }
    u32::from_ne_bytes(word)
}

fn be_u32(bytes: &[u8], offset: usize) -> u32 {
    let mut word = [0u8; 4];
    if let Some(src) = bytes.get(offset..offset + 4) {
        word.copy_from_slice(src);
    }
    u32::from_be_bytes(word)
}

impl WalIndex {
    /// Parses and validates the first [`WAL_INDEX_HEADER_SIZE`] bytes of a wal-index.
    /// Bytes after the header region (the hash tables) are ignored.
    pub fn parse(bytes: &[u8]) -> Result<Self, WalIndexError> {
        let region = bytes
            .get(..WAL_INDEX_HEADER_SIZE)
            .ok_or(WalIndexError::Truncated { len: bytes.len() })?;
        let (copy_a, rest) = region.split_at(HEADER_COPY_SIZE);
        let copy_b = rest.get(..HEADER_COPY_SIZE).unwrap_or_default();
        if let Some(i) = copy_a.iter().zip(copy_b).position(|(a, b)| a != b) {
            return Err(WalIndexError::CopiesDiffer { offset: i });
        }
        let header = parse_header_copy(copy_a)?;
        let checkpoint = CheckpointInfo {
            n_backfill: ne_u32(region, OFF_N_BACKFILL),
            read_marks: std::array::from_fn(|i| ne_u32(region, OFF_READ_MARKS + 4 * i)),
            n_backfill_attempted: ne_u32(region, OFF_N_BACKFILL_ATTEMPTED),
        };
        Ok(Self { header, checkpoint })
    }

    /// Parses only the checkpoint info, whatever the state of the header copies
    /// (for `walcast inspect` of a damaged or uninitialised file).
    pub fn parse_checkpoint_info(bytes: &[u8]) -> Result<CheckpointInfo, WalIndexError> {
        let region = bytes
            .get(..WAL_INDEX_HEADER_SIZE)
            .ok_or(WalIndexError::Truncated { len: bytes.len() })?;
        Ok(CheckpointInfo {
            n_backfill: ne_u32(region, OFF_N_BACKFILL),
            read_marks: std::array::from_fn(|i| ne_u32(region, OFF_READ_MARKS + 4 * i)),
            n_backfill_attempted: ne_u32(region, OFF_N_BACKFILL_ATTEMPTED),
        })
    }
}

/// Validates one 48-byte header copy in `walIndexTryHdr`'s order: isInit, checksum, version.
fn parse_header_copy(copy: &[u8]) -> Result<WalIndexHeader, WalIndexError> {
    let flags = copy.get(12..14).unwrap_or_default();
    let (is_init, big_end) = match flags {
        [i, b] => (*i, *b),
        _ => (0, 0),
    };
    if is_init == 0 {
        return Err(WalIndexError::NotInitialised);
    }
    let summed = copy.get(..REL_CKSUM).unwrap_or_default();
    let computed = WalChecksum::ZERO
        .extend(WordOrder::native(), summed)
        .unwrap_or_default();
    let stored = [ne_u32(copy, REL_CKSUM), ne_u32(copy, REL_CKSUM + 4)];
    if stored != [computed.s1, computed.s2] {
        return Err(WalIndexError::ChecksumMismatch {
            stored,
            computed: [computed.s1, computed.s2],
        });
    }
    let version = ne_u32(copy, 0);
    if version != WAL_INDEX_VERSION {
        return Err(WalIndexError::UnknownVersion(version));
    }
    let word_order = match big_end {
        0 => WordOrder::Little,
        1 => WordOrder::Big,
        other => return Err(WalIndexError::InvalidWordOrder(other)),
    };
    let size_field = match copy.get(14..16) {
        Some(&[a, b]) => u16::from_ne_bytes([a, b]),
        _ => 0,
    };
    let page_size = match size_field {
        0 => None,
        raw => Some(
            PageSize::from_wal_index_field(raw).map_err(|_| WalIndexError::InvalidPageSize(raw))?,
        ),
    };
    Ok(WalIndexHeader {
        change: ne_u32(copy, 8),
        word_order,
        page_size,
        mx_frame: ne_u32(copy, 16),
        n_page: ne_u32(copy, 20),
        frame_checksum: WalChecksum {
            s1: ne_u32(copy, 24),
            s2: ne_u32(copy, 28),
        },
        salt1: be_u32(copy, 32),
        salt2: be_u32(copy, 36),
    })
}

/// Encodes a header region exactly as SQLite's `walIndexWriteHdr` leaves it (both copies,
/// checksum, checkpoint info). For tests, fuzz seeds and tools; never written to a live file.
pub fn encode(index: &WalIndex) -> [u8; WAL_INDEX_HEADER_SIZE] {
    let h = &index.header;
    let mut copy = [0u8; HEADER_COPY_SIZE];
    let mut put = |off: usize, v: [u8; 4]| {
        if let Some(dst) = copy.get_mut(off..off + 4) {
            dst.copy_from_slice(&v);
        }
    };
    put(0, WAL_INDEX_VERSION.to_ne_bytes());
    put(8, h.change.to_ne_bytes());
    put(16, h.mx_frame.to_ne_bytes());
    put(20, h.n_page.to_ne_bytes());
    put(24, h.frame_checksum.s1.to_ne_bytes());
    put(28, h.frame_checksum.s2.to_ne_bytes());
    put(32, h.salt1.to_be_bytes());
    put(36, h.salt2.to_be_bytes());
    let size_field: u16 = h
        .page_size
        .map_or(0, |p| ((p.get() & 0xff00) | (p.get() >> 16)) as u16);
    let [s0, s1] = size_field.to_ne_bytes();
    copy[12] = 1;
    copy[13] = u8::from(h.word_order == WordOrder::Big);
    copy[14] = s0;
    copy[15] = s1;
    let sum = WalChecksum::ZERO
        .extend(WordOrder::native(), &copy[..REL_CKSUM])
        .unwrap_or_default();
    copy[40..44].copy_from_slice(&sum.s1.to_ne_bytes());
    copy[44..48].copy_from_slice(&sum.s2.to_ne_bytes());

    let mut out = [0u8; WAL_INDEX_HEADER_SIZE];
    out[..HEADER_COPY_SIZE].copy_from_slice(&copy);
    out[COPY_B..COPY_B + HEADER_COPY_SIZE].copy_from_slice(&copy);
    let c = &index.checkpoint;
    out[OFF_N_BACKFILL..OFF_N_BACKFILL + 4].copy_from_slice(&c.n_backfill.to_ne_bytes());
    for (i, mark) in c.read_marks.iter().enumerate() {
        let off = OFF_READ_MARKS + 4 * i;
        out[off..off + 4].copy_from_slice(&mark.to_ne_bytes());
    }
    out[OFF_N_BACKFILL_ATTEMPTED..OFF_N_BACKFILL_ATTEMPTED + 4]
        .copy_from_slice(&c.n_backfill_attempted.to_ne_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> WalIndex {
        WalIndex {
            header: WalIndexHeader {
                change: 7,
                word_order: WordOrder::Little,
                page_size: Some(PageSize::new(65536).unwrap()),
                mx_frame: 42,
                n_page: 9,
                frame_checksum: WalChecksum { s1: 1, s2: 2 },
                salt1: 0x0102_0304,
                salt2: 0xa0b0_c0d0,
            },
            checkpoint: CheckpointInfo {
                n_backfill: 40,
                read_marks: [0, 42, READMARK_NOT_USED, READMARK_NOT_USED, 17],
                n_backfill_attempted: 40,
            },
        }
    }

    #[test]
    fn encode_then_parse_round_trips() {
        let bytes = encode(&sample());
        assert_eq!(WalIndex::parse(&bytes), Ok(sample()));
        // Salts keep the WAL's big-endian byte order whatever the host.
        assert_eq!(bytes[32..36], [1, 2, 3, 4]);
    }

    #[test]
    fn every_single_byte_change_in_a_copy_is_caught() {
        let good = encode(&sample());
        for offset in 0..2 * HEADER_COPY_SIZE {
            let mut bad = good;
            bad[offset] ^= 0x40;
            assert!(
                WalIndex::parse(&bad).is_err(),
                "flip at offset {offset} accepted"
            );
        }
    }

    #[test]
    fn damage_to_both_copies_is_a_checksum_error() {
        let mut bad = encode(&sample());
        bad[16] ^= 1;
        bad[COPY_B + 16] ^= 1;
        assert!(matches!(
            WalIndex::parse(&bad),
            Err(WalIndexError::ChecksumMismatch { .. })
        ));
    }

    #[test]
    fn short_or_uninitialised_regions_are_refused() {
        assert_eq!(
            WalIndex::parse(&[0; 3]),
            Err(WalIndexError::Truncated { len: 3 })
        );
        assert_eq!(
            WalIndex::parse(&[0; 136]),
            Err(WalIndexError::NotInitialised)
        );
    }

    #[test]
    fn zero_page_size_means_no_frames_yet() {
        let mut idx = sample();
        idx.header.page_size = None;
        assert_eq!(
            WalIndex::parse(&encode(&idx)).unwrap().header.page_size,
            None
        );
    }
}
