//! Attaching: every refusal of reference §7 with a clear error and no side effect, and the
//! DMS protocol of §4 against real SQLite.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use walcast_format::wal_index::{WalIndex, encode};
use walcast_format::{WalChecksum, WordOrder};
use walcast_lock::ofd::{self, ByteRange, LockKind};
use walcast_lock::offsets::{SHARED_FIRST, SHARED_SIZE, SHM_DMS};
use walcast_lock::{AttachError, AttachOptions, Attached};
use walcast_testbed::locks::{LockKind as PosixKind, PosixLocker};
use walcast_testbed::sqlite::{JournalMode, Session, Workload};

use crate::support::{TestDb, count_rows, insert, suffixed};

fn quick() -> AttachOptions {
    AttachOptions {
        lock_timeout: Duration::from_millis(300),
        init_timeout: Duration::from_millis(300),
        ..AttachOptions::default()
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Copies the database and its WAL and wal-index as they are on disk (the application
/// idle), into `dir`: a database nobody has open.
fn copy_live_files(db: &TestDb, dir: &Path) -> std::path::PathBuf {
    let copy = dir.join("copy.db");
    std::fs::copy(&db.path, &copy).unwrap();
    std::fs::copy(db.wal_path(), suffixed(&copy, "-wal")).unwrap();
    std::fs::copy(db.shm_path(), suffixed(&copy, "-shm")).unwrap();
    copy
}

#[test]
fn a_missing_database_is_refused_and_nothing_is_created() {
    let db = TestDb::empty("missing.db");
    let err = Attached::attach(&db.path, quick()).unwrap_err();
    assert!(matches!(err, AttachError::DatabaseMissing { .. }), "{err}");
    assert!(err.to_string().contains("missing.db"), "{err}");
    assert!(files_in(db.path.parent().unwrap()).is_empty());
}

#[test]
fn files_that_are_not_databases_are_refused() {
    let db = TestDb::empty("x.db");
    for contents in [&b""[..], b"hello", &[7u8; 4096]] {
        std::fs::write(&db.path, contents).unwrap();
        let err = Attached::attach(&db.path, quick()).unwrap_err();
        assert!(matches!(err, AttachError::NotADatabase { .. }), "{err}");
    }
    assert_eq!(files_in(db.path.parent().unwrap()), vec!["x.db"]);
}

#[test]
fn a_rollback_journal_database_is_refused_without_blocking_its_writers() {
    let db = TestDb::empty("rollback.db");
    let writer = Workload {
        journal_mode: JournalMode::Delete,
        busy_timeout_ms: 0,
        fail_on_busy: true,
        transactions: 300,
        ..Workload::default()
    };
    let mut running = writer.spawn(&db.path).unwrap();
    let mut refusals = 0;
    while running.is_running() {
        match Attached::attach(&db.path, quick()) {
            Err(AttachError::RollbackJournal { .. }) => refusals += 1,
            // Before the writer's first commit the file is missing or empty.
            Err(AttachError::DatabaseMissing { .. } | AttachError::NotADatabase { .. }) => {}
            Err(other) => panic!("unexpected: {other}"),
            Ok(_) => panic!("attached to a rollback-journal database"),
        }
    }
    let summary = running.wait().expect("the writer saw SQLITE_BUSY");
    assert_eq!(summary.busy, 0);
    assert!(refusals > 0);
    assert_eq!(files_in(db.path.parent().unwrap()), vec!["rollback.db"]);

    // Why walcast must not attach: a SHARED lock blocks a rollback-journal commit.
    let file = std::fs::File::open(&db.path).unwrap();
    let shared = ByteRange::new(SHARED_FIRST, SHARED_SIZE);
    assert!(ofd::try_lock(file.as_fd(), LockKind::Shared, shared).unwrap());
    let blocked = Workload {
        transactions: 5,
        ..writer.clone()
    }
    .run(&db.path);
    assert!(
        blocked.is_err(),
        "a rollback-journal writer committed under SHARED"
    );
}

#[test]
fn exclusive_locking_mode_is_refused_and_leaves_no_lock_behind() {
    let db = TestDb::empty("excl.db");
    let mut app = Session::open(&db.path, 0).unwrap();
    for sql in [
        "PRAGMA locking_mode=EXCLUSIVE",
        "PRAGMA journal_mode=WAL",
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)",
    ] {
        app.exec(sql).unwrap();
    }
    insert(&mut app, 3);
    let err = Attached::attach(&db.path, quick()).unwrap_err();
    assert!(
        matches!(err, AttachError::ExclusiveLockingMode { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("locking_mode=EXCLUSIVE"), "{err}");
    assert!(!err.is_retryable());
    // The application, with no busy timeout, keeps writing: walcast left no lock.
    insert(&mut app, 3);
    assert_eq!(count_rows(&mut app), 6);
    assert_eq!(
        files_in(db.path.parent().unwrap()),
        vec!["excl.db", "excl.db-wal"]
    );
}

#[test]
fn a_wal2_database_header_is_refused() {
    let (db, app) = TestDb::wal(3);
    app.close().unwrap();
    let mut bytes = std::fs::read(&db.path).unwrap();
    bytes[18] = 3;
    bytes[19] = 3;
    std::fs::write(&db.path, &bytes).unwrap();
    let err = Attached::attach(&db.path, quick()).unwrap_err();
    assert!(
        matches!(
            err,
            AttachError::UnsupportedFileFormat {
                write_version: 3,
                read_version: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("wal2"), "{err}");
}

#[test]
fn a_wal_of_unknown_version_is_refused_before_the_wal_index_is_touched() {
    let (db, _app) = TestDb::wal(5);
    let dir = tempfile::tempdir().unwrap();
    let copy = copy_live_files(&db, dir.path());
    let wal_path = suffixed(&copy, "-wal");
    let mut wal = std::fs::read(&wal_path).unwrap();
    wal[4..8].copy_from_slice(&3_021_000u32.to_be_bytes());
    let order = if wal[3] & 1 == 1 {
        WordOrder::Big
    } else {
        WordOrder::Little
    };
    let sum = WalChecksum::ZERO.extend(order, &wal[..24]).unwrap();
    wal[24..32].copy_from_slice(&sum.to_be_bytes());
    std::fs::write(&wal_path, &wal).unwrap();
    let shm_before = std::fs::read(suffixed(&copy, "-shm")).unwrap();

    let err = Attached::attach(&copy, quick()).unwrap_err();
    assert!(matches!(err, AttachError::UnsupportedWal { .. }), "{err}");
    assert!(err.to_string().contains("3021000"), "{err}");
    // Nobody held DMS on the copy: had walcast reached the DMS step it would have
    // truncated the wal-index. It must not have.
    assert_eq!(std::fs::read(suffixed(&copy, "-shm")).unwrap(), shm_before);
}

#[test]
// The wal-index is in host byte order by definition.
#[allow(clippy::host_endian_bytes)]
fn a_wal_index_of_unknown_version_is_refused() {
    let (db, _app) = TestDb::wal(5);
    let dir = tempfile::tempdir().unwrap();
    let copy = copy_live_files(&db, dir.path());
    let shm_path = suffixed(&copy, "-shm");
    let mut shm = std::fs::read(&shm_path).unwrap();
    let mut header = encode(&WalIndex::parse(&shm).unwrap());
    // A wal2 connection writes version 3021000 with a valid checksum, in both copies.
    for copy_at in [0, 48] {
        header[copy_at..copy_at + 4].copy_from_slice(&3_021_000u32.to_ne_bytes());
        let sum = WalChecksum::ZERO
            .extend(WordOrder::native(), &header[copy_at..copy_at + 40])
            .unwrap();
        header[copy_at + 40..copy_at + 44].copy_from_slice(&sum.s1.to_ne_bytes());
        header[copy_at + 44..copy_at + 48].copy_from_slice(&sum.s2.to_ne_bytes());
    }
    shm[..136].copy_from_slice(&header);
    std::fs::write(&shm_path, &shm).unwrap();
    // That connection is alive: it holds DMS shared.
    let mut live_wal2 = PosixLocker::open(&shm_path).unwrap();
    assert!(live_wal2.try_lock(PosixKind::Shared, SHM_DMS, 1).unwrap());

    let err = Attached::attach(&copy, quick()).unwrap_err();
    assert!(
        matches!(
            err,
            AttachError::UnsupportedWalIndex {
                version: 3_021_000,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(std::fs::read(&shm_path).unwrap(), shm);
}

#[test]
fn no_wal_index_means_no_application_has_the_database_open() {
    let (db, app) = TestDb::wal(3);
    app.close().unwrap();
    let err = Attached::attach(&db.path, quick()).unwrap_err();
    assert!(
        matches!(err, AttachError::NotOpenByApplication { .. }),
        "{err}"
    );
    assert!(err.is_retryable());
    assert_eq!(files_in(db.path.parent().unwrap()), vec!["app.db"]);
}

#[test]
fn without_a_dms_holder_walcast_truncates_and_waits_for_sqlite_to_recover() {
    let (db, mut app) = TestDb::wal(40);
    let rows = count_rows(&mut app);
    let dir = tempfile::tempdir().unwrap();
    let copy = copy_live_files(&db, dir.path());
    let shm_path = suffixed(&copy, "-shm");

    let err = Attached::attach(&copy, quick()).unwrap_err();
    assert!(
        matches!(err, AttachError::WalIndexNotInitialised { .. }),
        "{err}"
    );
    assert!(err.is_retryable());
    assert_eq!(
        std::fs::metadata(&shm_path).unwrap().len(),
        3,
        "first opener truncates the wal-index to 3 bytes, as unixLockSharedMemory does"
    );

    let patient = AttachOptions {
        init_timeout: Duration::from_secs(30),
        ..AttachOptions::default()
    };
    let waiting = {
        let copy = copy.clone();
        std::thread::spawn(move || Attached::attach(&copy, patient))
    };
    // Once walcast holds DMS again, a SQLite connection trusts the (3-byte) contents and
    // runs recovery from the WAL; walcast must not have touched the WAL meanwhile.
    crate::support::wait_until("walcast holds DMS", || {
        let mut probe = PosixLocker::open(&shm_path).unwrap();
        probe.holder(PosixKind::Exclusive, SHM_DMS, 1).unwrap() == Some(PosixKind::Shared)
    });
    let mut reader = Session::open(&copy, 5000).unwrap();
    assert_eq!(count_rows(&mut reader), rows);
    let attached = waiting.join().unwrap().unwrap();
    assert_eq!(
        attached.wal_index().header.mx_frame,
        db.wal_index().header.mx_frame
    );
    assert_eq!(
        std::fs::read(suffixed(&copy, "-wal")).unwrap(),
        std::fs::read(db.wal_path()).unwrap()
    );
}

#[test]
fn an_exclusive_dms_holder_makes_attach_busy_and_nothing_is_truncated() {
    let (db, _app) = TestDb::wal(5);
    let dir = tempfile::tempdir().unwrap();
    let copy = copy_live_files(&db, dir.path());
    let shm_path = suffixed(&copy, "-shm");
    let shm = std::fs::read(&shm_path).unwrap();
    let mut first_opener = PosixLocker::open(&shm_path).unwrap();
    assert!(
        first_opener
            .try_lock(PosixKind::Exclusive, SHM_DMS, 1)
            .unwrap()
    );
    let err = Attached::attach(&copy, quick()).unwrap_err();
    assert!(
        matches!(
            err,
            AttachError::Busy {
                lock: "wal-index DMS",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_retryable());
    assert_eq!(std::fs::read(&shm_path).unwrap(), shm);
}

#[test]
fn one_process_attaches_to_a_database_once() {
    let (db, _app) = TestDb::wal(2);
    let first = db.attach();
    let err = Attached::attach(&db.path, quick()).unwrap_err();
    assert!(matches!(err, AttachError::AlreadyAttached { .. }), "{err}");
    drop(first);
    db.attach();
}
