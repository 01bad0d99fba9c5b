//! The S3 replica client against the real Litestream 0.5.17, both ways, on a real S3 server
//! on 127.0.0.1 (s3s-fs in process):
//! - Litestream restores, byte for byte, a chain of LTX files (a snapshot at TXID 1, then a
//!   full-page file at TXID 2) of a real SQLite database that walcast encoded and uploaded
//!   with its client, to S3 and to a directory: at the latest TXID and at `-txid 1`; and,
//!   in the directory, at `-timestamp`s, which Litestream answers from the file times
//!   walcast set. (On S3 Litestream bounds `-timestamp` by upload times, LastModified, and
//!   picks files by the `litestream-timestamp` metadata; the metadata is checked below
//!   against what Litestream itself writes.)
//! - walcast's client lists and reads what Litestream 0.5.17 itself uploaded (L0 and the
//!   level-9 snapshot of `replicate -once -force-snapshot`): the same files and sizes that
//!   `litestream ltx` reports, each with a verified checksum and the `litestream-timestamp`
//!   metadata spelled exactly as walcast spells it.
//!
//! Litestream runs with the server's credentials in its environment and without
//! `AWS_CA_BUNDLE` (it fails on every request when that is set; test-environment.md).

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use walcast_format::PageSize;
use walcast_ltx::{Encoder, Header, LtxFileName, TxId, verify};
use walcast_replica::dir::PutOutcome;
use walcast_replica::store::rfc3339_nano;
use walcast_replica::{ClientSettings, Env, Level, ReplicaClient, ReplicaTarget};
use walcast_testbed::litestream::{Config, DbConfig, Litestream, LtxInfo, Replica, Target};
use walcast_testbed::s3::{ACCESS_KEY, BUCKET, S3Server, SECRET_KEY};
use walcast_testbed::sqlite::{self, CheckpointMode};

fn client(server: &S3Server, path: &str) -> ReplicaClient {
    let target = ReplicaTarget::parse_url(&server.url(path)).unwrap();
    let settings = ClientSettings {
        env: Env::from_pairs(server.credentials()),
        ..ClientSettings::default()
    };
    ReplicaClient::open(target, settings).unwrap()
}

/// A Litestream command with the server's credentials and without `AWS_CA_BUNDLE`.
fn litestream(ls: &Litestream, server: &S3Server, args: &[&str]) -> Command {
    let mut cmd = ls.command(args);
    cmd.envs(server.credentials());
    cmd
}

fn run(mut cmd: Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The database file after a TRUNCATE checkpoint, as SQLite wrote it.
fn checkpointed(db: &Path) -> Vec<u8> {
    sqlite::checkpoint(db, CheckpointMode::Truncate).unwrap();
    std::fs::read(db).unwrap()
}

/// When the two files of the chain were "written": an hour apart, in the past.
const FIRST_MS: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z
const SECOND_MS: i64 = FIRST_MS + 3_600_000;

/// Every page of `db` (but the lock page) as one LTX file `txid-txid` stamped `timestamp_ms`.
fn encode_full(db: &[u8], txid: u64, timestamp_ms: i64) -> (LtxFileName, Vec<u8>) {
    let page_size = PageSize::from_db_header_field(u16::from_be_bytes([db[16], db[17]])).unwrap();
    let size = page_size.as_usize();
    let commit = u32::try_from(db.len() / size).unwrap();
    let txid = TxId::new(txid).unwrap();
    let header = Header::new(page_size, commit, txid, txid, timestamp_ms);
    let mut encoder = Encoder::new(Vec::new(), header).unwrap();
    for (i, page) in db.chunks_exact(size).enumerate() {
        let pgno = u32::try_from(i + 1).unwrap();
        if pgno != page_size.lock_byte_page() {
            encoder.write_page(pgno, page).unwrap();
        }
    }
    (header.file_name(), encoder.finish(None).unwrap().writer)
}

/// Two states of a real SQLite database (after TRUNCATE checkpoints), uploaded with
/// `client` as L0 files: a snapshot at TXID 1, then every page again at TXID 2.
fn upload_chain(client: &ReplicaClient, dir: &Path) -> [Vec<u8>; 2] {
    let db = dir.join("app.db");
    let workload = |seed, transactions| sqlite::Workload {
        seed,
        transactions,
        page_size: 4096,
        ..sqlite::Workload::default()
    };
    workload(1, 60).run(&db).unwrap();
    let first = checkpointed(&db);
    workload(2, 40).run(&db).unwrap();
    let second = checkpointed(&db);
    assert_ne!(first, second);
    for (bytes, txid, stamp) in [(&first, 1, FIRST_MS), (&second, 2, SECOND_MS)] {
        let (name, ltx) = encode_full(bytes, txid, stamp);
        assert_eq!(
            client.put(Level::L0, name, &ltx[..]).unwrap(),
            PutOutcome::Written
        );
    }
    [first, second]
}

/// Litestream restores `url` byte-identically to `first` or `second`, once per set of
/// restore options in `cases` (0 = `first`, 1 = `second`).
fn assert_litestream_restores(
    mut command: impl FnMut(&[&str]) -> Command,
    url: &str,
    dir: &Path,
    states: &[Vec<u8>; 2],
    cases: &[(&[&str], usize)],
) {
    for (options, state) in cases {
        let tag: String = options
            .concat()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let out = dir.join(format!("restored{tag}.db"));
        let mut args = vec!["restore", "-o", out.to_str().unwrap()];
        args.extend(options.iter());
        args.push(url);
        run(command(&args));
        assert!(
            std::fs::read(&out).unwrap() == states[*state],
            "Litestream's restore {options:?} of {url} differs from the source"
        );
    }
}

/// Restores at the latest TXID and at `-txid 1`.
const BY_TXID: [(&[&str], usize); 2] = [(&[], 1), (&["-txid", "0000000000000001"], 0)];

#[test]
fn litestream_restores_a_chain_walcast_uploaded_to_s3() {
    let ls = Litestream::locate().unwrap();
    let server = S3Server::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let states = upload_chain(&client(&server, "walcast/app"), dir.path());
    let command = |args: &[&str]| litestream(&ls, &server, args);
    let url = server.url("walcast/app");
    assert_litestream_restores(command, &url, dir.path(), &states, &BY_TXID);
}

#[test]
fn litestream_restores_a_chain_walcast_wrote_to_a_directory() {
    let ls = Litestream::locate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("replica").display());
    let states = upload_chain(&ReplicaClient::from_url(&url).unwrap(), dir.path());
    let command = |args: &[&str]| ls.command(args);
    assert_litestream_restores(command, &url, dir.path(), &states, &BY_TXID);
    // Litestream bounds -timestamp by the files' times and picks files by them: walcast's
    // file times are the LTX timestamps, so a time between the two restores the first.
    // (Litestream takes only files strictly before the time and refuses times after the
    // newest file, so no -timestamp restores the newest file.)
    let between = rfc3339_nano(FIRST_MS + 1_800_000);
    let by_time: [(&[&str], usize); 1] = [(&["-timestamp", &between], 0)];
    assert_litestream_restores(command, &url, dir.path(), &states, &by_time);
}

#[test]
fn walcast_lists_and_reads_what_litestream_uploaded_to_s3() {
    let ls = Litestream::locate().unwrap();
    let server = S3Server::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (db, config) = (dir.path().join("app.db"), dir.path().join("litestream.yml"));
    sqlite::Workload {
        transactions: 50,
        page_size: 4096,
        ..sqlite::Workload::default()
    }
    .run(&db)
    .unwrap();
    let replica = Replica::S3 {
        bucket: BUCKET.into(),
        path: "litestream/app".into(),
        endpoint: server.endpoint(),
        region: "us-east-1".into(),
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: SECRET_KEY.into(),
    };
    let mut db_config = DbConfig::new(&db, replica);
    db_config.monitor_interval = Some(Duration::from_millis(250));
    Config::new(vec![db_config]).write(&config).unwrap();
    ls.replicate_once(&config, true).unwrap();

    let expected: Vec<LtxInfo> = ls
        .ltx(
            &Target::Config {
                config: &config,
                db: &db,
            },
            None,
        )
        .unwrap();
    let client = client(&server, "litestream/app");
    let mut listed = Vec::new();
    for level in Level::all() {
        listed.extend(client.list(level).unwrap());
    }
    let ours: Vec<(u32, String, String, u64)> = listed
        .iter()
        .map(|f| {
            (
                u32::from(f.level.get()),
                f.name.min.to_string(),
                f.name.max.to_string(),
                f.size,
            )
        })
        .collect();
    let theirs: Vec<(u32, String, String, u64)> = expected
        .iter()
        .map(|i| (i.level, i.min_txid.clone(), i.max_txid.clone(), i.size))
        .collect();
    assert_eq!(ours, theirs, "walcast's listing vs `litestream ltx`");
    assert!(
        listed.iter().any(|f| f.level == Level::SNAPSHOT)
            && listed.iter().any(|f| f.level == Level::L0),
        "expected L0 and L9 files: {listed:?}"
    );
    for file in &listed {
        let location = client.location(file.level, file.name);
        let mut bytes = Vec::new();
        client
            .get(file.level, file.name)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        let verified = verify(&bytes[..]);
        assert!(verified.is_ok(), "{location}: {verified:?}");
        // Litestream's `litestream-timestamp` metadata is what walcast writes for the header.
        let header = Header::decode(bytes.first_chunk().unwrap()).unwrap();
        let stamp = client.timestamp(file.level, file.name).unwrap();
        assert_eq!(
            stamp.as_deref(),
            Some(rfc3339_nano(header.timestamp_ms).as_str()),
            "{location}"
        );
    }
}
