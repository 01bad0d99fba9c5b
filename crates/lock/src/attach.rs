//! Attaching to a live database (reference §6 "Held for the whole lifetime"), and the
//! [`Attached`] state: SHARED on the database, DMS on the wal-index, no read slot yet.
//!
//! Order, chosen so that every refusal happens before any side effect:
//! 1. open the database read-only (never created); read header bytes 18/19 **without a
//!    lock** and refuse anything but 2/2, so a rollback-journal database never sees a
//!    walcast lock that could block its writers;
//! 2. SHARED exactly as `unixLock`: PENDING shared -> SHARED range shared -> unlock
//!    PENDING; an EXCLUSIVE holder for the whole lock timeout means
//!    `locking_mode=EXCLUSIVE`; re-read bytes 18/19 under the lock;
//! 3. open `-wal` read-only and `-shm` read-write, never creating them; refuse a valid WAL
//!    header of another version;
//! 4. DMS as `unixLockSharedMemory`: nobody holds it -> exclusive, truncate to 3 bytes,
//!    convert to shared (then SQLite must run recovery); shared holders -> join them;
//!    an exclusive holder -> busy;
//! 5. wait for a wal-index header SQLite has initialised; refuse an unknown version.
//!    walcast never runs recovery and never trusts contents it did not see validated.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use walcast_format::wal_index::{WalIndex, WalIndexError};

use crate::attachment::{AttachedFiles, Attachment, DatabasePaths, read_full};
use crate::backoff::Backoff;
use crate::error::{AttachError, LockError};
use crate::ofd::{self, LockKind};
use crate::offsets::{DB_PENDING, DB_SHARED, LockTarget};
use crate::protected::Protected;
use crate::read_slot::{self, ReadMarkPolicy};
use crate::registry::Registration;
use crate::shm_map::{REGION_SIZE, ShmRegion};
use crate::wal_header::{WAL_HEADER_SIZE, WalHeader};

/// Length of the database header.
const DB_HEADER_SIZE: usize = 100;
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// The DMS lock truncates an uninitialised wal-index to this size (`unixLockSharedMemory`).
const SHM_TRUNCATED_SIZE: u64 = 3;
/// Claim attempts when attaching.
const CLAIM_ATTEMPTS: u32 = 100;

/// How long attaching waits for things other processes control.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttachOptions {
    /// How long a busy SHARED or DMS lock is retried before giving up. SQLite holds the
    /// conflicting locks for microseconds to milliseconds, except `locking_mode=EXCLUSIVE`.
    pub lock_timeout: Duration,
    /// How long to wait for a SQLite connection to initialise the wal-index (only needed
    /// when no connection had it open).
    pub init_timeout: Duration,
    /// The mark stored in walcast's read slot.
    pub read_mark: ReadMarkPolicy,
}

impl Default for AttachOptions {
    fn default() -> Self {
        Self {
            lock_timeout: Duration::from_secs(2),
            init_timeout: Duration::from_secs(5),
            read_mark: ReadMarkPolicy::default(),
        }
    }
}

/// Attached: SHARED on the database and DMS on the wal-index are held, the wal-index is
/// initialised and of a supported version. No WAL frame is protected yet: call
/// [`Attached::protect`] before reading frames.
pub struct Attached {
    att: Attachment,
    index: WalIndex,
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached")
            .field("db", &self.att.paths.db)
            .field("index", &self.index)
            .finish()
    }
}

impl Attached {
    /// Attaches to the live database at `db` (see the module docs for the steps).
    pub fn attach(db: &Path, options: AttachOptions) -> Result<Self, AttachError> {
        let paths = DatabasePaths::new(db);
        let db_file = open_existing(&paths.db, false).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => AttachError::DatabaseMissing {
                path: paths.db.clone(),
            },
            _ => attach_io(&paths.db, "open the database")(e),
        })?;
        let meta = db_file
            .metadata()
            .map_err(attach_io(&paths.db, "stat the database"))?;
        let registration = Registration::register(meta.dev(), meta.ino()).ok_or_else(|| {
            AttachError::AlreadyAttached {
                path: paths.db.clone(),
            }
        })?;
        check_db_header(&paths.db, &db_file)?;
        lock_shared(&paths.db, &db_file, options.lock_timeout)?;
        check_db_header(&paths.db, &db_file)?;
        let wal = open_existing(&paths.wal, false)
            .map_err(missing_means_not_open(&paths.wal, "open the WAL"))?;
        check_wal_version(&paths.wal, &wal)?;
        let shm = open_existing(&paths.shm, true)
            .map_err(missing_means_not_open(&paths.shm, "open the wal-index"))?;
        lock_dms(&paths.shm, &shm, options.lock_timeout)?;
        let (region, index) = wait_for_wal_index(&paths.shm, &shm, options.init_timeout)?;
        let att = Attachment::new(AttachedFiles {
            paths,
            policy: options.read_mark,
            region,
            shm,
            wal,
            db: db_file,
            registration,
        });
        Ok(Self { att, index })
    }

    /// The database's paths.
    pub fn paths(&self) -> &DatabasePaths {
        &self.att.paths
    }

    /// The wal-index as validated when attaching.
    pub fn wal_index(&self) -> &WalIndex {
        &self.index
    }

    /// Claims a read slot (mark per [`AttachOptions::read_mark`]) -> PROTECTED. Fails with
    /// [`LockError::ReadSlotsBusy`] only if every slot stays locked exclusively.
    pub fn protect(self) -> Result<Protected, LockError> {
        match read_slot::claim(&self.att, self.att.policy, CLAIM_ATTEMPTS)? {
            Some((held, index)) => Ok(Protected::new(self.att, held, index, None)),
            None => Err(LockError::ReadSlotsBusy {
                path: self.att.paths.shm.clone(),
                attempts: CLAIM_ATTEMPTS,
            }),
        }
    }

    /// Releases every lock and closes the files.
    pub fn release(self) {}
}

fn open_existing(path: &Path, write: bool) -> io::Result<File> {
    OpenOptions::new().read(true).write(write).open(path)
}

fn attach_io<'a>(
    path: &'a Path,
    operation: &'static str,
) -> impl FnOnce(io::Error) -> AttachError + 'a {
    move |source| AttachError::Io {
        path: path.to_owned(),
        operation,
        source,
    }
}

fn missing_means_not_open<'a>(
    path: &'a Path,
    operation: &'static str,
) -> impl FnOnce(io::Error) -> AttachError + 'a {
    move |source| match source.kind() {
        io::ErrorKind::NotFound => AttachError::NotOpenByApplication {
            path: path.to_owned(),
        },
        _ => attach_io(path, operation)(source),
    }
}

/// Requires a SQLite database in WAL mode: magic, then header bytes 18/19 == 2/2.
fn check_db_header(path: &Path, db: &File) -> Result<(), AttachError> {
    let mut header = [0u8; DB_HEADER_SIZE];
    let len = read_full(db, 0, &mut header).map_err(attach_io(path, "read the database header"))?;
    let not_a_db = |reason: String| AttachError::NotADatabase {
        path: path.to_owned(),
        reason,
    };
    if len < DB_HEADER_SIZE {
        return Err(not_a_db(format!(
            "the file is {len} bytes, shorter than the {DB_HEADER_SIZE}-byte header (an empty database has never been written)"
        )));
    }
    if header.get(..16) != Some(SQLITE_MAGIC.as_slice()) {
        return Err(not_a_db(
            "offset 0 does not hold \"SQLite format 3\"".into(),
        ));
    }
    match (header[18], header[19]) {
        (2, 2) => Ok(()),
        (1, 1) => Err(AttachError::RollbackJournal {
            path: path.to_owned(),
        }),
        (write_version, read_version) => Err(AttachError::UnsupportedFileFormat {
            path: path.to_owned(),
            write_version,
            read_version,
        }),
    }
}

/// SHARED as `unixLock` takes it. Gives up after `timeout`, naming an EXCLUSIVE holder.
fn lock_shared(path: &Path, db: &File, timeout: Duration) -> Result<(), AttachError> {
    let io = |operation| attach_io(path, operation);
    let start = Instant::now();
    let mut backoff = Backoff::default();
    loop {
        if ofd::try_lock(db.as_fd(), LockKind::Shared, DB_PENDING).map_err(io("lock PENDING"))? {
            let shared = ofd::try_lock(db.as_fd(), LockKind::Shared, DB_SHARED)
                .map_err(io("lock SHARED"))?;
            ofd::unlock(db.as_fd(), DB_PENDING).map_err(io("unlock PENDING"))?;
            if shared {
                return Ok(());
            }
        }
        if start.elapsed() >= timeout {
            let holder = ofd::conflicting(db.as_fd(), LockKind::Shared, DB_SHARED)
                .map_err(io("test SHARED"))?;
            return Err(if holder == Some(LockKind::Exclusive) {
                AttachError::ExclusiveLockingMode {
                    path: path.to_owned(),
                    waited: start.elapsed(),
                }
            } else {
                AttachError::Busy {
                    path: path.to_owned(),
                    lock: "database PENDING/SHARED",
                    waited: start.elapsed(),
                }
            });
        }
        backoff.pause();
    }
}

/// Refuses a WAL whose header is valid but of another version. Any other invalid header
/// is what SQLite treats as an empty WAL, and is fine.
fn check_wal_version(path: &Path, wal: &File) -> Result<(), AttachError> {
    let mut header = [0u8; WAL_HEADER_SIZE];
    let len = read_full(wal, 0, &mut header).map_err(attach_io(path, "read the WAL header"))?;
    match WalHeader::parse(header.get(..len).unwrap_or_default()) {
        Err(problem) if problem.is_unsupported_version() => Err(AttachError::UnsupportedWal {
            path: path.to_owned(),
            problem,
        }),
        _ => Ok(()),
    }
}

/// The DMS protocol of `unixLockSharedMemory`, ending with DMS held shared.
fn lock_dms(path: &Path, shm: &File, timeout: Duration) -> Result<(), AttachError> {
    let io = |operation| attach_io(path, operation);
    let dms = LockTarget::Dms.range();
    let start = Instant::now();
    let mut backoff = Backoff::default();
    loop {
        match ofd::conflicting(shm.as_fd(), LockKind::Exclusive, dms).map_err(io("test DMS"))? {
            None => {
                if ofd::try_lock(shm.as_fd(), LockKind::Exclusive, dms).map_err(io("lock DMS"))? {
                    // First opener: the contents may predate a crash; SQLite will rebuild them.
                    shm.set_len(SHM_TRUNCATED_SIZE)
                        .map_err(io("truncate the uninitialised wal-index"))?;
                    if ofd::try_lock(shm.as_fd(), LockKind::Shared, dms).map_err(io("lock DMS"))? {
                        return Ok(());
                    }
                }
            }
            Some(LockKind::Shared) => {
                if ofd::try_lock(shm.as_fd(), LockKind::Shared, dms).map_err(io("lock DMS"))? {
                    return Ok(());
                }
            }
            Some(LockKind::Exclusive) => {}
        }
        if start.elapsed() >= timeout {
            return Err(AttachError::Busy {
                path: path.to_owned(),
                lock: "wal-index DMS",
                waited: start.elapsed(),
            });
        }
        backoff.pause();
    }
}

/// Waits until the wal-index is at least one region long and its header validates, then
/// returns the mapping and the header. Maps only once the region exists (DMS is held, so
/// it cannot shrink afterwards).
fn wait_for_wal_index(
    path: &Path,
    shm: &File,
    timeout: Duration,
) -> Result<(ShmRegion, WalIndex), AttachError> {
    let start = Instant::now();
    let mut backoff = Backoff::default();
    let mut region = None;
    loop {
        let len = shm
            .metadata()
            .map_err(attach_io(path, "stat the wal-index"))?
            .len();
        if region.is_none() && len >= REGION_SIZE as u64 {
            region =
                Some(ShmRegion::map(shm.as_fd()).map_err(attach_io(path, "map the wal-index"))?);
        }
        let last = match region.take() {
            None => WalIndexError::Truncated {
                len: usize::try_from(len).unwrap_or(usize::MAX),
            },
            Some(mapped) => match initialised_index(path, &mapped.copy_header())? {
                Ok(index) => return Ok((mapped, index)),
                Err(last) => {
                    region = Some(mapped);
                    last
                }
            },
        };
        if start.elapsed() >= timeout {
            return Err(AttachError::WalIndexNotInitialised {
                path: path.to_owned(),
                waited: start.elapsed(),
                last,
            });
        }
        backoff.pause();
    }
}

/// The header if SQLite has initialised it; `Ok(Err(_))` while it has not (or a writer is
/// mid-update); `Err` for a header that is valid but unsupported or impossible.
fn initialised_index(
    path: &Path,
    bytes: &[u8],
) -> Result<Result<WalIndex, WalIndexError>, AttachError> {
    match WalIndex::parse(bytes) {
        Err(WalIndexError::UnknownVersion(version)) => Err(AttachError::UnsupportedWalIndex {
            path: path.to_owned(),
            version,
        }),
        Err(source @ (WalIndexError::InvalidPageSize(_) | WalIndexError::InvalidWordOrder(_))) => {
            Err(AttachError::MalformedWalIndex {
                path: path.to_owned(),
                source,
            })
        }
        other => Ok(other),
    }
}
