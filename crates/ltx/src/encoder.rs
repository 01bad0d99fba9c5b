//! The streaming LTX encoder: header, LZ4-block page frames (the encoding Litestream
//! 0.5.16+ writes and every 0.5.16+ reader expects), end marker, page index, trailer.
//!
//! Every rule the decoder checks is checked here before anything is written, so a page
//! that breaks one is refused and the encoder stays usable. An I/O error leaves the output
//! incomplete: the encoder refuses further calls and the caller discards the output.
//! The output is only a valid LTX file once [`Encoder::finish`] has written the trailer,
//! so a file staged from provisional pages (see [`crate::decoder`]) stays unreadable
//! unless every input verified.
//!
//! Memory: one compressed page, the LZ4 hash table, a 64 KiB write buffer, and the page
//! index (a few bytes per page), whatever the file size.

use std::io::{BufWriter, Write};

use lz4_flex::block::CompressTable;

use crate::checksum::{Checksum, Crc64, DatabaseChecksum};
use crate::error::EncodeError;
use crate::header::Header;
use crate::index::put_uvarint;
use crate::page::{BLOCK_SIZE_FIELD, PAGE_FLAG_BLOCK, PAGE_HEADER_SIZE, PageSequence};
use crate::trailer::{Trailer, post_apply_rule};

const WRITE_BUFFER: usize = 1 << 16;

/// What [`Encoder::finish`] returns: the writer back, and what was written.
#[derive(Debug)]
pub struct EncodedFile<W> {
    /// The writer, flushed (not synced: fsync is the caller's policy).
    pub writer: W,
    /// The header written.
    pub header: Header,
    /// The trailer written.
    pub trailer: Trailer,
    /// Pages written.
    pub page_count: u64,
    /// File size in bytes.
    pub size: u64,
}

/// Writes one LTX file to a stream.
pub struct Encoder<W: Write> {
    out: BufWriter<W>,
    header: Header,
    file_crc: Crc64,
    offset: u64,
    sequence: PageSequence,
    index: Vec<u8>,
    page_count: u64,
    frame: Vec<u8>,
    table: CompressTable,
    snapshot_sum: Option<DatabaseChecksum>,
    failed: bool,
}

impl<W: Write> Encoder<W> {
    /// Validates `header` and writes it.
    pub fn new(writer: W, header: Header) -> Result<Self, EncodeError> {
        header.validate()?;
        let page_size = header.page_size.as_usize();
        let frame_capacity = PAGE_HEADER_SIZE
            + BLOCK_SIZE_FIELD
            + lz4_flex::block::get_maximum_output_size(page_size);
        let mut encoder = Self {
            out: BufWriter::with_capacity(WRITE_BUFFER, writer),
            sequence: PageSequence::new(&header),
            header,
            file_crc: Crc64::new(),
            offset: 0,
            index: Vec::new(),
            page_count: 0,
            frame: Vec::with_capacity(frame_capacity),
            table: if page_size >= usize::from(u16::MAX) {
                CompressTable::large()
            } else {
                CompressTable::small()
            },
            snapshot_sum: (header.is_snapshot() && header.flags.tracks_checksums())
                .then(|| DatabaseChecksum::empty(header.page_size)),
            failed: false,
        };
        let raw = header.encode();
        encoder.file_crc.update(&raw);
        encoder.write(&raw)?;
        Ok(encoder)
    }

    /// The header being written.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Pages written so far.
    pub fn page_count(&self) -> u64 {
        self.page_count
    }

    /// Compresses and writes page `pgno`. Pages must come in the order the header
    /// allows (ascending, within commit, no lock-byte page, every page for a snapshot).
    pub fn write_page(&mut self, pgno: u32, page: &[u8]) -> Result<(), EncodeError> {
        self.check_usable()?;
        let page_size = self.header.page_size;
        if page.len() != page_size.as_usize() {
            return Err(EncodeError::PageLength {
                pgno,
                len: page.len(),
                page_size: page_size.get(),
            });
        }
        let mut sequence = self.sequence.clone();
        sequence.push(pgno)?;

        let frame_at = self.offset;
        let prefix = PAGE_HEADER_SIZE + BLOCK_SIZE_FIELD;
        self.frame.resize(self.frame.capacity(), 0);
        let compressed_len = lz4_flex::block::compress_into_with_table(
            page,
            &mut self.frame[prefix..],
            &mut self.table,
        )
        .map_err(|e| EncodeError::Compress {
            pgno,
            detail: e.to_string(),
        })?;
        self.frame.truncate(prefix + compressed_len);
        self.frame[..4].copy_from_slice(&pgno.to_be_bytes());
        self.frame[4..6].copy_from_slice(&PAGE_FLAG_BLOCK.to_be_bytes());
        let size_field = u32::try_from(compressed_len).unwrap_or(u32::MAX);
        self.frame[6..prefix].copy_from_slice(&size_field.to_be_bytes());

        // The file checksum covers the frame's header and size field, then the page as
        // it was before compression.
        self.file_crc.update(&self.frame[..prefix]);
        self.file_crc.update(page);
        let frame = std::mem::take(&mut self.frame);
        let written = self.write(&frame);
        self.frame = frame;
        written?;

        self.sequence = sequence;
        if let Some(sum) = &mut self.snapshot_sum {
            sum.add_page(pgno, page);
        }
        put_uvarint(&mut self.index, u64::from(pgno));
        put_uvarint(&mut self.index, frame_at);
        put_uvarint(&mut self.index, self.offset - frame_at);
        self.page_count += 1;
        Ok(())
    }

    /// Writes the end marker, the page index and the trailer, and flushes.
    /// `post_apply` is the database checksum after the file applies: `None` for a
    /// NoChecksum file, required otherwise (and for a snapshot, checked against its pages).
    pub fn finish(mut self, post_apply: Option<Checksum>) -> Result<EncodedFile<W>, EncodeError> {
        self.check_usable()?;
        self.sequence.finish()?;
        post_apply_rule(&self.header, post_apply).map_err(|rule| EncodeError::PostApply {
            given: post_apply,
            rule,
        })?;
        // superfly/ltx refuses to encode an empty database without the empty checksum,
        // which also rules out empty NoChecksum files; Litestream never writes either.
        if self.header.commit == 0 && post_apply != Some(Checksum::EMPTY_DATABASE) {
            return Err(EncodeError::PostApply {
                given: post_apply,
                rule: "a file for an empty database (commit 0) must carry the empty-database checksum",
            });
        }
        if let (Some(sum), Some(given)) = (self.snapshot_sum, post_apply)
            && sum.value() != given
        {
            return Err(EncodeError::SnapshotChecksum {
                given,
                computed: sum.value(),
            });
        }

        let mut tail = Vec::with_capacity(PAGE_HEADER_SIZE + self.index.len() + 1 + 8 + 16);
        tail.extend_from_slice(&[0u8; PAGE_HEADER_SIZE]);
        let index = std::mem::take(&mut self.index);
        tail.extend_from_slice(&index);
        tail.push(0);
        tail.extend_from_slice(&(index.len() as u64 + 1).to_be_bytes());
        tail.extend_from_slice(&post_apply.map_or(0, Checksum::get).to_be_bytes());
        self.file_crc.update(&tail);
        let file_checksum = self.file_crc.checksum();
        tail.extend_from_slice(&file_checksum.get().to_be_bytes());
        self.write(&tail)?;

        let offset = self.offset;
        let writer = self.out.into_inner().map_err(|e| EncodeError::Io {
            offset,
            source: e.into_error(),
        })?;
        Ok(EncodedFile {
            writer,
            header: self.header,
            trailer: Trailer {
                post_apply_checksum: post_apply,
                file_checksum,
            },
            page_count: self.page_count,
            size: offset,
        })
    }

    fn check_usable(&self) -> Result<(), EncodeError> {
        if self.failed {
            Err(EncodeError::AfterError)
        } else {
            Ok(())
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), EncodeError> {
        match self.out.write_all(bytes) {
            Ok(()) => {
                self.offset += bytes.len() as u64;
                Ok(())
            }
            Err(source) => {
                self.failed = true;
                Err(EncodeError::Io {
                    offset: self.offset,
                    source,
                })
            }
        }
    }
}
