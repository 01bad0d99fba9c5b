//! Errors, split by what the caller does about them:
//! - [`AttachError`]: walcast cannot attach. Refusals (an unsupported database) are final;
//!   [`AttachError::is_retryable`] tells waiting states (the application has not opened the
//!   database yet, a lock is busy) apart.
//! - [`LockError`]: an attached state cannot go on (I/O, a wal-index that never becomes
//!   readable, no read slot). The state is gone; attach again and check the position.
//! - [`ReadError`]: reading frames failed; a [`Discontinuity`] keeps the state usable and
//!   means "take a new snapshot".

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use walcast_format::wal_index::WalIndexError;

use crate::position::Discontinuity;
use crate::wal_header::WalHeaderProblem;

/// Why walcast could not attach to a database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// The database file does not exist. Nothing was created.
    #[error("{}: no such database file; check the path (walcast never creates databases)", path.display())]
    DatabaseMissing {
        /// The database path.
        path: PathBuf,
    },
    /// The file is not a SQLite database (too short or wrong magic at offset 0).
    #[error("{}: not a SQLite database: {reason}", path.display())]
    NotADatabase {
        /// The database path.
        path: PathBuf,
        /// What is wrong, with the offset.
        reason: String,
    },
    /// Header bytes 18/19 are 1/1: a rollback-journal database. Attaching would block its
    /// writers (they need EXCLUSIVE), so walcast refuses without taking any lock.
    #[error(
        "{}: the database uses a rollback journal (header bytes 18/19 are 1/1); walcast replicates WAL databases only: run `PRAGMA journal_mode=WAL` in the application first",
        path.display()
    )]
    RollbackJournal {
        /// The database path.
        path: PathBuf,
    },
    /// Header bytes 18/19 are neither 2/2 (WAL) nor 1/1 (wal2 uses 3/3).
    #[error(
        "{}: database header bytes 18/19 are {write_version}/{read_version}; only 2/2 (WAL) is supported (3/3 is wal2, which is not)",
        path.display()
    )]
    UnsupportedFileFormat {
        /// The database path.
        path: PathBuf,
        /// Byte 18.
        write_version: u8,
        /// Byte 19.
        read_version: u8,
    },
    /// Another process holds an EXCLUSIVE lock on the database for longer than the lock
    /// timeout: `PRAGMA locking_mode=EXCLUSIVE`, which walcast cannot coexist with.
    #[error(
        "{}: another process has held an EXCLUSIVE lock on the database for {waited:?} (PRAGMA locking_mode=EXCLUSIVE?); walcast needs the normal locking mode",
        path.display()
    )]
    ExclusiveLockingMode {
        /// The database path.
        path: PathBuf,
        /// How long walcast tried.
        waited: Duration,
    },
    /// The WAL header is valid but of another version (SQLite itself refuses to open it).
    #[error("{}: {problem}", path.display())]
    UnsupportedWal {
        /// The WAL path.
        path: PathBuf,
        /// The version found.
        problem: WalHeaderProblem,
    },
    /// The wal-index header is valid but of another version (e.g. wal2's 3021000).
    #[error("{}: wal-index version {version} is not supported, only 3007000", path.display())]
    UnsupportedWalIndex {
        /// The `-shm` path.
        path: PathBuf,
        /// Version at offset 0.
        version: u32,
    },
    /// The wal-index header has a valid checksum but impossible contents.
    #[error("{}: {source}", path.display())]
    MalformedWalIndex {
        /// The `-shm` path.
        path: PathBuf,
        /// What is wrong.
        source: WalIndexError,
    },
    /// This process already has this database attached.
    #[error("{}: this process is already attached to the database", path.display())]
    AlreadyAttached {
        /// The database path.
        path: PathBuf,
    },
    /// `-wal` or `-shm` does not exist: no application has the database open in WAL mode.
    /// Retryable: start the application, or wait for it to open the database.
    #[error(
        "{}: does not exist, so no application has the database open in WAL mode yet; walcast waits for the application",
        path.display()
    )]
    NotOpenByApplication {
        /// The missing file.
        path: PathBuf,
    },
    /// A lock stayed busy for the whole lock timeout. Retryable.
    #[error("{}: the {lock} lock stayed busy for {waited:?}; retry", path.display())]
    Busy {
        /// The locked file.
        path: PathBuf,
        /// Which lock.
        lock: &'static str,
        /// How long walcast tried.
        waited: Duration,
    },
    /// No SQLite connection initialised the wal-index within the timeout (walcast never
    /// runs recovery itself). Retryable: the application must open the database.
    #[error(
        "{}: no SQLite connection initialised the wal-index within {waited:?} ({last}); walcast waits for the application to open the database",
        path.display()
    )]
    WalIndexNotInitialised {
        /// The `-shm` path.
        path: PathBuf,
        /// How long walcast waited.
        waited: Duration,
        /// The last reason the header was not usable.
        last: WalIndexError,
    },
    /// An I/O error.
    #[error("{}: {operation}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What walcast was doing.
        operation: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl AttachError {
    /// True for waiting states that may clear by themselves (busy locks, an application
    /// that has not opened the database yet); false for refusals and I/O errors.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::NotOpenByApplication { .. }
                | Self::Busy { .. }
                | Self::WalIndexNotInitialised { .. }
        )
    }
}

/// Why an attached state could not go on. Its locks are released; attach again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// An I/O error.
    #[error("{}: {operation}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What walcast was doing.
        operation: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The wal-index header stayed unusable through every retry (walcast never runs
    /// recovery; SQLite does, at its next read).
    #[error("{}: wal-index header unusable after {attempts} reads: {last}", path.display())]
    WalIndexUnreadable {
        /// The `-shm` path.
        path: PathBuf,
        /// Reads tried.
        attempts: u32,
        /// The last reason.
        last: WalIndexError,
    },
    /// Every read slot stayed locked exclusively (or marked above `mxFrame`) through every
    /// retry.
    #[error("{}: no read slot READ1..READ4 could be claimed or shared in {attempts} attempts", path.display())]
    ReadSlotsBusy {
        /// The `-shm` path.
        path: PathBuf,
        /// Attempts made.
        attempts: u32,
    },
    /// A lock this crate already held did not behave as the kernel documents (a
    /// conversion of its own lock failed). Reported, never ignored.
    #[error("{}: lock protocol violated: {what}", path.display())]
    Protocol {
        /// The `-shm` or database path.
        path: PathBuf,
        /// What went wrong.
        what: &'static str,
    },
}

/// Why frames could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The replica's position no longer continues into the live WAL: take a new snapshot.
    /// The state stays usable.
    #[error("{0}")]
    Discontinuity(#[from] Discontinuity),
    /// A committed frame (at or below `mxFrame`) fails its salt or checksum check: the WAL
    /// was modified behind SQLite's back. Take a new snapshot.
    #[error("{}: frame {frame} at offset {offset}: {problem}", path.display())]
    CorruptFrame {
        /// The WAL path.
        path: PathBuf,
        /// The frame number.
        frame: u32,
        /// Byte offset of the frame in the WAL.
        offset: u64,
        /// What is wrong.
        problem: &'static str,
    },
    /// The cursor was made by another attachment; positions survive re-attaching only as
    /// a [`crate::PositionToken`] checked with `Protected::resume`.
    #[error("frame cursor belongs to another attachment; resume from its position token instead")]
    ForeignCursor,
    /// The state cannot go on.
    #[error(transparent)]
    Lock(#[from] LockError),
}

pub(crate) fn io_error<'a>(
    path: &'a std::path::Path,
    operation: &'static str,
) -> impl FnOnce(io::Error) -> LockError + 'a {
    move |source| LockError::Io {
        path: path.to_owned(),
        operation,
        source,
    }
}
