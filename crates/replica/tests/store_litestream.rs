//! The S3 replica client against the real Litestream 0.5.17, both ways, on a real S3 server
//! on 127.0.0.1 (s3s-fs in process):
//! - Litestream restores, byte for byte, a chain of LTX files (a snapshot at TXID 1, then a
//!   full-page file at TXID 2) of a real SQLite database that walcast encoded and uploaded
//!   with its client under Litestream's S3 layout; at the latest TXID and at `-txid 1`.
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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// Every page of `db` (but the lock page) as one LTX file `min-max`.
fn encode_full(db: &[u8], min: u64, max: u64) -> (LtxFileName, Vec<u8>) {
    let page_size = PageSize::from_db_header_field(u16::from_be_bytes([db[16], db[17]])).unwrap();
    let size = page_size.as_usize();
    let commit = u32::try_from(db.len() / size).unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let header = Header::new(
        page_size,
        commit,
        TxId::new(min).unwrap(),
        TxId::new(max).unwrap(),
        i64::try_from(now.as_millis()).unwrap(),
    );
    let mut encoder = Encoder::new(Vec::new(), header).unwrap();
    for (i, page) in db.chunks_exact(size).enumerate() {
        let pgno = u32::try_from(i + 1).unwrap();
        if pgno != page_size.lock_byte_page() {
            encoder.write_page(pgno, page).unwrap();
        }
    }
    (header.file_name(), encoder.finish(None).unwrap().writer)
}

#[test]
fn litestream_restores_a_chain_walcast_uploaded_to_s3() {
    let ls = Litestream::locate().unwrap();
    let server = S3Server::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
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

    let client = client(&server, "walcast/app");
    for (bytes, txid) in [(&first, 1), (&second, 2)] {
        let (name, ltx) = encode_full(bytes, txid, txid);
        assert_eq!(
            client.put(Level::L0, name, &ltx[..]).unwrap(),
            PutOutcome::Written
        );
    }

    let url = server.url("walcast/app");
    for (txid, expected) in [(None, &second), (Some("0000000000000001"), &first)] {
        let out = dir
            .path()
            .join(format!("restored-{}.db", txid.unwrap_or("latest")));
        let out_arg = out.to_str().unwrap();
        let mut args = vec!["restore", "-o", out_arg];
        if let Some(txid) = txid {
            args.extend(["-txid", txid]);
        }
        args.push(&url);
        run(litestream(&ls, &server, &args));
        assert!(
            std::fs::read(&out).unwrap() == *expected,
            "Litestream's restore at {txid:?} differs from the source"
        );
    }
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
