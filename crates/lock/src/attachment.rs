//! The resources every attached state owns: one long-lived descriptor per file, the DMS and
//! SHARED locks they carry, and the mapped wal-index region.
//!
//! Invariants:
//! - Exactly one descriptor per file per attachment, opened once and closed only when the
//!   attachment is dropped; nothing here ever opens another descriptor on these files.
//! - While an [`Attachment`] exists: SHARED is held on the database, DMS is held shared on
//!   `-shm`, and region 0 of the wal-index is mapped.
//! - Drop order (field order): unmap the region, then close `-shm` (releasing DMS and every
//!   READ lock at once), `-wal`, and last the database (SHARED).
//! - The only wal-index writes are read marks of a slot this attachment holds exclusively.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use walcast_format::wal_index::{WalIndex, WalIndexError};

use crate::backoff::Backoff;
use crate::error::{LockError, io_error};
use crate::ofd::{self, LockKind};
use crate::offsets::{LockTarget, ReadSlot};
use crate::read_slot::ReadMarkPolicy;
use crate::registry::Registration;
use crate::shm_map::ShmRegion;

/// Header reads tried before a wal-index is declared unreadable (about 0.7 s in all).
pub(crate) const HEADER_READ_ATTEMPTS: u32 = 100;

/// The three files of a database in WAL mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabasePaths {
    /// The database file.
    pub db: PathBuf,
    /// `<db>-wal`.
    pub wal: PathBuf,
    /// `<db>-shm`, the wal-index.
    pub shm: PathBuf,
}

impl DatabasePaths {
    /// The paths SQLite's unix VFS uses for the database at `db`.
    pub fn new(db: &Path) -> Self {
        let with = |suffix: &str| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        };
        Self {
            db: db.to_owned(),
            wal: with("-wal"),
            shm: with("-shm"),
        }
    }
}

/// Identifies one attachment, so that frame cursors cannot cross attachments.
pub(crate) fn next_attachment_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// What every attached state holds (see the module invariants for the order).
pub(crate) struct Attachment {
    pub(crate) id: u64,
    pub(crate) paths: DatabasePaths,
    pub(crate) policy: ReadMarkPolicy,
    region: ShmRegion,
    shm: File,
    wal: File,
    db: File,
    _registration: Registration,
}

/// The open files and held locks [`Attachment::new`] takes over.
pub(crate) struct AttachedFiles {
    pub(crate) paths: DatabasePaths,
    pub(crate) policy: ReadMarkPolicy,
    pub(crate) region: ShmRegion,
    pub(crate) shm: File,
    pub(crate) wal: File,
    pub(crate) db: File,
    pub(crate) registration: Registration,
}

impl Attachment {
    pub(crate) fn new(files: AttachedFiles) -> Self {
        Self {
            id: next_attachment_id(),
            paths: files.paths,
            policy: files.policy,
            region: files.region,
            shm: files.shm,
            wal: files.wal,
            db: files.db,
            _registration: files.registration,
        }
    }

    /// One read of the wal-index header, validated as `walIndexTryHdr` validates it.
    pub(crate) fn try_read_index(&self) -> Result<WalIndex, WalIndexError> {
        WalIndex::parse(&self.region.copy_header())
    }

    /// Reads the wal-index header, retrying with backoff while a writer is updating it.
    /// Never runs recovery: a header that stays bad is an error.
    pub(crate) fn read_index(&self) -> Result<WalIndex, LockError> {
        let mut backoff = Backoff::default();
        loop {
            match self.try_read_index() {
                Ok(index) => return Ok(index),
                Err(last) if backoff.attempts() + 1 >= HEADER_READ_ATTEMPTS => {
                    return Err(LockError::WalIndexUnreadable {
                        path: self.paths.shm.clone(),
                        attempts: backoff.attempts() + 1,
                        last,
                    });
                }
                Err(_) => backoff.pause(),
            }
        }
    }

    /// Takes or converts a `-shm` lock without waiting; `false` if someone else's conflicts.
    pub(crate) fn try_lock(&self, target: LockTarget, kind: LockKind) -> Result<bool, LockError> {
        ofd::try_lock(self.shm.as_fd(), kind, target.range())
            .map_err(io_error(&self.paths.shm, "lock a wal-index byte"))
    }

    /// Waits in the kernel for a `kind` lock on `target` (see [`ofd::wait_lock`]).
    pub(crate) fn wait_lock(&self, target: LockTarget, kind: LockKind) -> Result<(), LockError> {
        ofd::wait_lock(self.shm.as_fd(), kind, target.range())
            .map_err(io_error(&self.paths.shm, "wait for a wal-index lock"))
    }

    /// Converts a lock this attachment holds exclusively to shared, in place. Cannot meet a
    /// conflict; if the kernel says otherwise the protocol is broken and that is an error.
    pub(crate) fn downgrade(&self, target: LockTarget) -> Result<(), LockError> {
        if self.try_lock(target, LockKind::Shared)? {
            Ok(())
        } else {
            Err(LockError::Protocol {
                path: self.paths.shm.clone(),
                what: "converting an exclusive wal-index lock to shared met a conflict",
            })
        }
    }

    /// Releases a `-shm` lock.
    pub(crate) fn unlock(&self, target: LockTarget) -> Result<(), LockError> {
        ofd::unlock(self.shm.as_fd(), target.range())
            .map_err(io_error(&self.paths.shm, "unlock a wal-index byte"))
    }

    pub(crate) fn read_mark(&self, slot: ReadSlot) -> u32 {
        self.region.read_mark(slot.index())
    }

    /// Stores `aReadMark[slot]`; the caller holds the slot exclusively.
    pub(crate) fn store_read_mark(&self, slot: ReadSlot, value: u32) {
        self.region.store_read_mark(slot.index(), value);
    }

    /// Reads the WAL at `offset` until `buf` is full or the file ends; returns bytes read.
    pub(crate) fn read_wal(&self, offset: u64, buf: &mut [u8]) -> Result<usize, LockError> {
        read_full(&self.wal, offset, buf).map_err(io_error(&self.paths.wal, "read the WAL"))
    }

    pub(crate) fn wal_len(&self) -> Result<u64, LockError> {
        Ok(self
            .wal
            .metadata()
            .map_err(io_error(&self.paths.wal, "stat the WAL"))?
            .len())
    }

    pub(crate) fn sync_wal(&self) -> Result<(), LockError> {
        self.wal
            .sync_data()
            .map_err(io_error(&self.paths.wal, "fsync the WAL"))
    }

    pub(crate) fn read_db(&self, offset: u64, buf: &mut [u8]) -> Result<usize, LockError> {
        read_full(&self.db, offset, buf).map_err(io_error(&self.paths.db, "read the database"))
    }

    pub(crate) fn db_len(&self) -> Result<u64, LockError> {
        Ok(self
            .db
            .metadata()
            .map_err(io_error(&self.paths.db, "stat the database"))?
            .len())
    }
}

/// `pread` until `buf` is full or end of file; returns the bytes read.
pub(crate) fn read_full(file: &File, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let Some(rest) = buf.get_mut(done..) else {
            break;
        };
        match file.read_at(rest, offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}
