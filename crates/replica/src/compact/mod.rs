//! Levels, snapshots and retention of a replica, as streaming work against a
//! [`ReplicaClient`], on Litestream 0.5's rules (reference: litestream-and-ltx.md §2):
//!
//! - **Ln (n = 1..8)** merges the L(n-1) files newer than Ln's newest max TXID, once the
//!   wall clock has crossed a multiple of Ln's interval (`now.truncate(interval)`) since
//!   Ln's newest file (or since this process last looked at Ln).
//! - **L9 snapshots**, every snapshot interval (wall-clock aligned): the files that
//!   restore planning chooses for the latest TXID (the newest snapshot, if any, then the
//!   fewest files after it across levels) merged into one file `1-<max>` holding every
//!   page. No live database is read.
//! - **Retention**: L0 files whose max TXID is at or below the newest L1 max TXID and
//!   that are older than L0 retention, scanning oldest first and stopping at the first
//!   one too young, never the newest L0 file; snapshots older than snapshot retention,
//!   never the newest; then L1..L8 files whose max TXID is below the newest deleted
//!   snapshot's max TXID. Those L1..L8 files are deleted before the snapshots, so that a
//!   crash in between is finished by the next run (the same snapshots are still too old).
//!
//! A file's age is its LTX header timestamp (for a compaction output, the last input's;
//! Litestream's file backend uses the same time), read once per file and kept.
//!
//! Invariants: every output is durable in the replica before any input is deleted (the
//! client's put returns only then), and deletions only remove files that a newer stored
//! file covers, so a crash at any point leaves a restorable replica; outputs are
//! deterministic, so a retry after a crash finds its upload already present (see
//! [`staged_merge`]). Memory is bounded whatever the database size (see [`staged_merge`]).
//! LIST requests per run do not grow with the number of objects (see `known`).
//!
//! Calling it: one [`Compactor`] per replica for the life of the process, with
//! [`Compactor::run_due`] called with `SystemTime::now()` after each upload round. A run
//! that has nothing due costs no request; one that merges blocks its thread for as long
//! as the merge and upload take (a snapshot of a large database: the time to download and
//! upload it), so run it on a thread of its own (walcast's uploader does), sharing the
//! client, and hand the uploader [`Compactor::l0_copies`]. An error ends the run and
//! leaves the replica restorable: log it (loudly when [`CompactError::is_transient`] is
//! false: it names an object a person must look at) and carry on; the next round tries
//! again.
//!
//! This module must never read or lock the live database, never delete a file that no
//! stored file covers, and never build object keys itself (the client owns the layout).
//!
//! ```no_run
//! use std::time::SystemTime;
//! use walcast_replica::ReplicaClient;
//! use walcast_replica::compact::{Compactor, LevelSchedule};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = ReplicaClient::from_url("file:///var/backups/app")?;
//! let mut compactor = Compactor::new(LevelSchedule::default(), "/var/lib/app/.app.db-walcast")?;
//! let report = compactor.run_due(&client, SystemTime::now())?; // after each upload round
//! println!("wrote {} files, deleted {}", report.written.len(), report.deleted.len());
//! # Ok(()) }
//! ```

mod error;
mod known;
mod local_l0;
mod retention;
mod schedule;
pub mod staged_merge;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use walcast_ltx::LtxFileName;

use crate::layout::Level;
use crate::plan::{PlanError, RestoreTarget};
use crate::store::ReplicaClient;

pub use error::CompactError;
pub use schedule::{LevelSchedule, MAX_COMPACTION_LEVELS, boundary, unix_ms};
pub use staged_merge::{BuiltFile, MAX_OPEN_INPUTS, OutputOutcome};

use known::{KnownFile, KnownLevels};
use local_l0::LocalL0;
use schedule::crossed_boundary;

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Compaction outputs and snapshots stored, in the order they were made.
    pub written: Vec<BuiltFile>,
    /// Files deleted by retention, in the order they were deleted.
    pub deleted: Vec<(Level, LtxFileName)>,
}

/// Compacts, snapshots and enforces retention for one replica. Keep one per replica for
/// the life of the process: it remembers what it listed and when each level last ran.
#[derive(Debug)]
pub struct Compactor {
    schedule: LevelSchedule,
    staging: PathBuf,
    known: KnownLevels,
    /// When each level (index = level number) was last compacted or found with nothing
    /// to do, in Unix ms.
    last_run_ms: [Option<i64>; 10],
    /// Local copies of the L0 files this process uploaded; `None` when the schedule has
    /// no compaction level.
    local_l0: Option<Arc<LocalL0>>,
}

/// Where the uploader of a replica keeps local copies of the L0 files it stores, for
/// the replica's [`Compactor`] to read instead of downloading them; usable from another
/// thread than the compactor's (see [`Compactor::l0_copies`]).
#[derive(Clone, Debug)]
pub struct L0Copies {
    local: Option<Arc<LocalL0>>,
}

impl L0Copies {
    /// Keeps a hard-linked copy of `stored`, whose bytes were just stored in the replica
    /// as the L0 file `name`. The caller may remove `stored` afterwards. A copy that
    /// cannot be made is skipped (compaction then downloads the object).
    pub fn keep(&self, name: LtxFileName, stored: &Path) {
        if let Some(local) = &self.local
            && local.keep(name, stored).is_err()
        {
            let _ = std::fs::remove_file(local.path(name));
        }
    }
}

impl Compactor {
    /// A compactor that merges into staging files under `staging` (created if missing;
    /// leftovers of a crashed run are removed). `staging` must belong to this compactor
    /// alone: one directory per replica (e.g. `.<db>-walcast/compact-<replica>`), never
    /// shared by two compactors at once. It needs free space there for one output at a
    /// time, twice that while a backlog of more than [`MAX_OPEN_INPUTS`] files merges (a
    /// snapshot is about the size of the database, compressed).
    pub fn new(schedule: LevelSchedule, staging: impl Into<PathBuf>) -> Result<Self, CompactError> {
        let staging = staging.into();
        std::fs::create_dir_all(&staging)
            .map_err(|e| CompactError::staging(&staging, "create the staging directory", e))?;
        remove_leftovers(&staging)?;
        let local_l0 = match schedule.levels().next() {
            Some(_) => Some(Arc::new(LocalL0::new(staging.join("l0"))?)),
            None => None,
        };
        Ok(Self {
            schedule,
            staging,
            known: KnownLevels::default(),
            last_run_ms: [None; 10],
            local_l0,
        })
    }

    /// Where the uploader keeps local copies of the L0 files it stores, from its own
    /// thread (this compactor learns of those files with its one `list_after` per run,
    /// and reads the copies instead of downloading them).
    pub fn l0_copies(&self) -> L0Copies {
        L0Copies {
            local: self.local_l0.clone(),
        }
    }

    /// The schedule.
    pub fn schedule(&self) -> &LevelSchedule {
        &self.schedule
    }

    /// Does whatever is due at `now`: each compaction level in turn (L1 first), then the
    /// snapshot, then retention. On error nothing more is done in this run, what this
    /// compactor knew of the replica is forgotten (the next run lists again), and the
    /// replica stays restorable; call again at the next round.
    pub fn run_due(
        &mut self,
        client: &ReplicaClient,
        now: SystemTime,
    ) -> Result<CompactionReport, CompactError> {
        let mut report = CompactionReport::default();
        let result = self.one_run(|c| c.run_steps(client, unix_ms(now), &mut report));
        match (&result, &self.local_l0) {
            // A copy may be what failed: download everything from now on, to be safe.
            (Err(_), Some(local)) => local.clear(),
            _ => self.prune_local_l0(client, &report),
        }
        result?;
        Ok(report)
    }

    /// Removes the local L0 copies that a stored L1 file covers or that retention deleted.
    fn prune_local_l0(&mut self, client: &ReplicaClient, report: &CompactionReport) {
        if self.local_l0.is_none() {
            return;
        }
        let covered_to = Level::new(1)
            .and_then(|l1| self.known.newest(client, l1).ok().flatten())
            .map(|n| n.max);
        let deleted: Vec<LtxFileName> = report
            .deleted
            .iter()
            .filter(|(level, _)| *level == Level::L0)
            .map(|(_, name)| *name)
            .collect();
        if let Some(local) = &self.local_l0 {
            local.prune(covered_to, &deleted);
        }
    }

    /// Runs `steps` as one run: each level is refreshed at most once, and on error what
    /// this compactor knew of the replica is forgotten.
    fn one_run<T>(
        &mut self,
        steps: impl FnOnce(&mut Self) -> Result<T, CompactError>,
    ) -> Result<T, CompactError> {
        self.known.new_run();
        let result = steps(self);
        if result.is_err() {
            self.known.forget();
        }
        result
    }

    fn run_steps(
        &mut self,
        client: &ReplicaClient,
        now_ms: i64,
        report: &mut CompactionReport,
    ) -> Result<(), CompactError> {
        let levels: Vec<(Level, Duration)> = self.schedule.levels().collect();
        for (level, interval) in levels {
            if let Some(built) = self.compact_level_if_due(client, level, interval, now_ms)? {
                report.written.push(built);
            }
        }
        if let Some(built) = self.snapshot_if_due(client, now_ms)? {
            report.written.push(built);
        }
        report.deleted = self.retention_at(client, now_ms)?;
        Ok(())
    }

    /// Compacts `level` (1..=8) if its interval's boundary has passed; `None` when it was
    /// not due or there was nothing new below it.
    fn compact_level_if_due(
        &mut self,
        client: &ReplicaClient,
        level: Level,
        interval: Duration,
        now_ms: i64,
    ) -> Result<Option<BuiltFile>, CompactError> {
        let last = self.last_run(client, level)?;
        if !crossed_boundary(last, now_ms, interval) {
            return Ok(None);
        }
        let built = self.merge_level(client, level)?;
        self.last_run_ms[usize::from(level.get())] = Some(now_ms);
        Ok(built)
    }

    /// Merges the files of the level below `level` that are newer than `level`'s newest
    /// file into one file of `level`, now, whatever the schedule; `None` if there are none.
    pub fn compact_level(
        &mut self,
        client: &ReplicaClient,
        level: Level,
    ) -> Result<Option<BuiltFile>, CompactError> {
        self.one_run(|c| c.merge_level(client, level))
    }

    fn merge_level(
        &mut self,
        client: &ReplicaClient,
        level: Level,
    ) -> Result<Option<BuiltFile>, CompactError> {
        let below = level
            .get()
            .checked_sub(1)
            .and_then(Level::new)
            .filter(|_| level != Level::SNAPSHOT)
            .ok_or_else(|| CompactError::Schedule {
                detail: format!("level {level} is not a compaction level (1..8)"),
            })?;
        let done_to = self.known.newest(client, level)?.map(|n| n.max);
        if below == Level::L0 {
            self.known.refresh(client, below)?;
        }
        let inputs: Vec<(Level, LtxFileName)> = self
            .known
            .files(client, below)?
            .keys()
            .filter(|n| done_to.is_none_or(|max| n.min > max))
            .map(|n| (below, *n))
            .collect();
        if inputs.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.store_merge(client, level, &inputs)?))
    }

    /// Makes a snapshot if the snapshot interval's boundary has passed and the replica
    /// holds TXIDs newer than the newest snapshot.
    fn snapshot_if_due(
        &mut self,
        client: &ReplicaClient,
        now_ms: i64,
    ) -> Result<Option<BuiltFile>, CompactError> {
        let last = self.last_run(client, Level::SNAPSHOT)?;
        if !crossed_boundary(last, now_ms, self.schedule.snapshot_interval()) {
            return Ok(None);
        }
        let built = self.merge_snapshot(client)?;
        self.last_run_ms[usize::from(Level::SNAPSHOT.get())] = Some(now_ms);
        Ok(built)
    }

    /// Makes a snapshot of the latest TXID now, whatever the schedule; `None` if the
    /// replica is empty or its newest snapshot is already at the latest TXID.
    pub fn snapshot(&mut self, client: &ReplicaClient) -> Result<Option<BuiltFile>, CompactError> {
        self.one_run(|c| c.merge_snapshot(client))
    }

    fn merge_snapshot(
        &mut self,
        client: &ReplicaClient,
    ) -> Result<Option<BuiltFile>, CompactError> {
        self.known.refresh(client, Level::L0)?;
        let plan = match self.known.catalog(client)?.plan(RestoreTarget::Latest) {
            Ok(plan) => plan,
            Err(PlanError::Empty) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let newest_snapshot = self.known.newest(client, Level::SNAPSHOT)?;
        if newest_snapshot.is_some_and(|s| s.max >= plan.txid()) {
            return Ok(None);
        }
        let inputs: Vec<(Level, LtxFileName)> =
            plan.files().iter().map(|f| (f.level, f.name)).collect();
        Ok(Some(self.store_merge(client, Level::SNAPSHOT, &inputs)?))
    }

    /// Builds and stores one output, and records it and its inputs' timestamps.
    fn store_merge(
        &mut self,
        client: &ReplicaClient,
        level: Level,
        inputs: &[(Level, LtxFileName)],
    ) -> Result<BuiltFile, CompactError> {
        let (built, timestamps) = staged_merge::build(
            client,
            &self.staging,
            self.local_l0.as_deref(),
            level,
            inputs,
        )?;
        for (l, n, ms) in timestamps {
            self.known.learn_timestamp(l, n, ms);
        }
        let file = KnownFile {
            size: built.size,
            timestamp_ms: Some(built.timestamp_ms),
        };
        self.known.files(client, level)?;
        self.known.insert(level, built.name, file);
        Ok(built)
    }

    /// When `level` last ran: remembered, or the header time of its newest file.
    fn last_run(
        &mut self,
        client: &ReplicaClient,
        level: Level,
    ) -> Result<Option<i64>, CompactError> {
        if let Some(ms) = self.last_run_ms[usize::from(level.get())] {
            return Ok(Some(ms));
        }
        match self.known.newest(client, level)? {
            Some(name) => Ok(Some(self.known.timestamp(client, level, name)?)),
            None => Ok(None),
        }
    }

    /// The staging directory.
    pub fn staging(&self) -> &Path {
        &self.staging
    }
}

/// Removes staging files a crashed run left.
fn remove_leftovers(staging: &Path) -> Result<(), CompactError> {
    let entries = std::fs::read_dir(staging)
        .map_err(|e| CompactError::staging(staging, "list the staging directory", e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name
            .to_string_lossy()
            .starts_with(staged_merge::STAGING_PREFIX)
        {
            let path = entry.path();
            std::fs::remove_file(&path)
                .map_err(|e| CompactError::staging(&path, "remove a leftover staging file", e))?;
        }
    }
    Ok(())
}
