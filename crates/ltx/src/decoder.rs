//! The streaming LTX decoder.
//!
//! # The contract: pages are provisional until [`Decoder::finish`] succeeds
//!
//! An LTX file's checksum is in its last 8 bytes, so a decoder that streams cannot know
//! whether a page is genuine until it has read everything. Pages therefore come out as
//! [`ProvisionalPage`]s, and the only proof that a file is sound is the [`VerifiedFile`]
//! returned by [`Decoder::finish`], which nothing outside this crate can construct.
//!
//! Whoever makes decoded pages durable must make that depend on a `VerifiedFile`:
//! write them somewhere nobody reads (a `<db>.tmp` file, a staging object, an LTX
//! encoder whose trailer is only written after every input verified), and publish
//! (rename, commit) only after `finish()` returned `Ok` for **every** input. On any error
//! the staged output is discarded. Never write a provisional page into a live database.
//!
//! Memory: one page, one compressed page (at most the LZ4 bound of a page) and a 64 KiB
//! read buffer, whatever the file size. The page index is checked against the frames
//! without being stored (see `index.rs`).
//!
//! Checks, each reported with the byte offset of the structure at fault: the header rules
//! ([`Header::validate`]); page flags; page order (ascending, within commit, never the
//! lock-byte page, snapshots complete); compressed sizes bounded before any allocation;
//! every page decompresses to exactly the page size (both encodings); the page index
//! matches the frames; the index size field; trailer checksum rules; no bytes after the
//! trailer; the file checksum; and for a snapshot that tracks checksums, its post-apply
//! checksum against its pages.
//!
//! ```
//! use walcast_format::PageSize;
//! use walcast_ltx::{Decoder, Encoder, Header, TxId};
//! let header = Header::new(PageSize::new(512).unwrap(), 2, TxId::FIRST, TxId::FIRST, 0);
//! let mut enc = Encoder::new(Vec::new(), header).unwrap();
//! enc.write_page(1, &[1u8; 512]).unwrap();
//! enc.write_page(2, &[2u8; 512]).unwrap();
//! let file = enc.finish(None).unwrap().writer;
//!
//! let mut dec = Decoder::new(&file[..]).unwrap();
//! let mut staged = Vec::new(); // stands for a tmp file nobody reads yet
//! while let Some(page) = dec.next_page().unwrap() {
//!     staged.push((page.pgno, page.data.to_vec()));
//! }
//! let verified = dec.finish().unwrap(); // only now may `staged` be published
//! assert_eq!(verified.page_count(), 2);
//! assert_eq!(staged[1], (2, vec![2u8; 512]));
//! ```

use std::io::Read;

use crate::checksum::{Checksum, Crc64, DatabaseChecksum};
use crate::error::{DecodeError, DecodeErrorKind};
use crate::header::{HEADER_SIZE, Header};
use crate::index::{IndexDigest, Uvarint, UvarintReader};
use crate::lz4_frame;
use crate::page::{PAGE_FLAG_BLOCK, PageOrderError, PageSequence, max_compressed_size};
use crate::source::Source;
use crate::trailer::{Trailer, post_apply_rule};

/// A page read from a file whose checksum has not been verified yet.
#[derive(Clone, Copy, Debug)]
pub struct ProvisionalPage<'a> {
    /// Page number (1-based).
    pub pgno: u32,
    /// The page, exactly page-size bytes.
    pub data: &'a [u8],
}

/// Proof that a whole LTX file decoded and verified: only [`Decoder::finish`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VerifiedFile {
    header: Header,
    trailer: Trailer,
    page_count: u64,
    size: u64,
}

impl VerifiedFile {
    /// The file's header.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// The file's trailer (its checksum verified).
    pub fn trailer(&self) -> &Trailer {
        &self.trailer
    }
    /// Pages in the file.
    pub fn page_count(&self) -> u64 {
        self.page_count
    }
    /// Size of the file in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Pages,
    /// The end-of-pages marker was read at this offset.
    Ended {
        marker_at: u64,
    },
    Failed,
}

/// Reads one LTX file from a stream. See the module docs for the provisional-page contract.
pub struct Decoder<R> {
    src: Source<R>,
    header: Header,
    file_crc: Crc64,
    sequence: PageSequence,
    page: Vec<u8>,
    compressed: Vec<u8>,
    current: Option<u32>,
    page_count: u64,
    frames_index: IndexDigest,
    snapshot_sum: Option<DatabaseChecksum>,
    stage: Stage,
}

impl<R: Read> Decoder<R> {
    /// Reads and validates the header. Nothing else is read yet.
    pub fn new(reader: R) -> Result<Self, DecodeError> {
        let mut src = Source::new(reader);
        let raw: [u8; HEADER_SIZE] = src.array("header")?;
        let header = Header::decode(&raw).map_err(|e| DecodeError::new(e.offset(), e))?;
        let mut file_crc = Crc64::new();
        file_crc.update(&raw);
        let page_size = header.page_size.as_usize();
        let snapshot_sum = (header.is_snapshot() && header.flags.tracks_checksums())
            .then(|| DatabaseChecksum::empty(header.page_size));
        Ok(Self {
            src,
            sequence: PageSequence::new(&header),
            header,
            file_crc,
            page: vec![0; page_size],
            compressed: Vec::with_capacity(max_compressed_size(page_size)),
            current: None,
            page_count: 0,
            frames_index: IndexDigest::default(),
            snapshot_sum,
            stage: Stage::Pages,
        })
    }

    /// The validated header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Pages decoded so far.
    pub fn page_count(&self) -> u64 {
        self.page_count
    }

    /// Bytes read so far.
    pub fn offset(&self) -> u64 {
        self.src.offset()
    }

    /// Decodes the next page; `None` after the last one. The page is provisional.
    pub fn next_page(&mut self) -> Result<Option<ProvisionalPage<'_>>, DecodeError> {
        self.advance()?;
        Ok(self.current_page())
    }

    /// Decodes the next page into the decoder's buffer and returns its number; `None`
    /// after the last one. [`Decoder::current_page`] then borrows it.
    pub fn advance(&mut self) -> Result<Option<u32>, DecodeError> {
        match self.stage {
            Stage::Failed => {
                return Err(DecodeError::new(self.offset(), DecodeErrorKind::AfterError));
            }
            Stage::Ended { .. } => return Ok(None),
            Stage::Pages => {}
        }
        let result = self.read_frame();
        match &result {
            Ok(pgno) => self.current = *pgno,
            Err(_) => {
                self.stage = Stage::Failed;
                self.current = None;
            }
        }
        result
    }

    /// The page the last [`Decoder::advance`] decoded, if any. Provisional.
    pub fn current_page(&self) -> Option<ProvisionalPage<'_>> {
        self.current.map(|pgno| ProvisionalPage {
            pgno,
            data: &self.page,
        })
    }

    /// Decodes any pages left, then the index and trailer, and verifies the file checksum.
    /// `Ok` is the only proof that the pages handed out were genuine.
    pub fn finish(mut self) -> Result<VerifiedFile, DecodeError> {
        while self.advance()?.is_some() {}
        let Stage::Ended { marker_at } = self.stage else {
            return Err(DecodeError::new(self.offset(), DecodeErrorKind::AfterError));
        };
        self.read_index(marker_at)?;
        let trailer = self.read_trailer()?;
        Ok(VerifiedFile {
            header: self.header,
            trailer,
            page_count: self.page_count,
            size: self.src.offset(),
        })
    }

    fn read_frame(&mut self) -> Result<Option<u32>, DecodeError> {
        let frame_at = self.src.offset();
        let raw: [u8; 6] = self.src.array("page header")?;
        self.file_crc.update(&raw);
        let pgno = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
        let flags = u16::from_be_bytes([raw[4], raw[5]]);
        let at_frame = |kind: DecodeErrorKind| DecodeError::new(frame_at, kind);
        if pgno == 0 {
            if flags != 0 {
                return Err(at_frame(PageOrderError::ZeroPageNumber { flags }.into()));
            }
            self.sequence.finish().map_err(|e| at_frame(e.into()))?;
            self.stage = Stage::Ended {
                marker_at: frame_at,
            };
            return Ok(None);
        }
        if flags & !PAGE_FLAG_BLOCK != 0 {
            return Err(at_frame(DecodeErrorKind::PageFlags { pgno, flags }));
        }
        self.sequence.push(pgno).map_err(|e| at_frame(e.into()))?;
        if flags & PAGE_FLAG_BLOCK != 0 {
            self.read_block(pgno)?;
        } else {
            lz4_frame::read_page(&mut self.src, pgno, &mut self.page, &mut self.compressed)?;
        }
        self.file_crc.update(&self.page);
        if let Some(sum) = &mut self.snapshot_sum {
            sum.add_page(pgno, &self.page);
        }
        let frame_size = self.src.offset() - frame_at;
        self.frames_index.push_entry(pgno, frame_at, frame_size);
        self.page_count += 1;
        Ok(Some(pgno))
    }

    /// Reads the size field and LZ4 block of a page and decompresses it into `self.page`.
    fn read_block(&mut self, pgno: u32) -> Result<(), DecodeError> {
        let size_at = self.src.offset();
        let raw_size: [u8; 4] = self.src.array("compressed page size")?;
        self.file_crc.update(&raw_size);
        let size = u32::from_be_bytes(raw_size);
        let page_size = self.header.page_size;
        let max = max_compressed_size(page_size.as_usize());
        if size as usize > max {
            let kind = DecodeErrorKind::CompressedSizeTooLarge {
                pgno,
                size,
                max,
                page_size: page_size.get(),
            };
            return Err(DecodeError::new(size_at, kind));
        }
        let data_at = self.src.offset();
        self.compressed.resize(size as usize, 0);
        self.src
            .read_exact(&mut self.compressed, "compressed page")?;
        let len =
            lz4_flex::block::decompress_into(&self.compressed, &mut self.page).map_err(|e| {
                let detail = e.to_string();
                DecodeError::new(data_at, DecodeErrorKind::Lz4Block { pgno, detail })
            })?;
        if len != self.page.len() {
            let kind = DecodeErrorKind::PageLength {
                pgno,
                len,
                page_size: page_size.get(),
            };
            return Err(DecodeError::new(data_at, kind));
        }
        Ok(())
    }

    /// Reads the page index and checks it against the frames already decoded.
    fn read_index(&mut self, marker_at: u64) -> Result<(), DecodeError> {
        let index_at = self.src.offset();
        let mut read = IndexDigest::default();
        let mut entries = 0u64;
        let mut next_frame_at = HEADER_SIZE as u64;
        loop {
            let entry_at = self.src.offset();
            let pgno = self.read_uvarint(&mut read)?;
            if pgno == 0 {
                if entries != self.page_count {
                    let kind = DecodeErrorKind::IndexTooShort {
                        entries,
                        pages: self.page_count,
                    };
                    return Err(DecodeError::new(entry_at, kind));
                }
                break;
            }
            if entries == self.page_count {
                let kind = DecodeErrorKind::IndexTooLong {
                    pages: self.page_count,
                };
                return Err(DecodeError::new(entry_at, kind));
            }
            let offset = self.read_uvarint(&mut read)?;
            let size = self.read_uvarint(&mut read)?;
            if offset != next_frame_at {
                let kind = DecodeErrorKind::IndexOffset {
                    entry: entries,
                    found: offset,
                    expected: next_frame_at,
                };
                return Err(DecodeError::new(entry_at, kind));
            }
            next_frame_at = offset.saturating_add(size);
            entries += 1;
        }
        self.frames_index.push_bytes(&[0]);
        if !self.frames_index.same_as(&read) || next_frame_at != marker_at {
            return Err(DecodeError::new(index_at, DecodeErrorKind::IndexMismatch));
        }
        let size_at = self.src.offset();
        let raw: [u8; 8] = self.src.array("page index size")?;
        self.file_crc.update(&raw);
        let stored = u64::from_be_bytes(raw);
        if stored != read.len() {
            let kind = DecodeErrorKind::IndexSize {
                stored,
                actual: read.len(),
            };
            return Err(DecodeError::new(size_at, kind));
        }
        Ok(())
    }

    fn read_uvarint(&mut self, read: &mut IndexDigest) -> Result<u64, DecodeError> {
        let at = self.src.offset();
        let mut uvarint = UvarintReader::default();
        loop {
            let byte: [u8; 1] = self.src.array("page index")?;
            self.file_crc.update(&byte);
            read.push_bytes(&byte);
            match uvarint.push(byte[0]) {
                Uvarint::More => {}
                Uvarint::Done(value) => return Ok(value),
                Uvarint::Overflow => {
                    return Err(DecodeError::new(at, DecodeErrorKind::IndexVarint));
                }
            }
        }
    }

    fn read_trailer(&mut self) -> Result<Trailer, DecodeError> {
        let post_at = self.src.offset();
        let raw: [u8; 8] = self.src.array("trailer")?;
        self.file_crc.update(&raw);
        let found = u64::from_be_bytes(raw);
        let post_apply_checksum = match found {
            0 => None,
            raw => Some(Checksum::new(raw).ok_or_else(|| {
                let rule = "bit 63 must be set on every stored checksum";
                DecodeError::new(post_at, DecodeErrorKind::PostApply { found, rule })
            })?),
        };
        post_apply_rule(&self.header, post_apply_checksum).map_err(|rule| {
            DecodeError::new(post_at, DecodeErrorKind::PostApply { found, rule })
        })?;
        let sum_at = self.src.offset();
        let stored = u64::from_be_bytes(self.src.array("trailer")?);
        if !self.src.at_end()? {
            return Err(DecodeError::new(
                self.src.offset(),
                DecodeErrorKind::TrailingBytes,
            ));
        }
        let file_checksum = Checksum::new(stored).ok_or_else(|| {
            DecodeError::new(sum_at, DecodeErrorKind::FileChecksumMalformed(stored))
        })?;
        let computed = self.file_crc.checksum();
        if computed != file_checksum {
            let kind = DecodeErrorKind::ChecksumMismatch { stored, computed };
            return Err(DecodeError::new(sum_at, kind));
        }
        if let (Some(sum), Some(stored)) = (self.snapshot_sum, post_apply_checksum) {
            let computed = sum.value();
            if computed != stored {
                let kind = DecodeErrorKind::SnapshotChecksum { stored, computed };
                return Err(DecodeError::new(post_at, kind));
            }
        }
        Ok(Trailer {
            post_apply_checksum,
            file_checksum,
        })
    }
}

/// Decodes a whole file, discarding the pages, and returns the proof that it is sound.
pub fn verify(reader: impl Read) -> Result<VerifiedFile, DecodeError> {
    Decoder::new(reader)?.finish()
}
