//! Every committed transaction reaches the replica while several applications write,
//! checkpoint in every mode, reopen connections and truncate the WAL, and while walcast
//! itself is killed at random moments.

use std::time::Duration;

use walcast_testbed::sqlite::{Workload, WorkloadSummary};

use crate::support::{Walcast, assert_restores_exactly, open_app};

/// Small autocheckpoints, explicit checkpoints of every mode, reopened connections and a
/// journal size limit: every path by which SQLite restarts or truncates the WAL.
fn busy_workload(seed: u64, seconds: f64) -> Workload {
    Workload {
        seed,
        transactions: 0,
        seconds,
        autocheckpoint: 20,
        journal_size_limit: 64 * 1024,
        checkpoint_every: 15,
        reopen_every: 40,
        ..Workload::default()
    }
}

fn wait_all(writers: Vec<walcast_testbed::sqlite::WriterProcess>) -> Vec<WorkloadSummary> {
    writers.into_iter().map(|w| w.wait().unwrap()).collect()
}

#[test]
fn concurrent_writers_and_checkpoints_restore_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (db, replica) = (dir.path().join("app.db"), dir.path().join("replica"));
    // The application has the database open in WAL mode before walcast starts.
    let app = open_app(&db).unwrap();
    let mut walcast = Walcast::start(&db, &replica, &dir.path().join("walcast.log"), &[]).unwrap();
    walcast.wait_replicating().unwrap();

    let writers = (1..=3)
        .map(|seed| busy_workload(seed, 6.0).spawn(&db).unwrap())
        .collect();
    let summaries = wait_all(writers);
    let log = walcast.log();
    walcast.stop().unwrap();
    app.close().unwrap();

    let commits: u64 = summaries.iter().map(|s| s.commits).sum();
    let checkpoints: u64 = summaries.iter().flat_map(|s| s.checkpoints.values()).sum();
    assert!(commits > 100 && checkpoints > 5, "{summaries:?}");
    assert_restores_exactly(&db, &replica, &dir.path().join("restored.db"))
        .unwrap_or_else(|e| panic!("{e:#}\nwalcast log:\n{log}"));
}

#[test]
fn kill_9_at_random_moments_then_restore_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (db, replica) = (dir.path().join("app.db"), dir.path().join("replica"));
    let log = dir.path().join("walcast.log");
    let app = open_app(&db).unwrap();
    let writers: Vec<_> = (1..=2)
        .map(|seed| busy_workload(seed, 10.0).spawn(&db).unwrap())
        .collect();

    // A fixed seed keeps the kill moments reproducible from run to run.
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for _ in 0..22 {
        let mut walcast = Walcast::start(&db, &replica, &log, &[]).unwrap();
        walcast.wait_replicating().unwrap();
        // The fault being injected: SIGKILL after a random amount of work.
        std::thread::sleep(Duration::from_millis(rng.u64(0..300)));
        walcast.kill9().unwrap();
    }
    let walcast = Walcast::start(&db, &replica, &log, &[]).unwrap();
    wait_all(writers);
    let text = walcast.log();
    walcast.stop().unwrap();
    app.close().unwrap();

    let resumed = text
        .matches("resuming from the recorded WAL position")
        .count();
    let snapshots = text.matches("taking a snapshot").count();
    assert!(
        resumed > 0 && snapshots > 0,
        "resumed {resumed}, snapshots {snapshots}"
    );
    assert_restores_exactly(&db, &replica, &dir.path().join("restored.db"))
        .unwrap_or_else(|e| panic!("{e:#}\nwalcast log:\n{text}"));
}

#[test]
fn a_writer_with_busy_timeout_0_never_sees_sqlite_busy() {
    let dir = tempfile::tempdir().unwrap();
    let (db, replica) = (dir.path().join("app.db"), dir.path().join("replica"));
    let app = open_app(&db).unwrap();
    let mut walcast = Walcast::start(&db, &replica, &dir.path().join("walcast.log"), &[]).unwrap();
    walcast.wait_replicating().unwrap();
    let summary = Workload {
        seconds: 5.0,
        transactions: 0,
        busy_timeout_ms: 0,
        fail_on_busy: true,
        autocheckpoint: 10,
        ..Workload::default()
    }
    .run(&db)
    .unwrap();
    walcast.stop().unwrap();
    app.close().unwrap();
    assert_eq!(summary.busy, 0, "{summary:?}");
    assert!(summary.commits > 100, "{summary:?}");
    assert_restores_exactly(&db, &replica, &dir.path().join("restored.db")).unwrap();
}
