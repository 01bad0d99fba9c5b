//! One database being replicated: its sync loop on this thread, one uploader thread per
//! replica, and the final sync and uploads when asked to stop.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::Duration;

use anyhow::Context;
use tracing::{info, warn};
use walcast_lock::{AttachError, DatabasePaths};
use walcast_replica::ReplicaClient;
use walcast_replica::compact::{Compactor, LevelSchedule};

use super::fanout::{SnapshotRequest, UploadProgress};
use super::metrics::{DbMetrics, Registry};
use super::staging::StagingDir;
use super::sync::{self, DatabaseSync, ReplicaMax, StepError, Stepped};
use super::upload::{Uploader, spawn_compaction};
use super::wake::WalWaker;

/// The backup timer behind inotify: the longest a commit waits to be noticed if a wake
/// is lost.
const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// Longest default time between two staged files (see [`stage_spacing`]): commit-to-staged
/// lag stays well inside the 50 ms goal (p99 about this plus 10 ms), while a steady load
/// costs a few dozen staged files a second rather than one per commit.
const MAX_DEFAULT_SPACING: Duration = Duration::from_millis(25);
/// Pause after a failed step before the next attempt.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// Pause between attach attempts while the application has not opened the database.
const ATTACH_RETRY: Duration = Duration::from_millis(100);

/// One replica of a database, checked (listed) when made.
pub struct ReplicaJob {
    name: String,
    client: ReplicaClient,
    sync_interval: Duration,
    /// The newest TXID the replica held when checked.
    max: ReplicaMax,
}

impl ReplicaJob {
    /// Checks that the replica `name` of `db` answers (one quick request, see
    /// [`ReplicaClient::check_reachable`]), then lists it: an unreachable store, a missing
    /// bucket or refused credentials fail here in seconds, before any database is touched.
    pub fn new(
        db: &Path,
        name: String,
        client: ReplicaClient,
        sync_interval: Duration,
    ) -> anyhow::Result<Self> {
        let which = || format!("replica {name:?} of {}", db.display());
        client.check_reachable().with_context(which)?;
        let max = sync::replica_max(&client).with_context(|| {
            format!(
                "{}: cannot read the replica at {}",
                which(),
                client.target()
            )
        })?;
        Ok(Self {
            name,
            client,
            sync_interval,
            max,
        })
    }
}

/// A database and its replicas.
pub struct DatabaseJob {
    db: PathBuf,
    replicas: Vec<ReplicaJob>,
    schedule: LevelSchedule,
    /// Shortest time between two staged files while no checkpoint is imminent.
    spacing: Duration,
}

impl DatabaseJob {
    /// `monitor_interval`: the config's, if set (see [`stage_spacing`]).
    pub fn new(
        db: PathBuf,
        replicas: Vec<ReplicaJob>,
        schedule: LevelSchedule,
        monitor_interval: Option<Duration>,
    ) -> Self {
        let spacing = stage_spacing(monitor_interval, &replicas);
        Self {
            db,
            replicas,
            schedule,
            spacing,
        }
    }

    pub fn db(&self) -> &Path {
        &self.db
    }

    /// Replicates until `stop` (or after one sync with `once`). `wait_for_missing`: the
    /// database may not exist yet (the application is started by `-exec`), see
    /// [`being_created`].
    pub fn run(
        self,
        stop: &AtomicBool,
        once: bool,
        wait_for_missing: bool,
        registry: &Registry,
    ) -> anyhow::Result<()> {
        let metrics = registry.database(self.db.clone());
        let staging = StagingDir::for_database(&self.db)?;
        let snapshots = Arc::new(SnapshotRequest::default());
        let newest = self.replicas.iter().map(|r| r.max).max().flatten();
        let mut sync = DatabaseSync::new(&self.db, staging.clone(), newest, Arc::clone(&snapshots));
        if !first_step(&mut sync, stop, wait_for_missing)? {
            return Ok(());
        }
        let progress = Arc::new(UploadProgress::new(
            self.replicas.iter().map(|r| r.max).collect(),
        ));
        let mut wakes = Vec::new();
        let mut uploaders = Vec::new();
        let mut compactions = Vec::new();
        for (index, replica) in self.replicas.into_iter().enumerate() {
            info!(db = %self.db.display(), replica = %replica.client.target(), name = %replica.name, "replicating");
            let compactor = Compactor::new(
                self.schedule.clone(),
                staging.root().join(format!("compact-{}", replica.name)),
            )
            .context("cannot prepare compaction")?;
            registry.replica(
                self.db.clone(),
                replica.name.clone(),
                replica.client.stats_handle(),
            );
            let client = Arc::new(replica.client);
            let copies = compactor.l0_copies();
            let (tick, ticks) = sync_channel(1);
            compactions.push(
                spawn_compaction(compactor, Arc::clone(&client), ticks)
                    .context("cannot start the compaction thread")?,
            );
            let (tx, rx) = sync_channel(1);
            let _ = tx.try_send(());
            wakes.push(tx);
            uploaders.push(
                Uploader {
                    staging: staging.clone(),
                    replica: client,
                    name: replica.name.clone(),
                    index,
                    progress: Arc::clone(&progress),
                    snapshots: Arc::clone(&snapshots),
                    interval: replica.sync_interval,
                    copies,
                    compaction: tick,
                }
                .spawn(rx),
            );
        }
        if !once {
            sync_until(&mut sync, stop, &wakes, &metrics, self.spacing)?;
        }
        let finished = sync.finish();
        drop(wakes);
        let mut uploaded = Ok(());
        for uploader in uploaders {
            let result = uploader
                .join()
                .map_err(|_| anyhow::anyhow!("an upload thread panicked"))
                .and_then(|r| r);
            uploaded = uploaded.and(result);
        }
        if let Err(e) = finished {
            warn!("final sync of {} failed: {e:#}", self.db.display());
        }
        // `-once` does the whole job, compaction included (run from cron, it must not let
        // L0 files pile up). Otherwise a merge in progress is not waited for: shutdown
        // stays bounded, and a cut merge leaves the replica restorable.
        if once {
            for compaction in compactions {
                let _ = compaction.join();
            }
        }
        uploaded?;
        if let Some(position) = sync.last_position() {
            info!(db = %self.db.display(), txid = %position.txid, "stopped; replicas are up to date");
        }
        Ok(())
    }
}

fn sync_until(
    sync: &mut DatabaseSync,
    stop: &AtomicBool,
    wakes: &[SyncSender<()>],
    metrics: &DbMetrics,
    spacing: Duration,
) -> anyhow::Result<()> {
    let db = sync.db().to_owned();
    let waker = WalWaker::watch(&DatabasePaths::new(&db).wal, POLL_INTERVAL);
    while !stop.load(Ordering::Relaxed) {
        match sync.step() {
            Ok(Stepped::Staged) => {
                if let Some(position) = sync.last_position() {
                    metrics.staged(position.txid.get());
                }
                for wake in wakes {
                    let _ = wake.try_send(());
                }
                // Under a steady load, one L0 file per commit costs CPU and fsyncs for
                // nothing; gather one spacing of commits per file, except when the
                // application is about to checkpoint and a hand-off must be quick.
                sleep_unless_imminent(sync, spacing, stop);
            }
            Ok(Stepped::Idle) => {}
            Err(e) => {
                metrics.sync_errors.fetch_add(1, Ordering::Relaxed);
                pause_after(&db, e)?;
            }
        }
        waker.wait();
    }
    info!(db = %db.display(), "stopping: final sync");
    Ok(())
}

/// How long the loop gathers commits before staging the next file: `monitor-interval` if
/// the config sets one (Litestream's meaning: one local L0 file per interval), else the
/// smallest replica `sync-interval` (staging more often than any replica uploads gains
/// nothing) but at most [`MAX_DEFAULT_SPACING`]. Frames stay in the WAL meanwhile; the
/// loop still looks at every WAL change and stages at once when a checkpoint is imminent.
fn stage_spacing(monitor_interval: Option<Duration>, replicas: &[ReplicaJob]) -> Duration {
    monitor_interval.unwrap_or_else(|| {
        replicas
            .iter()
            .map(|r| r.sync_interval)
            .min()
            .unwrap_or(MAX_DEFAULT_SPACING)
            .min(MAX_DEFAULT_SPACING)
    })
}

/// Sleeps up to `spacing`, in short steps, returning early once a checkpoint is imminent
/// or a stop is asked for (a long `monitor-interval` must not delay shutdown).
fn sleep_unless_imminent(sync: &DatabaseSync, spacing: Duration, stop: &AtomicBool) {
    const STEP: Duration = Duration::from_millis(5);
    let deadline = std::time::Instant::now() + spacing;
    loop {
        if sync.checkpoint_imminent_now() || stop.load(Ordering::Relaxed) {
            return;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(STEP));
    }
}

/// Attaches and runs the first sync, waiting while the application has not opened the
/// database. `false` if asked to stop first.
fn first_step(
    sync: &mut DatabaseSync,
    stop: &AtomicBool,
    wait_for_missing: bool,
) -> anyhow::Result<bool> {
    let mut told = false;
    while !stop.load(Ordering::Relaxed) {
        match sync.step() {
            Ok(_) => return Ok(true),
            Err(StepError::Attach(e))
                if e.is_retryable() || (wait_for_missing && being_created(&e)) =>
            {
                if !told {
                    info!("{e}");
                    told = true;
                }
                std::thread::sleep(ATTACH_RETRY);
            }
            Err(StepError::Attach(e)) => {
                return Err(e).with_context(|| format!("cannot replicate {}", sync.db().display()));
            }
            Err(e) => pause_after(sync.db(), e)?,
        }
    }
    Ok(false)
}

/// States a database passes through while the application started by `-exec` creates it:
/// no file yet, an empty file, a header still in rollback-journal mode until it runs
/// `PRAGMA journal_mode=WAL`. Waited for (the reason is logged once) instead of refused.
fn being_created(e: &AttachError) -> bool {
    matches!(
        e,
        AttachError::DatabaseMissing { .. }
            | AttachError::NotADatabase { .. }
            | AttachError::RollbackJournal { .. }
    )
}

/// Logs a failed step and pauses; a refusal to attach ends the database's replication.
fn pause_after(db: &Path, e: StepError) -> anyhow::Result<()> {
    match e {
        StepError::Attach(e) if !e.is_retryable() => {
            return Err(e).with_context(|| format!("cannot replicate {}", db.display()));
        }
        e => warn!(db = %db.display(), "{e:#}; retrying"),
    }
    std::thread::sleep(RETRY_PAUSE);
    Ok(())
}
