//! PROTECTED (reference §5 guarantees, §6): while walcast holds READ(c), no WAL restart
//! happens and committed frames stay intact; what the mark does to checkpoints.

use walcast_format::wal_index::READMARK_NOT_USED;
use walcast_lock::offsets::{SHM_READ0, SHM_WRITE};
use walcast_lock::{HandoffAttempt, MarkAdvance, ReadMarkPolicy, ReadSlot};
use walcast_testbed::locks::{LockKind, PosixLocker};
use walcast_testbed::sqlite::Session;

use crate::support::{TestDb, checkpoint, copy_all, insert, wait_until, wal_prefix};

#[test]
fn a_read_slot_blocks_every_restart_and_committed_frames_stay_intact() {
    let (db, mut app) = TestDb::wal(50);
    let mut state = db.protect();
    let mut cursor = state.generation_start();
    copy_all(&mut state, &mut cursor);
    let m = state.wal_index().header.mx_frame;
    let salts = db.wal_salts();
    let before = wal_prefix(&db, m);

    app.exec("PRAGMA wal_autocheckpoint=10").unwrap();
    app.exec("PRAGMA journal_size_limit=0").unwrap();
    insert(&mut app, 100);
    let mut other = Session::open(&db.path, 0).unwrap();
    for mode in ["PASSIVE", "FULL", "RESTART", "TRUNCATE"] {
        let (_busy, log, _) = checkpoint(&mut other, mode);
        assert!(log > i64::from(m), "{mode} restarted the WAL");
        insert(&mut app, 5);
    }
    assert_eq!(db.wal_salts(), salts);
    assert_eq!(wal_prefix(&db, m), before, "frames 1..={m} changed");
    let copied = copy_all(&mut state, &mut cursor);
    assert_eq!(copied.iter().filter(|f| f.commit.is_some()).count(), 120);

    // Control: once walcast is gone, the next write after a full checkpoint restarts.
    drop(state);
    checkpoint(&mut other, "PASSIVE");
    insert(&mut app, 1);
    assert_ne!(db.wal_salts(), salts);
}

#[test]
fn the_claim_takes_read4_first_and_marks_it_uncapped() {
    let (db, _app) = TestDb::wal(5);
    let state = db.protect();
    assert_eq!(state.read_slot(), ReadSlot::new(4).unwrap());
    assert_eq!(state.read_mark(), READMARK_NOT_USED);
    assert_eq!(db.wal_index().checkpoint.read_marks[4], READMARK_NOT_USED);
    let mut probe = PosixLocker::open(&db.shm_path()).unwrap();
    assert_eq!(
        probe.holder(LockKind::Exclusive, SHM_READ0 + 4, 1).unwrap(),
        Some(LockKind::Shared)
    );
    assert!(probe.try_lock(LockKind::Shared, SHM_READ0 + 4, 1).unwrap());
    assert_eq!(
        probe.holder(LockKind::Exclusive, SHM_WRITE, 3).unwrap(),
        None,
        "took WRITE, CKPT or RECOVER"
    );
}

#[test]
fn an_mxframe_mark_caps_backfill_until_raised_and_a_lagging_one_fails_full_checkpoints() {
    let (db, mut app) = TestDb::wal(20);
    let mut state = db.protect_with(ReadMarkPolicy::MxFrame);
    let m = state.read_mark();
    assert_eq!(m, state.wal_index().header.mx_frame);
    insert(&mut app, 20);
    let (_, log, done) = checkpoint(&mut app, "PASSIVE");
    assert!(log > i64::from(m));
    assert_eq!(done, i64::from(m), "PASSIVE backfilled past walcast's mark");
    let mut impatient = Session::open(&db.path, 50).unwrap();
    let (busy, _, done) = checkpoint(&mut impatient, "FULL");
    assert_eq!(
        (busy, done),
        (1, i64::from(m)),
        "FULL must stop at the lagging mark"
    );

    state.refresh().unwrap();
    assert_eq!(
        state.advance_mark().unwrap(),
        MarkAdvance::Advanced { to: log as u32 }
    );
    assert_eq!(checkpoint(&mut app, "PASSIVE"), (0, log, log));
}

#[test]
fn an_uncapped_mark_lets_checkpoints_finish_and_truncate_completes_after_handoff() {
    let (db, mut app) = TestDb::wal(20);
    let mut state = db.protect();
    let mut cursor = state.generation_start();
    insert(&mut app, 20);
    let mx = db.wal_index().header.mx_frame as i64;
    assert_eq!(checkpoint(&mut app, "PASSIVE"), (0, mx, mx));
    let mut impatient = Session::open(&db.path, 0).unwrap();
    assert_eq!(checkpoint(&mut impatient, "FULL"), (0, mx, mx));

    // TRUNCATE backfills, then waits (holding WRITE) for READ1..4, i.e. for walcast.
    let truncate = {
        let path = db.path.clone();
        std::thread::spawn(move || {
            let mut patient = Session::open(&path, 30_000).unwrap();
            checkpoint(&mut patient, "TRUNCATE")
        })
    };
    let mut probe = PosixLocker::open(&db.shm_path()).unwrap();
    wait_until("TRUNCATE holds WRITE", || {
        probe.holder(LockKind::Exclusive, SHM_WRITE, 1).unwrap() == Some(LockKind::Exclusive)
    });
    assert!(!truncate.is_finished());
    copy_all(&mut state, &mut cursor);
    let handoff = match state.try_handoff(&cursor).unwrap() {
        HandoffAttempt::Handoff(h) => h,
        HandoffAttempt::Stayed(_, why) => panic!("stayed: {why:?}"),
    };
    assert_eq!(truncate.join().unwrap(), (0, 0, 0));
    assert_eq!(std::fs::metadata(db.wal_path()).unwrap().len(), 0);
    drop(handoff);
}

#[test]
fn with_every_slot_locked_walcast_shares_one_then_moves_to_a_freed_slot() {
    let (db, mut app) = TestDb::wal(10);
    // Give every slot a mark: readers of a checkpointed WAL leave READ1 at mxFrame.
    checkpoint(&mut app, "PASSIVE");
    let mut readers = PosixLocker::open(&db.shm_path()).unwrap();
    for slot in 1..=4 {
        assert!(
            readers
                .try_lock(LockKind::Shared, SHM_READ0 + slot, 1)
                .unwrap()
        );
    }
    let marks = db.wal_index().checkpoint.read_marks;
    let mx = db.wal_index().header.mx_frame;
    let mut state = db.protect();
    let shared = state.read_slot();
    assert!(state.read_mark() <= mx);
    assert_eq!(state.read_mark(), marks[shared.index()]);
    let best = (1..=4)
        .map(|i| marks[i])
        .filter(|&m| m <= mx)
        .max()
        .unwrap();
    assert_eq!(
        state.read_mark(),
        best,
        "did not share the largest usable mark"
    );

    // The SQLite reader keeps the shared slot, another slot frees up: walcast moves.
    let freed = ReadSlot::CLAIM_ORDER
        .into_iter()
        .find(|s| *s != shared)
        .unwrap();
    readers.unlock(freed.lock_byte(), 1).unwrap();
    state.refresh().unwrap();
    assert_eq!(
        state.advance_mark().unwrap(),
        MarkAdvance::Moved {
            from: shared,
            to: freed,
            mark: READMARK_NOT_USED
        }
    );
    assert_eq!(state.read_slot(), freed);
    // The old slot is released, the new one held.
    let mut probe = PosixLocker::open(&db.shm_path()).unwrap();
    assert!(
        probe
            .try_lock(LockKind::Exclusive, freed.lock_byte(), 1)
            .is_ok_and(|got| !got)
    );
    readers.unlock(shared.lock_byte(), 1).unwrap();
    assert!(
        probe
            .try_lock(LockKind::Exclusive, shared.lock_byte(), 1)
            .unwrap()
    );
}
