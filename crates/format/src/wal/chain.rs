//! Frame verification: the one step every WAL reader shares.
//!
//! A [`FrameChain`] holds what verifying the next frame needs — the header's word order,
//! page size and salts, the number of the next frame and the running checksum after the
//! previous one — and checks a frame exactly as `walDecodeFrame` does: salts first, then a
//! non-zero page number, then the chained checksum. A rejected frame leaves the chain where
//! it was; an accepted one advances it. A [`WalPosition`] is the chain's state between
//! frames, so a reader can stop and later resume at the next frame without rescanning.

use std::num::NonZeroU32;

use crate::checksum::{WalChecksum, WordOrder};
use crate::page_size::PageSize;
use crate::wal::header::{FRAME_HEADER_SIZE, Salts, WalHeader, frame_offset, put_be_words};

/// The 24-byte frame header, as read (not yet verified).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Page number (0 makes the frame invalid).
    pub pgno: u32,
    /// Database size in pages after the commit this frame ends; 0 if it ends none.
    pub commit_size: u32,
    /// Salts copied from the WAL header when the frame was written.
    pub salts: Salts,
    /// Cumulative checksum through this frame.
    pub checksum: WalChecksum,
}

impl FrameHeader {
    /// Decodes the first 24 bytes of `frame` (shorter input reads as zeros).
    pub fn parse(frame: &[u8]) -> Self {
        let word = |offset: usize| match frame.get(offset..offset + 4) {
            Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
            _ => 0,
        };
        Self {
            pgno: word(0),
            commit_size: word(4),
            salts: Salts {
                salt1: word(8),
                salt2: word(12),
            },
            checksum: WalChecksum {
                s1: word(16),
                s2: word(20),
            },
        }
    }

    /// The 24 bytes of this header.
    pub fn encode(&self) -> [u8; FRAME_HEADER_SIZE] {
        let mut out = [0u8; FRAME_HEADER_SIZE];
        let words = [
            self.pgno,
            self.commit_size,
            self.salts.salt1,
            self.salts.salt2,
            self.checksum.s1,
            self.checksum.s2,
        ];
        put_be_words(&mut out, &words);
        out
    }
}

/// A frame that passed verification: its salts match, its page number is non-zero and its
/// checksum continues the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalFrame<'a> {
    number: u32,
    pgno: NonZeroU32,
    commit_size: u32,
    checksum: WalChecksum,
    page: &'a [u8],
}

impl<'a> WalFrame<'a> {
    /// Frame number, 1-based.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// The database page this frame holds.
    pub fn pgno(&self) -> NonZeroU32 {
        self.pgno
    }

    /// `Some(database size in pages)` if this frame commits a transaction.
    pub fn commit_size(&self) -> Option<NonZeroU32> {
        NonZeroU32::new(self.commit_size)
    }

    /// True if this frame ends a transaction.
    pub fn is_commit(&self) -> bool {
        self.commit_size != 0
    }

    /// The cumulative checksum through this frame.
    pub fn checksum(&self) -> WalChecksum {
        self.checksum
    }

    /// The page image (exactly one page).
    pub fn page(&self) -> &'a [u8] {
        self.page
    }
}

/// Why a scan of the WAL ended, in `walDecodeFrame`'s order of checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// The file ends exactly after the last frame read.
    EndOfFile,
    /// The file ends inside a frame: a torn or in-progress write.
    PartialFrame,
    /// The frame's salts differ from the header's: a frame of an older generation.
    SaltMismatch,
    /// The frame's page number is 0.
    ZeroPageNumber,
    /// The frame's checksum does not continue the chain.
    ChecksumMismatch,
    /// The reader was told to stop at a frame limit (e.g. the wal-index `mxFrame`).
    FrameLimit,
}

impl StopReason {
    /// The name `walcast inspect` prints, e.g. `"checksum_mismatch"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::EndOfFile => "end_of_file",
            Self::PartialFrame => "partial_frame",
            Self::SaltMismatch => "salt_mismatch",
            Self::ZeroPageNumber => "zero_page_number",
            Self::ChecksumMismatch => "checksum_mismatch",
            Self::FrameLimit => "frame_limit",
        }
    }
}

/// Where and why a scan ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stop {
    /// Why.
    pub reason: StopReason,
    /// The first frame not accepted (one past the last valid frame).
    pub frame: u32,
    /// Byte offset of that frame in the WAL file.
    pub offset: u64,
}

/// The state of a chain between frames: the token that lets a reader resume at frame
/// `frame + 1`. Check it against the file before resuming (the 8 bytes at
/// [`WalPosition::checksum_offset`] must equal `checksum`): any difference means the WAL
/// was restarted or rewritten since.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WalPosition {
    /// Generation salts.
    pub salts: Salts,
    /// Last verified frame (0: none yet, the chain starts at the header).
    pub frame: u32,
    /// Cumulative checksum after `frame` (the header checksum when `frame` is 0).
    pub checksum: WalChecksum,
}

impl WalPosition {
    /// Byte offset of the stored checksum this position must match: frame `frame`'s
    /// checksum field, or the header's when `frame` is 0.
    pub fn checksum_offset(&self, page_size: PageSize) -> u64 {
        if self.frame == 0 {
            24
        } else {
            frame_offset(page_size, self.frame) + 16
        }
    }
}

/// The verification state for the next frame of one WAL generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameChain {
    word_order: WordOrder,
    page_size: PageSize,
    salts: Salts,
    /// Number of the last accepted frame (0 before frame 1).
    last: u32,
    checksum: WalChecksum,
}

impl FrameChain {
    /// A chain that starts at frame 1, seeded with the header checksum.
    pub fn new(header: &WalHeader) -> Self {
        Self {
            word_order: header.word_order,
            page_size: header.page_size,
            salts: header.salts,
            last: 0,
            checksum: header.checksum,
        }
    }

    /// A chain that continues after `position.frame`. The caller vouches that `position`
    /// belongs to this header (same salts); a mismatch shows up as salt mismatches.
    pub fn resume(header: &WalHeader, position: WalPosition) -> Self {
        Self {
            last: position.frame,
            checksum: position.checksum,
            salts: position.salts,
            ..Self::new(header)
        }
    }

    /// Where the chain stands: last accepted frame and the checksum after it.
    pub fn position(&self) -> WalPosition {
        WalPosition {
            salts: self.salts,
            frame: self.last,
            checksum: self.checksum,
        }
    }

    /// Number of the frame [`FrameChain::verify`] expects next.
    pub fn next_frame(&self) -> u32 {
        self.last.saturating_add(1)
    }

    /// Byte offset of the next frame.
    pub fn next_offset(&self) -> u64 {
        frame_offset(self.page_size, self.next_frame())
    }

    /// Bytes in one frame.
    pub fn frame_size(&self) -> usize {
        FRAME_HEADER_SIZE + self.page_size.as_usize()
    }

    /// Page size of the frames.
    pub fn page_size(&self) -> PageSize {
        self.page_size
    }

    /// A stop at the next frame for `reason`.
    pub fn stop(&self, reason: StopReason) -> Stop {
        Stop {
            reason,
            frame: self.next_frame(),
            offset: self.next_offset(),
        }
    }

    /// Verifies `frame` (header + page, exactly [`FrameChain::frame_size`] bytes; anything
    /// shorter or longer is reported as a partial frame) as the next frame, and advances
    /// the chain if it is valid.
    pub fn verify<'a>(&mut self, frame: &'a [u8]) -> Result<WalFrame<'a>, Stop> {
        if frame.len() != self.frame_size() {
            return Err(self.stop(StopReason::PartialFrame));
        }
        let (head, page) = frame.split_at(FRAME_HEADER_SIZE);
        let header = FrameHeader::parse(head);
        if header.salts != self.salts {
            return Err(self.stop(StopReason::SaltMismatch));
        }
        let Some(pgno) = NonZeroU32::new(header.pgno) else {
            return Err(self.stop(StopReason::ZeroPageNumber));
        };
        let checksum = self
            .checksum
            .extend(self.word_order, head.get(..8).unwrap_or_default())
            .and_then(|c| c.extend(self.word_order, page))
            .map_err(|_| self.stop(StopReason::PartialFrame))?;
        if checksum != header.checksum {
            return Err(self.stop(StopReason::ChecksumMismatch));
        }
        self.last = self.next_frame();
        self.checksum = checksum;
        Ok(WalFrame {
            number: self.last,
            pgno,
            commit_size: header.commit_size,
            checksum,
            page,
        })
    }
}
