//! Helpers shared by the integration tests: a database in WAL mode held open by a real
//! SQLite in another process (the "application"), and readers of its files.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use walcast_format::wal_index::WalIndex;
use walcast_lock::{AttachOptions, Attached, Protected, ReadMarkPolicy};
use walcast_testbed::sqlite::{Answer, Session};

/// A temporary directory with one database in it.
pub struct TestDb {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TestDb {
    /// An empty directory; the database does not exist yet.
    pub fn empty(name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        Self { _dir: dir, path }
    }

    /// A WAL database with table `t(id, k, v)` (the workload's schema) and `rows` rows, held open by the returned
    /// session (the application). Automatic checkpoints are off, so the WAL keeps every
    /// frame unless a test checkpoints.
    pub fn wal(rows: u32) -> (Self, Session) {
        let db = Self::empty("app.db");
        let mut app = Session::open(&db.path, 5000).unwrap();
        for sql in [
            "PRAGMA journal_mode=WAL",
            "PRAGMA wal_autocheckpoint=0",
            "CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, v BLOB)",
        ] {
            app.exec(sql).unwrap();
        }
        insert(&mut app, rows);
        (db, app)
    }

    pub fn wal_path(&self) -> PathBuf {
        suffixed(&self.path, "-wal")
    }

    pub fn shm_path(&self) -> PathBuf {
        suffixed(&self.path, "-shm")
    }

    /// The wal-index header as a plain read of the file sees it (tests only, at rest).
    pub fn wal_index(&self) -> WalIndex {
        WalIndex::parse(&std::fs::read(self.shm_path()).unwrap()).unwrap()
    }

    /// Salts in the WAL file header.
    pub fn wal_salts(&self) -> (u32, u32) {
        let wal = std::fs::read(self.wal_path()).unwrap();
        let word = |o: usize| u32::from_be_bytes(wal[o..o + 4].try_into().unwrap());
        (word(16), word(20))
    }

    pub fn attach(&self) -> Attached {
        Attached::attach(&self.path, AttachOptions::default()).unwrap()
    }

    pub fn protect(&self) -> Protected {
        self.attach().protect().unwrap()
    }

    pub fn protect_with(&self, read_mark: ReadMarkPolicy) -> Protected {
        let options = AttachOptions {
            read_mark,
            ..AttachOptions::default()
        };
        Attached::attach(&self.path, options)
            .unwrap()
            .protect()
            .unwrap()
    }
}

pub fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Inserts `rows` rows of 300 bytes, one transaction each.
pub fn insert(app: &mut Session, rows: u32) {
    for _ in 0..rows {
        app.exec("INSERT INTO t(v) VALUES (randomblob(300))")
            .unwrap();
    }
}

/// `PRAGMA wal_checkpoint(mode)` on `session`: (busy, log, checkpointed).
pub fn checkpoint(session: &mut Session, mode: &str) -> (i64, i64, i64) {
    let rows = session
        .exec(&format!("PRAGMA wal_checkpoint({mode})"))
        .unwrap();
    let n = |i: usize| rows[0][i].as_i64().unwrap();
    (n(0), n(1), n(2))
}

/// True if `answer` is SQLite's "database is locked" (SQLITE_BUSY).
pub fn is_busy(answer: &Answer) -> bool {
    matches!(answer, Answer::Error { message, .. } if message.contains("locked"))
}

pub fn count_rows(session: &mut Session) -> i64 {
    session.exec("SELECT count(*) FROM t").unwrap()[0][0]
        .as_i64()
        .unwrap()
}

/// Waits (polling, with a deadline) until `condition` holds.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The number in a JSON line's field.
pub fn field(line: &Value, name: &str) -> u64 {
    line[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no {name} in {line}"))
}

/// A frame as the tests look at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Copied {
    pub number: u32,
    pub page: u32,
    pub commit: Option<u32>,
}

/// Refreshes and reads every committed frame after `cursor`, advancing it.
pub fn copy_all(state: &mut Protected, cursor: &mut walcast_lock::FrameCursor) -> Vec<Copied> {
    state.refresh().unwrap();
    let mut buf = Vec::new();
    let mut copied = Vec::new();
    loop {
        let batch = state.read_frames(cursor, 64, &mut buf).unwrap();
        if batch.is_empty() {
            return copied;
        }
        copied.extend(batch.frames().map(|f| Copied {
            number: f.number,
            page: f.page_number,
            commit: f.commit_size,
        }));
        *cursor = batch.end();
    }
}

/// Bytes of the WAL up to the end of frame `n`.
pub fn wal_prefix(db: &TestDb, n: u32) -> Vec<u8> {
    let wal = std::fs::read(db.wal_path()).unwrap();
    let page_size = u32::from_be_bytes(wal[8..12].try_into().unwrap()) as usize;
    wal[..32 + n as usize * (24 + page_size)].to_vec()
}
