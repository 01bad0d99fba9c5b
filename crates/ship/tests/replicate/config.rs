//! `walcast replicate -config`: several databases in one process, several replicas per
//! database (a new, empty one catches up from a snapshot), and configs that are refused
//! before any database is touched.

use std::path::Path;
use std::process::Command;

use walcast_testbed::s3::S3Server;
use walcast_testbed::sqlite::Workload;

use crate::support::{
    Walcast, assert_restores_exactly, assert_url_restores_exactly, open_app, walcast,
};

fn workload(seed: u64) -> Workload {
    Workload {
        seed,
        transactions: 300,
        autocheckpoint: 50,
        checkpoint_every: 60,
        ..Workload::default()
    }
}

/// `walcast replicate -config PATH`, logging to `log`, with `env`.
fn start(config: &Path, env: &[(String, String)], log: &Path) -> Walcast {
    Walcast::start_command(
        walcast()
            .arg("replicate")
            .arg("-config")
            .arg(config)
            .envs(env.iter().map(|(k, v)| (k, v))),
        log,
    )
    .unwrap()
}

#[test]
fn two_databases_one_with_a_directory_and_an_s3_replica() {
    let server = S3Server::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let (ra, rb) = (dir.path().join("replica-a"), dir.path().join("replica-b"));
    let s3 = server.url("walcast/a");
    let config = dir.path().join("walcast.yml");
    std::fs::write(
        &config,
        format!(
            "dbs:\n  - path: {}\n    replicas:\n      - name: local\n        path: {}\n      - name: offsite\n        url: {s3}\n        sync-interval: 200ms\n  - path: {}\n    replica:\n      path: {}\n",
            a.display(),
            ra.display(),
            b.display(),
            rb.display()
        ),
    )
    .unwrap();
    let (app_a, app_b) = (open_app(&a).unwrap(), open_app(&b).unwrap());
    let env = server.credentials();
    let log = dir.path().join("walcast.log");
    let mut walcast = start(&config, &env, &log);
    walcast.wait_for_log("replicating", 3).unwrap();
    let writers = [
        workload(1).spawn(&a).unwrap(),
        workload(2).spawn(&b).unwrap(),
    ];
    for w in writers {
        w.wait().unwrap();
    }
    walcast.stop().unwrap();
    app_a.close().unwrap();
    app_b.close().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert_status_and_listing(&config, &a, &ra, &env);
    let check = |r: anyhow::Result<()>| r.unwrap_or_else(|e| panic!("{e:#}\nwalcast log:\n{text}"));
    check(assert_restores_exactly(
        &a,
        &ra,
        &dir.path().join("a-local.db"),
    ));
    check(assert_url_restores_exactly(
        &a,
        &s3,
        &env,
        &dir.path().join("a-offsite.db"),
    ));
    check(assert_restores_exactly(
        &b,
        &rb,
        &dir.path().join("b.db-restored"),
    ));
}

#[test]
fn a_new_empty_replica_catches_up_from_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let (old, new) = (
        dir.path().join("old-replica"),
        dir.path().join("new-replica"),
    );
    let app = open_app(&db).unwrap();
    let log = dir.path().join("walcast.log");
    // First only the old replica, for a while.
    let mut walcast = Walcast::start(&db, &old, &log, &[]).unwrap();
    walcast.wait_replicating().unwrap();
    workload(3).run(&db).unwrap();
    walcast.stop().unwrap();
    // Then both: the new one is empty while the old one is far along.
    let config = dir.path().join("walcast.yml");
    std::fs::write(
        &config,
        format!(
            "dbs:\n  - path: {}\n    replicas:\n      - path: {}\n      - path: {}\n",
            db.display(),
            old.display(),
            new.display()
        ),
    )
    .unwrap();
    let mut walcast = start(&config, &[], &log);
    walcast
        .wait_for_log("start the replica's chain again", 1)
        .unwrap();
    workload(4).run(&db).unwrap();
    walcast.stop().unwrap();
    app.close().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    for (replica, out) in [(&old, "from-old.db"), (&new, "from-new.db")] {
        assert_restores_exactly(&db, replica, &dir.path().join(out))
            .unwrap_or_else(|e| panic!("{}: {e:#}\nwalcast log:\n{text}", replica.display()));
    }
}

/// Runs `walcast replicate -config` on `config_text` (`DB` stands for a database the
/// application has open) with `env`, and requires exit 1, every word of `expect` in the
/// message (`DB` again standing for the database), and no trace of walcast next to the
/// database: no staging directory, and no file added, removed or resized (the WAL, its
/// index and locks stay as the application left them).
fn refused(config_text: &str, env: &[(String, String)], expect: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let _app = open_app(&db).unwrap();
    let config = dir.path().join("walcast.yml");
    std::fs::write(
        &config,
        config_text.replace("DB", &db.display().to_string()),
    )
    .unwrap();
    let listing = || {
        let mut entries: Vec<(std::ffi::OsString, u64)> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name(), e.metadata().unwrap().len())
            })
            .collect();
        entries.sort();
        entries
    };
    let before = listing();
    let out = Command::new(env!("CARGO_BIN_EXE_walcast"))
        .arg("replicate")
        .arg("-config")
        .arg(&config)
        .env("NO_COLOR", "1")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for word in expect {
        let word = word.replace("DB", &db.display().to_string());
        assert!(stderr.contains(&word), "expected {word:?} in: {stderr}");
    }
    assert!(
        !dir.path().join(".app.db-walcast").exists(),
        "the database was touched"
    );
    assert_eq!(listing(), before, "files next to the database changed");
}

/// A port on loopback that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[test]
fn bad_configs_are_refused_before_touching_any_database() {
    let unknown_key = "dbs:\n  - path: DB\n    replica:\n      path: /tmp/x\n      colour: blue\n";
    refused(unknown_key, &[], &["colour", "5"]);
    refused(
        "dbs:\n  - path: DB\n    replica:\n      type: s3\n",
        &[],
        &["bucket"],
    );
    let server = S3Server::start().unwrap();
    let missing = server
        .url("walcast/x")
        .replace("s3://walcast", "s3://no-such-bucket");
    let config = format!("dbs:\n  - path: DB\n    replica:\n      url: {missing}\n");
    refused(
        &config,
        &server.credentials(),
        &[
            "of DB",
            "s3://no-such-bucket/walcast/x",
            "the bucket does not exist",
        ],
    );
    // An endpoint nothing listens on fails at once (one quick check, not the minute of
    // retries a running replica would allow), naming the replica, the endpoint and what
    // to check.
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let config = format!(
        "dbs:\n  - path: DB\n    replicas:\n      - name: offsite\n        url: s3://b/app?endpoint={endpoint}&forcePathStyle=true\n"
    );
    refused(
        &config,
        &server.credentials(),
        &[
            "replica \"offsite\" of DB",
            "s3://b/app",
            &endpoint,
            "connection refused",
            "that the server is running",
        ],
    );
}

fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// After a clean stop: `status` shows every database fully uploaded to every replica,
/// `databases` lists the config, and `ltx` lists what the real Litestream lists.
fn assert_status_and_listing(config: &Path, a: &Path, ra: &Path, env: &[(String, String)]) {
    let run = |args: &[&str]| {
        walcast()
            .args(args)
            .arg("-config")
            .arg(config)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap()
    };
    let status = json_lines(&run(&["status", "--json"]));
    assert_eq!(status.len(), 2, "{status:?}");
    for db in &status {
        assert_eq!(db["files_waiting"], 0, "{db}");
        assert!(db["txid"].is_string(), "{db}");
        for replica in db["replicas"].as_array().unwrap() {
            assert_eq!(replica["recorded"]["txid"], db["txid"], "{db}");
        }
    }
    let databases = json_lines(&run(&["databases", "--json"]));
    assert_eq!(databases.len(), 3, "{databases:?}");
    let by_db = json_lines(&run(&["ltx", "--json", &a.display().to_string()]));
    let url = format!("file://{}", ra.display());
    let by_url = json_lines(&walcast().args(["ltx", "--json", &url]).output().unwrap());
    assert_eq!(by_db, by_url);
    let ls = walcast_testbed::litestream::Litestream::locate().unwrap();
    let theirs: Vec<_> = ls
        .ltx(&walcast_testbed::litestream::Target::Url(&url), None)
        .unwrap()
        .into_iter()
        .map(|f| (f.level, f.min_txid, f.max_txid, f.size))
        .collect();
    let ours: Vec<_> = by_url
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap().to_owned();
            (
                f["level"].as_u64().unwrap() as u32,
                s("min_txid"),
                s("max_txid"),
                f["size"].as_u64().unwrap(),
            )
        })
        .collect();
    let mut theirs_sorted = theirs.clone();
    theirs_sorted.sort();
    let mut ours_sorted = ours.clone();
    ours_sorted.sort();
    assert_eq!(ours_sorted, theirs_sorted);
}

#[test]
fn logging_type_json_writes_one_json_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let (db, replica) = (dir.path().join("app.db"), dir.path().join("replica"));
    let _app = open_app(&db).unwrap();
    let config = dir.path().join("walcast.yml");
    std::fs::write(
        &config,
        format!(
            "logging:\n  level: debug\n  type: json\ndbs:\n  - path: {}\n    replica:\n      path: {}\n",
            db.display(),
            replica.display()
        ),
    )
    .unwrap();
    let out = walcast()
        .args(["replicate", "-once", "-config"])
        .arg(&config)
        .env_remove("WALCAST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let level = |l: &serde_json::Value| l["level"].as_str().unwrap_or_default().to_owned();
    assert!(
        lines.iter().any(|l| level(l) == "DEBUG"),
        "level: debug applies"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"].as_str() == Some("replicating")),
        "{stderr}"
    );
}

#[test]
fn once_runs_the_compaction_and_snapshot_that_are_due_before_exiting() {
    // `-once` from cron: each run must also compact, snapshot and trim what is due, or
    // L0 files would pile up forever.
    let dir = tempfile::tempdir().unwrap();
    let (db, replica) = (dir.path().join("app.db"), dir.path().join("replica"));
    let _app = open_app(&db).unwrap();
    workload(11).run(&db).unwrap();
    let out = walcast()
        .args(["replicate", "-once"])
        .arg(&db)
        .arg(format!("file://{}", replica.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for level in ["1", "9"] {
        let files = std::fs::read_dir(replica.join("ltx").join(level))
            .map(|d| d.count())
            .unwrap_or(0);
        assert!(
            files > 0,
            "no L{level} file after -once\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let restored = dir.path().join("restored.db");
    assert_restores_exactly(&db, &replica, &restored).unwrap();
}
