//! PROTECTED (reference §6): a read slot READ(c), c in 1..=4, is held shared with a mark
//! walcast set or verified. While it is held no WAL restart or truncation can happen, so
//! every committed frame of the generation stays readable; checkpoints still run, capped
//! at the mark.
//!
//! What the sync loop does here: [`Protected::refresh`] the header, read new frames with
//! [`Protected::read_frames`] from its [`FrameCursor`], store them, raise the mark with
//! [`Protected::advance_mark`] so checkpoints can finish, and once caught up call
//! [`Protected::try_handoff`].

use std::ops::RangeInclusive;

use walcast_format::wal_index::WalIndex;

use crate::attachment::{Attachment, DatabasePaths};
use crate::error::{LockError, ReadError};
use crate::frames::{self, CursorAt, FrameBatch, FrameCursor, Start};
use crate::handoff::Handoff;
use crate::ofd::LockKind;
use crate::offsets::{LockTarget, ReadSlot};
use crate::position::{Discontinuity, PositionToken};
use crate::read_slot::{self, HeldSlot, MarkAdvance};
use crate::wal_header::{FRAME_HEADER_SIZE, frame_offset};

/// Tries to freeze backfill (READ0 shared) before giving up: a checkpoint holds READ0
/// exclusively while it copies pages, typically milliseconds; the pauses grow to 10 ms.
const FREEZE_ATTEMPTS: u32 = 200;

/// PROTECTED: see the module docs.
pub struct Protected {
    att: Attachment,
    held: HeldSlot,
    index: WalIndex,
    /// Set when this protection began after a HANDOFF: the position handed off at. If the
    /// generation changed during that HANDOFF, the previous one ended exactly there.
    boundary: Option<PositionToken>,
}

impl std::fmt::Debug for Protected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Protected")
            .field("db", &self.att.paths.db)
            .field("slot", &self.held.slot)
            .field("mark", &self.held.mark)
            .field("index", &self.index)
            .field("boundary", &self.boundary)
            .finish()
    }
}

/// Why [`Protected::try_handoff`] stayed PROTECTED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StayReason {
    /// Frames up to `mx_frame` are not all copied yet.
    NotCaughtUp {
        /// The live `mxFrame`.
        mx_frame: u32,
    },
    /// SQLite has not backfilled everything yet; in HANDOFF nothing could be.
    NotBackfilled {
        /// The live `nBackfill`.
        n_backfill: u32,
        /// The live `mxFrame`.
        mx_frame: u32,
    },
    /// READ0 is locked exclusively (a backfill is running).
    Read0Busy,
    /// The cursor belongs to another attachment.
    ForeignCursor,
}

/// What [`Protected::try_handoff`] did.
#[derive(Debug)]
pub enum HandoffAttempt {
    /// READ0 is held and the read slot released.
    Handoff(Handoff),
    /// Nothing changed: still PROTECTED.
    Stayed(Protected, StayReason),
}

fn salts(index: &WalIndex) -> (u32, u32) {
    (index.header.salt1, index.header.salt2)
}

impl Protected {
    pub(crate) fn new(
        att: Attachment,
        held: HeldSlot,
        index: WalIndex,
        boundary: Option<PositionToken>,
    ) -> Self {
        Self {
            att,
            held,
            index,
            boundary,
        }
    }

    /// The database's paths.
    pub fn paths(&self) -> &DatabasePaths {
        &self.att.paths
    }

    /// The wal-index header and checkpoint info as of the last [`Protected::refresh`] (or
    /// of the claim).
    pub fn wal_index(&self) -> &WalIndex {
        &self.index
    }

    /// The wal-index as it is now (a read of the shared header; unlike
    /// [`Protected::refresh`], what this handle reads from is unchanged).
    pub fn live_index(&self) -> Result<WalIndex, LockError> {
        self.att.read_index()
    }

    /// The read slot held.
    pub fn read_slot(&self) -> ReadSlot {
        self.held.slot
    }

    /// The mark of the held slot: checkpoints backfill no further than this
    /// (`0xffffffff`: not capped at all).
    pub fn read_mark(&self) -> u32 {
        self.held.mark
    }

    /// Frames committed in the live generation as of the last refresh, `1..=mxFrame`.
    pub fn committed_frames(&self) -> Option<RangeInclusive<u32>> {
        let mx = self.index.header.mx_frame;
        (mx > 0).then_some(1..=mx)
    }

    /// Re-reads the wal-index header. Reports a [`Discontinuity`] if `mxFrame` went down
    /// within the generation or the generation changed under committed frames (neither
    /// is possible through SQLite while PROTECTED); the new header is adopted either way.
    pub fn refresh(&mut self) -> Result<&WalIndex, ReadError> {
        let live = self.att.read_index()?;
        let before = std::mem::replace(&mut self.index, live);
        let (from, to) = (salts(&before), salts(&live));
        if from == to && live.header.mx_frame < before.header.mx_frame {
            return Err(Discontinuity::MxFrameShrank {
                from: before.header.mx_frame,
                to: live.header.mx_frame,
            }
            .into());
        }
        // A generation with no committed frame may still change salts when its first
        // writer writes the WAL header (reference §6 race 4); nothing can be lost then.
        if from != to && before.header.mx_frame > 0 {
            return Err(Discontinuity::SaltsChangedWhileProtected {
                from,
                to,
                mx_frame: before.header.mx_frame,
            }
            .into());
        }
        Ok(&self.index)
    }

    /// Brings the read mark to what the policy wants for the last refresh: `mxFrame`
    /// ([`crate::ReadMarkPolicy::MxFrame`]), or uncapped after having had to share a
    /// slot. Upgrade -> store -> downgrade in place; a failed upgrade keeps the shared lock.
    pub fn advance_mark(&mut self) -> Result<MarkAdvance, LockError> {
        read_slot::advance(&self.att, &mut self.held, &self.index, self.att.policy)
    }

    /// Checks a persisted position against the live WAL and returns the cursor after it.
    /// Use at startup (and after any error that dropped a state): a [`Discontinuity`]
    /// means the replica needs a new snapshot.
    pub fn resume(&self, token: &PositionToken) -> Result<FrameCursor, ReadError> {
        let start = frames::verify_position(&self.att, &self.index, token)?;
        Ok(self.cursor_after(&start, *token))
    }

    /// A cursor before frame 1 of the live generation, for a snapshot taken while
    /// PROTECTED: read the database file, then every frame from this cursor (reference §6
    /// "Initial snapshot").
    pub fn generation_start(&self) -> FrameCursor {
        FrameCursor {
            attachment: self.att.id,
            at: CursorAt::GenerationStart { after: None },
        }
    }

    fn cursor_after(&self, start: &Start, token: PositionToken) -> FrameCursor {
        FrameCursor {
            attachment: self.att.id,
            at: CursorAt::After {
                token,
                word_order: start.word_order,
                page_size: start.page_size,
            },
        }
    }

    /// Where reading continues for `cursor` in the live generation, or `None` if that
    /// generation has nothing committed yet.
    fn start_of(&self, cursor: &FrameCursor) -> Result<Option<Start>, ReadError> {
        if cursor.attachment != self.att.id {
            return Err(ReadError::ForeignCursor);
        }
        match cursor.at {
            CursorAt::After { token, .. }
                if token.salts() != salts(&self.index) && self.boundary == Some(token) =>
            {
                frames::generation_start(&self.att, &self.index)
            }
            CursorAt::After { token, .. } => {
                frames::verify_position(&self.att, &self.index, &token).map(Some)
            }
            CursorAt::GenerationStart { .. } => frames::generation_start(&self.att, &self.index),
        }
    }

    /// Reads and verifies up to `max_frames` committed frames after `cursor`, never past
    /// `mxFrame` of the last refresh, into `buf` (which grows to at most `max_frames`
    /// frames of 24 + page-size bytes). Checks `cursor` against the live WAL first.
    pub fn read_frames<'b>(
        &self,
        cursor: &FrameCursor,
        max_frames: u32,
        buf: &'b mut Vec<u8>,
    ) -> Result<FrameBatch<'b>, ReadError> {
        buf.clear();
        let mx = self.index.header.mx_frame;
        let start = match self.start_of(cursor)? {
            Some(start) if start.next <= mx && max_frames > 0 => start,
            _ => {
                return Ok(FrameBatch::new(
                    buf,
                    1,
                    self.index.header.page_size,
                    *cursor,
                ));
            }
        };
        let count = max_frames.min(mx - start.next + 1);
        let frame_size = FRAME_HEADER_SIZE + start.page_size.as_usize();
        buf.resize(count as usize * frame_size, 0);
        let got = self
            .att
            .read_wal(frame_offset(start.page_size, start.next), buf)?;
        if got < buf.len() {
            return Err(Discontinuity::FrameMissing {
                frame: start.next + (got / frame_size) as u32,
                wal_len: self.att.wal_len()?,
            }
            .into());
        }
        let chain = frames::verify_frames(&self.att.paths.wal, &start, buf)?;
        let last = start.next + count - 1;
        let token =
            PositionToken::new(start.salts, last, chain).map_err(|_| LockError::Protocol {
                path: self.att.paths.wal.clone(),
                what: "a frame batch ended at frame 0",
            })?;
        let end = self.cursor_after(&start, token);
        Ok(FrameBatch::new(buf, start.next, Some(start.page_size), end))
    }

    /// Runs `copy` with the database file frozen: READ0 is held shared on top of the read
    /// slot, and no checkpoint can write or truncate the database file meanwhile (backfill
    /// needs READ0 exclusively). For a snapshot: with the default uncapped mark a
    /// checkpoint may otherwise copy frames newer than the `mxFrame` just read into pages
    /// being read. Returns `None` if a checkpoint kept READ0 for every attempt (retry
    /// later). READ0 is always released before returning, so [`Protected::try_handoff`]
    /// sees the usual state.
    ///
    /// While frozen, the application's checkpoints back off (PASSIVE does nothing, FULL and
    /// above wait through their busy handler), so keep `copy` short.
    pub fn with_backfill_frozen<T>(
        &mut self,
        copy: impl FnOnce(&mut Self) -> T,
    ) -> Result<Option<T>, LockError> {
        let mut backoff = crate::backoff::Backoff::default();
        let mut held = false;
        for _ in 0..FREEZE_ATTEMPTS {
            if self.att.try_lock(LockTarget::Read0, LockKind::Shared)? {
                held = true;
                break;
            }
            backoff.pause();
        }
        if !held {
            return Ok(None);
        }
        let out = copy(self);
        self.att.unlock(LockTarget::Read0)?;
        Ok(Some(out))
    }

    /// Reads the page of committed frame `frame` again, into `buf` (resized to one
    /// frame). For a sync that first scans frames with [`Protected::read_frames`] (keeping
    /// only frame numbers, so memory does not grow with the transaction) and then copies
    /// the newest version of each page in page order.
    ///
    /// Sound because frames `1..=mxFrame` of the live generation cannot change while a
    /// read slot is held (no restart, and SQLite rewrites only uncommitted frames). As a
    /// guard against misuse, the frame must be within `mxFrame` of the last refresh and its
    /// header must still carry the live generation's salts and `page_number`.
    pub fn reread_page<'b>(
        &self,
        frame: u32,
        page_number: u32,
        buf: &'b mut Vec<u8>,
    ) -> Result<&'b [u8], ReadError> {
        let header = &self.index.header;
        let page_size = header.page_size.ok_or(LockError::Protocol {
            path: self.att.paths.wal.clone(),
            what: "re-read of a frame while the wal-index has no page size",
        })?;
        let offset = frame_offset(page_size, frame);
        let corrupt = |problem| ReadError::CorruptFrame {
            path: self.att.paths.wal.clone(),
            frame,
            offset,
            problem,
        };
        if frame == 0 || frame > header.mx_frame {
            return Err(corrupt("re-read of a frame outside 1..=mxFrame"));
        }
        buf.resize(FRAME_HEADER_SIZE + page_size.as_usize(), 0);
        if self.att.read_wal(offset, buf)? < buf.len() {
            return Err(Discontinuity::FrameMissing {
                frame,
                wal_len: self.att.wal_len()?,
            }
            .into());
        }
        let word = |at: usize| {
            buf.get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_be_bytes)
        };
        if word(0) != page_number || (word(8), word(12)) != salts(&self.index) {
            return Err(corrupt(
                "committed frame changed while protected (page number or salts differ)",
            ));
        }
        Ok(&buf[FRAME_HEADER_SIZE..])
    }

    /// Reads the database file at `offset` (pread on the attachment's descriptor) until
    /// `buf` is full or the file ends; returns the bytes read.
    pub fn read_db(&self, offset: u64, buf: &mut [u8]) -> Result<usize, LockError> {
        self.att.read_db(offset, buf)
    }

    /// Length of the database file.
    pub fn db_len(&self) -> Result<u64, LockError> {
        self.att.db_len()
    }

    /// `fdatasync` of the WAL: ship only what the primary has made durable.
    pub fn sync_wal(&self) -> Result<(), LockError> {
        self.att.sync_wal()
    }

    /// Why handing off now would be useless or unsafe, if it would.
    fn handoff_blocker(&self, cursor: &FrameCursor, index: &WalIndex) -> Option<StayReason> {
        let mx_frame = index.header.mx_frame;
        let caught_up = match cursor.at {
            CursorAt::GenerationStart { .. } => mx_frame == 0,
            CursorAt::After { token, .. } if token.salts() == salts(index) => {
                token.frame() == mx_frame && token.checksum() == index.header.frame_checksum
            }
            CursorAt::After { token, .. } => mx_frame == 0 && self.boundary == Some(token),
        };
        if cursor.attachment != self.att.id {
            Some(StayReason::ForeignCursor)
        } else if !caught_up {
            Some(StayReason::NotCaughtUp { mx_frame })
        } else if index.checkpoint.n_backfill != mx_frame {
            Some(StayReason::NotBackfilled {
                n_backfill: index.checkpoint.n_backfill,
                mx_frame,
            })
        } else {
            None
        }
    }

    /// PROTECTED -> HANDOFF, when everything up to `mxFrame` is copied (`cursor` is at
    /// the end) and backfilled: take READ0 shared, re-check under it, and only then release
    /// the read slot. Otherwise stays, releasing READ0 again if it was taken.
    pub fn try_handoff(self, cursor: &FrameCursor) -> Result<HandoffAttempt, LockError> {
        self.handoff(cursor, false)
    }

    /// [`Protected::try_handoff`], except that when a checkpoint holds READ0 (it is
    /// backfilling) this waits in the kernel for it to finish instead of staying: the
    /// moment it ends is when handing off lets the application restart the WAL. The wait
    /// lasts as long as that backfill.
    pub fn handoff_after_backfill(self, cursor: &FrameCursor) -> Result<HandoffAttempt, LockError> {
        self.handoff(cursor, true)
    }

    fn handoff(
        self,
        cursor: &FrameCursor,
        wait_for_backfill: bool,
    ) -> Result<HandoffAttempt, LockError> {
        let live = self.att.read_index()?;
        if let Some(reason) = self.handoff_blocker(cursor, &live) {
            return Ok(HandoffAttempt::Stayed(self, reason));
        }
        if !self.att.try_lock(LockTarget::Read0, LockKind::Shared)? {
            if !wait_for_backfill {
                return Ok(HandoffAttempt::Stayed(self, StayReason::Read0Busy));
            }
            // A checkpoint is backfilling (READ0 exclusive). It never waits for walcast's
            // locks while it holds READ0 (its waits for readers come before or after), so
            // waiting cannot deadlock, and the kernel wakes walcast the moment it unlocks:
            // the short window before the application's next commit, when a restart of the
            // WAL is possible if walcast hands off.
            self.att.wait_lock(LockTarget::Read0, LockKind::Shared)?;
        }
        // From here nBackfill is frozen: no backfill can run while READ0 is held shared.
        let frozen = self.att.read_index()?;
        if let Some(reason) = self.handoff_blocker(cursor, &frozen) {
            self.att.unlock(LockTarget::Read0)?;
            return Ok(HandoffAttempt::Stayed(self, reason));
        }
        self.att.unlock(LockTarget::Read(self.held.slot))?;
        Ok(HandoffAttempt::Handoff(Handoff::new(
            self.att,
            frozen,
            cursor.position(),
        )))
    }

    /// Releases every lock and closes the files.
    pub fn release(self) {}
}
