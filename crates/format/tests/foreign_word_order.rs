//! Real SQLite reads a WAL that walcast's writer wrote in the word order this host does not
//! use (big-endian checksums, magic 0x377f0683, on a little-endian machine): the writer
//! produces what SQLite's recovery accepts, in either order.

use walcast_format::WordOrder;
use walcast_format::wal::{Salts, WalHeader, WalSlice, WalWriter};
use walcast_format::wal_index::WalIndex;
use walcast_testbed::sqlite::{Session, query};

fn foreign_order() -> WordOrder {
    match WordOrder::native() {
        WordOrder::Little => WordOrder::Big,
        WordOrder::Big => WordOrder::Little,
    }
}

#[test]
fn sqlite_reads_rows_from_a_wal_in_the_non_native_word_order() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    let mut live = Session::open_wal_without_checkpoints(&src, 1024).unwrap();
    live.exec("CREATE TABLE t(i INTEGER PRIMARY KEY, v TEXT)")
        .unwrap();
    for i in 0..40 {
        live.exec(&format!(
            "INSERT INTO t VALUES ({i}, 'row {i} ' || hex(randomblob(40)))"
        ))
        .unwrap();
    }
    // Copy while the connection is open, so the WAL is not checkpointed away on close.
    let copy = dir.path().join("copy.db");
    std::fs::copy(&src, &copy).unwrap();
    let native_wal = std::fs::read(dir.path().join("src.db-wal")).unwrap();
    let expected = query(&src, "SELECT i, v FROM t ORDER BY i").unwrap();
    live.close().unwrap();

    // Rewrite every committed frame with walcast's writer in the other word order.
    let native = WalSlice::parse(&native_wal).unwrap();
    assert_eq!(native.header().word_order, WordOrder::native());
    let header = WalHeader::new(
        foreign_order(),
        native.header().page_size,
        7,
        Salts {
            salt1: 0xdead_beef,
            salt2: 0x0bad_f00d,
        },
    );
    let mut writer = WalWriter::new(Vec::new(), header).unwrap();
    for tx in native.transactions() {
        for frame in tx.frames() {
            let commit = frame.commit_size().map_or(0, |n| n.get());
            writer
                .write_frame(frame.pgno().get(), commit, frame.page())
                .unwrap();
        }
    }
    let foreign = writer.into_inner();
    assert_eq!(
        foreign[3],
        if foreign_order() == WordOrder::Big {
            0x83
        } else {
            0x82
        }
    );

    let without_wal = query(&copy, "SELECT count(*) FROM sqlite_master").unwrap();
    assert_eq!(
        without_wal[0][0], 0,
        "the database file alone must not hold the table"
    );
    let _ = std::fs::remove_file(dir.path().join("copy.db-shm"));
    std::fs::write(dir.path().join("copy.db-wal"), &foreign).unwrap();

    // SQLite recovers the foreign-order WAL: same rows, and its wal-index says so.
    let mut reader = Session::open(&copy, 1000).unwrap();
    let rows = reader.exec("SELECT i, v FROM t ORDER BY i").unwrap();
    assert_eq!(rows, expected);
    let shm = std::fs::read(dir.path().join("copy.db-shm")).unwrap();
    let index = WalIndex::parse(&shm).unwrap();
    assert_eq!(index.header.word_order, foreign_order());
    assert_eq!(
        index.header.mx_frame,
        WalSlice::parse(&foreign).unwrap().recover().mx_frame()
    );
    assert_eq!(reader.exec("PRAGMA integrity_check").unwrap()[0][0], "ok");
    reader.close().unwrap();
}
