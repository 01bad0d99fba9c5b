//! The database file header: the first 100 bytes of page 1.
//!
//! Byte layout (every integer big-endian; SQLite's btree.c `lockBtree`, fileformat2 §1.3):
//!
//! ```text
//! offset  size  field
//!      0    16  "SQLite format 3\0"
//!     16     2  page size; 1 means 65536
//!     18     1  write version: 1 rollback journal, 2 WAL
//!     19     1  read version:  1 rollback journal, 2 WAL
//!     20     1  reserved bytes at the end of each page (usable size >= 480)
//!     21     3  payload fractions, always 64, 32, 32
//!     24     4  file change counter
//!     28     4  database size in pages (trusted only if non-zero and [24] == [92])
//!     32     4  first freelist trunk page
//!     36     4  freelist page count
//!     40     4  schema cookie
//!     44     4  schema format number (1..4; 0 before the first table)
//!     48     4  default page cache size
//!     52     4  largest root b-tree page (auto/incremental vacuum), else 0
//!     56     4  text encoding: 1 UTF-8, 2 UTF-16le, 3 UTF-16be (0 before the first table)
//!     60     4  user_version
//!     64     4  incremental-vacuum flag
//!     68     4  application_id
//!     72    20  reserved, zero
//!     92     4  version-valid-for: the change counter when [96] was written
//!     96     4  SQLITE_VERSION_NUMBER of the last writer
//! ```
//!
//! In WAL mode the newest page 1 may live only in the WAL, so this header can be stale; the
//! database size that counts is then the WAL's last commit (`nTruncate`).
//!
//! ```
//! use walcast_format::db_header::{DatabaseHeader, PageCountSource};
//! let mut page = [0u8; 100];
//! page[..16].copy_from_slice(b"SQLite format 3\0");
//! page[16..18].copy_from_slice(&4096u16.to_be_bytes());
//! page[18] = 2;
//! page[19] = 2;
//! page[21..24].copy_from_slice(&[64, 32, 32]);
//! page[28..32].copy_from_slice(&3u32.to_be_bytes());
//! let header = DatabaseHeader::parse(&page).unwrap();
//! assert!(header.is_wal());
//! // Offsets 24 and 92 disagree (7 vs 0), so the file size decides the page count.
//! page[24..28].copy_from_slice(&7u32.to_be_bytes());
//! let header = DatabaseHeader::parse(&page).unwrap();
//! let count = header.page_count(8192);
//! assert_eq!((count.pages, count.source), (2, PageCountSource::FileSize));
//! ```

use nom::Parser;
use nom::bytes::complete::take;
use nom::number::complete::{be_u16, be_u32, u8 as byte};

use crate::page_size::PageSize;

/// Length of the header.
pub const DB_HEADER_SIZE: usize = 100;
/// The 16 bytes every SQLite database starts with.
pub const DB_MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// Smallest usable page size (page size minus reserved bytes) SQLite accepts.
pub const MIN_USABLE_SIZE: u32 = 480;

/// Write/read version byte: which journal the database uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalVersion {
    /// 1: rollback journal (`journal_mode=DELETE` and friends).
    Rollback,
    /// 2: write-ahead log.
    Wal,
}

impl JournalVersion {
    fn from_byte(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Rollback),
            2 => Some(Self::Wal),
            _ => None,
        }
    }

    /// The byte SQLite stores.
    pub fn number(self) -> u8 {
        match self {
            Self::Rollback => 1,
            Self::Wal => 2,
        }
    }
}

/// Text encoding of the database (offset 56).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextEncoding {
    /// 0: not decided yet; SQLite sets it when the first table is created.
    Unset,
    /// 1: UTF-8.
    Utf8,
    /// 2: UTF-16 little-endian.
    Utf16Le,
    /// 3: UTF-16 big-endian.
    Utf16Be,
}

impl TextEncoding {
    /// The name `walcast inspect` prints.
    pub fn name(self) -> &'static str {
        match self {
            Self::Unset => "unset",
            Self::Utf8 => "utf-8",
            Self::Utf16Le => "utf-16le",
            Self::Utf16Be => "utf-16be",
        }
    }
}

/// Where [`DatabaseHeader::page_count`] took its answer from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageCountSource {
    /// The in-header count (offset 28) is valid.
    Header,
    /// The in-header count is zero or stale (offsets 24 and 92 differ): the file size counts.
    FileSize,
}

/// The page count SQLite would use for a database file, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageCount {
    /// Number of pages.
    pub pages: u64,
    /// Which rule decided it.
    pub source: PageCountSource,
}

/// A validated database header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatabaseHeader {
    /// Page size.
    pub page_size: PageSize,
    /// Offset 18.
    pub write_version: JournalVersion,
    /// Offset 19.
    pub read_version: JournalVersion,
    /// Offset 20: bytes reserved at the end of each page (encryption, checksums).
    pub reserved_bytes: u8,
    /// Offset 24.
    pub change_counter: u32,
    /// Offset 28, raw: see [`DatabaseHeader::page_count`] for when it can be trusted.
    pub header_page_count: u32,
    /// Offset 32.
    pub freelist_trunk_page: u32,
    /// Offset 36.
    pub freelist_pages: u32,
    /// Offset 40.
    pub schema_cookie: u32,
    /// Offset 44.
    pub schema_format: u32,
    /// Offset 48 (signed in SQLite).
    pub default_cache_size: u32,
    /// Offset 52.
    pub largest_root_page: u32,
    /// Offset 56.
    pub text_encoding: TextEncoding,
    /// Offset 60.
    pub user_version: u32,
    /// Offset 64.
    pub incremental_vacuum: u32,
    /// Offset 68.
    pub application_id: u32,
    /// Offset 92.
    pub version_valid_for: u32,
    /// Offset 96: `SQLITE_VERSION_NUMBER` of the last writer, e.g. 3040001.
    pub sqlite_version: u32,
}

/// Why 100 bytes are not a database header SQLite would open. Offsets are within the file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DbHeaderError {
    /// Fewer than 100 bytes.
    #[error("offset {len}: the file ends inside the 100-byte database header (truncated)")]
    Truncated {
        /// Bytes available.
        len: usize,
    },
    /// Offset 0 is not `SQLite format 3\0`.
    #[error("offset 0: not a SQLite database (magic string missing)")]
    BadMagic,
    /// Offset 16 does not decode to a power of two in 512..=65536.
    #[error("offset 16: page size field {0} is not a valid page size")]
    InvalidPageSize(u16),
    /// Offset 18 or 19 is not 1 or 2 (wal2 databases use 3).
    #[error(
        "offset {offset}: file format version {found} is not supported (1 rollback journal, 2 WAL)"
    )]
    UnsupportedVersion {
        /// 18 (write version) or 19 (read version).
        offset: usize,
        /// The byte found.
        found: u8,
    },
    /// Page size minus reserved bytes is below 480.
    #[error(
        "offset 20: {reserved} reserved bytes leave {usable} usable bytes per page, below SQLite's minimum 480"
    )]
    TooManyReservedBytes {
        /// Reserved bytes per page.
        reserved: u8,
        /// Usable bytes left.
        usable: u32,
    },
    /// Offsets 21..24 are not 64, 32, 32.
    #[error("offset 21: payload fractions are {0:?}, SQLite requires [64, 32, 32]")]
    BadPayloadFractions([u8; 3]),
    /// Offset 56 is not 0..=3.
    #[error("offset 56: text encoding {0} is not 1 (UTF-8), 2 (UTF-16le) or 3 (UTF-16be)")]
    BadTextEncoding(u32),
}

/// The fields in file order, before validation.
struct RawHeader<'a> {
    magic: &'a [u8],
    page_size: u16,
    versions: [u8; 2],
    reserved: u8,
    fractions: [u8; 3],
    words: [u32; 12],
    version_valid_for: u32,
    sqlite_version: u32,
}

fn raw_header(input: &[u8]) -> nom::IResult<&[u8], RawHeader<'_>> {
    let (input, (magic, page_size, write, read, reserved, f0, f1, f2)) =
        (take(16usize), be_u16, byte, byte, byte, byte, byte, byte).parse(input)?;
    let mut words = [0u32; 12];
    let mut input = input;
    for word in &mut words {
        (input, *word) = be_u32(input)?;
    }
    let (input, (_reserved_zero, version_valid_for, sqlite_version)) =
        (take(20usize), be_u32, be_u32).parse(input)?;
    Ok((
        input,
        RawHeader {
            magic,
            page_size,
            versions: [write, read],
            reserved,
            fractions: [f0, f1, f2],
            words,
            version_valid_for,
            sqlite_version,
        },
    ))
}

impl DatabaseHeader {
    /// Parses and validates the header as `lockBtree` does. Only the first 100 bytes are read.
    pub fn parse(bytes: &[u8]) -> Result<Self, DbHeaderError> {
        let head = bytes
            .get(..DB_HEADER_SIZE)
            .ok_or(DbHeaderError::Truncated { len: bytes.len() })?;
        let (_, raw) =
            raw_header(head).map_err(|_| DbHeaderError::Truncated { len: bytes.len() })?;
        if raw.magic != DB_MAGIC {
            return Err(DbHeaderError::BadMagic);
        }
        let page_size = PageSize::from_db_header_field(raw.page_size)
            .map_err(|_| DbHeaderError::InvalidPageSize(raw.page_size))?;
        let [write_version, read_version] = [18, 19].map(|offset| {
            let found = raw.versions[offset - 18];
            JournalVersion::from_byte(found)
                .ok_or(DbHeaderError::UnsupportedVersion { offset, found })
        });
        let usable = page_size.get() - u32::from(raw.reserved);
        if usable < MIN_USABLE_SIZE {
            return Err(DbHeaderError::TooManyReservedBytes {
                reserved: raw.reserved,
                usable,
            });
        }
        if raw.fractions != [64, 32, 32] {
            return Err(DbHeaderError::BadPayloadFractions(raw.fractions));
        }
        let [
            change_counter,
            header_page_count,
            freelist_trunk_page,
            freelist_pages,
            schema_cookie,
            schema_format,
            default_cache_size,
            largest_root_page,
            encoding,
            user_version,
            incremental_vacuum,
            application_id,
        ] = raw.words;
        let text_encoding = match encoding {
            0 => TextEncoding::Unset,
            1 => TextEncoding::Utf8,
            2 => TextEncoding::Utf16Le,
            3 => TextEncoding::Utf16Be,
            other => return Err(DbHeaderError::BadTextEncoding(other)),
        };
        Ok(Self {
            page_size,
            write_version: write_version?,
            read_version: read_version?,
            reserved_bytes: raw.reserved,
            change_counter,
            header_page_count,
            freelist_trunk_page,
            freelist_pages,
            schema_cookie,
            schema_format,
            default_cache_size,
            largest_root_page,
            text_encoding,
            user_version,
            incremental_vacuum,
            application_id,
            version_valid_for: raw.version_valid_for,
            sqlite_version: raw.sqlite_version,
        })
    }

    /// True when both version bytes say WAL (2/2), the only mode walcast replicates.
    pub fn is_wal(&self) -> bool {
        self.write_version == JournalVersion::Wal && self.read_version == JournalVersion::Wal
    }

    /// Usable bytes per page (page size minus reserved bytes).
    pub fn usable_size(&self) -> u32 {
        self.page_size.get() - u32::from(self.reserved_bytes)
    }

    /// The page count SQLite uses for a database file of `file_len` bytes (`lockBtree`):
    /// offset 28 when it is non-zero and offsets 24 and 92 agree, else the file size in
    /// pages, rounded up as the pager does.
    pub fn page_count(&self, file_len: u64) -> PageCount {
        if self.header_page_count != 0 && self.change_counter == self.version_valid_for {
            PageCount {
                pages: u64::from(self.header_page_count),
                source: PageCountSource::Header,
            }
        } else {
            PageCount {
                pages: file_len.div_ceil(u64::from(self.page_size.get())),
                source: PageCountSource::FileSize,
            }
        }
    }

    /// The lock-byte page of this database's page size (never written, see [`PageSize`]).
    pub fn lock_byte_page(&self) -> u32 {
        self.page_size.lock_byte_page()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(page_size: u16) -> [u8; 100] {
        let mut h = [0u8; 100];
        h[..16].copy_from_slice(DB_MAGIC);
        h[16..18].copy_from_slice(&page_size.to_be_bytes());
        h[18] = 2;
        h[19] = 2;
        h[21..24].copy_from_slice(&[64, 32, 32]);
        h[24..28].copy_from_slice(&9u32.to_be_bytes());
        h[28..32].copy_from_slice(&5u32.to_be_bytes());
        h[56..60].copy_from_slice(&1u32.to_be_bytes());
        h[68..72].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        h[92..96].copy_from_slice(&9u32.to_be_bytes());
        h[96..100].copy_from_slice(&3_040_001u32.to_be_bytes());
        h
    }

    #[test]
    fn every_field_lands_where_the_layout_says() {
        let h = DatabaseHeader::parse(&header(4096)).unwrap();
        assert_eq!(h.page_size.get(), 4096);
        assert!(h.is_wal());
        assert_eq!(h.change_counter, 9);
        assert_eq!(h.header_page_count, 5);
        assert_eq!(h.text_encoding, TextEncoding::Utf8);
        assert_eq!(h.application_id, 0x1234_5678);
        assert_eq!(h.version_valid_for, 9);
        assert_eq!(h.sqlite_version, 3_040_001);
    }

    #[test]
    fn page_size_one_means_65536() {
        let h = DatabaseHeader::parse(&header(1)).unwrap();
        assert_eq!(h.page_size.get(), 65536);
        assert_eq!(h.lock_byte_page(), 16385);
    }

    #[test]
    fn page_count_follows_the_validity_rule() {
        let mut bytes = header(4096);
        let valid = DatabaseHeader::parse(&bytes).unwrap();
        assert_eq!(
            valid.page_count(1),
            PageCount {
                pages: 5,
                source: PageCountSource::Header
            }
        );
        bytes[92..96].copy_from_slice(&8u32.to_be_bytes());
        let stale = DatabaseHeader::parse(&bytes).unwrap();
        assert_eq!(stale.page_count(4096 * 3 + 1).pages, 4);
        bytes[92..96].copy_from_slice(&9u32.to_be_bytes());
        bytes[28..32].copy_from_slice(&0u32.to_be_bytes());
        let zero = DatabaseHeader::parse(&bytes).unwrap();
        assert_eq!(zero.page_count(8192).source, PageCountSource::FileSize);
    }

    #[test]
    fn each_invalid_field_names_its_offset() {
        let cases: [(usize, u8, &str); 6] = [
            (0, b'X', "offset 0"),
            (17, 3, "offset 16"),
            (18, 3, "offset 18"),
            (19, 0, "offset 19"),
            (22, 33, "offset 21"),
            (59, 4, "offset 56"),
        ];
        for (offset, value, expected) in cases {
            let mut bytes = header(4096);
            bytes[offset] = value;
            let err = DatabaseHeader::parse(&bytes).unwrap_err();
            assert!(err.to_string().contains(expected), "{offset}: {err}");
        }
    }

    #[test]
    fn reserved_bytes_must_leave_480_usable() {
        let mut bytes = header(512);
        bytes[20] = 32;
        assert_eq!(DatabaseHeader::parse(&bytes).unwrap().usable_size(), 480);
        bytes[20] = 33;
        assert!(matches!(
            DatabaseHeader::parse(&bytes),
            Err(DbHeaderError::TooManyReservedBytes { usable: 479, .. })
        ));
    }

    #[test]
    fn short_input_is_truncated() {
        assert_eq!(
            DatabaseHeader::parse(&header(4096)[..99]),
            Err(DbHeaderError::Truncated { len: 99 })
        );
    }
}
