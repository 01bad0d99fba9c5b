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
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tracing::{debug, info, warn};
use walcast_lock::{
    AttachError, AttachOptions, Attached, FrameCursor, Handoff, HandoffAttempt, HandoffStep,
    LockError, Protected, ReadError, StayReason,
};
use walcast_ltx::TxId;

use super::encode::{self, StagedFile};
use super::fanout::SnapshotRequest;
use super::frames::SyncFrames;
use super::staging::{StagedPosition, StagingDir};
use super::start::plan_start;

/// Frames read per `read_frames` call: bounds the read buffer to this many frames.
const FRAMES_PER_READ: u32 = 256;
/// A sync stops at the first commit after this many frames, so one L0 file and the
/// per-sync page map stay bounded under a long catch-up (a single larger transaction
/// still goes into one file: files never split a transaction).
const FRAMES_PER_SYNC: u32 = 64 * 1024;
/// SQLite's default `wal_autocheckpoint`: past it, every commit runs a checkpoint.
const DEFAULT_AUTOCHECKPOINT: u32 = 1000;
/// Longest wait for the application's checkpoint to finish before handing off.
const HANDOFF_SPIN: Duration = Duration::from_millis(10);
/// After a spin that did not end in a hand-off, no spinning for this long.
const SPIN_PAUSE: Duration = Duration::from_millis(5);

/// The application is likely to checkpoint at its next commit: the WAL is past SQLite's
/// default autocheckpoint size, or a checkpoint already ran in this generation.
fn imminent(index: &walcast_format::wal_index::WalIndex) -> bool {
    index.header.mx_frame >= DEFAULT_AUTOCHECKPOINT || index.checkpoint.n_backfill > 0
}

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
    /// Snapshots asked for by replicas that cannot continue (see `fanout`).
    snapshot_requests: Arc<SnapshotRequest>,
    /// Frames read but not yet staged, and the cursor after them.
    pending: SyncFrames,
    pending_end: Option<FrameCursor>,
    /// Hand-off spinning is paused until then (it kept failing).
    spin_paused_until: Instant,
    /// Hand-offs made, and spins that ended without one (logged at shutdown).
    handoffs: u64,
    failed_spins: u64,
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
    pub fn new(
        db: &Path,
        staging: StagingDir,
        replica_max: ReplicaMax,
        snapshot_requests: Arc<SnapshotRequest>,
    ) -> Self {
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
            snapshot_requests,
            pending: SyncFrames::new(),
            pending_end: None,
            spin_paused_until: Instant::now(),
            handoffs: 0,
            failed_spins: 0,
            buf: Vec::new(),
        }
    }

    pub fn db(&self) -> &Path {
        &self.db
    }

    /// True when the application is likely to checkpoint at its next commit (see
    /// [`imminent`]), on the wal-index as it is now (one read of the shared header);
    /// `true` when it cannot be read, so the caller looks at once.
    pub fn checkpoint_imminent_now(&self) -> bool {
        let live = match &self.link {
            Some(Link::Protected(p)) => p.live_index(),
            Some(Link::Handoff(h)) => h.live_index(),
            None => return false,
        };
        live.as_ref().is_ok_and(imminent) || live.is_err()
    }

    /// The last file staged.
    pub fn last_position(&self) -> Option<StagedPosition> {
        self.last
    }

    /// Attaches if needed, copies what is new, and hands off when caught up.
    pub fn step(&mut self) -> Result<Stepped, StepError> {
        // Frames read before a failed store go first, so files stay in TXID order and one
        // file never mixes two WAL generations.
        if self.pending_end.is_some() && self.pending.all_in_memory() {
            self.stage_pending(None)?;
        }
        if self.snapshot_requests.take() {
            self.need_snapshot("a replica cannot continue from the staged files".into());
        }
        let protected = match self.link.take() {
            None => self.attach()?,
            Some(Link::Protected(p)) => p,
            // A snapshot to take: protect now, even if the WAL has not changed.
            Some(Link::Handoff(h)) if self.snapshot_reason.is_some() => match h.protect()? {
                HandoffStep::Protected(p) => p,
                HandoffStep::Unchanged(h) | HandoffStep::Busy(h) => {
                    self.link = Some(Link::Handoff(h));
                    return Ok(Stepped::Idle);
                }
            },
            Some(Link::Handoff(h)) => match h.poll()? {
                HandoffStep::Protected(p) => {
                    tracing::trace!(
                        mx = p.wal_index().header.mx_frame,
                        nb = p.wal_index().checkpoint.n_backfill,
                        salt = p.wal_index().header.salt1,
                        "re-protected"
                    );
                    p
                }
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
        debug!(db = %self.db.display(), handoffs = self.handoffs, failed_spins = self.failed_spins, "released");
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
        let collected = self.sync_protected(&mut p).and_then(|stepped| {
            // Pages not kept in memory can only be read while still protected.
            if self.pending.all_in_memory() {
                Ok(stepped)
            } else {
                self.stage_pending(Some(&p))
            }
        });
        let stepped = match collected {
            Ok(stepped) => stepped,
            Err(StepError::Store(e)) => {
                // Keep the read slot: the frames stay in the WAL until they are stored.
                self.link = Some(Link::Protected(p));
                return Err(StepError::Store(e));
            }
            Err(other) => return Err(self.lost(other)),
        };
        if hand_off {
            if let Err(e) = self.hand_off(p) {
                return Err(self.lost(e));
            }
        } else {
            p.release();
        }
        // The slow part (compress, write, fsync) runs after the hand-off, from memory.
        match self.stage_pending(None)? {
            Stepped::Idle => Ok(stepped),
            staged => Ok(staged),
        }
    }

    /// The attachment is gone: what was read but not staged will be read again (or
    /// snapshotted) after re-attaching from the last staged position.
    fn lost(&mut self, e: StepError) -> StepError {
        self.cursor = None;
        self.pending = SyncFrames::new();
        self.pending_end = None;
        e
    }

    /// Leaves PROTECTED as soon as it is safe, so that the application's next writer can
    /// restart the WAL. Under a steady load that moment is short: right after the
    /// application's checkpoint has backfilled everything and before its next commit. So
    /// while a checkpoint is likely under way (`nBackfill` moving, or the WAL past SQLite's
    /// default autocheckpoint size), keep reading new commits into memory and retry for
    /// up to [`HANDOFF_SPIN`]. If that keeps failing (a reader of the application pins
    /// the WAL), spinning pauses for a while.
    fn hand_off(&mut self, mut p: Protected) -> Result<(), StepError> {
        p.advance_mark()?;
        let spin_allowed = Instant::now() >= self.spin_paused_until;
        let deadline = Instant::now() + HANDOFF_SPIN;
        loop {
            let Some(cursor) = self.cursor else {
                self.link = Some(Link::Protected(p));
                return Ok(());
            };
            // While spinning, a checkpoint that is backfilling is waited for in the kernel,
            // which wakes walcast the moment it ends (see `handoff_after_backfill`).
            let attempt = if spin_allowed {
                p.handoff_after_backfill(&cursor)?
            } else {
                p.try_handoff(&cursor)?
            };
            let reason = match attempt {
                HandoffAttempt::Handoff(h) => {
                    tracing::trace!(index = ?h.wal_index().header.mx_frame, "handed off");
                    self.handoffs += 1;
                    self.link = Some(Link::Handoff(h));
                    return Ok(());
                }
                HandoffAttempt::Stayed(q, reason) => {
                    p = q;
                    reason
                }
            };
            tracing::trace!(?reason, "stayed protected");
            let worth_waiting = match reason {
                StayReason::NotBackfilled {
                    n_backfill,
                    mx_frame,
                } => n_backfill > 0 || mx_frame >= DEFAULT_AUTOCHECKPOINT,
                // A checkpoint holds READ0 while it backfills: the moment is near.
                StayReason::NotCaughtUp { .. } | StayReason::Read0Busy => true,
                _ => false,
            };
            if !spin_allowed || !worth_waiting || Instant::now() >= deadline {
                if spin_allowed && worth_waiting {
                    self.failed_spins += 1;
                    self.spin_paused_until = Instant::now() + SPIN_PAUSE;
                }
                self.link = Some(Link::Protected(p));
                return Ok(());
            }
            if matches!(reason, StayReason::NotCaughtUp { .. }) {
                if let Err(e) = p.refresh() {
                    self.need_snapshot(classify(e)?);
                    self.link = Some(Link::Protected(p));
                    return Ok(());
                }
                self.collect(&p)?;
                if !self.pending.all_in_memory() {
                    self.stage_pending(Some(&p))?;
                }
            } else {
                // Busy-wait, not yield: the window before the application's next commit is
                // tens of microseconds, shorter than a scheduler time slice.
                for _ in 0..64 {
                    std::hint::spin_loop();
                }
            }
        }
    }

    /// Establishes the cursor (resume or snapshot) and collects new frames.
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
        match self.collect(p) {
            Err(StepError::Lost(e)) if is_discontinuity(&e) => {
                self.need_snapshot(format!("{e:#}"));
                let reason = self.snapshot_reason.clone().unwrap_or_default();
                self.snapshot(p, &reason)
            }
            Err(e) => Err(e),
            Ok(()) => Ok(Stepped::Idle),
        }
    }

    fn need_snapshot(&mut self, reason: String) {
        self.cursor = None;
        self.pending = SyncFrames::new();
        self.pending_end = None;
        self.snapshot_reason.get_or_insert(reason);
    }

    fn next_txid(&self) -> TxId {
        self.next_txid.unwrap_or(TxId::FIRST)
    }

    /// Reads committed frames after `cursor` into `frames`, up to `mxFrame` of the last
    /// refresh or the first commit after `limit` frames; returns the cursor after them.
    fn scan(
        &mut self,
        p: &Protected,
        mut cursor: FrameCursor,
        frames: &mut SyncFrames,
        limit: u32,
    ) -> Result<FrameCursor, StepError> {
        let salts = (p.wal_index().header.salt1, p.wal_index().header.salt2);
        let mut read = 0u32;
        loop {
            let batch = p
                .read_frames(&cursor, FRAMES_PER_READ, &mut self.buf)
                .map_err(|e| StepError::Lost(e.into()))?;
            let Some(page_size) = batch.page_size().filter(|_| !batch.is_empty()) else {
                return Ok(cursor);
            };
            for frame in batch.frames() {
                frames.record(&frame, page_size, salts);
            }
            read = read.saturating_add(batch.len() as u32);
            cursor = batch.end();
            if read >= limit && !frames.ends_inside_transaction() {
                return Ok(cursor);
            }
        }
    }

    /// Adds the frames committed since the cursor to the pending sync.
    fn collect(&mut self, p: &Protected) -> Result<(), StepError> {
        let Some(start) = self.cursor else {
            return Ok(());
        };
        let mut frames = std::mem::take(&mut self.pending);
        let scanned = self.scan(p, start, &mut frames, FRAMES_PER_SYNC);
        self.pending = frames;
        let end = scanned?;
        if !self.pending.is_empty() {
            self.pending_end = Some(end);
        }
        self.cursor = Some(end);
        Ok(())
    }

    /// Writes the pending frames as the next L0 file; `wal` is needed only for pages not
    /// kept in memory.
    fn stage_pending(&mut self, wal: Option<&Protected>) -> Result<Stepped, StepError> {
        let Some(end) = self.pending_end else {
            return Ok(Stepped::Idle);
        };
        let txid = self.next_txid();
        let staged = encode::write_changes(&self.pending, wal, txid, &self.staging)
            .map_err(store_or_lost)?;
        self.pending = SyncFrames::new();
        self.pending_end = None;
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
        self.staging
            .mark_snapshot(staged.name)
            .map_err(StepError::Store)?;
        self.cursor = Some(end);
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

/// The newest TXID of a replica, over every level (one listing per level).
pub fn replica_max(replica: &walcast_replica::ReplicaClient) -> anyhow::Result<ReplicaMax> {
    let mut max = None;
    for level in walcast_replica::Level::all() {
        let files = replica
            .list(level)
            .with_context(|| format!("cannot list level {level} of the replica"))?;
        max = max.max(files.last().map(|f| f.name.max));
    }
    Ok(max)
}
