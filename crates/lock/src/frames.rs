//! Reading committed WAL frames while PROTECTED: frame cursors, position checks, and the
//! frame checks (salts, page number, cumulative checksum) that recovery applies.
//!
//! Invariants:
//! - Nothing beyond the `mxFrame` of the last validated wal-index header is ever read.
//! - A [`FrameCursor`] names a point after which nothing is missing: either after a frame
//!   whose checksum matched the chain, or the start of a generation that began after
//!   everything before it was accounted for. Cursors come only from [`crate::Protected`]
//!   and are bound to one attachment.
//! - Frames are handed out only after their salts and checksum chain verified.
//!
//! The frame checks here are the minimum the lock crate needs; once `walcast_format`'s WAL
//! frame reader is on main, `verify_frames` should call it instead.

use std::path::Path;

use walcast_format::wal_index::WalIndex;
use walcast_format::{PageSize, WalChecksum, WordOrder};

use crate::attachment::Attachment;
use crate::error::ReadError;
use crate::position::{Discontinuity, PositionToken};
use crate::wal_header::{
    FRAME_HEADER_SIZE, WAL_HEADER_SIZE, WalHeader, be_checksum, be_u32, frame_offset,
};

/// Where frame copying continues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameCursor {
    pub(crate) attachment: u64,
    pub(crate) at: CursorAt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CursorAt {
    /// After frame `token.frame()` of generation `token.salts()`.
    After {
        token: PositionToken,
        word_order: WordOrder,
        page_size: PageSize,
    },
    /// Before frame 1 of the live generation. Everything earlier is accounted for: copied
    /// up to `after`, or part of a snapshot taken while protected.
    GenerationStart { after: Option<PositionToken> },
}

impl FrameCursor {
    /// The position to persist: the last frame copied, or, at the start of a generation,
    /// the end of the previous one (`None` if nothing was copied since a snapshot of an
    /// empty WAL).
    pub fn position(&self) -> Option<PositionToken> {
        match self.at {
            CursorAt::After { token, .. } => Some(token),
            CursorAt::GenerationStart { after } => after,
        }
    }

    /// True at the start of a generation (before its frame 1).
    pub fn at_generation_start(&self) -> bool {
        matches!(self.at, CursorAt::GenerationStart { .. })
    }
}

/// One verified WAL frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalFrame<'a> {
    /// Frame number in its generation, from 1.
    pub number: u32,
    /// Database page this frame carries (never 0).
    pub page_number: u32,
    /// For the last frame of a transaction: the database size in pages after it commits.
    pub commit_size: Option<u32>,
    /// The page image, `page_size` bytes.
    pub page: &'a [u8],
}

/// Frames read by one [`crate::Protected::read_frames`] call, all verified.
#[derive(Debug)]
pub struct FrameBatch<'b> {
    bytes: &'b [u8],
    first: u32,
    /// `None` only for an empty batch before the first frame of a WAL.
    page_size: Option<PageSize>,
    end: FrameCursor,
}

impl<'b> FrameBatch<'b> {
    /// The frames in order. A batch may end inside a transaction (when it hit the frame
    /// limit); each transaction ends with a frame whose `commit_size` is set.
    pub fn frames(&self) -> impl Iterator<Item = WalFrame<'b>> + use<'b> {
        let first = self.first;
        let frame_size = self.frame_size();
        self.bytes
            .chunks_exact(frame_size)
            .zip(first..)
            .map(|(frame, number)| {
                let (header, page) = frame.split_at(FRAME_HEADER_SIZE);
                let commit = be_u32(header, 4);
                WalFrame {
                    number,
                    page_number: be_u32(header, 0),
                    commit_size: (commit != 0).then_some(commit),
                    page,
                }
            })
    }

    fn frame_size(&self) -> usize {
        FRAME_HEADER_SIZE
            + self
                .page_size
                .map_or(PageSize::MIN as usize, PageSize::as_usize)
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.bytes.len() / self.frame_size()
    }

    /// True if there was nothing new to read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Page size of the frames (`None` for an empty batch of a WAL without frames).
    pub fn page_size(&self) -> Option<PageSize> {
        self.page_size
    }

    /// The cursor after the last frame of the batch (the input cursor if empty). Adopt it
    /// once what was read is safely stored.
    pub fn end(&self) -> FrameCursor {
        self.end
    }
}

/// Where reading starts, once a cursor has been checked against the live WAL.
pub(crate) struct Start {
    pub(crate) next: u32,
    pub(crate) chain: WalChecksum,
    pub(crate) salts: (u32, u32),
    pub(crate) word_order: WordOrder,
    pub(crate) page_size: PageSize,
}

fn salts_of(index: &WalIndex) -> (u32, u32) {
    (index.header.salt1, index.header.salt2)
}

/// Reads the WAL header and requires it to belong to the generation of `index`.
pub(crate) fn live_wal_header(att: &Attachment, index: &WalIndex) -> Result<WalHeader, ReadError> {
    let mut bytes = [0u8; WAL_HEADER_SIZE];
    let len = att.read_wal(0, &mut bytes)?;
    let header = WalHeader::parse(bytes.get(..len).unwrap_or_default()).map_err(|problem| {
        Discontinuity::WalHeaderInvalid {
            mx_frame: index.header.mx_frame,
            problem,
        }
    })?;
    if header.salts != salts_of(index) {
        return Err(Discontinuity::WalHeaderMismatch {
            wal: header.salts,
            index: salts_of(index),
        }
        .into());
    }
    Ok(header)
}

/// Checks a position against the live WAL (reference §6 (d)): the generation is the live
/// one, `mxFrame >= N`, the WAL header carries the same salts, and frame N's header holds
/// the same salts and checksum.
pub(crate) fn verify_position(
    att: &Attachment,
    index: &WalIndex,
    token: &PositionToken,
) -> Result<Start, ReadError> {
    if token.salts() != salts_of(index) {
        return Err(Discontinuity::GenerationChanged {
            token: token.salts(),
            live: salts_of(index),
        }
        .into());
    }
    let mx_frame = index.header.mx_frame;
    if mx_frame < token.frame() {
        return Err(Discontinuity::Behind {
            frame: token.frame(),
            mx_frame,
        }
        .into());
    }
    let header = live_wal_header(att, index)?;
    let mut stored = [0u8; 16];
    let offset = header.frame_offset(token.frame()) + 8;
    if att.read_wal(offset, &mut stored)? < stored.len() {
        return Err(Discontinuity::FrameMissing {
            frame: token.frame(),
            wal_len: att.wal_len()?,
        }
        .into());
    }
    let live = be_checksum(&stored, 8);
    if live != token.checksum() || (be_u32(&stored, 0), be_u32(&stored, 4)) != token.salts() {
        return Err(Discontinuity::FrameRewritten {
            frame: token.frame(),
            token: token.checksum(),
            live,
        }
        .into());
    }
    Ok(Start {
        next: token.frame() + 1,
        chain: token.checksum(),
        salts: token.salts(),
        word_order: header.word_order,
        page_size: header.page_size,
    })
}

/// Start of the live generation, seeded from its WAL header. `None` while it has no
/// committed frame (its WAL header may not be written yet, reference §6 race 4).
pub(crate) fn generation_start(
    att: &Attachment,
    index: &WalIndex,
) -> Result<Option<Start>, ReadError> {
    if index.header.mx_frame == 0 {
        return Ok(None);
    }
    let header = live_wal_header(att, index)?;
    Ok(Some(Start {
        next: 1,
        chain: header.checksum,
        salts: header.salts,
        word_order: header.word_order,
        page_size: header.page_size,
    }))
}

/// Verifies frames read from the WAL starting at frame `start.next`: salts equal the
/// generation's, page number non-zero, and the cumulative checksum over each frame's first
/// 8 header bytes and its page equals the one it stores. Returns the chain after the last.
pub(crate) fn verify_frames(
    wal: &Path,
    start: &Start,
    bytes: &[u8],
) -> Result<WalChecksum, ReadError> {
    let frame_size = FRAME_HEADER_SIZE + start.page_size.as_usize();
    let mut chain = start.chain;
    for (frame, number) in bytes.chunks_exact(frame_size).zip(start.next..) {
        let corrupt = |problem| ReadError::CorruptFrame {
            path: wal.to_owned(),
            frame: number,
            offset: frame_offset(start.page_size, number),
            problem,
        };
        let (header, page) = frame.split_at(FRAME_HEADER_SIZE);
        if (be_u32(header, 8), be_u32(header, 12)) != start.salts {
            return Err(corrupt(
                "committed frame carries other salts than its WAL header",
            ));
        }
        if be_u32(header, 0) == 0 {
            return Err(corrupt("committed frame has page number 0"));
        }
        chain = header
            .get(..8)
            .and_then(|h| chain.extend(start.word_order, h).ok())
            .and_then(|c| c.extend(start.word_order, page).ok())
            .ok_or_else(|| corrupt("frame length is not a multiple of 8"))?;
        if chain != be_checksum(header, 16) {
            return Err(corrupt(
                "committed frame checksum does not continue the chain",
            ));
        }
    }
    Ok(chain)
}

impl<'b> FrameBatch<'b> {
    pub(crate) fn new(
        bytes: &'b [u8],
        first: u32,
        page_size: Option<PageSize>,
        end: FrameCursor,
    ) -> Self {
        Self {
            bytes,
            first,
            page_size,
            end,
        }
    }
}
