//! Pages in the old encoding (Litestream 0.5.0-0.5.15): one LZ4 *frame* per page, with no
//! size field before it, so the frame's own structure says where it ends. Read only.
//!
//! Byte layout of an LZ4 frame (integers little-endian; LZ4 frame format 1.6.x):
//!
//! ```text
//!   4  magic 0x184D2204
//!   1  FLG: version (bits 7-6) = 01, block independence (5), block checksum (4),
//!         content size (3), content checksum (2), reserved (1) = 0, dictionary id (0)
//!   1  BD: reserved (7) = 0, block max size (6-4) = 4..7 (64 KiB..4 MiB), reserved (3-0) = 0
//!   8  content size                       if FLG bit 3
//!   4  dictionary id                      if FLG bit 0 (refused: pages use none)
//!   1  HC: (xxh32(FLG..last descriptor byte, 0) >> 8) & 0xff
//!  then blocks, each:
//!   4  size: bit 31 set = stored uncompressed; 0 = end mark
//!   n  data
//!   4  xxh32(data, 0)                     if FLG bit 4
//!  after the end mark:
//!   4  xxh32(content, 0)                  if FLG bit 2
//! ```
//!
//! pierrec/lz4 (what old Litestream used) wrote 64 KiB blocks, one block per page, and a
//! content checksum; this reader accepts any conforming frame that holds exactly one page,
//! checks every xxHash32 it carries, and never reads past the frame's last byte.

use std::io::Read;

use twox_hash::XxHash32;

use crate::error::{DecodeError, DecodeErrorKind};
use crate::page::max_compressed_size;
use crate::source::Source;

const MAGIC: u32 = 0x184D_2204;
const FLG_VERSION_MASK: u8 = 0b1100_0000;
const FLG_VERSION_01: u8 = 0b0100_0000;
const FLG_INDEPENDENT: u8 = 1 << 5;
const FLG_BLOCK_CHECKSUM: u8 = 1 << 4;
const FLG_CONTENT_SIZE: u8 = 1 << 3;
const FLG_CONTENT_CHECKSUM: u8 = 1 << 2;
const FLG_RESERVED: u8 = 1 << 1;
const FLG_DICT_ID: u8 = 1;
const BLOCK_UNCOMPRESSED: u32 = 1 << 31;

/// What is wrong with an old-style LZ4 page frame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Lz4FrameError {
    /// Not an LZ4 frame.
    #[error("LZ4 frame magic is {0:#010x}, expected 0x184d2204")]
    Magic(u32),
    /// Version bits are not 01, or reserved bits are set.
    #[error(
        "LZ4 frame descriptor {flg:#04x} {bd:#04x} has an unknown version or reserved bits set"
    )]
    Descriptor {
        /// FLG byte.
        flg: u8,
        /// BD byte.
        bd: u8,
    },
    /// A dictionary id, which LTX pages never use.
    #[error("LZ4 frame needs a dictionary, which LTX pages never use")]
    Dictionary,
    /// The header checksum does not match.
    #[error("LZ4 frame header checksum is {stored:#04x}, computed {computed:#04x}")]
    HeaderChecksum {
        /// Stored byte.
        stored: u8,
        /// Computed byte.
        computed: u8,
    },
    /// The declared content size is not the page size.
    #[error("LZ4 frame declares {size} bytes of content, not one page")]
    ContentSize {
        /// Declared size.
        size: u64,
    },
    /// A block larger than the frame allows or than one page can need.
    #[error("LZ4 block of {size} bytes exceeds the {max}-byte limit")]
    BlockTooLarge {
        /// Block size field.
        size: u32,
        /// Limit.
        max: usize,
    },
    /// A block does not decompress, or overflows the page.
    #[error("LZ4 block does not decompress into the page: {detail}")]
    Block {
        /// The decompressor's message.
        detail: String,
    },
    /// A block or content checksum (xxHash32) does not match.
    #[error("{what} is {stored:#010x}, computed {computed:#010x}")]
    Checksum {
        /// Which checksum: "LZ4 block checksum" or "LZ4 content checksum".
        what: &'static str,
        /// Stored.
        stored: u32,
        /// Computed.
        computed: u32,
    },
    /// The frame ends before a whole page was produced.
    #[error("LZ4 frame holds {len} bytes, less than one page")]
    ShortContent {
        /// Bytes produced.
        len: usize,
    },
}

/// The parts of the frame descriptor that matter after it is read.
struct Descriptor {
    independent: bool,
    block_checksum: bool,
    content_checksum: bool,
    block_max: usize,
}

/// Reads one LZ4 frame holding page `pgno` from `src` into `page` (exactly its length).
/// `scratch` is reused for compressed blocks and never grows past the LZ4 bound of a page.
pub(crate) fn read_page<R: Read>(
    src: &mut Source<R>,
    pgno: u32,
    page: &mut [u8],
    scratch: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    let fail = |offset: u64, source: Lz4FrameError| {
        DecodeError::new(offset, DecodeErrorKind::Lz4Frame { pgno, source })
    };
    let desc = read_descriptor(src, page.len(), &fail)?;
    let max_block = desc.block_max.min(max_compressed_size(page.len()));
    let mut filled = 0usize;
    loop {
        let at = src.offset();
        let size = u32::from_le_bytes(src.array("LZ4 block size")?);
        if size == 0 {
            break;
        }
        let stored_raw = size & BLOCK_UNCOMPRESSED != 0;
        let len = (size & !BLOCK_UNCOMPRESSED) as usize;
        if len > max_block {
            return Err(fail(
                at,
                Lz4FrameError::BlockTooLarge {
                    size,
                    max: max_block,
                },
            ));
        }
        scratch.resize(len, 0);
        src.read_exact(scratch, "LZ4 block")?;
        if desc.block_checksum {
            check_xxh32(src, scratch, "LZ4 block checksum", &fail)?;
        }
        filled += decode_block(scratch, stored_raw, desc.independent, page, filled)
            .map_err(|detail| fail(at, Lz4FrameError::Block { detail }))?;
    }
    if filled != page.len() {
        return Err(fail(
            src.offset() - 4,
            Lz4FrameError::ShortContent { len: filled },
        ));
    }
    if desc.content_checksum {
        check_xxh32(src, page, "LZ4 content checksum", &fail)?;
    }
    Ok(())
}

fn read_descriptor<R: Read>(
    src: &mut Source<R>,
    page_len: usize,
    fail: &impl Fn(u64, Lz4FrameError) -> DecodeError,
) -> Result<Descriptor, DecodeError> {
    let start = src.offset();
    let magic = u32::from_le_bytes(src.array("LZ4 frame magic")?);
    if magic != MAGIC {
        return Err(fail(start, Lz4FrameError::Magic(magic)));
    }
    let [flg, bd] = src.array::<2>("LZ4 frame descriptor")?;
    let block_max_code = (bd >> 4) & 0x7;
    if flg & FLG_VERSION_MASK != FLG_VERSION_01
        || flg & FLG_RESERVED != 0
        || bd & 0x8F != 0
        || block_max_code < 4
    {
        return Err(fail(start + 4, Lz4FrameError::Descriptor { flg, bd }));
    }
    if flg & FLG_DICT_ID != 0 {
        return Err(fail(start + 4, Lz4FrameError::Dictionary));
    }
    // The header checksum covers FLG, BD and the optional content size.
    let mut described = [0u8; 10];
    described[..2].copy_from_slice(&[flg, bd]);
    let mut described_len = 2;
    if flg & FLG_CONTENT_SIZE != 0 {
        let raw = src.array::<8>("LZ4 frame content size")?;
        let size = u64::from_le_bytes(raw);
        if size != page_len as u64 {
            return Err(fail(start + 6, Lz4FrameError::ContentSize { size }));
        }
        described[2..].copy_from_slice(&raw);
        described_len = 10;
    }
    let hc_at = src.offset();
    let [stored] = src.array::<1>("LZ4 frame header checksum")?;
    let computed = (XxHash32::oneshot(0, &described[..described_len]) >> 8) as u8;
    if stored != computed {
        return Err(fail(
            hc_at,
            Lz4FrameError::HeaderChecksum { stored, computed },
        ));
    }
    Ok(Descriptor {
        independent: flg & FLG_INDEPENDENT != 0,
        block_checksum: flg & FLG_BLOCK_CHECKSUM != 0,
        content_checksum: flg & FLG_CONTENT_CHECKSUM != 0,
        // Codes 4..=7 mean 64 KiB, 256 KiB, 1 MiB, 4 MiB.
        block_max: 1 << (8 + 2 * usize::from(block_max_code)),
    })
}

/// Reads a stored xxHash32 and compares it with the hash of `data`.
fn check_xxh32<R: Read>(
    src: &mut Source<R>,
    data: &[u8],
    what: &'static str,
    fail: &impl Fn(u64, Lz4FrameError) -> DecodeError,
) -> Result<(), DecodeError> {
    let at = src.offset();
    let stored = u32::from_le_bytes(src.array(what)?);
    let computed = XxHash32::oneshot(0, data);
    if stored != computed {
        let mismatch = Lz4FrameError::Checksum {
            what,
            stored,
            computed,
        };
        return Err(fail(at, mismatch));
    }
    Ok(())
}

/// Appends one block's content to `page[filled..]`; returns the bytes produced.
fn decode_block(
    block: &[u8],
    stored_raw: bool,
    independent: bool,
    page: &mut [u8],
    filled: usize,
) -> Result<usize, String> {
    let (before, rest) = page.split_at_mut(filled);
    if stored_raw {
        let dst = rest
            .get_mut(..block.len())
            .ok_or_else(|| format!("{} stored bytes overflow the page", block.len()))?;
        dst.copy_from_slice(block);
        return Ok(block.len());
    }
    let result = if independent || before.is_empty() {
        lz4_flex::block::decompress_into(block, rest)
    } else {
        // Linked blocks may refer back into the content already produced.
        lz4_flex::block::decompress_into_with_dict(block, rest, before)
    };
    result.map_err(|e| e.to_string())
}
