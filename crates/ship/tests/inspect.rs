//! `walcast inspect --json` against files real SQLite wrote (testdata/format and at test
//! time), compared with SQLite's own reading: rows it sees after recovery, the wal-index it
//! publishes (mxFrame, nPage, salts, word order) and its pragmas.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use walcast_format::wal_index::WalIndex;
use walcast_testbed::sqlite::{Session, query};

fn run_inspect(path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_walcast"))
        .arg("inspect")
        .arg(path)
        .arg("--json")
        .output()
        .unwrap()
}

fn inspect_json(path: &Path) -> Value {
    let out = run_inspect(path);
    assert!(
        out.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs inspect on a file it must refuse; returns stderr.
fn inspect_failure(path: &Path) -> String {
    let out = run_inspect(path);
    assert_eq!(out.status.code(), Some(1), "{}", path.display());
    assert!(out.stdout.is_empty());
    String::from_utf8(out.stderr).unwrap()
}

fn testdata(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/format")
        .join(case)
}

/// SQLite's recovery of a copy of `db` + `wal` (no -shm): its wal-index header, and the
/// rows of `t` it sees.
fn sqlite_recovers(db: &Path, wal: &Path) -> (WalIndex, u64) {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("db");
    std::fs::copy(db, &copy).unwrap();
    std::fs::copy(wal, dir.path().join("db-wal")).unwrap();
    let mut s = Session::open(&copy, 1000).unwrap();
    let rows = s.exec("SELECT count(*) FROM t").unwrap()[0][0]
        .as_u64()
        .unwrap();
    let index = WalIndex::parse(&std::fs::read(dir.path().join("db-shm")).unwrap()).unwrap();
    s.close().unwrap();
    (index, rows)
}

fn assert_wal_report_matches(report: &Value, index: &WalIndex, what: &str) {
    let h = &index.header;
    assert_eq!(report["kind"], "wal", "{what}");
    assert_eq!(
        report["frames_committed"], h.mx_frame,
        "{what}: where the committed log ends"
    );
    assert_eq!(report["db_size_pages"], h.n_page, "{what}: database size");
    assert_eq!(report["salt1"], h.salt1, "{what}");
    assert_eq!(report["salt2"], h.salt2, "{what}");
    assert_eq!(
        report["byte_order"],
        h.word_order.name(),
        "{what}: word order"
    );
    assert_eq!(report["page_size"], h.page_size.unwrap().get(), "{what}");
    let (valid, committed) = (&report["frames_valid"], &report["frames_committed"]);
    assert!(valid.as_u64() >= committed.as_u64(), "{what}: {report}");
    assert!(
        report["frames_total"].as_u64() >= valid.as_u64(),
        "{what}: {report}"
    );
}

#[test]
fn wal_reports_agree_with_sqlite_recovery_on_testdata() {
    let cases = [
        ("page-512", "end_of_file"),
        ("page-4096", "end_of_file"),
        ("page-65536", "end_of_file"),
        ("many-transactions", "end_of_file"),
        ("uncommitted-tail", "end_of_file"),
        ("cut-mid-frame", "partial_frame"),
        ("damaged-frame", "checksum_mismatch"),
        ("restarted-generation", "salt_mismatch"),
    ];
    for (case, stop) in cases {
        let (db, wal) = (testdata(case).join("db"), testdata(case).join("db-wal"));
        let report = inspect_json(&wal);
        let (index, rows) = sqlite_recovers(&db, &wal);
        assert_wal_report_matches(&report, &index, case);
        assert_eq!(report["stop_reason"], stop, "{case}");
        if case != "restarted-generation" && case != "page-65536" {
            // Transaction 1 creates `t`; each later transaction inserts one row.
            assert_eq!(report["transactions"].as_u64().unwrap() - 1, rows, "{case}");
        }
    }
}

#[test]
fn wal_written_now_by_sqlite_including_an_open_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let mut s = Session::open_wal_without_checkpoints(&db, 2048).unwrap();
    s.exec("CREATE TABLE t(i INTEGER PRIMARY KEY, v BLOB)")
        .unwrap();
    for i in 0..37 {
        s.exec(&format!(
            "INSERT INTO t VALUES ({i}, randomblob({}))",
            10 + 97 * i
        ))
        .unwrap();
    }
    // An open transaction bigger than the cache spills uncommitted frames into the WAL.
    s.exec("PRAGMA cache_size=4").unwrap();
    s.exec("BEGIN").unwrap();
    s.exec(
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 60) \
         INSERT INTO t SELECT 1000 + x, randomblob(1500) FROM n",
    )
    .unwrap();
    let saved = dir.path().join("saved");
    std::fs::create_dir(&saved).unwrap();
    std::fs::copy(&db, saved.join("db")).unwrap();
    std::fs::copy(dir.path().join("app.db-wal"), saved.join("db-wal")).unwrap();
    s.exec("ROLLBACK").unwrap();
    s.close().unwrap();

    let report = inspect_json(&saved.join("db-wal"));
    let (index, rows) = sqlite_recovers(&saved.join("db"), &saved.join("db-wal"));
    assert_wal_report_matches(&report, &index, "open transaction");
    assert_eq!(rows, 37);
    assert_eq!(report["transactions"], 38);
    assert!(
        report["frames_uncommitted"].as_u64().unwrap() > 0,
        "{report}"
    );
}

#[test]
fn database_report_agrees_with_sqlite_pragmas() {
    let dir = tempfile::tempdir().unwrap();
    for (journal, version) in [("WAL", 2), ("DELETE", 1)] {
        let db = dir.path().join(format!("{journal}.db"));
        let mut s = Session::open(&db, 1000).unwrap();
        s.exec_all(&[
            "PRAGMA page_size=8192",
            &format!("PRAGMA journal_mode={journal}"),
            "PRAGMA user_version=42",
            "PRAGMA application_id=99",
            "CREATE TABLE t(v)",
            "INSERT INTO t SELECT randomblob(3000) FROM (SELECT 1 UNION SELECT 2 UNION SELECT 3)",
        ])
        .unwrap();
        s.close().unwrap();
        // Closing the last connection checkpointed the WAL, so the file is complete.
        let report = inspect_json(&db);
        let pragma = |name: &str| query(&db, &format!("PRAGMA {name}")).unwrap()[0][0].clone();
        assert_eq!(report["kind"], "db");
        assert_eq!(report["page_size"], pragma("page_size"), "{journal}");
        assert_eq!(report["page_count"], pragma("page_count"), "{journal}");
        assert_eq!(report["user_version"], pragma("user_version"), "{journal}");
        assert_eq!(
            report["application_id"],
            pragma("application_id"),
            "{journal}"
        );
        assert_eq!(report["text_encoding"], "utf-8");
        assert_eq!(pragma("encoding"), "UTF-8");
        assert_eq!(report["write_version"], version, "{journal}");
        assert_eq!(report["read_version"], version, "{journal}");
    }
}

#[test]
fn database_testdata_with_65536_byte_pages() {
    let report = inspect_json(&testdata("page-65536").join("db"));
    assert_eq!(report["page_size"], 65536);
    assert_eq!(report["lock_byte_page"], 16385);
    let rollback = inspect_json(&testdata("rollback-db").join("db"));
    assert_eq!(rollback["write_version"], 1);
    assert_eq!(rollback["user_version"], 7);
}

#[test]
fn wal_index_report_of_a_live_connection() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let mut s = Session::open_wal_without_checkpoints(&db, 0).unwrap();
    s.exec_all(&[
        "CREATE TABLE t(v)",
        "INSERT INTO t VALUES (1)",
        "INSERT INTO t VALUES (2)",
    ])
    .unwrap();
    let shm = inspect_json(&dir.path().join("live.db-shm"));
    let wal = inspect_json(&dir.path().join("live.db-wal"));
    assert_eq!(shm["kind"], "shm");
    assert_eq!(shm["header_valid"], true);
    assert_eq!(shm["mx_frame"], wal["frames_committed"]);
    assert_eq!(shm["n_page"], wal["db_size_pages"]);
    assert_eq!(shm["salt1"], wal["salt1"]);
    assert_eq!(shm["salt2"], wal["salt2"]);
    assert_eq!(shm["page_size"], wal["page_size"]);
    assert_eq!(shm["n_backfill"], 0);
    assert_eq!(shm["read_marks"].as_array().unwrap().len(), 5);
    s.close().unwrap();

    let testdata_shm = inspect_json(&testdata("live-shm").join("db-shm"));
    let testdata_wal = inspect_json(&testdata("live-shm").join("db-wal"));
    assert_eq!(testdata_shm["mx_frame"], testdata_wal["frames_committed"]);
}

#[test]
fn reset_empty_and_uninitialised_wal_indexes_are_states_not_failures() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("a.db-shm", Vec::new(), "empty"),
        ("b-shm", vec![0; 3], "reset to 3 bytes"),
        ("c", vec![0; 32768], "uninitialised"),
    ];
    for (name, bytes, state) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let report = inspect_json(&path);
        assert_eq!(report["kind"], "shm", "{name}");
        assert_eq!(report["header_valid"], false, "{name}");
        assert!(
            report["state"].as_str().unwrap().contains(state),
            "{name}: {report}"
        );
        assert_eq!(report["mx_frame"], Value::Null, "{name}");
    }
    let empty_wal = dir.path().join("x.db-wal");
    std::fs::write(&empty_wal, b"").unwrap();
    let report = inspect_json(&empty_wal);
    assert_eq!(report["kind"], "wal");
    assert_eq!(report["frames_committed"], 0);
}

#[test]
fn unreadable_files_exit_1_naming_file_offset_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let wal = std::fs::read(testdata("page-512").join("db-wal")).unwrap();
    let db = std::fs::read(testdata("page-512").join("db")).unwrap();
    let damage = |name: &str, bytes: &[u8], offset: usize| {
        let mut bytes = bytes.to_vec();
        bytes[offset] ^= 0x10;
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let cases = [
        (damage("bad-cksum-wal", &wal, 20), "offset 24"),
        (damage("bad-pagesize-wal", &wal, 9), "offset 8"),
        (damage("bad-fractions.db", &db, 21), "offset 21"),
        (damage("bad-version.db", &db, 19), "offset 19"),
    ];
    for (path, offset) in &cases {
        let err = inspect_failure(path);
        assert!(err.contains(&*path.to_string_lossy()), "{err}");
        assert!(err.contains(offset), "{err}");
    }
    let short = dir.path().join("short-wal");
    std::fs::write(&short, &wal[..20]).unwrap();
    let err = inspect_failure(&short);
    assert!(
        err.contains("offset 20") && err.contains("truncated"),
        "{err}"
    );
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"not sqlite at all").unwrap();
    assert!(inspect_failure(&junk).contains("offset 0"));
}

#[test]
fn big_endian_wal_reports_its_byte_order() {
    use walcast_format::wal::{Salts, WalHeader, WalWriter};
    use walcast_format::{PageSize, WordOrder};
    let salts = Salts { salt1: 1, salt2: 2 };
    let header = WalHeader::new(WordOrder::Big, PageSize::new(1024).unwrap(), 3, salts);
    let mut w = WalWriter::new(Vec::new(), header).unwrap();
    w.write_frame(1, 0, &[1; 1024]).unwrap();
    w.write_frame(2, 2, &[2; 1024]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("be-wal");
    std::fs::write(&path, w.into_inner()).unwrap();
    let report = inspect_json(&path);
    assert_eq!(report["byte_order"], "big");
    assert_eq!(report["checkpoint_seq"], 3);
    assert_eq!(report["frames_committed"], 2);
    assert_eq!(report["transactions"], 1);
}

#[test]
fn the_kind_comes_from_the_content_not_the_file_name() {
    // Issue 2: inspect tells a database, a WAL and a wal-index apart by content. Each file
    // is copied under a name that suggests another kind (or none).
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (testdata("live-shm").join("db"), "misleading-wal", "db"),
        (testdata("live-shm").join("db-wal"), "misleading.db", "wal"),
        (
            testdata("live-shm").join("db-shm"),
            "misleading-wal.db",
            "shm",
        ),
        (testdata("rollback-db").join("db"), "no-suffix-shm", "db"),
    ];
    for (source, name, kind) in cases {
        let path = dir.path().join(name);
        std::fs::copy(&source, &path).unwrap();
        let json = inspect_json(&path);
        assert_eq!(
            json["kind"],
            kind,
            "{} copied to {name}: {json}",
            source.display()
        );
    }
}
