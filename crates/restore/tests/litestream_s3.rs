//! walcast-restore reading an S3 replica that the real Litestream 0.5.17 wrote to the
//! in-process S3 server, by URL and through a config file.
//!
//! One replica is produced per test binary: a real SQLite writer, `litestream replicate
//! -once` after each of two writer phases, then the daemon with short levels (L1 every 2s)
//! while a writer runs until L1 covers what it shipped, a forced level-9 snapshot, one more
//! phase and sync, then the source checkpointed (TRUNCATE). Litestream's config is the testbed's
//! (credentials in the file), and walcast-restore reads that same file with `-config`.
//!
//! The tests prove:
//! - by URL (credentials from the environment) and by `-config` (credentials from the
//!   file), the output is byte-identical to `litestream restore` of the same replica at
//!   every TXID and at the latest, and the latest equals the checkpointed source;
//! - `verify` finds the source and the restored files equal to the replica;
//! - an object that is damaged or missing on S3 fails the restore with exit 1 naming it,
//!   and leaves no output file.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::{Run, assert_no_output, binary};
use walcast_ltx::TxId;
use walcast_testbed::litestream::{Config, DbConfig, Litestream, Replica, Target};
use walcast_testbed::s3::{ACCESS_KEY, BUCKET, S3Server, SECRET_KEY};
use walcast_testbed::sqlite::{self, CheckpointMode, Workload};
use walcast_testbed::wait;

struct S3Run {
    server: S3Server,
    litestream: Litestream,
    dir: PathBuf,
    db: PathBuf,
    config: PathBuf,
    /// The newest TXID in the replica.
    latest: u64,
}

const PREFIX: &str = "dbs/app";

impl S3Run {
    fn url(&self, prefix: &str) -> String {
        self.server.url(prefix)
    }

    /// `walcast-restore ARGS` with the server's credentials in the environment.
    fn walcast(&self, args: &[&str]) -> Run {
        let output = binary()
            .args(args)
            .envs(self.server.credentials())
            .output()
            .unwrap();
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `litestream restore -o OUT [-txid]` through its config file.
    fn litestream_restore(&self, out: &Path, txid: Option<u64>) {
        let _ = std::fs::remove_file(out);
        let target = Target::Config {
            config: &self.config,
            db: &self.db,
        };
        self.litestream.restore(&target, out, txid).unwrap();
    }

    fn path(&self, name: &str) -> PathBuf {
        let path = self.dir.join(name);
        let _ = std::fs::remove_file(&path);
        path
    }
}

fn s3_run() -> &'static S3Run {
    static RUN: OnceLock<S3Run> = OnceLock::new();
    RUN.get_or_init(|| produce().unwrap_or_else(|e| panic!("{e:#}")))
}

fn produce() -> anyhow::Result<S3Run> {
    let server = S3Server::start()?;
    let litestream = Litestream::locate()?;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("restore-litestream-s3");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let (db, config) = (dir.join("app.db"), dir.join("litestream.yml"));
    let replica = Replica::S3 {
        bucket: BUCKET.into(),
        path: PREFIX.into(),
        endpoint: server.endpoint(),
        region: "us-east-1".into(),
        access_key_id: ACCESS_KEY.into(),
        secret_access_key: SECRET_KEY.into(),
    };
    let mut db_config = DbConfig::new(&db, replica);
    db_config.monitor_interval = Some(Duration::from_millis(250));
    db_config.sync_interval = Some(Duration::from_millis(250));
    Config {
        levels: vec![Duration::from_secs(2), Duration::from_secs(5)],
        ..Config::new(vec![db_config])
    }
    .write(&config)?;
    let objects = server.bucket_dir(BUCKET).join(PREFIX);
    let max_at = |level: &str| max_txid(&objects.join(level));
    let writer = |seed: u64, transactions: u64| Workload {
        seed,
        transactions,
        page_size: 4096,
        ops_per_tx: 4,
        ..Workload::default()
    };
    writer(1, 60).run(&db)?;
    litestream.replicate_once(&config, false)?;
    writer(2, 60).run(&db)?;
    litestream.replicate_once(&config, false)?;
    let before = max_at("0000").unwrap_or(0);
    let mut daemon = litestream.replicate(&config)?;
    Workload {
        seconds: 1.5,
        ..writer(4, 0)
    }
    .run(&db)?;
    wait::until(Duration::from_secs(30), "three more L0 objects", || {
        daemon.check_running()?;
        Ok(max_at("0000").unwrap_or(0) >= before + 3)
    })?;
    let shipped = max_at("0000");
    wait::until(
        Duration::from_secs(30),
        "L1 to cover every shipped L0 object",
        || {
            daemon.check_running()?;
            Ok(max_at("0001") >= shipped)
        },
    )?;
    daemon.stop()?;
    litestream.replicate_once(&config, true)?;
    writer(3, 40).run(&db)?;
    litestream.replicate_once(&config, false)?;
    sqlite::checkpoint(&db, CheckpointMode::Truncate)?;
    let latest = max_at("0000").ok_or_else(|| anyhow::anyhow!("Litestream wrote no L0 object"))?;
    Ok(S3Run {
        server,
        litestream,
        dir,
        db,
        config,
        latest,
    })
}

/// The newest max TXID among the LTX objects in one level's folder of the S3 server.
fn max_txid(level_dir: &Path) -> Option<u64> {
    std::fs::read_dir(level_dir)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.parse::<walcast_ltx::LtxFileName>().ok())
        .map(|n| n.max.get())
        .max()
}

fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn by_url_and_by_config_output_is_byte_identical_to_litestream_restore() {
    let s = s3_run();
    let url = s.url(PREFIX);
    let config = s.config.to_str().unwrap();
    let db = s.db.to_str().unwrap();
    // The first TXIDs (L0 only), the middle (L0 and L1), the last before the newest snapshot
    // and the newest (snapshot and L0), and the latest state.
    let mut targets: Vec<Option<u64>> = [1, 2, s.latest / 2, s.latest - 1, s.latest]
        .into_iter()
        .map(Some)
        .collect();
    targets.dedup();
    targets.push(None);
    for txid in targets {
        let label = txid.map_or_else(|| "latest".to_owned(), |t| t.to_string());
        let theirs = s.path(&format!("litestream-{label}.db"));
        s.litestream_restore(&theirs, txid);
        let hex = txid.map(|t| TxId::new(t).unwrap().to_string());
        let mut extra: Vec<&str> = Vec::new();
        if let Some(hex) = &hex {
            extra.extend(["-txid", hex]);
        }

        let by_url = s.path(&format!("walcast-url-{label}.db"));
        let mut args = vec!["restore", "-o", by_url.to_str().unwrap()];
        args.extend(&extra);
        args.push(&url);
        s.walcast(&args).ok();
        assert!(bytes(&by_url) == bytes(&theirs), "by URL at {label}");

        // Credentials come from the config file only: no environment.
        let by_config = s.path(&format!("walcast-config-{label}.db"));
        let mut args = vec![
            "restore",
            "-config",
            config,
            "-o",
            by_config.to_str().unwrap(),
        ];
        args.extend(&extra);
        args.push(db);
        common::run(&args).ok();
        assert!(bytes(&by_config) == bytes(&theirs), "by -config at {label}");

        let mut args = vec!["verify", by_url.to_str().unwrap(), &url];
        args.extend(&extra);
        s.walcast(&args).ok();
    }
    let latest = s.dir.join("walcast-url-latest.db");
    assert!(
        bytes(&latest) == bytes(&s.db),
        "latest equals the checkpointed source"
    );
}

#[test]
fn verify_finds_the_source_equal_by_url_and_by_config() {
    let s = s3_run();
    let db = s.db.to_str().unwrap();
    let run = s.walcast(&["verify", db, &s.url(PREFIX)]);
    run.ok();
    common::run(["verify", "-config", s.config.to_str().unwrap(), db]).ok();
    common::run(["ltx", "-config", s.config.to_str().unwrap(), db]).ok();
    // Without -o the database's own path is the output, which exists: never overwritten.
    common::run(["restore", "-config", s.config.to_str().unwrap(), db])
        .fails_with(1, &["already exists", "-force"]);
    // A name the config does not give the database is refused, naming what it has.
    common::run([
        "restore",
        "-config",
        s.config.to_str().unwrap(),
        "-replica",
        "offsite",
        "-o",
        s.path("never.db").to_str().unwrap(),
        db,
    ])
    .fails_with(1, &["no replica named \"offsite\"", "s3"]);
    common::run([
        "restore",
        "-config",
        s.config.to_str().unwrap(),
        "-o",
        s.path("never.db").to_str().unwrap(),
        "/elsewhere/other.db",
    ])
    .fails_with(1, &["has no database /elsewhere/other.db", db]);
}

/// Copies the replica to `prefix` in the same bucket, for a test to damage.
fn copy_replica(s: &S3Run, prefix: &str) -> PathBuf {
    let bucket = s.server.bucket_dir(BUCKET);
    let to = bucket.join(prefix);
    let _ = std::fs::remove_dir_all(&to);
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(bucket.join(PREFIX))
        .arg(&to)
        .status()
        .unwrap();
    assert!(status.success());
    to
}

#[test]
fn a_damaged_object_fails_naming_it_and_leaves_no_output() {
    let s = s3_run();
    let copy = copy_replica(s, "damaged/app");
    let snapshots: Vec<PathBuf> = std::fs::read_dir(copy.join("0009"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ltx"))
        .collect();
    // The newest snapshot: the one the latest restore starts from.
    let snapshot = snapshots.iter().max().unwrap();
    let mut raw = bytes(snapshot);
    let middle = raw.len() / 2;
    raw[middle] ^= 0x40;
    std::fs::write(snapshot, raw).unwrap();
    let name = snapshot.file_name().unwrap().to_str().unwrap();
    let out = s.path("damaged.db");
    s.walcast(&[
        "restore",
        "-o",
        out.to_str().unwrap(),
        &s.url("damaged/app"),
    ])
    .fails_with(1, &[&format!("s3://walcast/damaged/app/0009/{name}")]);
    assert_no_output(&out);
}

#[test]
fn an_empty_prefix_is_no_replica_unless_if_replica_exists() {
    let s = s3_run();
    let out = s.path("empty.db");
    let url = s.url("nothing/here");
    s.walcast(&["restore", "-o", out.to_str().unwrap(), &url])
        .fails_with(1, &["s3://walcast/nothing/here"]);
    assert_no_output(&out);
    s.walcast(&[
        "restore",
        "-if-replica-exists",
        "-o",
        out.to_str().unwrap(),
        &url,
    ])
    .ok();
    assert_no_output(&out);
}

#[test]
fn a_missing_object_fails_naming_the_replica_and_leaves_no_output() {
    let s = s3_run();
    let copy = copy_replica(s, "missing/app");
    for level in ["0001", "0002", "0009"] {
        let _ = std::fs::remove_dir_all(copy.join(level));
    }
    let first = copy.join("0000/0000000000000001-0000000000000001.ltx");
    std::fs::remove_file(&first).unwrap();
    let out = s.path("missing.db");
    s.walcast(&[
        "restore",
        "-o",
        out.to_str().unwrap(),
        &s.url("missing/app"),
    ])
    .fails_with(
        1,
        &[
            "s3://walcast/missing/app",
            "TXIDs 0000000000000001-0000000000000001 are missing",
            // The object as S3 spells it, not the directory layout.
            "0000/0000000000000002-0000000000000002.ltx",
        ],
    );
    assert_no_output(&out);
}

/// `ltx` over S3 takes each object's time from its `litestream-timestamp` metadata; it
/// must equal the LTX header's timestamp (what a directory replica's listing reports).
#[test]
fn ltx_lists_every_object_with_its_header_timestamp() {
    let s = s3_run();
    let run = s.walcast(&["ltx", "-json", &s.url(PREFIX)]);
    run.ok();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    let objects = s.server.bucket_dir(BUCKET).join(PREFIX);
    let mut levels = std::collections::BTreeSet::new();
    for row in &rows {
        let level = row["level"].as_u64().unwrap();
        levels.insert(level);
        let file = objects.join(format!("{level:04x}")).join(format!(
            "{}-{}.ltx",
            row["min_txid"].as_str().unwrap(),
            row["max_txid"].as_str().unwrap()
        ));
        let raw = bytes(&file);
        let header =
            walcast_ltx::Header::decode(raw[..walcast_ltx::HEADER_SIZE].try_into().unwrap())
                .unwrap();
        assert_eq!(
            row["timestamp"].as_str().unwrap(),
            walcast_ltx::rfc3339_millis(header.timestamp_ms),
            "{}",
            file.display()
        );
        assert_eq!(row["size"].as_u64().unwrap(), raw.len() as u64);
    }
    assert!(
        levels.contains(&0) && levels.contains(&1) && levels.contains(&9),
        "{levels:?}"
    );
}

/// `-timestamp` over S3 picks the same files as `litestream restore -timestamp` (both read
/// the objects' timestamp metadata and take the files made strictly before the moment).
#[test]
fn timestamp_restores_match_litestream() {
    let s = s3_run();
    let objects = s.server.bucket_dir(BUCKET).join(PREFIX).join("0000");
    for txid in [2, s.latest / 2, s.latest] {
        let name = format!("{0}-{0}.ltx", TxId::new(txid).unwrap());
        let raw = bytes(&objects.join(&name));
        let header =
            walcast_ltx::Header::decode(raw[..walcast_ltx::HEADER_SIZE].try_into().unwrap())
                .unwrap();
        let moment = walcast_ltx::rfc3339_millis(header.timestamp_ms + 1);
        let theirs = s.path(&format!("litestream-at-{txid}.db"));
        let mut cmd = s.litestream.command(["restore", "-o"]);
        cmd.arg(&theirs)
            .args(["-timestamp", &moment, "-config"])
            .arg(&s.config)
            .arg(&s.db);
        let status = cmd.status().unwrap();
        assert!(status.success(), "litestream restore -timestamp {moment}");
        let ours = s.path(&format!("walcast-at-{txid}.db"));
        s.walcast(&[
            "restore",
            "-o",
            ours.to_str().unwrap(),
            "-timestamp",
            &moment,
            &s.url(PREFIX),
        ])
        .ok();
        assert!(bytes(&ours) == bytes(&theirs), "at {moment} (TXID {txid})");
    }
}

/// A walcast config with several replicas for the database: the first is used unless
/// `-replica NAME` picks another. The S3 secret comes from the environment.
#[test]
fn replica_names_pick_one_of_several() {
    let s = s3_run();
    let config = s.dir.join("walcast.yml");
    let yaml = format!(
        "dbs:\n  - path: {db}\n    replicas:\n      - name: local\n        path: {empty}\n      - name: offsite\n        url: {url}\n        access-key-id: {ACCESS_KEY}\n        secret-access-key: ${{WALCAST_TEST_SECRET}}\n",
        db = s.db.display(),
        empty = s.dir.join("no-replica-here").display(),
        url = s.url(PREFIX),
    );
    std::fs::write(&config, yaml).unwrap();
    let (config, db) = (config.to_str().unwrap(), s.db.to_str().unwrap());
    let out = s.path("picked.db");
    let out_arg = out.to_str().unwrap();
    // Without the variable the secret is empty: the config is refused, naming the line.
    common::run(["restore", "-config", config, "-o", out_arg, db]).fails_with(
        1,
        &[
            "walcast.yml:6:",
            "`secret-access-key` is not",
            "unset ${VAR}",
        ],
    );
    let run = |extra: &[&str]| {
        let output = binary()
            .args(["restore", "-config", config])
            .args(extra)
            .args(["-o", out_arg, db])
            .env("WALCAST_TEST_SECRET", SECRET_KEY)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.success(), stderr)
    };
    let (ok, stderr) = run(&[]);
    assert!(!ok, "the first replica (an empty directory) holds nothing");
    assert!(stderr.contains("no-replica-here"), "{stderr}");
    assert_no_output(&out);
    let (ok, stderr) = run(&["-replica", "offsite"]);
    assert!(ok, "{stderr}");
    assert!(
        bytes(&out) == bytes(&s.db),
        "the offsite replica's latest is the source"
    );
}
