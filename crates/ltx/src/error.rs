//! Errors of the decoder and encoder. A decode error always carries the byte offset, in
//! the LTX file, of the structure at fault.

use std::io;

use crate::checksum::Checksum;
use crate::header::HeaderError;
use crate::lz4_frame::Lz4FrameError;
use crate::page::PageOrderError;

/// Why an LTX file cannot be decoded, and where.
#[derive(Debug, thiserror::Error)]
#[error("at byte offset {offset}: {kind}")]
pub struct DecodeError {
    offset: u64,
    kind: DecodeErrorKind,
}

impl DecodeError {
    pub(crate) fn new(offset: u64, kind: impl Into<DecodeErrorKind>) -> Self {
        Self {
            offset,
            kind: kind.into(),
        }
    }

    /// Byte offset in the file of the structure at fault (for a truncated file: its length).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// What is wrong.
    pub fn kind(&self) -> &DecodeErrorKind {
        &self.kind
    }

    /// True if the bytes are wrong (as opposed to an I/O error while reading them).
    pub fn is_malformed(&self) -> bool {
        !matches!(self.kind, DecodeErrorKind::Io(_))
    }
}

/// What is wrong with an LTX file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// Reading failed.
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
    /// The file ends inside a structure.
    #[error("file ends inside the {0}: truncated")]
    Truncated(&'static str),
    /// The header breaks a rule.
    #[error("header: {0}")]
    Header(#[from] HeaderError),
    /// A page number breaks an order rule.
    #[error("{0}")]
    PageOrder(#[from] PageOrderError),
    /// A page header sets flags other than the LZ4-block flag.
    #[error("page {pgno} has flags {flags:#06x}; only 0x0001 (LZ4 block) or 0 (LZ4 frame) exist")]
    PageFlags {
        /// Page number.
        pgno: u32,
        /// Flags found.
        flags: u16,
    },
    /// A compressed block larger than any LZ4 compressor produces for one page.
    #[error(
        "page {pgno} claims {size} compressed bytes; at most {max} fit a {page_size}-byte page"
    )]
    CompressedSizeTooLarge {
        /// Page number.
        pgno: u32,
        /// Size field found.
        size: u32,
        /// Largest size accepted.
        max: usize,
        /// Page size.
        page_size: u32,
    },
    /// The LZ4 block does not decompress.
    #[error("page {pgno}: LZ4 block does not decompress: {detail}")]
    Lz4Block {
        /// Page number.
        pgno: u32,
        /// The LZ4 decoder's message.
        detail: String,
    },
    /// The page decompresses to a size other than the page size.
    #[error("page {pgno} decompresses to {len} bytes, not the page size {page_size}")]
    PageLength {
        /// Page number.
        pgno: u32,
        /// Decompressed length.
        len: usize,
        /// Page size.
        page_size: u32,
    },
    /// An old-style (LZ4 frame) page is malformed.
    #[error("page {pgno}: {source}")]
    Lz4Frame {
        /// Page number.
        pgno: u32,
        /// The problem.
        source: Lz4FrameError,
    },
    /// A page index number does not fit 64 bits (Go's `binary.ReadUvarint` overflow).
    #[error("page index: varint overflows 64 bits")]
    IndexVarint,
    /// The page index lists more entries than the file has pages.
    #[error("page index has more entries than the {pages} pages of the file")]
    IndexTooLong {
        /// Pages in the file.
        pages: u64,
    },
    /// The page index ends before listing every page.
    #[error("page index lists {entries} pages, the file has {pages}")]
    IndexTooShort {
        /// Entries listed.
        entries: u64,
        /// Pages in the file.
        pages: u64,
    },
    /// An index entry's offset is not where its page frame starts.
    #[error("page index entry {entry} gives offset {found}; its page frame starts at {expected}")]
    IndexOffset {
        /// Entry number (0-based).
        entry: u64,
        /// Offset in the entry.
        found: u64,
        /// Offset of the frame.
        expected: u64,
    },
    /// The index's page numbers or sizes differ from the page frames'.
    #[error("page index does not describe the page frames (page numbers or sizes differ)")]
    IndexMismatch,
    /// The index size field disagrees with the index's length.
    #[error("page index size field says {stored} bytes; the index is {actual} bytes")]
    IndexSize {
        /// Size field.
        stored: u64,
        /// Bytes counted.
        actual: u64,
    },
    /// The trailer's post-apply checksum breaks the header's checksum rules.
    #[error("trailer post-apply checksum {found:016x}: {rule}")]
    PostApply {
        /// Value found.
        found: u64,
        /// The rule broken.
        rule: &'static str,
    },
    /// The stored file checksum is zero or lacks bit 63.
    #[error("trailer file checksum {0:016x} is malformed (zero or bit 63 clear)")]
    FileChecksumMalformed(u64),
    /// Bytes after the trailer.
    #[error("unexpected bytes after the trailer")]
    TrailingBytes,
    /// The contents do not hash to the stored file checksum.
    #[error("file checksum mismatch: trailer says {stored:016x}, the contents hash to {computed}")]
    ChecksumMismatch {
        /// Stored value.
        stored: u64,
        /// Computed value.
        computed: Checksum,
    },
    /// A snapshot tracking checksums stores a post-apply checksum other than its pages'.
    #[error("snapshot post-apply checksum is {stored}, its pages sum to {computed}")]
    SnapshotChecksum {
        /// Stored post-apply checksum.
        stored: Checksum,
        /// Database checksum of the pages.
        computed: Checksum,
    },
    /// The decoder was used after it returned an error.
    #[error("decoder used after an earlier error")]
    AfterError,
}

/// Why an LTX file cannot be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// Writing failed; the output is incomplete and must be discarded.
    #[error("write failed at byte offset {offset}: {source}")]
    Io {
        /// Bytes written before the failure.
        offset: u64,
        /// The error.
        source: io::Error,
    },
    /// The header breaks a rule.
    #[error("invalid header (field at offset {offset}): {source}", offset = .source.offset())]
    Header {
        /// The rule broken.
        #[from]
        source: HeaderError,
    },
    /// A page number breaks an order rule.
    #[error("{0}")]
    PageOrder(#[from] PageOrderError),
    /// A page buffer whose length is not the page size.
    #[error("page {pgno} is {len} bytes; the page size is {page_size}")]
    PageLength {
        /// Page number.
        pgno: u32,
        /// Buffer length.
        len: usize,
        /// Page size.
        page_size: u32,
    },
    /// LZ4 compression failed (the output buffer is sized so that it cannot).
    #[error("page {pgno}: LZ4 compression failed: {detail}")]
    Compress {
        /// Page number.
        pgno: u32,
        /// The compressor's message.
        detail: String,
    },
    /// A post-apply checksum given to a NoChecksum file, or none given to a file that
    /// tracks checksums.
    #[error("post-apply checksum {given:?}: {rule}")]
    PostApply {
        /// What was given.
        given: Option<Checksum>,
        /// The rule broken.
        rule: &'static str,
    },
    /// A snapshot's post-apply checksum differs from the checksum of the pages written.
    #[error("snapshot post-apply checksum {given} differs from its pages' checksum {computed}")]
    SnapshotChecksum {
        /// Checksum given.
        given: Checksum,
        /// Database checksum of the pages written.
        computed: Checksum,
    },
    /// The encoder was used after a write failed.
    #[error("encoder used after a failed write")]
    AfterError,
}
