//! The page size shared by the database, the WAL, the wal-index and LTX files.
//!
//! Invariant: a [`PageSize`] is always a power of two in 512..=65536, so code holding
//! one may multiply, shift and allocate with it without further checks.
//!
//! ```
//! use walcast_format::PageSize;
//! let ps = PageSize::from_db_header_field(1).unwrap();
//! assert_eq!(ps.get(), 65536);
//! assert_eq!(ps.lock_byte_page(), 16385);
//! ```

/// Byte offset of SQLite's lock byte (`PENDING_BYTE` in os.h). The page that holds it
/// is never written by SQLite and never appears in a WAL frame or an LTX file.
pub const PENDING_BYTE: u64 = 0x4000_0000;

/// A validated SQLite page size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PageSize(u32);

/// A page size that is not a power of two in 512..=65536.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid page size {0}: must be a power of two from 512 to 65536")]
pub struct InvalidPageSize(pub u32);

impl PageSize {
    /// Smallest page size SQLite supports.
    pub const MIN: u32 = 512;
    /// Largest page size SQLite supports.
    pub const MAX: u32 = 65536;

    /// Validates a page size given in bytes (as the WAL header and LTX header store it).
    pub fn new(bytes: u32) -> Result<Self, InvalidPageSize> {
        if (Self::MIN..=Self::MAX).contains(&bytes) && bytes.is_power_of_two() {
            Ok(Self(bytes))
        } else {
            Err(InvalidPageSize(bytes))
        }
    }

    /// Decodes the 2-byte field at offset 16 of the database header, where 1 means 65536.
    pub fn from_db_header_field(raw: u16) -> Result<Self, InvalidPageSize> {
        if raw == 1 {
            Ok(Self(Self::MAX))
        } else {
            Self::new(u32::from(raw))
        }
    }

    /// The value SQLite stores at offset 16 of the database header (65536 is stored as 1).
    pub fn to_db_header_field(self) -> u16 {
        u16::try_from(self.0).unwrap_or(1)
    }

    /// Decodes the wal-index `szPage` field: `(v & 0xFE00) + ((v & 1) << 16)` (wal.c `walPagesize`).
    pub fn from_wal_index_field(raw: u16) -> Result<Self, InvalidPageSize> {
        let bytes = u32::from(raw & 0xFE00) + (u32::from(raw & 1) << 16);
        Self::new(bytes)
    }

    /// The page size in bytes.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The page size in bytes as a `usize`, for buffer lengths.
    pub fn as_usize(self) -> usize {
        self.0 as usize
    }

    /// The 1-based page number that holds [`PENDING_BYTE`] (`PENDING_BYTE_PAGE`).
    /// It exists only in databases larger than 1 GiB and is never written.
    pub fn lock_byte_page(self) -> u32 {
        // PENDING_BYTE / 512 + 1 = 2_097_153 fits in u32 for every valid size.
        (PENDING_BYTE / u64::from(self.0)) as u32 + 1
    }

    /// Byte offset of page `pgno` (1-based) in the database file.
    pub fn page_offset(self, pgno: u32) -> u64 {
        u64::from(pgno.saturating_sub(1)) * u64::from(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_power_of_two_in_range_and_nothing_else() {
        let valid: Vec<u32> = (0..=u32::from(u16::MAX) + 1)
            .filter(|&n| PageSize::new(n).is_ok())
            .collect();
        assert_eq!(
            valid,
            vec![512, 1024, 2048, 4096, 8192, 16384, 32768, 65536]
        );
        assert!(PageSize::new(u32::MAX).is_err());
        assert!(PageSize::new(131072).is_err());
    }

    #[test]
    fn lock_byte_page_matches_sqlite_for_every_size() {
        // Values from SQLite's PENDING_BYTE_PAGE (btreeInt.h) for PENDING_BYTE = 0x40000000.
        let expected = [
            (512, 2097153),
            (1024, 1048577),
            (4096, 262145),
            (8192, 131073),
            (16384, 65537),
            (32768, 32769),
            (65536, 16385),
        ];
        for (size, page) in expected {
            assert_eq!(
                PageSize::new(size).unwrap().lock_byte_page(),
                page,
                "page size {size}"
            );
        }
    }

    #[test]
    fn header_encodings_round_trip() {
        for shift in 9..=16 {
            let ps = PageSize::new(1 << shift).unwrap();
            assert_eq!(
                PageSize::from_db_header_field(ps.to_db_header_field()),
                Ok(ps)
            );
            // wal-index encoding: (sz & 0xFF00) | (sz >> 16)
            let shm = ((ps.get() & 0xFF00) | (ps.get() >> 16)) as u16;
            assert_eq!(PageSize::from_wal_index_field(shm), Ok(ps));
        }
        assert!(PageSize::from_db_header_field(0).is_err());
        assert!(PageSize::from_db_header_field(3).is_err());
    }
}
