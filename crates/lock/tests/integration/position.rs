//! The position token (reference §6 (d)): a persisted position resumes in the same
//! generation, and every way of losing frames while walcast is detached is detected.

use walcast_lock::{Discontinuity, PositionToken, ReadError};
use walcast_testbed::sqlite::Session;

use crate::support::{TestDb, checkpoint, copy_all, count_rows, insert, suffixed};

/// Attaches, copies everything, detaches; returns the position.
fn copied_position(db: &TestDb) -> PositionToken {
    let mut state = db.protect();
    let mut cursor = state.generation_start();
    copy_all(&mut state, &mut cursor);
    cursor.position().unwrap()
}

fn resume(db: &TestDb, token: &PositionToken) -> Result<walcast_lock::FrameCursor, Discontinuity> {
    match db.protect().resume(token) {
        Ok(cursor) => Ok(cursor),
        Err(ReadError::Discontinuity(d)) => Err(d),
        Err(other) => panic!("{other}"),
    }
}

#[test]
fn a_position_survives_detaching_and_continues_in_the_same_generation() {
    let (db, mut app) = TestDb::wal(20);
    let token = copied_position(&db);
    let text = token.to_string();
    insert(&mut app, 10);
    let restored: PositionToken = text.parse().unwrap();
    let mut state = db.protect();
    let mut cursor = state.resume(&restored).unwrap();
    let copied = copy_all(&mut state, &mut cursor);
    assert_eq!(copied.first().map(|f| f.number), Some(token.frame() + 1));
    assert_eq!(copied.iter().filter(|f| f.commit.is_some()).count(), 10);
}

#[test]
fn a_restart_while_detached_is_a_discontinuity() {
    let (db, mut app) = TestDb::wal(20);
    let token = copied_position(&db);
    checkpoint(&mut app, "PASSIVE");
    insert(&mut app, 1);
    let found = resume(&db, &token).unwrap_err();
    assert!(
        matches!(found, Discontinuity::GenerationChanged { .. }),
        "{found}"
    );
}

#[test]
fn a_truncate_while_detached_is_a_discontinuity_with_or_without_later_writes() {
    let (db, mut app) = TestDb::wal(20);
    let token = copied_position(&db);
    assert_eq!(checkpoint(&mut app, "TRUNCATE"), (0, 0, 0));
    let found = resume(&db, &token).unwrap_err();
    assert!(
        matches!(found, Discontinuity::GenerationChanged { .. }),
        "{found}"
    );
    insert(&mut app, 30);
    let found = resume(&db, &token).unwrap_err();
    assert!(
        matches!(found, Discontinuity::GenerationChanged { .. }),
        "{found}"
    );
}

#[test]
fn a_replaced_wal_is_a_discontinuity() {
    let (db, app) = TestDb::wal(20);
    let token = copied_position(&db);
    let (other, _other_app) = TestDb::wal(40);
    // Replace the application's files while nobody (walcast included) has them open.
    app.close().unwrap();
    std::fs::copy(&other.path, &db.path).unwrap();
    std::fs::copy(other.wal_path(), db.wal_path()).unwrap();
    let mut app = Session::open(&db.path, 5000).unwrap();
    assert_eq!(count_rows(&mut app), 40);
    let found = resume(&db, &token).unwrap_err();
    assert!(
        matches!(found, Discontinuity::GenerationChanged { .. }),
        "{found}"
    );
}

/// Frame numbers of the commit frames of a WAL file.
fn commit_frames(wal: &[u8]) -> Vec<u32> {
    let page_size = u32::from_be_bytes(wal[8..12].try_into().unwrap()) as usize;
    wal[32..]
        .chunks_exact(24 + page_size)
        .enumerate()
        .filter(|(_, frame)| frame[4..8] != [0, 0, 0, 0])
        .map(|(i, _)| i as u32 + 1)
        .collect()
}

#[test]
fn rolled_back_frames_are_a_discontinuity_and_so_are_rewritten_ones() {
    // Power loss under synchronous=NORMAL can drop the WAL's unsynced tail: simulated on
    // a copy whose WAL is cut after an earlier commit, then recovered by real SQLite.
    let (db, _app) = TestDb::wal(20);
    let token = copied_position(&db);
    let copy = TestDb::empty("copy.db");
    std::fs::copy(&db.path, &copy.path).unwrap();
    let wal = std::fs::read(db.wal_path()).unwrap();
    let commits = commit_frames(&wal);
    assert_eq!(commits.last(), Some(&token.frame()));
    let kept = commits[commits.len() - 4];
    let page_size = u32::from_be_bytes(wal[8..12].try_into().unwrap()) as usize;
    std::fs::write(
        suffixed(&copy.path, "-wal"),
        &wal[..32 + kept as usize * (24 + page_size)],
    )
    .unwrap();
    let mut app = Session::open(&copy.path, 5000).unwrap();
    assert_eq!(count_rows(&mut app), 17);

    let found = resume(&copy, &token).unwrap_err();
    assert_eq!(
        found,
        Discontinuity::Behind {
            frame: token.frame(),
            mx_frame: kept
        }
    );
    // The application writes on: frame N exists again, with other contents.
    insert(&mut app, 10);
    assert!(copy.wal_index().header.mx_frame >= token.frame());
    let found = resume(&copy, &token).unwrap_err();
    assert!(
        matches!(found, Discontinuity::FrameRewritten { .. }),
        "{found}"
    );
}
