//! walcast's locks in their own process (`walcast-lock-holder`), SQLite writers in others:
//! no committed frame is missed through checkpoints of every mode, restarts, reopens and
//! `journal_size_limit`; a writer with `busy_timeout=0` never sees SQLITE_BUSY; kill -9
//! of walcast releases everything.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::Value;
use walcast_testbed::sqlite::{CheckpointMode, Session, Workload, integrity_check};

use crate::support::{TestDb, checkpoint, field};

/// A running `walcast-lock-holder`.
struct Holder {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Holder {
    /// Starts it and waits until it is attached, PROTECTED and caught up.
    fn start(db: &Path, image: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_walcast-lock-holder"))
            .arg(db)
            .arg("--image")
            .arg(image)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut holder = Self {
            child,
            stdin,
            stdout,
        };
        let ready = holder.line();
        assert_eq!(ready["event"], "ready", "{ready}");
        holder
    }

    fn line(&mut self) -> Value {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    }

    fn send(&mut self, command: &str) -> Value {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        let reply = self.line();
        assert_ne!(reply["event"], "error", "{reply}");
        reply
    }

    fn status(&mut self) -> Value {
        self.send("status")
    }

    /// Final copy, image written; returns the done line.
    fn stop(mut self) -> Value {
        let done = self.send("stop");
        assert!(self.child.wait().unwrap().success());
        done
    }

    fn kill_9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

/// Waits until the holder has cycled through HANDOFF at least `n` times.
fn wait_for_handoffs(holder: &mut Holder, n: u64) -> Value {
    let mut status = holder.status();
    crate::support::wait_until("the holder hands off", || {
        status = holder.status();
        field(&status, "handoffs") >= n
    });
    status
}

/// After everything stopped: the image the holder built equals the database.
fn assert_image_equals_database(db: &TestDb, image: &Path) {
    let mut app = Session::open(&db.path, 5000).unwrap();
    assert_eq!(checkpoint(&mut app, "TRUNCATE"), (0, 0, 0));
    let source = std::fs::read(&db.path).unwrap();
    let copy = std::fs::read(image).unwrap();
    assert_eq!(copy.len(), source.len(), "image and database sizes differ");
    assert!(
        copy == source,
        "the holder's image differs from the database"
    );
    assert_eq!(integrity_check(&db.path).unwrap(), "ok");
}

#[test]
fn every_committed_frame_reaches_walcast_through_checkpoints_restarts_and_reopens() {
    let (db, _app) = TestDb::wal(10);
    let image = db.path.with_extension("image");
    let mut holder = Holder::start(&db.path, &image);
    let busy_app = Workload {
        seed: 11,
        transactions: 0,
        seconds: 2.0,
        autocheckpoint: 20,
        checkpoint_every: 15,
        reopen_every: 40,
        journal_size_limit: 32 * 1024,
        ..Workload::default()
    };
    let second = Workload {
        seed: 12,
        seconds: 2.0,
        transactions: 0,
        autocheckpoint: 50,
        checkpoint_modes: vec![CheckpointMode::Passive, CheckpointMode::Truncate],
        checkpoint_every: 25,
        ..Workload::default()
    };
    let running = [
        busy_app.spawn(&db.path).unwrap(),
        second.spawn(&db.path).unwrap(),
    ];
    let summaries: Vec<_> = running.into_iter().map(|w| w.wait().unwrap()).collect();
    let status = holder.status();
    let done = holder.stop();
    let commits: u64 = summaries.iter().map(|s| s.commits).sum();
    assert!(commits > 100, "{summaries:?}");
    assert!(field(&status, "handoffs") > 0, "never handed off: {status}");
    assert!(
        field(&done, "generations") > 0,
        "the WAL never restarted: {done}"
    );
    assert_image_equals_database(&db, &image);
}

#[test]
fn a_writer_with_no_busy_timeout_never_sees_busy_while_walcast_cycles() {
    let (db, _app) = TestDb::wal(10);
    let image = db.path.with_extension("image");
    let mut holder = Holder::start(&db.path, &image);
    let writer = Workload {
        seed: 21,
        transactions: 0,
        seconds: 2.0,
        busy_timeout_ms: 0,
        fail_on_busy: true,
        autocheckpoint: 30,
        reopen_every: 50,
        ..Workload::default()
    };
    let summary = writer.run(&db.path).expect("the writer saw SQLITE_BUSY");
    assert_eq!(summary.busy, 0);
    let status = holder.status();
    assert!(
        field(&status, "handoffs") >= 3,
        "walcast barely cycled: {status}"
    );
    assert!(
        field(&status, "protections") >= 3,
        "walcast barely cycled: {status}"
    );
    holder.stop();
}

#[test]
fn kill_9_of_walcast_releases_every_lock_and_sqlite_carries_on() {
    let (db, app) = TestDb::wal(10);
    let image = db.path.with_extension("image");
    let writer = Workload {
        seed: 31,
        transactions: 0,
        seconds: 4.0,
        autocheckpoint: 20,
        checkpoint_every: 30,
        progress_every: 10,
        ..Workload::default()
    };
    let mut running = writer.spawn(&db.path).unwrap();
    for round in 1..=4 {
        let mut holder = Holder::start(&db.path, &image);
        wait_for_handoffs(&mut holder, round % 3 + 1);
        holder.kill_9();
        // SQLite carries on: the writer keeps committing.
        let before = running.next_progress().unwrap().unwrap();
        let after = running.next_progress().unwrap().unwrap();
        assert!(after > before);
    }
    // A last walcast attaches under load and is stopped normally.
    let mut holder = Holder::start(&db.path, &image);
    wait_for_handoffs(&mut holder, 1);
    let summary = running.wait().unwrap();
    assert!(summary.commits > 0);
    holder.stop();
    assert_image_equals_database(&db, &image);

    // Nothing is left locked: TRUNCATE needs READ1..4 exclusively, and the last close
    // deletes the WAL and wal-index only with an EXCLUSIVE lock on the database.
    let mut last = Session::open(&db.path, 0).unwrap();
    assert_eq!(checkpoint(&mut last, "TRUNCATE"), (0, 0, 0));
    last.close().unwrap();
    app.close().unwrap();
    assert!(
        !db.wal_path().exists(),
        "a lock of a killed walcast survived"
    );
    assert!(!db.shm_path().exists());
}
