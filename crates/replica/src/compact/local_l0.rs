//! Local copies of the L0 files this process uploaded, so that the L1 compaction (and a
//! snapshot whose plan includes L0 files) reads them from disk instead of downloading
//! them again: one GET per L0 object saved, the dominant request of a steady workload's
//! compaction (with a 1 s sync interval and a 30 s L1 interval, 60 GETs a minute).
//!
//! Trust: a copy is the very file whose bytes were just stored (hard-linked or renamed
//! into place whole), and every read goes through the LTX decoder, which verifies the
//! file checksum before the merge output is stored. Copies are trusted only within the
//! process that made them: the directory is emptied when a [`LocalL0`] is created, so a
//! copy torn by a power loss is never read.
//!
//! Space: a copy is removed once a stored L1 file covers its TXIDs (or retention deleted
//! the object), so about one L1 interval of L0 data is kept. Nothing is kept when the
//! schedule has no compaction level (nothing would ever remove the copies).
//!
//! This module must never touch replica objects.

use std::path::{Path, PathBuf};

use walcast_ltx::{LtxFileName, TxId};

use crate::compact::error::CompactError;

/// The directory of local L0 copies of one replica.
#[derive(Debug)]
pub(crate) struct LocalL0 {
    dir: PathBuf,
}

impl LocalL0 {
    /// Empties (creating it if needed) `dir`, which belongs to one compactor alone.
    pub(crate) fn new(dir: PathBuf) -> Result<Self, CompactError> {
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(CompactError::staging(&dir, "empty the local L0 copies", e)),
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| CompactError::staging(&dir, "create the local L0 copies", e))?;
        Ok(Self { dir })
    }

    /// Where the copy of `name` lives.
    pub(crate) fn path(&self, name: LtxFileName) -> PathBuf {
        self.dir.join(name.to_string())
    }

    /// Keeps `file` (the bytes just stored as L0 `name`) as its copy: a hard link, so the
    /// caller may remove or rename its own path afterwards.
    pub(crate) fn keep(&self, name: LtxFileName, file: &Path) -> Result<(), CompactError> {
        let to = self.path(name);
        match std::fs::hard_link(file, &to) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(CompactError::staging(&to, "keep a local L0 copy", e)),
        }
    }

    /// Removes the copies of files whose TXIDs all lie at or below `covered_to`, and of
    /// any file named in `deleted`.
    pub(crate) fn prune(&self, covered_to: Option<TxId>, deleted: &[LtxFileName]) {
        self.remove_where(|name| {
            covered_to.is_some_and(|max| name.max <= max) || deleted.contains(&name)
        });
    }

    /// Removes every copy (after a failed run, in case a copy was what failed).
    pub(crate) fn clear(&self) {
        self.remove_where(|_| true);
    }

    fn remove_where(&self, doomed: impl Fn(LtxFileName) -> bool) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(name) = file_name
                .to_str()
                .and_then(|n| n.parse::<LtxFileName>().ok())
            else {
                continue;
            };
            if doomed(name) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}
