//! What the compactor knows of the replica's files, level by level, so that a run costs a
//! number of LIST requests that does not grow with the number of objects: each level is
//! listed in full once, then L0 (the only level another component writes) is refreshed
//! with `list_after` its newest known file, and every level is kept up to date with what
//! this process writes and deletes. After any failed step the caller forgets everything
//! ([`KnownLevels::forget`]) and the next run lists again, so a stale view never lasts.
//!
//! It also keeps each file's LTX header timestamp once learned (from a merge that read the
//! file, or from reading its first 100 bytes), which retention and the schedule need.
//!
//! This module must never write or delete objects.

use std::collections::BTreeMap;
use std::io::Read;

use walcast_ltx::{HEADER_SIZE, Header, LtxFileName};

use crate::compact::error::CompactError;
use crate::layout::Level;
use crate::plan::{Catalog, ReplicaFile};
use crate::store::ReplicaClient;

/// One file of a level, as known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KnownFile {
    pub(crate) size: u64,
    pub(crate) timestamp_ms: Option<i64>,
}

/// The files of every level, each listed at most once until forgotten.
#[derive(Debug, Default)]
pub(crate) struct KnownLevels {
    levels: [Option<BTreeMap<LtxFileName, KnownFile>>; 10],
    /// Levels listed or refreshed since [`KnownLevels::new_run`].
    fresh: [bool; 10],
}

impl KnownLevels {
    fn slot(&mut self, level: Level) -> &mut Option<BTreeMap<LtxFileName, KnownFile>> {
        &mut self.levels[usize::from(level.get())]
    }

    /// The files of `level`, listing it first if it is not known yet.
    pub(crate) fn files(
        &mut self,
        client: &ReplicaClient,
        level: Level,
    ) -> Result<&mut BTreeMap<LtxFileName, KnownFile>, CompactError> {
        let slot = self.slot(level);
        if slot.is_none() {
            let listed = client.list(level)?;
            let files = listed
                .into_iter()
                .map(|o| (o.name, known(o.size)))
                .collect();
            *slot = Some(files);
        }
        Ok(slot.get_or_insert_with(BTreeMap::new))
    }

    /// Starts a run: levels are refreshed at most once per run.
    pub(crate) fn new_run(&mut self) {
        self.fresh = [false; 10];
    }

    /// Adds the files written to `level` since it was listed (one `list_after` request),
    /// unless that was done already in this run.
    pub(crate) fn refresh(
        &mut self,
        client: &ReplicaClient,
        level: Level,
    ) -> Result<(), CompactError> {
        let fresh = &mut self.fresh[usize::from(level.get())];
        if *fresh {
            return Ok(());
        }
        *fresh = true;
        let Some(files) = self.slot(level) else {
            self.files(client, level)?;
            return Ok(());
        };
        let Some(newest) = files.keys().next_back().copied() else {
            *self.slot(level) = None;
            self.files(client, level)?;
            return Ok(());
        };
        for object in client.list_after(level, newest.min)? {
            files.entry(object.name).or_insert(known(object.size));
        }
        Ok(())
    }

    /// The newest file of `level` (listing it if needed).
    pub(crate) fn newest(
        &mut self,
        client: &ReplicaClient,
        level: Level,
    ) -> Result<Option<LtxFileName>, CompactError> {
        Ok(self.files(client, level)?.keys().next_back().copied())
    }

    /// Records a file this process wrote, or learned the timestamp of.
    pub(crate) fn insert(&mut self, level: Level, name: LtxFileName, file: KnownFile) {
        if let Some(files) = self.slot(level) {
            let entry = files.entry(name).or_insert(file);
            entry.timestamp_ms = entry.timestamp_ms.or(file.timestamp_ms);
        }
    }

    /// Records the header timestamp of a known file.
    pub(crate) fn learn_timestamp(&mut self, level: Level, name: LtxFileName, timestamp_ms: i64) {
        if let Some(file) = self.slot(level).as_mut().and_then(|f| f.get_mut(&name)) {
            file.timestamp_ms = Some(timestamp_ms);
        }
    }

    /// Records a file this process deleted.
    pub(crate) fn remove(&mut self, level: Level, name: LtxFileName) {
        if let Some(files) = self.slot(level) {
            files.remove(&name);
        }
    }

    /// Forgets everything: the next use lists again.
    pub(crate) fn forget(&mut self) {
        self.levels = Default::default();
        self.fresh = [false; 10];
    }

    /// The header timestamp of a file of `level`, reading its header if it is not known.
    pub(crate) fn timestamp(
        &mut self,
        client: &ReplicaClient,
        level: Level,
        name: LtxFileName,
    ) -> Result<i64, CompactError> {
        let cached = self
            .files(client, level)?
            .get(&name)
            .and_then(|f| f.timestamp_ms);
        if let Some(ms) = cached {
            return Ok(ms);
        }
        let ms = read_header(client, level, name)?.timestamp_ms;
        self.learn_timestamp(level, name, ms);
        Ok(ms)
    }

    /// Every file of every level, as restore planning takes them (lists unknown levels).
    pub(crate) fn catalog(&mut self, client: &ReplicaClient) -> Result<Catalog, CompactError> {
        let mut all = Vec::new();
        for level in Level::all() {
            for (name, file) in self.files(client, level)?.iter() {
                all.push(ReplicaFile {
                    level,
                    name: *name,
                    size: file.size,
                    timestamp_ms: file.timestamp_ms,
                    layout: crate::source::ReplicaSource::layout(client),
                });
            }
        }
        Ok(Catalog::new(all))
    }
}

fn known(size: u64) -> KnownFile {
    KnownFile {
        size,
        timestamp_ms: None,
    }
}

/// Reads and validates the first 100 bytes of one object.
pub(crate) fn read_header(
    client: &ReplicaClient,
    level: Level,
    name: LtxFileName,
) -> Result<Header, CompactError> {
    let object = || client.location(level, name);
    let mut raw = [0u8; HEADER_SIZE];
    client
        .get(level, name)?
        .read_exact(&mut raw)
        .map_err(|e| CompactError::header(object(), e))?;
    Header::decode(&raw).map_err(|e| CompactError::header(object(), e))
}
