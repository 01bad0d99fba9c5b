//! Retention: which files a replica no longer needs, and their deletion, on the rules in
//! the [`crate::compact`] docs. Deletions go oldest first, and each removes only a file
//! that a stored newer file covers (L1 for L0 files, a kept snapshot for L1..L8 files and
//! older snapshots), so a crash between any two deletions leaves a restorable replica.
//!
//! This module must never delete the newest L0 file or the newest snapshot, and never
//! write objects.

use walcast_ltx::{LtxFileName, TxId};

use crate::compact::error::CompactError;
use std::time::SystemTime;

use crate::compact::{Compactor, MAX_COMPACTION_LEVELS, unix_ms};
use crate::layout::Level;
use crate::store::ReplicaClient;

impl Compactor {
    /// Deletes what retention allows at `now`, whatever else is due; returns what it
    /// deleted, in order. [`Compactor::run_due`] does this after compacting.
    pub fn enforce_retention(
        &mut self,
        client: &ReplicaClient,
        now: SystemTime,
    ) -> Result<Vec<(Level, LtxFileName)>, CompactError> {
        self.one_run(|c| c.retention_at(client, unix_ms(now)))
    }

    pub(crate) fn retention_at(
        &mut self,
        client: &ReplicaClient,
        now_ms: i64,
    ) -> Result<Vec<(Level, LtxFileName)>, CompactError> {
        let mut deleted = self.l0_retention(client, now_ms)?;
        deleted.extend(self.snapshot_retention(client, now_ms)?);
        Ok(deleted)
    }

    /// L0 files at or below the newest L1 max TXID and older than L0 retention, oldest
    /// first, stopping at the first too young; never the newest L0 file. Nothing without L1.
    fn l0_retention(
        &mut self,
        client: &ReplicaClient,
        now_ms: i64,
    ) -> Result<Vec<(Level, LtxFileName)>, CompactError> {
        let Some(l1) = Level::new(1) else {
            return Ok(Vec::new());
        };
        if self.schedule.levels().next().is_none() {
            return Ok(Vec::new());
        }
        let Some(covered_to) = self.known.newest(client, l1)?.map(|n| n.max) else {
            return Ok(Vec::new());
        };
        let retention = millis(self.schedule.l0_retention());
        let mut deleted = Vec::new();
        let mut files = self.l0_names(client)?;
        let mut next = 0;
        let mut refreshed = false;
        while let Some(&name) = files.get(next) {
            if name.max > covered_to {
                break;
            }
            let made = self.known.timestamp(client, Level::L0, name)?;
            if now_ms.saturating_sub(made) < retention {
                break;
            }
            if next + 1 == files.len() {
                // Deletable but for being the newest this compactor knows of: the
                // replica's newest may be later. One `list_after` finds out, only in this
                // case, so that runs waiting for files to age cost no request.
                if refreshed {
                    break;
                }
                self.known.refresh(client, Level::L0)?;
                refreshed = true;
                (files, next) = (self.l0_names(client)?, 0);
                continue;
            }
            self.delete(client, Level::L0, name)?;
            deleted.push((Level::L0, name));
            next += 1;
        }
        Ok(deleted)
    }

    fn l0_names(&mut self, client: &ReplicaClient) -> Result<Vec<LtxFileName>, CompactError> {
        Ok(self
            .known
            .files(client, Level::L0)?
            .keys()
            .copied()
            .collect())
    }

    /// Snapshots older than snapshot retention (never the newest), after the L1..L8 files
    /// whose max TXID is below the newest of them.
    fn snapshot_retention(
        &mut self,
        client: &ReplicaClient,
        now_ms: i64,
    ) -> Result<Vec<(Level, LtxFileName)>, CompactError> {
        let retention = millis(self.schedule.snapshot_retention());
        let snapshots: Vec<LtxFileName> = self
            .known
            .files(client, Level::SNAPSHOT)?
            .keys()
            .copied()
            .collect();
        let Some((_newest, older)) = snapshots.split_last() else {
            return Ok(Vec::new());
        };
        let mut expired = Vec::new();
        for name in older {
            let made = self.known.timestamp(client, Level::SNAPSHOT, *name)?;
            if now_ms.saturating_sub(made) >= retention {
                expired.push(*name);
            }
        }
        let Some(floor) = expired.iter().map(|n| n.max).max() else {
            return Ok(Vec::new());
        };
        let mut deleted = self.below_floor(client, floor)?;
        for name in expired {
            self.delete(client, Level::SNAPSHOT, name)?;
            deleted.push((Level::SNAPSHOT, name));
        }
        Ok(deleted)
    }

    /// Deletes the L1..L8 files whose max TXID is below `floor`.
    fn below_floor(
        &mut self,
        client: &ReplicaClient,
        floor: TxId,
    ) -> Result<Vec<(Level, LtxFileName)>, CompactError> {
        let mut deleted = Vec::new();
        for n in 1..=MAX_COMPACTION_LEVELS {
            let Some(level) = u8::try_from(n).ok().and_then(Level::new) else {
                continue;
            };
            let doomed: Vec<LtxFileName> = self
                .known
                .files(client, level)?
                .keys()
                .filter(|name| name.max < floor)
                .copied()
                .collect();
            for name in doomed {
                self.delete(client, level, name)?;
                deleted.push((level, name));
            }
        }
        Ok(deleted)
    }

    fn delete(
        &mut self,
        client: &ReplicaClient,
        level: Level,
        name: LtxFileName,
    ) -> Result<(), CompactError> {
        client.delete(level, name)?;
        self.known.remove(level, name);
        Ok(())
    }
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
