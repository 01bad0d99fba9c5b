//! The wal-index parser against a `-shm` file written by real SQLite (a separate process).

use std::path::Path;

use walcast_format::WordOrder;
use walcast_format::wal_index::WalIndex;
use walcast_testbed::sqlite::Session;

fn wal_header_salts(wal: &Path) -> (u32, u32) {
    let bytes = std::fs::read(wal).unwrap();
    let word = |o: usize| u32::from_be_bytes(bytes[o..o + 4].try_into().unwrap());
    (word(16), word(20))
}

#[test]
fn live_connection_header_matches_what_sqlite_reports() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let mut s = Session::open(&db, 1000).unwrap();
    s.exec("PRAGMA page_size=8192").unwrap();
    s.exec("PRAGMA journal_mode=WAL").unwrap();
    s.exec("PRAGMA wal_autocheckpoint=0").unwrap();
    s.exec("CREATE TABLE t(v)").unwrap();
    for i in 0..20 {
        s.exec(&format!(
            "INSERT INTO t VALUES (randomblob({}))",
            100 + i * 400
        ))
        .unwrap();
    }
    let page_count = s.exec("PRAGMA page_count").unwrap()[0][0].as_u64().unwrap();

    let shm = std::fs::read(dir.path().join("live.db-shm")).unwrap();
    let index = WalIndex::parse(&shm).unwrap();
    let wal_len = std::fs::metadata(dir.path().join("live.db-wal"))
        .unwrap()
        .len();

    let h = index.header;
    assert_eq!(h.page_size.unwrap().get(), 8192);
    assert_eq!(u64::from(h.n_page), page_count);
    // No checkpoint ran and every statement committed, so the last frame is committed.
    assert_eq!(u64::from(h.mx_frame), (wal_len - 32) / (8192 + 24));
    assert_eq!(
        (h.salt1, h.salt2),
        wal_header_salts(&dir.path().join("live.db-wal"))
    );
    assert_eq!(h.word_order, WordOrder::native());
    assert_eq!(index.checkpoint.n_backfill, 0);
    s.close().unwrap();
}
