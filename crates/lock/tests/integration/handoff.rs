//! HANDOFF (reference §5 READ0, §6): READ0 freezes backfill, a restart can happen only when
//! everything was copied, and walcast re-protects before it releases READ0.

use walcast_lock::offsets::SHM_READ0;
use walcast_lock::{FrameCursor, Handoff, HandoffAttempt, HandoffStep, Protected, StayReason};
use walcast_testbed::locks::{LockKind, PosixLocker};
use walcast_testbed::sqlite::Session;

use crate::support::{TestDb, checkpoint, copy_all, insert};

/// PROTECTED -> copy everything -> checkpoint -> HANDOFF.
fn hand_off(db: &TestDb, app: &mut Session) -> (Handoff, FrameCursor) {
    let mut state = db.protect();
    let mut cursor = state.generation_start();
    copy_all(&mut state, &mut cursor);
    checkpoint(app, "PASSIVE");
    match state.try_handoff(&cursor).unwrap() {
        HandoffAttempt::Handoff(h) => (h, cursor),
        HandoffAttempt::Stayed(_, why) => panic!("stayed: {why:?}"),
    }
}

fn protected(step: HandoffStep) -> Protected {
    match step {
        HandoffStep::Protected(p) => p,
        other => panic!("expected PROTECTED, got {other:?}"),
    }
}

/// Which of READ0..READ4 another process sees held (shared) by walcast.
fn read_locks_held(db: &TestDb) -> Vec<u64> {
    let mut probe = PosixLocker::open(&db.shm_path()).unwrap();
    (0..=4)
        .filter(|i| {
            probe
                .holder(LockKind::Exclusive, SHM_READ0 + i, 1)
                .unwrap()
                .is_some()
        })
        .collect()
}

#[test]
fn handoff_waits_until_everything_is_copied_and_backfilled() {
    let (db, mut app) = TestDb::wal(10);
    let mut state = db.protect();
    let mut cursor = state.generation_start();
    insert(&mut app, 3);
    state = match state.try_handoff(&cursor).unwrap() {
        HandoffAttempt::Stayed(p, StayReason::NotCaughtUp { .. }) => p,
        other => panic!("{other:?}"),
    };
    copy_all(&mut state, &mut cursor);
    state = match state.try_handoff(&cursor).unwrap() {
        HandoffAttempt::Stayed(p, StayReason::NotBackfilled { n_backfill: 0, .. }) => p,
        other => panic!("{other:?}"),
    };
    checkpoint(&mut app, "PASSIVE");
    assert!(matches!(
        state.try_handoff(&cursor).unwrap(),
        HandoffAttempt::Handoff(_)
    ));
}

#[test]
fn in_handoff_no_backfill_writes_the_database_and_no_second_restart_happens() {
    let (db, mut app) = TestDb::wal(30);
    let (handoff, cursor) = hand_off(&db, &mut app);
    assert_eq!(
        read_locks_held(&db),
        vec![0],
        "HANDOFF holds READ0 and no read slot"
    );
    let first = db.wal_salts();
    // Everything was copied and backfilled: the first commit restarts the WAL (the one
    // restart HANDOFF allows); the frames after it are uncopied.
    insert(&mut app, 20);
    let second = db.wal_salts();
    assert_ne!(second, first);
    assert_eq!(db.wal_index().checkpoint.n_backfill, 0);
    let db_bytes = std::fs::read(&db.path).unwrap();
    let mut impatient = Session::open(&db.path, 50).unwrap();
    let (busy, log, done) = checkpoint(&mut app, "PASSIVE");
    assert_eq!((busy, done), (0, 0), "PASSIVE backfilled under READ0");
    for mode in ["FULL", "RESTART", "TRUNCATE"] {
        assert_eq!(checkpoint(&mut impatient, mode), (1, log, 0), "{mode}");
    }
    insert(&mut app, 1);
    assert_eq!(
        db.wal_salts(),
        second,
        "a second restart lost uncopied frames"
    );
    assert_eq!(
        std::fs::read(&db.path).unwrap(),
        db_bytes,
        "a backfill wrote the database"
    );

    let mut state = protected(handoff.poll().unwrap());
    let mut cursor = cursor;
    let copied = copy_all(&mut state, &mut cursor);
    assert_eq!(copied.first().map(|f| f.number), Some(1));
    assert_eq!(
        copied.len() as u64,
        u64::from(db.wal_index().header.mx_frame)
    );
    assert_eq!(copied.iter().filter(|f| f.commit.is_some()).count(), 21);
}

#[test]
fn a_restart_in_handoff_is_followed_across_the_generation_boundary() {
    let (db, mut app) = TestDb::wal(30);
    let (handoff, cursor) = hand_off(&db, &mut app);
    let salts = db.wal_salts();
    // Everything is copied and backfilled: the next writer restarts the WAL.
    insert(&mut app, 5);
    assert_ne!(db.wal_salts(), salts);
    let step = handoff.poll().unwrap();
    let mut state = protected(step);
    // Re-protected before READ0 was released: a read slot is held, READ0 is not.
    assert_eq!(read_locks_held(&db), vec![4]);
    let mut cursor = cursor;
    let copied = copy_all(&mut state, &mut cursor);
    assert_eq!(copied.first().map(|f| f.number), Some(1));
    assert_eq!(copied.iter().filter(|f| f.commit.is_some()).count(), 5);
    assert_eq!(cursor.position().unwrap().salts(), db.wal_salts());
    // The new generation's position is a normal one from now on.
    let token = cursor.position().unwrap();
    assert_eq!(state.resume(&token).unwrap(), cursor);
}

#[test]
fn an_unchanged_header_keeps_handoff_and_protect_forces_protection() {
    let (db, mut app) = TestDb::wal(5);
    let (handoff, _) = hand_off(&db, &mut app);
    let handoff = match handoff.poll().unwrap() {
        HandoffStep::Unchanged(h) => h,
        other => panic!("{other:?}"),
    };
    let _state = protected(handoff.protect().unwrap());
    assert_eq!(read_locks_held(&db), vec![4]);
}

#[test]
fn handoff_keeps_read0_until_a_read_slot_is_held() {
    let (db, mut app) = TestDb::wal(10);
    let (handoff, _) = hand_off(&db, &mut app);
    insert(&mut app, 1);
    // Every read slot locked exclusively by another process at the moment walcast polls
    // (checkpointers and claiming readers do this for an instant; held for long, SQLite's
    // own readers give up with SQLITE_PROTOCOL, so the application stays idle meanwhile).
    let mut blocker = PosixLocker::open(&db.shm_path()).unwrap();
    assert!(
        blocker
            .try_lock(LockKind::Exclusive, SHM_READ0 + 1, 4)
            .unwrap()
    );
    let handoff = match handoff.poll().unwrap() {
        HandoffStep::Busy(h) => h,
        other => panic!("expected to stay in HANDOFF, got {other:?}"),
    };
    let mut probe = PosixLocker::open(&db.shm_path()).unwrap();
    assert_eq!(
        probe.holder(LockKind::Exclusive, SHM_READ0, 1).unwrap(),
        Some(LockKind::Shared),
        "READ0 was released with no read slot held"
    );
    blocker.unlock(SHM_READ0 + 1, 4).unwrap();
    let _state = protected(handoff.poll().unwrap());
    assert_eq!(read_locks_held(&db), vec![4]);
}
