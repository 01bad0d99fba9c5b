//! walcast-format against the files real SQLite wrote into testdata/format/ (see its README)
//! and against SQLite's own recovery of those files, run again at test time in a separate
//! process: copy db + db-wal without the -shm, let SQLite recover, and compare what it
//! publishes in the new -shm (mxFrame, nPage, salts, checksum) and the rows it sees.

use std::path::{Path, PathBuf};

use serde_json::Value;
use walcast_format::db_header::{DatabaseHeader, JournalVersion, TextEncoding};
use walcast_format::wal::{StopReason, WalReader, WalRecovery, WalSlice};
use walcast_format::wal_index::WalIndex;
use walcast_testbed::sqlite::Session;

fn case_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/format")
        .join(case)
}

fn facts(case: &str) -> Value {
    let text = std::fs::read_to_string(case_dir(case).join("sqlite.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn fact(case: &str, key: &str) -> u64 {
    facts(case)[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{case}: no {key}"))
}

fn recover(case: &str) -> WalRecovery {
    let bytes = std::fs::read(case_dir(case).join("db-wal")).unwrap();
    let from_slice = WalSlice::parse(&bytes).unwrap().recover();
    let file = std::fs::File::open(case_dir(case).join("db-wal")).unwrap();
    let streamed = WalReader::open(std::io::BufReader::new(file))
        .unwrap()
        .recover()
        .unwrap();
    assert_eq!(from_slice, streamed, "{case}: slice and stream disagree");
    from_slice
}

/// What SQLite concludes from a copy of the case's db + db-wal: its -shm header after
/// recovery, and the rows of `t` it sees.
fn sqlite_recovery(case: &str) -> (WalIndex, u64) {
    let dir = tempfile::tempdir().unwrap();
    for name in ["db", "db-wal"] {
        std::fs::copy(case_dir(case).join(name), dir.path().join(name)).unwrap();
    }
    let db = dir.path().join("db");
    let mut session = Session::open(&db, 1000).unwrap();
    let rows = session.exec("SELECT count(*) FROM t").unwrap()[0][0]
        .as_u64()
        .unwrap();
    let shm = std::fs::read(dir.path().join("db-shm")).unwrap();
    session.close().unwrap();
    (WalIndex::parse(&shm).unwrap(), rows)
}

const WAL_CASES: [(&str, StopReason); 9] = [
    ("page-512", StopReason::EndOfFile),
    ("page-4096", StopReason::EndOfFile),
    ("page-65536", StopReason::EndOfFile),
    ("many-transactions", StopReason::EndOfFile),
    ("uncommitted-tail", StopReason::EndOfFile),
    ("cut-mid-frame", StopReason::PartialFrame),
    ("damaged-frame", StopReason::ChecksumMismatch),
    ("restarted-generation", StopReason::SaltMismatch),
    ("live-shm", StopReason::SaltMismatch),
];

#[test]
fn valid_end_of_every_wal_matches_sqlite_recovery() {
    for (case, _) in WAL_CASES {
        let ours = recover(case);
        let (index, rows) = sqlite_recovery(case);
        let h = index.header;
        let commit = ours.last_commit.expect("every case commits something");
        assert_eq!(h.mx_frame, commit.frame, "{case}: mxFrame");
        assert_eq!(h.n_page, commit.db_size_pages, "{case}: nPage");
        assert_eq!(
            h.frame_checksum, commit.checksum,
            "{case}: checksum after mxFrame"
        );
        assert_eq!(
            (h.salt1, h.salt2),
            (ours.header.salts.salt1, ours.header.salts.salt2)
        );
        assert_eq!(h.word_order, ours.header.word_order, "{case}: word order");
        assert_eq!(
            h.page_size,
            Some(ours.header.page_size),
            "{case}: page size"
        );
        assert_eq!(
            rows,
            fact(case, "recovered_rows"),
            "{case}: SQLite's rows changed"
        );
    }
}

#[test]
fn stop_reason_and_stop_frame_of_each_case() {
    for (case, reason) in WAL_CASES {
        let ours = recover(case);
        assert_eq!(ours.stop.reason, reason, "{case}");
        assert_eq!(ours.stop.frame, ours.frames_valid + 1, "{case}");
        if let Some(damaged) = facts(case)["damaged_frame"].as_u64() {
            assert_eq!(u64::from(ours.stop.frame), damaged, "{case}");
        }
    }
}

#[test]
fn committed_transactions_match_what_sqlite_committed() {
    for case in [
        "page-512",
        "page-4096",
        "page-65536",
        "many-transactions",
        "uncommitted-tail",
    ] {
        let ours = recover(case);
        assert_eq!(
            u64::from(ours.transactions),
            fact(case, "transactions"),
            "{case}"
        );
        assert_eq!(fact(case, "recovered_rows"), fact(case, "rows"), "{case}");
    }
    // Damaged logs: SQLite sees the rows of the transactions before the damage
    // (transaction 1 creates `t`, each later one inserts one row).
    for case in ["cut-mid-frame", "damaged-frame"] {
        let ours = recover(case);
        assert_eq!(
            u64::from(ours.transactions) - 1,
            fact(case, "recovered_rows"),
            "{case}"
        );
        assert!(
            u64::from(ours.transactions) < fact(case, "transactions"),
            "{case}"
        );
    }
}

#[test]
fn frames_of_an_open_transaction_are_valid_but_not_committed() {
    let ours = recover("uncommitted-tail");
    assert!(ours.uncommitted_frames() > 0, "{ours:?}");
    let wal = std::fs::read(case_dir("uncommitted-tail").join("db-wal")).unwrap();
    let slice = WalSlice::parse(&wal).unwrap();
    let last = slice.transactions().last().unwrap().frame_range().1;
    assert_eq!(last, ours.mx_frame());
}

#[test]
fn page_sizes_512_4096_65536() {
    for (case, size) in [
        ("page-512", 512),
        ("page-4096", 4096),
        ("page-65536", 65536),
    ] {
        assert_eq!(recover(case).header.page_size.get(), size, "{case}");
        assert_eq!(u64::from(size), fact(case, "page_size"));
        let db = std::fs::read(case_dir(case).join("db")).unwrap();
        let header = DatabaseHeader::parse(&db).unwrap();
        assert_eq!(header.page_size.get(), size, "{case}");
        assert!(header.is_wal(), "{case}");
        // The database file alone holds what existed before the WAL: journal_mode=WAL wrote page 1.
        assert_eq!(header.page_count(db.len() as u64).pages, 1, "{case}");
    }
}

#[test]
fn live_wal_index_agrees_with_the_wal_beside_it() {
    let shm = std::fs::read(case_dir("live-shm").join("db-shm")).unwrap();
    let index = WalIndex::parse(&shm).unwrap();
    let ours = recover("live-shm");
    let commit = ours.last_commit.unwrap();
    assert_eq!(index.header.mx_frame, commit.frame);
    assert_eq!(index.header.n_page, commit.db_size_pages);
    assert_eq!(
        u64::from(index.header.n_page),
        fact("live-shm", "page_count")
    );
    assert_eq!(index.header.frame_checksum, commit.checksum);
    assert_eq!(index.header.page_size.unwrap().get(), 4096);
    assert_eq!(index.checkpoint.read_marks[0], 0);
}

#[test]
fn rollback_database_header() {
    let db = std::fs::read(case_dir("rollback-db").join("db")).unwrap();
    let h = DatabaseHeader::parse(&db).unwrap();
    assert_eq!(
        (h.write_version, h.read_version),
        (JournalVersion::Rollback, JournalVersion::Rollback)
    );
    assert_eq!(
        u64::from(h.page_size.get()),
        fact("rollback-db", "page_size")
    );
    assert_eq!(
        u64::from(h.user_version),
        fact("rollback-db", "user_version")
    );
    assert_eq!(
        u64::from(h.application_id),
        fact("rollback-db", "application_id")
    );
    assert_eq!(h.text_encoding, TextEncoding::Utf8);
    assert_eq!(
        h.page_count(db.len() as u64).pages,
        fact("rollback-db", "page_count")
    );
    assert!(h.sqlite_version >= 3_007_000, "{}", h.sqlite_version);
}

/// Flips one byte of a real WAL at offsets computed from the layout; the valid log must end
/// at the damaged frame for the reason its field implies, and SQLite must agree.
#[test]
fn corrupting_each_byte_of_a_frame_ends_the_log_there() {
    let wal = std::fs::read(case_dir("page-512").join("db-wal")).unwrap();
    let header = WalSlice::parse(&wal).unwrap().header().to_owned();
    let k = 6u32;
    let start = header.frame_offset(k) as usize;
    let expected_mx = WalSlice::parse(&wal)
        .unwrap()
        .transactions()
        .iter()
        .map(|t| t.frame_range().1)
        .filter(|&last| last < k)
        .max()
        .unwrap();
    let offsets = (0..24).chain([24, 300, 24 + 511]);
    for rel in offsets {
        let mut bad = wal.clone();
        bad[start + rel] ^= 0xff;
        let r = WalSlice::parse(&bad).unwrap().recover();
        let reason = match rel {
            8..16 => StopReason::SaltMismatch,
            _ => StopReason::ChecksumMismatch,
        };
        assert_eq!(
            (r.stop.frame, r.stop.reason),
            (k, reason),
            "byte {rel} of frame {k}"
        );
        assert_eq!(r.mx_frame(), expected_mx, "byte {rel}");
    }
    // SQLite agrees for one byte of each field.
    for rel in [2, 6, 10, 18, 300] {
        let dir = tempfile::tempdir().unwrap();
        let mut bad = wal.clone();
        bad[start + rel] ^= 0xff;
        std::fs::copy(case_dir("page-512").join("db"), dir.path().join("db")).unwrap();
        std::fs::write(dir.path().join("db-wal"), &bad).unwrap();
        let mut s = Session::open(&dir.path().join("db"), 1000).unwrap();
        s.exec("SELECT count(*) FROM sqlite_master").unwrap();
        let shm = std::fs::read(dir.path().join("db-shm")).unwrap();
        assert_eq!(
            WalIndex::parse(&shm).unwrap().header.mx_frame,
            expected_mx,
            "byte {rel}"
        );
        s.close().unwrap();
    }
}

#[test]
fn corrupting_each_byte_of_the_wal_header_is_an_error_naming_the_field() {
    let wal = std::fs::read(case_dir("page-4096").join("db-wal")).unwrap();
    for offset in 0..32 {
        let mut bad = wal.clone();
        bad[offset] ^= 0xff;
        let err = WalSlice::parse(&bad).unwrap_err().to_string();
        let field = match offset {
            0..4 => "offset 0",
            8..12 => "offset 8",
            _ => "offset 24",
        };
        assert!(err.contains(field), "byte {offset}: {err}");
    }
}

#[test]
fn corrupting_each_byte_of_a_database_header_never_panics_and_names_the_field() {
    let db = std::fs::read(case_dir("page-4096").join("db")).unwrap();
    let field_start = |i: usize| match i {
        0..16 => 0,
        16..18 => 16,
        21..24 => 21,
        56..60 => 56,
        other => other,
    };
    let mut refused = 0;
    for offset in 0..100 {
        let mut bad = db.clone();
        bad[offset] ^= 0xff;
        if let Err(err) = DatabaseHeader::parse(&bad) {
            refused += 1;
            let field = format!("offset {}", field_start(offset));
            assert!(err.to_string().contains(&field), "byte {offset}: {err}");
        }
    }
    // magic 16 + page size 2 + versions 2 + fractions 3 + text encoding 4; 255 reserved
    // bytes still leave 3841 usable bytes of a 4096-byte page, which SQLite accepts.
    assert_eq!(refused, 27);
}
