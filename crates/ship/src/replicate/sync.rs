//! The sync loop of one database: attach, then on every wake copy the frames committed
//! since the last sync into one L0 file in the staging directory, following the lock
//! protocol of `walcast_lock` (PROTECTED while copying, HANDOFF when caught up so the
//! application's checkpoints can restart the WAL).
//!
//! Invariants:
//! - The position is saved only after the file holding those frames is durable.
//! - A failure to store (disk full, permissions) keeps the read slot: the frames stay in
//!   the WAL until they can be stored, and nothing is skipped.
//! - Any doubt about continuity (a [`Discontinuity`], a corrupt frame, a position that
//!   cannot be resumed) is answered with a snapshot, never by guessing.
//! - It never writes the database or the WAL (see `walcast_lock`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use tracing::{debug, info, warn};
use walcast_lock::{
    AttachError, AttachOptions, Attached, FrameCursor, Handoff, HandoffAttempt, HandoffStep,
    LockError, Protected, ReadError,
};
use walcast_ltx::TxId;

use super::encode::{self, StagedFile};
use super::frames::SyncFrames;
use super::staging::{StagedPosition, StagingDir};
use super::start::plan_start;

/// Frames read per `read_frames` call: bounds the read buffer to this many frames.
const FRAMES_PER_READ: u32 = 256;
/// A sync stops at the first commit after this many frames, so one L0 file and the
/// per-sync page map stay bounded under a long catch-up (a single larger transaction
/// still goes into one file: files never split a transaction).
const FRAMES_PER_SYNC: u32 = 64 * 1024;

/// Why a step failed, by what the caller does about it.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Attaching failed; retry if [`AttachError::is_retryable`], else give up.
    #[error(transparent)]
    Attach(#[from] AttachError),
    /// The attachment is gone (its locks are released); the next step attaches again.
    #[error("lost the attachment: {0}")]
    Lost(anyhow::Error),
    /// Storing a file failed; still attached and protected, the next step retries.
    #[error("cannot stage: {0:#}")]
    Store(anyhow::Error),
}

impl From<LockError> for StepError {
    fn from(e: LockError) -> Self {
        Self::Lost(e.into())
    }
}

enum Link {
    Protected(Protected),
    Handoff(Handoff),
}

/// What the replica held when the loop started, to choose the first TXID.
pub type ReplicaMax = Option<TxId>;

/// The sync loop's state for one database.
pub struct DatabaseSync {
    db: PathBuf,
    staging: StagingDir,
    options: AttachOptions,
    replica_max: ReplicaMax,
    link: Option<Link>,
    /// Where copying continues; bound to the current attachment.
    cursor: Option<FrameCursor>,
    /// The last file staged, or (before any) what the staging directory recorded.
    last: Option<StagedPosition>,
    /// TXID of the next file.
    next_txid: Option<TxId>,
    /// Set when the next sync must be a snapshot, with why.
    snapshot_reason: Option<String>,
    buf: Vec<u8>,
}

/// What one step did.
#[derive(Debug)]
pub enum Stepped {
    /// A file was staged.
    Staged,
    /// Nothing new.
    Idle,
}

impl DatabaseSync {
    pub fn new(db: &Path, staging: StagingDir, replica_max: ReplicaMax) -> Self {
        Self {
            db: db.to_owned(),
            staging,
            options: AttachOptions::default(),
            replica_max,
            link: None,
            cursor: None,
            last: None,
            next_txid: None,
            snapshot_reason: None,
            buf: Vec::new(),
        }
    }

    pub fn db(&self) -> &Path {
        &self.db
    }

    /// The last file staged.
    pub fn last_position(&self) -> Option<StagedPosition> {
        self.last
    }

    /// Attaches if needed, copies what is new, and hands off when caught up.
    pub fn step(&mut self) -> Result<Stepped, StepError> {
        let protected = match self.link.take() {
            None => self.attach()?,
            Some(Link::Protected(p)) => p,
            Some(Link::Handoff(h)) => match h.poll()? {
                HandoffStep::Protected(p) => p,
                HandoffStep::Unchanged(h) | HandoffStep::Busy(h) => {
                    self.link = Some(Link::Handoff(h));
                    return Ok(Stepped::Idle);
                }
            },
        };
        self.step_protected(protected, true)
    }

    /// A last sync before shutting down: back to PROTECTED if handed off, copy everything
    /// committed, then release every lock.
    pub fn finish(&mut self) -> Result<Stepped, StepError> {
        let protected = match self.link.take() {
            None => return Ok(Stepped::Idle),
            Some(Link::Protected(p)) => p,
            Some(Link::Handoff(mut h)) => loop {
                // Busy only while every slot is briefly locked; HANDOFF is safe meanwhile.
                h = match h.protect()? {
                    HandoffStep::Protected(p) => break p,
                    HandoffStep::Busy(h) | HandoffStep::Unchanged(h) => h,
                };
                std::thread::sleep(std::time::Duration::from_millis(1));
            },
        };
        let stepped = self.step_protected(protected, false);
        self.link = None;
        stepped
    }

    fn attach(&mut self) -> Result<Protected, StepError> {
        let attached = Attached::attach(&self.db, self.options)?;
        let protected = attached.protect()?;
        if self.next_txid.is_none() {
            self.plan_start().map_err(StepError::Store)?;
        }
        debug!(db = %self.db.display(), slot = ?protected.read_slot(), "attached");
        Ok(protected)
    }

    /// First attach of the process: decide the first TXID and whether to resume.
    fn plan_start(&mut self) -> anyhow::Result<()> {
        self.staging.open()?;
        let position = self.staging.load_position().unwrap_or_else(|e| {
            warn!("{e:#}");
            None
        });
        let staged = self.staging.staged()?;
        let plan = plan_start(self.replica_max, &staged, position);
        for name in &plan.discard {
            warn!(db = %self.db.display(), file = %name, "discarding a staged file that does not continue the replica");
            self.staging.remove(*name)?;
        }
        self.next_txid = Some(plan.next_txid);
        self.last = plan.resume.map(|token| StagedPosition {
            txid: plan.next_txid.prev().unwrap_or(TxId::FIRST),
            wal: Some(token),
        });
        self.snapshot_reason = plan.snapshot_reason.map(str::to_owned);
        Ok(())
    }

    fn step_protected(&mut self, mut p: Protected, hand_off: bool) -> Result<Stepped, StepError> {
        let result = self.sync_protected(&mut p);
        match result {
            Ok(stepped) => {
                if hand_off {
                    self.try_handoff(p)?;
                } else {
                    p.release();
                }
                Ok(stepped)
            }
            Err(StepError::Store(e)) => {
                // Keep the read slot: the frames stay in the WAL until they are stored.
                self.link = Some(Link::Protected(p));
                Err(StepError::Store(e))
            }
            Err(other) => {
                self.cursor = None;
                Err(other)
            }
        }
    }

    fn try_handoff(&mut self, mut p: Protected) -> Result<(), StepError> {
        p.advance_mark()?;
        let Some(cursor) = self.cursor else {
            self.link = Some(Link::Protected(p));
            return Ok(());
        };
        self.link = Some(match p.try_handoff(&cursor)? {
            HandoffAttempt::Handoff(h) => Link::Handoff(h),
            HandoffAttempt::Stayed(p, _) => Link::Protected(p),
        });
        Ok(())
    }

    /// Establishes the cursor (resume or snapshot) and copies new frames.
    fn sync_protected(&mut self, p: &mut Protected) -> Result<Stepped, StepError> {
        if let Err(e) = p.refresh() {
            self.need_snapshot(classify(e)?);
        }
        if self.cursor.is_none() && self.snapshot_reason.is_none() {
            match self.last.and_then(|pos| pos.wal) {
                Some(token) => match p.resume(&token) {
                    Ok(cursor) => {
                        info!(db = %self.db.display(), next_txid = %self.next_txid(), wal = %token, "resuming from the recorded WAL position");
                        self.cursor = Some(cursor);
                    }
                    Err(e) => self.need_snapshot(classify(e)?),
                },
                None => self.need_snapshot("no WAL position to resume from".into()),
            }
        }
        if let Some(reason) = self.snapshot_reason.clone() {
            return self.snapshot(p, &reason);
        }
        match self.copy_changes(p) {
            Err(StepError::Lost(e)) if is_discontinuity(&e) => {
                self.need_snapshot(format!("{e:#}"));
                let reason = self.snapshot_reason.clone().unwrap_or_default();
                self.snapshot(p, &reason)
            }
            other => other,
        }
    }

    fn need_snapshot(&mut self, reason: String) {
        self.cursor = None;
        self.snapshot_reason.get_or_insert(reason);
    }

    fn next_txid(&self) -> TxId {
        self.next_txid.unwrap_or(TxId::FIRST)
    }

    /// Reads committed frames after `cursor` into `frames`, up to `mxFrame` or the first
    /// commit after `limit` frames; returns the cursor after the last frame read.
    fn scan(
        &mut self,
        p: &Protected,
        mut cursor: FrameCursor,
        frames: &mut SyncFrames,
        limit: u32,
    ) -> Result<FrameCursor, StepError> {
        let mut read = 0u32;
        loop {
            let batch = p
                .read_frames(&cursor, FRAMES_PER_READ, &mut self.buf)
                .map_err(|e| StepError::Lost(e.into()))?;
            if batch.is_empty() {
                return Ok(cursor);
            }
            for frame in batch.frames() {
                frames.record(&frame);
            }
            read = read.saturating_add(batch.len() as u32);
            cursor = batch.end();
            if read >= limit && !frames.ends_inside_transaction() {
                return Ok(cursor);
            }
        }
    }

    fn copy_changes(&mut self, p: &mut Protected) -> Result<Stepped, StepError> {
        let Some(start) = self.cursor else {
            return Ok(Stepped::Idle);
        };
        let mut frames = SyncFrames::new();
        let end = self.scan(p, start, &mut frames, FRAMES_PER_SYNC)?;
        if frames.is_empty() {
            // Possibly crossed into a new generation with nothing committed yet.
            self.cursor = Some(end);
            return Ok(Stepped::Idle);
        }
        // Ship only what the primary made durable (synchronous=NORMAL defers WAL fsyncs).
        p.sync_wal()?;
        let txid = self.next_txid();
        let staged =
            encode::write_changes(p, &frames, txid, &self.staging).map_err(store_or_lost)?;
        self.stored(end, staged)
    }

    fn snapshot(&mut self, p: &mut Protected, reason: &str) -> Result<Stepped, StepError> {
        let txid = self.next_txid();
        info!(db = %self.db.display(), txid = %txid, "taking a snapshot: {reason}");
        let staging = self.staging.clone();
        let frozen = p.with_backfill_frozen(|p| -> Result<_, StepError> {
            if let Err(e) = p.refresh() {
                debug!("refresh before snapshot: {e}");
            }
            let start = p.generation_start();
            let mut frames = SyncFrames::new();
            let end = self.scan(p, start, &mut frames, u32::MAX)?;
            p.sync_wal()?;
            let staged =
                encode::write_snapshot(p, &frames, txid, &staging).map_err(store_or_lost)?;
            Ok((end, staged))
        })?;
        let Some(result) = frozen else {
            return Err(StepError::Store(anyhow::anyhow!(
                "{}: a checkpoint kept the database busy; the snapshot will be retried",
                self.db.display()
            )));
        };
        let (end, staged) = result?;
        self.snapshot_reason = None;
        self.stored(end, staged)
    }

    fn stored(&mut self, end: FrameCursor, staged: StagedFile) -> Result<Stepped, StepError> {
        let position = StagedPosition {
            txid: staged.name.max,
            wal: end.position(),
        };
        self.staging
            .save_position(&position)
            .map_err(StepError::Store)?;
        self.cursor = Some(end);
        self.last = Some(position);
        self.next_txid = staged.name.max.next();
        debug!(db = %self.db.display(), file = %staged.name, pages = staged.pages, bytes = staged.bytes, commit = staged.commit, "staged");
        Ok(Stepped::Staged)
    }
}

/// A read error that means "snapshot" becomes the reason; anything else ends the state.
fn classify(e: ReadError) -> Result<String, StepError> {
    match e {
        ReadError::Discontinuity(d) => Ok(d.to_string()),
        corrupt @ ReadError::CorruptFrame { .. } => Ok(corrupt.to_string()),
        ReadError::ForeignCursor => Ok("frame cursor from an earlier attachment".into()),
        ReadError::Lock(e) => Err(e.into()),
        other => Err(StepError::Lost(other.into())),
    }
}

fn is_discontinuity(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<ReadError>(),
        Some(ReadError::Discontinuity(_) | ReadError::CorruptFrame { .. })
    )
}

/// Errors from reading the WAL or the database end the state; others are storage errors.
fn store_or_lost(e: anyhow::Error) -> StepError {
    if e.downcast_ref::<ReadError>().is_some() || e.downcast_ref::<LockError>().is_some() {
        StepError::Lost(e)
    } else {
        StepError::Store(e.context("staging directory"))
    }
}

/// The newest TXID of a directory replica, over every level.
pub fn replica_max(replica: &walcast_replica::DirReplica) -> anyhow::Result<ReplicaMax> {
    let mut max = None;
    for level in walcast_replica::Level::all() {
        let files = replica
            .list(level)
            .with_context(|| format!("cannot list level {level} of the replica"))?;
        max = max.max(files.last().map(|f| f.max));
    }
    Ok(max)
}
