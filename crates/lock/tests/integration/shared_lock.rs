//! What the SHARED lock on the database buys (reference §4, §6 step 1, §7).

use walcast_testbed::sqlite::{Answer, Session};

use crate::support::{TestDb, insert, is_busy};

#[test]
fn while_attached_the_last_close_keeps_the_wal_and_wal_mode_cannot_be_left() {
    let (db, mut app) = TestDb::wal(20);
    let attached = db.attach();
    let wal_len = std::fs::metadata(db.wal_path()).unwrap().len();

    let mut other = Session::open(&db.path, 0).unwrap();
    let answer = other.try_exec("PRAGMA journal_mode=DELETE").unwrap();
    assert!(is_busy(&answer), "left WAL mode under walcast: {answer:?}");
    other.close().unwrap();
    insert(&mut app, 1);
    let wal_len = wal_len.max(std::fs::metadata(db.wal_path()).unwrap().len());
    app.close().unwrap();
    assert_eq!(
        std::fs::metadata(db.wal_path()).unwrap().len(),
        wal_len,
        "the last close checkpointed or truncated the WAL while walcast was attached"
    );
    assert!(db.shm_path().exists());

    // Control: without walcast, the last close checkpoints and deletes both files.
    drop(attached);
    let mut app = Session::open(&db.path, 0).unwrap();
    assert!(matches!(
        app.try_exec("SELECT count(*) FROM t").unwrap(),
        Answer::Rows(_)
    ));
    app.close().unwrap();
    assert!(!db.wal_path().exists());
    assert!(!db.shm_path().exists());
}
