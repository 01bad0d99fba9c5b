//! Traditional POSIX byte-range locks (`F_SETLK`, process-associated), held by a separate
//! Python process exactly as SQLite's unix VFS takes them: the other side walcast's OFD
//! locks must coexist with. Used to probe which locks walcast holds and to test lock
//! semantics (conversions in place, failed upgrades) from another process.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout};

use anyhow::Context;
use serde_json::{Value, json};

use crate::sqlite::{driver, read_json_line, spawn_interactive};

/// A shared (read) or exclusive (write) lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// `F_RDLCK`.
    Shared,
    /// `F_WRLCK`.
    Exclusive,
}

impl LockKind {
    fn code(self) -> &'static str {
        match self {
            Self::Shared => "r",
            Self::Exclusive => "w",
        }
    }
}

/// What a [`PosixLocker::spin`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct SpinReport {
    /// Lock attempts made.
    pub attempts: u64,
    /// Attempts that got the lock (each released at once).
    pub acquired: u64,
}

/// One process holding one descriptor of a file, taking POSIX locks on request.
/// Dropping it ends the process, which releases its locks.
pub struct PosixLocker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    path: PathBuf,
}

impl PosixLocker {
    /// Opens `path` read-write in a new process.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let mut cmd = driver();
        cmd.arg("lock").arg(path);
        let (child, stdin, stdout) = spawn_interactive(cmd)?;
        let mut locker = Self {
            child,
            stdin,
            stdout,
            path: path.to_owned(),
        };
        locker.reply()?;
        Ok(locker)
    }

    /// Process id of the locking process.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    fn reply(&mut self) -> anyhow::Result<Value> {
        read_json_line(&mut self.stdout, &self.path, "lock")
    }

    fn send(&mut self, request: Value) -> anyhow::Result<()> {
        let pipe = self.stdin.as_mut().context("lock process closed")?;
        writeln!(pipe, "{request}")?;
        pipe.flush()?;
        Ok(())
    }

    fn call(&mut self, request: Value) -> anyhow::Result<Value> {
        self.send(request)?;
        self.reply()
    }

    /// Tries to take (or convert to) a lock on `len` bytes at `start`, never waiting.
    pub fn try_lock(&mut self, kind: LockKind, start: u64, len: u64) -> anyhow::Result<bool> {
        let reply =
            self.call(json!({"op": "lock", "kind": kind.code(), "start": start, "len": len}))?;
        reply["ok"].as_bool().context("lock reply without ok")
    }

    /// Releases this process's locks on the range.
    pub fn unlock(&mut self, start: u64, len: u64) -> anyhow::Result<()> {
        self.call(json!({"op": "unlock", "start": start, "len": len}))
            .map(drop)
    }

    /// `F_GETLK`: the kind of another process's (or OFD's) lock that conflicts with a
    /// `kind` lock on the range, if any.
    pub fn holder(
        &mut self,
        kind: LockKind,
        start: u64,
        len: u64,
    ) -> anyhow::Result<Option<LockKind>> {
        let reply =
            self.call(json!({"op": "test", "kind": kind.code(), "start": start, "len": len}))?;
        Ok(match reply["held"].as_str() {
            Some("r") => Some(LockKind::Shared),
            Some("w") => Some(LockKind::Exclusive),
            _ => None,
        })
    }

    /// Starts trying the lock in a tight loop (releasing it whenever it gets it) until
    /// [`PosixLocker::stop_spin`]. Returns once the loop is running.
    pub fn spin(&mut self, kind: LockKind, start: u64, len: u64) -> anyhow::Result<()> {
        self.call(json!({"op": "spin", "kind": kind.code(), "start": start, "len": len}))
            .map(drop)
    }

    /// Stops the loop started by [`PosixLocker::spin`] and reports what it saw.
    pub fn stop_spin(&mut self) -> anyhow::Result<SpinReport> {
        self.send(json!({"op": "stop"}))?;
        Ok(serde_json::from_value(self.reply()?)?)
    }
}

impl Drop for PosixLocker {
    fn drop(&mut self) {
        if let Some(mut pipe) = self.stdin.take() {
            let _ = writeln!(pipe, "{}", json!({"op": "close"}));
        }
        if self.child.wait().is_err() {
            let _ = self.child.kill();
        }
    }
}
