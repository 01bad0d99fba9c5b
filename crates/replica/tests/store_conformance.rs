//! One conformance suite of replica operations, run against every backend that runs here:
//! a directory (`file://`) and a real S3 server on 127.0.0.1 (s3s-fs in process, SigV4
//! checked), both through the same blocking `ReplicaClient`.
//!
//! Each behaviour is one function taking a `Backend`; `conformance!` turns it into one test
//! per backend. What the suite proves, for every backend:
//! - put, list (TXID order), get (streamed) and delete round-trip the exact bytes, and the
//!   client's request counts say what was asked;
//! - a put never replaces an existing file: the same bytes again is `AlreadyPresent` (a
//!   retried upload), other bytes are a `Conflict` and the original stays;
//! - a staged file uploads from its path (mapped, not read into memory), same rules;
//! - listings ignore strays (other names, temporary files, nested folders, other levels);
//! - `list_after(txid)` lists exactly the files whose min TXID is above it;
//! - the LTX header's timestamp is recorded where Litestream records it (object metadata,
//!   or the file's modification time);
//! - a missing file is `Missing` and the message names the file;
//! - deleting a missing file succeeds.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use walcast_ltx::{Encoder, Header, LtxFileName, TxId};
use walcast_replica::dir::PutOutcome;
use walcast_replica::{
    ClientSettings, Env, Level, ObjectLayout, Operation, ReplicaClient, ReplicaTarget, RetryPolicy,
    StoreError,
};
use walcast_testbed::s3::{BUCKET, S3Server};

/// A replica under test, and where its files live on disk (to plant strays).
struct Backend {
    client: ReplicaClient,
    /// The folder that holds the level folders (the replica dir, or bucket folder + prefix).
    files: PathBuf,
    /// How the backend names level folders.
    layout: ObjectLayout,
    _server: Option<S3Server>,
    _dir: tempfile::TempDir,
}

impl Backend {
    fn file() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let files = dir.path().join("replica");
        let url = format!("file://{}", files.display());
        let client = ReplicaClient::from_url(&url).unwrap();
        Self {
            client,
            files,
            layout: ObjectLayout::LtxLevels,
            _server: None,
            _dir: dir,
        }
    }

    fn s3() -> Self {
        let server = S3Server::start().unwrap();
        let target = ReplicaTarget::parse_url(&server.url("dbs/app")).unwrap();
        let client = ReplicaClient::open(target, settings(&server)).unwrap();
        Self {
            client,
            files: server.bucket_dir(BUCKET).join("dbs/app"),
            layout: ObjectLayout::HexLevels,
            _server: Some(server),
            _dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Creates a file that is not part of the replica, at `relative` under its root.
    fn stray(&self, relative: &str) {
        let path = self.files.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"not an ltx file").unwrap();
    }

    /// The folder of `level`, relative to the replica root, in this backend's spelling and
    /// in the other one.
    fn level_dirs(&self, level: Level) -> (String, String) {
        let other = match self.layout {
            ObjectLayout::HexLevels => ObjectLayout::LtxLevels,
            ObjectLayout::LtxLevels => ObjectLayout::HexLevels,
        };
        (self.layout.level_dir(level), other.level_dir(level))
    }

    fn read(&self, level: Level, name: LtxFileName) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.client
            .get(level, name)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
    }
}

/// The server's credentials and a policy that gives up quickly.
fn settings(server: &S3Server) -> ClientSettings {
    ClientSettings {
        env: Env::from_pairs(server.credentials()),
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            request_timeout: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(5),
        },
    }
}

fn name(min: u64, max: u64) -> LtxFileName {
    LtxFileName {
        min: TxId::new(min).unwrap(),
        max: TxId::new(max).unwrap(),
    }
}

/// A valid LTX file for `name` whose one page is filled with `fill`.
fn ltx(name: LtxFileName, fill: u8) -> Vec<u8> {
    let page_size = walcast_format::PageSize::new(4096).unwrap();
    let header = Header::new(page_size, 1, name.min, name.max, 1_764_489_600_123);
    let mut encoder = Encoder::new(Vec::new(), header).unwrap();
    encoder.write_page(1, &vec![fill; 4096]).unwrap();
    encoder.finish(None).unwrap().writer
}

fn put_list_get_delete(b: Backend) {
    let c = &b.client;
    assert_eq!(c.list(Level::L0).unwrap(), vec![]);
    let (first, second, third) = (name(1, 1), name(2, 5), name(6, 6));
    for (n, fill) in [(third, 3), (first, 1), (second, 2)] {
        assert_eq!(
            c.put(Level::L0, n, &ltx(n, fill)[..]).unwrap(),
            PutOutcome::Written
        );
    }
    let listed = c.list(Level::L0).unwrap();
    let names: Vec<_> = listed.iter().map(|f| f.name).collect();
    assert_eq!(names, [first, second, third], "TXID order");
    for f in &listed {
        assert_eq!(f.level, Level::L0);
        assert_eq!(f.size, ltx(f.name, 0).len() as u64);
    }
    assert_eq!(b.read(Level::L0, second), ltx(second, 2));
    assert_eq!(
        c.list(Level::SNAPSHOT).unwrap(),
        vec![],
        "levels are separate"
    );
    c.delete(Level::L0, second).unwrap();
    let names: Vec<_> = c.list(Level::L0).unwrap().iter().map(|f| f.name).collect();
    assert_eq!(names, [first, third]);

    // One request per call here (no retries were needed), and the bytes put.
    let stats = c.stats();
    let put = stats.get(Operation::Put);
    assert_eq!((put.requests, put.errors), (3, 0));
    let put_bytes: usize = [first, second, third]
        .iter()
        .map(|n| ltx(*n, 0).len())
        .sum();
    assert_eq!(put.bytes, put_bytes as u64);
    assert_eq!(stats.get(Operation::List).requests, 4);
    assert_eq!(stats.get(Operation::Get).requests, 1);
    assert_eq!(stats.get(Operation::Delete).requests, 1);
}

fn never_overwrites(b: Backend) {
    let c = &b.client;
    let n = name(1, 1);
    let original = ltx(n, 7);
    assert_eq!(
        c.put(Level::L0, n, &original[..]).unwrap(),
        PutOutcome::Written
    );
    assert_eq!(
        c.put(Level::L0, n, &original[..]).unwrap(),
        PutOutcome::AlreadyPresent,
        "a retried upload of the same bytes succeeds"
    );
    let err = c.put(Level::L0, n, &ltx(n, 8)[..]).unwrap_err();
    let location = c.location(Level::L0, n);
    match &err {
        StoreError::Conflict { location: l } => assert_eq!(l, &location),
        StoreError::Dir(walcast_replica::ReplicaError::Conflict { path }) => {
            assert_eq!(path.display().to_string(), location)
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert!(err.to_string().contains("another process"), "{err}");
    assert_eq!(b.read(Level::L0, n), original, "the original stays");
}

fn put_file_uploads_a_staged_file(b: Backend) {
    let n = name(4, 9);
    let staged = b._dir.path().join("staged.ltx");
    std::fs::write(&staged, ltx(n, 4)).unwrap();
    let put = |b: &Backend| b.client.put_file(Level::L0, n, &staged).unwrap();
    assert_eq!(put(&b), PutOutcome::Written);
    assert_eq!(put(&b), PutOutcome::AlreadyPresent);
    assert_eq!(b.read(Level::L0, n), ltx(n, 4));
    let err = b
        .client
        .put_file(Level::L0, n, &b._dir.path().join("absent.ltx"))
        .unwrap_err();
    assert!(err.to_string().contains("absent.ltx"), "{err}");
}

fn listing_ignores_strays(b: Backend) {
    let c = &b.client;
    let n = name(3, 4);
    c.put(Level::L0, n, &ltx(n, 1)[..]).unwrap();
    let (l0, other_spelling) = b.level_dirs(Level::L0);
    let (l1, _) = b.level_dirs(Level::new(1).unwrap());
    b.stray(&format!("{l0}/notes.txt"));
    b.stray(&format!("{l0}/0000000000000005-0000000000000005.ltx.tmp"));
    b.stray(&format!(
        "{l0}/nested/0000000000000007-0000000000000007.ltx"
    ));
    b.stray(&format!(
        "{other_spelling}/0000000000000008-0000000000000008.ltx"
    ));
    b.stray(&format!("{l1}/0000000000000009-0000000000000009.ltx"));
    b.stray("0000000000000001-0000000000000001.ltx");
    let names: Vec<_> = c.list(Level::L0).unwrap().iter().map(|f| f.name).collect();
    assert_eq!(names, [n]);
}

fn list_after_starts_past_a_txid(b: Backend) {
    let c = &b.client;
    let files = [name(1, 1), name(2, 5), name(6, 6), name(7, 9)];
    for n in files {
        c.put(Level::L0, n, &ltx(n, 1)[..]).unwrap();
    }
    let (l0, _) = b.level_dirs(Level::L0);
    b.stray(&format!(
        "{l0}/nested/000000000000000a-000000000000000a.ltx"
    ));
    b.stray(&format!("{l0}/zz-not-ltx"));
    let after = |txid| -> Vec<LtxFileName> {
        c.list_after(Level::L0, TxId::new(txid).unwrap())
            .unwrap()
            .iter()
            .map(|f| f.name)
            .collect()
    };
    assert_eq!(after(1), files[1..]);
    assert_eq!(after(2), files[2..]);
    assert_eq!(after(5), files[2..]);
    assert_eq!(after(7), []);
    assert_eq!(after(0x10), []);
}

fn files_carry_litestreams_timestamp(b: Backend) {
    let n = name(1, 1);
    b.client.put(Level::SNAPSHOT, n, &ltx(n, 1)[..]).unwrap();
    let stamp = b.client.timestamp(Level::SNAPSHOT, n).unwrap();
    assert_eq!(stamp.as_deref(), Some("2025-11-30T08:00:00.123Z"));
    let staged = b._dir.path().join("staged.ltx");
    let m = name(2, 2);
    std::fs::write(&staged, ltx(m, 2)).unwrap();
    b.client.put_file(Level::L0, m, &staged).unwrap();
    let stamp = b.client.timestamp(Level::L0, m).unwrap();
    assert_eq!(stamp.as_deref(), Some("2025-11-30T08:00:00.123Z"));
    let err = b.client.timestamp(Level::L0, name(9, 9)).unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }), "{err:?}");
}

fn missing_file_names_the_key(b: Backend) {
    let c = &b.client;
    let n = name(0x2a, 0x2a);
    let err = c.get(Level::new(3).unwrap(), n).unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }), "{err:?}");
    let message = err.to_string();
    let location = c.location(Level::new(3).unwrap(), n);
    assert!(location.ends_with("/000000000000002a-000000000000002a.ltx"));
    assert!(message.contains(&location), "{message}");
    assert!(!err.is_transient());
    c.delete(Level::L0, n).unwrap();
}

macro_rules! conformance {
    ($($behaviour:ident),* $(,)?) => {
        mod file {
            $( #[test] fn $behaviour() { super::$behaviour(super::Backend::file()) } )*
        }
        mod s3 {
            $( #[test] fn $behaviour() { super::$behaviour(super::Backend::s3()) } )*
        }
    };
}

conformance!(
    put_list_get_delete,
    never_overwrites,
    put_file_uploads_a_staged_file,
    listing_ignores_strays,
    list_after_starts_past_a_txid,
    files_carry_litestreams_timestamp,
    missing_file_names_the_key,
);

#[test]
fn s3_objects_use_litestreams_s3_layout() {
    let b = Backend::s3();
    let n = name(1, 1);
    b.client.put(Level::SNAPSHOT, n, &ltx(n, 1)[..]).unwrap();
    let replica = b.client.object_replica().unwrap();
    assert_eq!(
        replica.location(Level::SNAPSHOT, n),
        "s3://walcast/dbs/app/0009/0000000000000001-0000000000000001.ltx"
    );
    assert!(
        Path::new(&b.files)
            .join("0009/0000000000000001-0000000000000001.ltx")
            .is_file()
    );
}
