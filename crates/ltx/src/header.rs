//! The 100-byte LTX header, validated as Litestream 0.5.17 (superfly/ltx v0.5.2) validates it.
//!
//! Byte layout (every integer big-endian):
//!
//! ```text
//! offset  size  field
//!      0     4  magic "LTX1" (the same in every format version)
//!      4     4  flags: only 0x2 (NoChecksum) is defined; Litestream always sets it
//!      8     4  page size: a power of two in 512..=65536
//!     12     4  commit: database size in pages after applying the file
//!     16     8  min TXID (never 0)
//!     24     8  max TXID (never 0, >= min)
//!     32     8  timestamp: milliseconds since the Unix epoch (signed)
//!     40     8  pre-apply database checksum: 0 on snapshots and with NoChecksum, else bit 63 set
//!     48     8  WAL offset the pages came from (signed, >= 0; 0 for compacted files)
//!     56     8  WAL size (signed, >= 0; must be 0 when the offset is 0)
//!     64     4  WAL salt-1 (non-zero salts need a non-zero WAL offset)
//!     68     4  WAL salt-2
//!     72     8  node ID (0 = unset)
//!     80    20  reserved: written as zeros; ignored on read, as Litestream ignores them
//! ```
//!
//! A file with `min TXID == 1` is a *snapshot*: it holds every page of the database.

use walcast_format::{InvalidPageSize, PageSize};

use crate::checksum::Checksum;
use crate::txid::{LtxFileName, TxId};

/// Size of the header in bytes.
pub const HEADER_SIZE: usize = 100;
/// The magic at offset 0.
pub const MAGIC: [u8; 4] = *b"LTX1";

const OFF_FLAGS: u64 = 4;
const OFF_PAGE_SIZE: u64 = 8;
const OFF_MIN_TXID: u64 = 16;
const OFF_MAX_TXID: u64 = 24;
const OFF_PRE_APPLY: u64 = 40;
const OFF_WAL_OFFSET: u64 = 48;
const OFF_WAL_SIZE: u64 = 56;
const OFF_WAL_SALTS: u64 = 64;

/// The header's flags word. Invariant: only defined bits are set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HeaderFlags(u32);

impl HeaderFlags {
    /// No flag: pre- and post-apply database checksums are tracked.
    pub const NONE: HeaderFlags = HeaderFlags(0);
    /// Pre- and post-apply checksums are not tracked (both stored as 0). Every file
    /// Litestream 0.5 writes has it, and its restore and compaction set it on their output.
    pub const NO_CHECKSUM: HeaderFlags = HeaderFlags(0x2);

    /// Validates a flags word read from a file.
    pub fn from_bits(bits: u32) -> Option<Self> {
        (bits & !Self::NO_CHECKSUM.0 == 0).then_some(Self(bits))
    }

    /// The flags word as stored.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// True unless [`HeaderFlags::NO_CHECKSUM`] is set.
    pub fn tracks_checksums(self) -> bool {
        self.0 & Self::NO_CHECKSUM.0 == 0
    }
}

/// A validated LTX header.
///
/// Fields are public and typed (page size, TXIDs and checksums cannot hold invalid
/// values); rules that tie fields together are checked by [`Header::validate`], which the
/// encoder runs before writing and the decoder runs after reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Flags word.
    pub flags: HeaderFlags,
    /// Page size of the database.
    pub page_size: PageSize,
    /// Database size in pages after the file is applied.
    pub commit: u32,
    /// First TXID covered.
    pub min_txid: TxId,
    /// Last TXID covered.
    pub max_txid: TxId,
    /// Milliseconds since the Unix epoch when the file was made.
    pub timestamp_ms: i64,
    /// Database checksum before the file applies; `None` on snapshots and with NoChecksum.
    pub pre_apply_checksum: Option<Checksum>,
    /// Offset in the WAL of the first frame the pages came from; 0 if not from a WAL.
    pub wal_offset: u64,
    /// Bytes of WAL the pages came from; 0 if not from a WAL.
    pub wal_size: u64,
    /// WAL header salt-1 of the WAL the pages came from; 0 if not from a WAL.
    pub wal_salt1: u32,
    /// WAL header salt-2.
    pub wal_salt2: u32,
    /// Node that made the file; 0 if unset.
    pub node_id: u64,
}

/// A header that breaks a rule; each variant names its field's byte offset.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The first 4 bytes are not `LTX1`.
    #[error("magic is {0:02x?}, expected \"LTX1\": not an LTX file")]
    BadMagic([u8; 4]),
    /// Flags other than NoChecksum (0x2) are set.
    #[error("flags {0:#010x} set bits other than NoChecksum (0x2)")]
    UnknownFlags(u32),
    /// The page size is not a power of two in 512..=65536.
    #[error("{0}")]
    PageSize(#[from] InvalidPageSize),
    /// Min TXID is 0.
    #[error("min TXID is 0; transaction ids start at 1")]
    ZeroMinTxId,
    /// Max TXID is 0.
    #[error("max TXID is 0; transaction ids start at 1")]
    ZeroMaxTxId,
    /// Min TXID is greater than max TXID.
    #[error("min TXID {min} is greater than max TXID {max}")]
    TxIdsOutOfOrder {
        /// Min TXID.
        min: TxId,
        /// Max TXID.
        max: TxId,
    },
    /// A snapshot (min TXID 1) carries a pre-apply checksum.
    #[error("snapshot carries pre-apply checksum {0:016x}; snapshots start from nothing")]
    PreApplyOnSnapshot(u64),
    /// A NoChecksum file carries a pre-apply checksum.
    #[error("pre-apply checksum {0:016x} present although the NoChecksum flag is set")]
    PreApplyWithoutTracking(u64),
    /// A file tracking checksums lacks its pre-apply checksum.
    #[error("pre-apply checksum missing on a non-snapshot file that tracks checksums")]
    PreApplyMissing,
    /// The pre-apply checksum lacks bit 63.
    #[error("pre-apply checksum {0:016x} lacks bit 63, which every stored checksum has")]
    PreApplyMalformed(u64),
    /// The WAL offset is negative as a signed 64-bit number.
    #[error("WAL offset {0} is negative")]
    NegativeWalOffset(i64),
    /// The WAL size is negative as a signed 64-bit number.
    #[error("WAL size {0} is negative")]
    NegativeWalSize(i64),
    /// WAL salts are set but the WAL offset is 0.
    #[error("WAL salts {salt1:#010x}/{salt2:#010x} are set but the WAL offset is 0")]
    SaltsWithoutWalOffset {
        /// Salt-1.
        salt1: u32,
        /// Salt-2.
        salt2: u32,
    },
    /// The WAL size is set but the WAL offset is 0.
    #[error("WAL size {0} is set but the WAL offset is 0")]
    WalSizeWithoutOffset(u64),
}

impl HeaderError {
    /// Byte offset, within the header, of the field at fault.
    pub fn offset(&self) -> u64 {
        match self {
            Self::BadMagic(_) => 0,
            Self::UnknownFlags(_) => OFF_FLAGS,
            Self::PageSize(_) => OFF_PAGE_SIZE,
            Self::ZeroMinTxId => OFF_MIN_TXID,
            Self::ZeroMaxTxId | Self::TxIdsOutOfOrder { .. } => OFF_MAX_TXID,
            Self::PreApplyOnSnapshot(_)
            | Self::PreApplyWithoutTracking(_)
            | Self::PreApplyMissing
            | Self::PreApplyMalformed(_) => OFF_PRE_APPLY,
            Self::NegativeWalOffset(_) => OFF_WAL_OFFSET,
            Self::NegativeWalSize(_) | Self::WalSizeWithoutOffset(_) => OFF_WAL_SIZE,
            Self::SaltsWithoutWalOffset { .. } => OFF_WAL_SALTS,
        }
    }
}

/// Big-endian field reader over the fixed-size header; offsets are constants below 100.
struct Fields<'a>(&'a [u8; HEADER_SIZE]);

impl Fields<'_> {
    fn array<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.0[at..at + N]);
        out
    }
    fn u32(&self, at: usize) -> u32 {
        u32::from_be_bytes(self.array(at))
    }
    fn u64(&self, at: usize) -> u64 {
        u64::from_be_bytes(self.array(at))
    }
}

impl Header {
    /// A NoChecksum header (what Litestream writes and reads back) for pages not taken
    /// from a WAL: set `wal_offset`, `wal_size` and the salts for a file made from WAL
    /// frames, `flags` and `pre_apply_checksum` to track checksums.
    pub fn new(
        page_size: PageSize,
        commit: u32,
        min_txid: TxId,
        max_txid: TxId,
        timestamp_ms: i64,
    ) -> Self {
        Self {
            flags: HeaderFlags::NO_CHECKSUM,
            page_size,
            commit,
            min_txid,
            max_txid,
            timestamp_ms,
            pre_apply_checksum: None,
            wal_offset: 0,
            wal_size: 0,
            wal_salt1: 0,
            wal_salt2: 0,
            node_id: 0,
        }
    }

    /// Parses and validates a header, checking fields in file order so the error names
    /// the first field at fault.
    pub fn decode(bytes: &[u8; HEADER_SIZE]) -> Result<Self, HeaderError> {
        let f = Fields(bytes);
        let magic: [u8; 4] = f.array(0);
        if magic != MAGIC {
            return Err(HeaderError::BadMagic(magic));
        }
        let raw_flags = f.u32(4);
        let flags =
            HeaderFlags::from_bits(raw_flags).ok_or(HeaderError::UnknownFlags(raw_flags))?;
        let page_size = PageSize::new(f.u32(8))?;
        let min_txid = TxId::new(f.u64(16)).ok_or(HeaderError::ZeroMinTxId)?;
        let max_txid = TxId::new(f.u64(24)).ok_or(HeaderError::ZeroMaxTxId)?;
        let raw_pre_apply = f.u64(40);
        let pre_apply_checksum = match raw_pre_apply {
            0 => None,
            raw => Some(Checksum::new(raw).ok_or(HeaderError::PreApplyMalformed(raw))?),
        };
        let header = Self {
            flags,
            page_size,
            commit: f.u32(12),
            min_txid,
            max_txid,
            timestamp_ms: i64::from_be_bytes(f.array(32)),
            pre_apply_checksum,
            wal_offset: f.u64(48),
            wal_size: f.u64(56),
            wal_salt1: f.u32(64),
            wal_salt2: f.u32(68),
            node_id: f.u64(72),
        };
        header.validate()?;
        Ok(header)
    }

    /// Checks the rules that tie fields together (superfly/ltx `Header.Validate`).
    pub fn validate(&self) -> Result<(), HeaderError> {
        if self.min_txid > self.max_txid {
            return Err(HeaderError::TxIdsOutOfOrder {
                min: self.min_txid,
                max: self.max_txid,
            });
        }
        if let Some(pre) = self.pre_apply_checksum {
            if self.is_snapshot() {
                return Err(HeaderError::PreApplyOnSnapshot(pre.get()));
            }
            if !self.flags.tracks_checksums() {
                return Err(HeaderError::PreApplyWithoutTracking(pre.get()));
            }
        } else if !self.is_snapshot() && self.flags.tracks_checksums() {
            return Err(HeaderError::PreApplyMissing);
        }
        let signed = |v: u64| i64::from_be_bytes(v.to_be_bytes());
        if signed(self.wal_offset) < 0 {
            return Err(HeaderError::NegativeWalOffset(signed(self.wal_offset)));
        }
        if signed(self.wal_size) < 0 {
            return Err(HeaderError::NegativeWalSize(signed(self.wal_size)));
        }
        if self.wal_offset == 0 {
            if self.wal_salt1 != 0 || self.wal_salt2 != 0 {
                return Err(HeaderError::SaltsWithoutWalOffset {
                    salt1: self.wal_salt1,
                    salt2: self.wal_salt2,
                });
            }
            if self.wal_size != 0 {
                return Err(HeaderError::WalSizeWithoutOffset(self.wal_size));
            }
        }
        Ok(())
    }

    /// The 100 bytes of the header (reserved bytes zero). Call [`Header::validate`] first
    /// if the header was not built by this crate; the encoder does.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        let mut put = |at: usize, bytes: &[u8]| b[at..at + bytes.len()].copy_from_slice(bytes);
        put(0, &MAGIC);
        put(4, &self.flags.bits().to_be_bytes());
        put(8, &self.page_size.get().to_be_bytes());
        put(12, &self.commit.to_be_bytes());
        put(16, &self.min_txid.get().to_be_bytes());
        put(24, &self.max_txid.get().to_be_bytes());
        put(32, &self.timestamp_ms.to_be_bytes());
        put(
            40,
            &self
                .pre_apply_checksum
                .map_or(0, Checksum::get)
                .to_be_bytes(),
        );
        put(48, &self.wal_offset.to_be_bytes());
        put(56, &self.wal_size.to_be_bytes());
        put(64, &self.wal_salt1.to_be_bytes());
        put(68, &self.wal_salt2.to_be_bytes());
        put(72, &self.node_id.to_be_bytes());
        b
    }

    /// True if the file holds every page of the database (min TXID is 1).
    pub fn is_snapshot(&self) -> bool {
        self.min_txid == TxId::FIRST
    }

    /// The page that holds SQLite's lock byte: never present in an LTX file.
    pub fn lock_page(&self) -> u32 {
        self.page_size.lock_byte_page()
    }

    /// The object name Litestream gives this file: `<min>-<max>.ltx`.
    pub fn file_name(&self) -> LtxFileName {
        LtxFileName {
            min: self.min_txid,
            max: self.max_txid,
        }
    }

    /// The timestamp as Litestream prints it: RFC 3339 in UTC with exactly three
    /// fractional digits (`2006-01-02T15:04:05.000Z`).
    pub fn timestamp_rfc3339(&self) -> String {
        rfc3339_millis(self.timestamp_ms)
    }
}

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (proleptic
/// Gregorian calendar, UTC).
pub fn rfc3339_millis(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

/// Year, month (1..=12) and day (1..=31) of the day `days` after 1970-01-01, by counting
/// 400-year eras of 146097 days from 0000-03-01 (March first puts leap days last).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let since_0000_03_01 = days + 719_468;
    let era = since_0000_03_01.div_euclid(146_097);
    let day_of_era = since_0000_03_01.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Header {
        Header {
            flags: HeaderFlags::NO_CHECKSUM,
            page_size: PageSize::new(4096).unwrap(),
            commit: 3748,
            min_txid: TxId::new(2).unwrap(),
            max_txid: TxId::new(2).unwrap(),
            timestamp_ms: 1_795_426_111_539,
            pre_apply_checksum: None,
            wal_offset: 4_235_392,
            wal_size: 5_248_880,
            wal_salt1: 4_190_770_809,
            wal_salt2: 475_857_634,
            node_id: 0,
        }
    }

    #[test]
    fn round_trips_and_places_fields_big_endian() {
        let h = sample();
        let b = h.encode();
        assert_eq!(&b[0..4], b"LTX1");
        assert_eq!(&b[4..8], &[0, 0, 0, 2]);
        assert_eq!(&b[8..12], &[0, 0, 0x10, 0]);
        assert_eq!(&b[16..24], &[0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(&b[80..100], &[0u8; 20]);
        assert_eq!(Header::decode(&b).unwrap(), h);
    }

    fn decode_with(patch: impl FnOnce(&mut [u8; HEADER_SIZE])) -> Result<Header, HeaderError> {
        let mut b = sample().encode();
        patch(&mut b);
        Header::decode(&b)
    }

    #[test]
    fn each_rule_names_its_field() {
        type Patch = fn(&mut [u8; HEADER_SIZE]);
        let cases: Vec<(Patch, u64)> = vec![
            (|b| b[0] = b'X', 0),
            (|b| b[7] = 1, 4),
            (|b| b[10] = 0x11, 8),
            (|b| b[23] = 0, 16),
            (|b| b[31] = 0, 24),
            (|b| b[31] = 1, 24),         // max < min
            (|b| b[47] = 1, 40),         // pre-apply lacks bit 63
            (|b| b[40] = 0x80, 40),      // pre-apply with NoChecksum
            (|b| b[48] = 0x80, 48),      // negative WAL offset
            (|b| b[56] = 0xff, 56),      // negative WAL size
            (|b| b[48..56].fill(0), 64), // salts without offset
        ];
        for (i, (patch, offset)) in cases.into_iter().enumerate() {
            let err = decode_with(patch).unwrap_err();
            assert_eq!(err.offset(), offset, "case {i}: {err}");
        }
    }

    #[test]
    fn checksum_rules_follow_the_flags() {
        // Tracking checksums: a non-snapshot needs a pre-apply checksum.
        let mut h = sample();
        h.flags = HeaderFlags::NONE;
        assert_eq!(h.validate(), Err(HeaderError::PreApplyMissing));
        h.pre_apply_checksum = Checksum::new(Checksum::FLAG | 5);
        assert_eq!(h.validate(), Ok(()));
        // A snapshot never has one.
        h.min_txid = TxId::FIRST;
        assert!(matches!(
            h.validate(),
            Err(HeaderError::PreApplyOnSnapshot(_))
        ));
        h.pre_apply_checksum = None;
        assert_eq!(h.validate(), Ok(()));
        // WAL size without offset.
        let mut h = sample();
        (h.wal_offset, h.wal_salt1, h.wal_salt2) = (0, 0, 0);
        assert_eq!(
            h.validate(),
            Err(HeaderError::WalSizeWithoutOffset(5_248_880))
        );
    }

    #[test]
    fn timestamps_print_like_litestream() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_795_426_111_539),
            "2026-11-23T09:28:31.539Z"
        );
        assert_eq!(rfc3339_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            rfc3339_millis(253_402_300_799_999),
            "9999-12-31T23:59:59.999Z"
        );
    }
}
