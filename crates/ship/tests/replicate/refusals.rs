//! Databases walcast cannot replicate are refused before anything is created or locked:
//! exit code 1, a message naming the file and the problem, no staging directory, no replica.

use std::path::Path;
use std::process::Output;

use walcast_testbed::sqlite::{self, Session};

use crate::support::walcast;

fn replicate(db: &Path, replica: &Path) -> Output {
    walcast()
        .arg("replicate")
        .arg(db)
        .arg(format!("file://{}", replica.display()))
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn assert_refused(db: &Path, replica: &Path, out: &Output, expect: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&db.display().to_string()), "{stderr}");
    for word in expect {
        assert!(stderr.contains(word), "expected {word:?} in: {stderr}");
    }
    let staging = db.with_file_name(format!(
        ".{}-walcast",
        db.file_name().unwrap().to_str().unwrap()
    ));
    assert!(!staging.exists(), "staging directory created");
    assert!(!replica.exists(), "replica created");
}

#[test]
fn a_missing_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (db, replica) = (dir.path().join("nope.db"), dir.path().join("replica"));
    let out = replicate(&db, &replica);
    assert_refused(&db, &replica, &out, &["no such database file"]);
    assert!(!db.exists(), "walcast created the database");
}

#[test]
fn a_rollback_journal_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (db, replica) = (dir.path().join("rollback.db"), dir.path().join("replica"));
    sqlite::exec(
        &db,
        "PRAGMA journal_mode=DELETE; CREATE TABLE t(x); INSERT INTO t VALUES (1);",
    )
    .unwrap();
    let out = replicate(&db, &replica);
    assert_refused(
        &db,
        &replica,
        &out,
        &["rollback journal", "journal_mode=WAL"],
    );
}

#[test]
fn exclusive_locking_mode_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (db, replica) = (dir.path().join("exclusive.db"), dir.path().join("replica"));
    let mut app = Session::open(&db, 1000).unwrap();
    app.exec_all(&[
        "PRAGMA journal_mode=WAL",
        "PRAGMA locking_mode=EXCLUSIVE",
        "CREATE TABLE t(x)",
        "INSERT INTO t VALUES (1)",
    ])
    .unwrap();
    let out = replicate(&db, &replica);
    assert_refused(&db, &replica, &out, &["EXCLUSIVE"]);
    // The application was not disturbed.
    assert_eq!(
        app.exec("SELECT count(*) FROM t").unwrap()[0][0],
        serde_json::json!(1)
    );
    app.close().unwrap();
}

#[test]
fn an_unsupported_replica_url_is_refused_before_touching_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let out = walcast()
        .args(["replicate"])
        .arg(&db)
        .arg("ftp://example/x")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ftp://example/x") && stderr.contains("not supported"),
        "{stderr}"
    );
}
