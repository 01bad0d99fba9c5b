//! A replica in a local directory (`file:///path`), in Litestream's file layout
//! ([`crate::layout`]).
//!
//! Invariants:
//! - A file appears under its final name only complete and durable: it is written to a
//!   temporary name in the same directory, fsynced, renamed, and the directory fsynced.
//!   A reader (or a restore after a crash) never sees a partial LTX file.
//! - [`DirReplica::put`] never replaces an existing file: `link(2)` from the temporary
//!   name fails if the final name exists, so two writers cannot silently overwrite each
//!   other's files.
//! - Listings ignore everything that is not an LTX file name (temporary files, strays).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use walcast_ltx::LtxFileName;

use crate::error::ReplicaError;
use crate::layout::{Level, ReplicaLayout};

/// Suffix of files being written; never part of the replica.
const TMP_SUFFIX: &str = ".tmp";

/// A directory replica rooted at one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirReplica {
    root: PathBuf,
}

/// What [`DirReplica::put`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// The file was written.
    Written,
    /// A file of that name was already there with the same bytes (a retried upload).
    AlreadyPresent,
}

impl DirReplica {
    /// A replica at `root` (created on the first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The replica's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Path of one file of the replica.
    pub fn path(&self, level: Level, name: LtxFileName) -> PathBuf {
        self.root.join(ReplicaLayout::file_path(level, name))
    }

    fn level_dir(&self, level: Level) -> PathBuf {
        self.root.join(ReplicaLayout::level_dir(level))
    }

    /// LTX files of one level, in TXID order. A missing level directory is an empty level.
    pub fn list(&self, level: Level) -> Result<Vec<LtxFileName>, ReplicaError> {
        let dir = self.level_dir(level);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ReplicaError::io(&dir, "list the replica level", e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| ReplicaError::io(&dir, "list the replica level", e))?;
            if let Some(name) = entry
                .file_name()
                .to_str()
                .and_then(ReplicaLayout::parse_entry)
            {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Opens one file for reading.
    pub fn open(&self, level: Level, name: LtxFileName) -> Result<File, ReplicaError> {
        let path = self.path(level, name);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ReplicaError::Missing { path },
            _ => ReplicaError::io(&path, "open the replica file", e),
        })
    }

    /// Stores the bytes read from `source` as `level/name`, atomically and durably (see the
    /// module docs). An existing file of that name is left alone: same bytes ->
    /// [`PutOutcome::AlreadyPresent`], other bytes -> [`ReplicaError::Conflict`].
    pub fn put(
        &self,
        level: Level,
        name: LtxFileName,
        mut source: impl Read,
    ) -> Result<PutOutcome, ReplicaError> {
        let dir = self.level_dir(level);
        fs::create_dir_all(&dir)
            .map_err(|e| ReplicaError::io(&dir, "create the replica directory", e))?;
        let target = self.path(level, name);
        let tmp = dir.join(format!("{name}{TMP_SUFFIX}.{}", std::process::id()));
        let written = write_durably(&tmp, &mut source);
        let linked = written.and_then(|()| match fs::hard_link(&tmp, &target) {
            Ok(()) => Ok(PutOutcome::Written),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if same_contents(&tmp, &target)? {
                    Ok(PutOutcome::AlreadyPresent)
                } else {
                    Err(ReplicaError::Conflict {
                        path: target.clone(),
                    })
                }
            }
            Err(e) => Err(ReplicaError::io(&target, "link the new replica file", e)),
        });
        let _ = fs::remove_file(&tmp);
        let outcome = linked?;
        sync_dir(&dir)?;
        Ok(outcome)
    }

    /// Removes one file (retention, compaction). Removing a missing file is not an error.
    pub fn delete(&self, level: Level, name: LtxFileName) -> Result<(), ReplicaError> {
        let path = self.path(level, name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ReplicaError::io(&path, "delete the replica file", e)),
        }
    }
}

fn write_durably(path: &Path, source: &mut impl Read) -> Result<(), ReplicaError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| ReplicaError::io(path, "create a temporary replica file", e))?;
    io::copy(source, &mut file).map_err(|e| ReplicaError::io(path, "write the replica file", e))?;
    file.flush()
        .and_then(|()| file.sync_all())
        .map_err(|e| ReplicaError::io(path, "fsync the replica file", e))
}

fn same_contents(a: &Path, b: &Path) -> Result<bool, ReplicaError> {
    let read = |p: &Path| fs::read(p).map_err(|e| ReplicaError::io(p, "read the replica file", e));
    Ok(read(a)? == read(b)?)
}

/// fsync of a directory, so a rename or link in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<(), ReplicaError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ReplicaError::io(dir, "fsync the directory", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use walcast_ltx::TxId;

    fn name(min: u64, max: u64) -> LtxFileName {
        LtxFileName {
            min: TxId::new(min).unwrap(),
            max: TxId::new(max).unwrap(),
        }
    }

    #[test]
    fn put_lists_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let replica = DirReplica::new(dir.path().join("r"));
        assert_eq!(replica.list(Level::L0).unwrap(), vec![]);
        assert_eq!(
            replica.put(Level::L0, name(2, 3), &b"second"[..]).unwrap(),
            PutOutcome::Written
        );
        replica.put(Level::L0, name(1, 1), &b"first"[..]).unwrap();
        fs::write(replica.level_dir(Level::L0).join("stray.ltx.tmp"), b"x").unwrap();
        assert_eq!(
            replica.list(Level::L0).unwrap(),
            vec![name(1, 1), name(2, 3)]
        );
        assert_eq!(
            replica.put(Level::L0, name(1, 1), &b"first"[..]).unwrap(),
            PutOutcome::AlreadyPresent
        );
        let err = replica
            .put(Level::L0, name(1, 1), &b"other"[..])
            .unwrap_err();
        assert!(matches!(err, ReplicaError::Conflict { .. }), "{err}");
        let mut kept = String::new();
        replica
            .open(Level::L0, name(1, 1))
            .unwrap()
            .read_to_string(&mut kept)
            .unwrap();
        assert_eq!(kept, "first");
        replica.delete(Level::L0, name(1, 1)).unwrap();
        replica.delete(Level::L0, name(1, 1)).unwrap();
        assert!(matches!(
            replica.open(Level::L0, name(1, 1)),
            Err(ReplicaError::Missing { .. })
        ));
    }
}
