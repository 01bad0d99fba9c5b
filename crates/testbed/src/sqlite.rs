//! Real SQLite, run in a separate process (Python's `sqlite3` module) so that its POSIX
//! locks and walcast's never share a process (reference: sqlite-wal-and-locks.md §7).
//!
//! Every call starts `python3 py/sqlite_driver.py`, which prints one JSON document.
//! Errors carry the command, the database path and SQLite's message.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use anyhow::{Context, bail};
use serde_json::Value;

/// Path of the driver script.
pub fn driver_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("py/sqlite_driver.py")
}

pub(crate) fn driver() -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(driver_script());
    cmd
}

fn run(mut cmd: Command, stdin: Option<&str>) -> anyhow::Result<Value> {
    let described = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {described}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{described} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).with_context(|| {
        format!(
            "{described}: unreadable output {:?}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Starts a driver command that talks JSON lines on stdin/stdout (stderr inherited).
pub(crate) fn spawn_interactive(
    mut cmd: Command,
) -> anyhow::Result<(Child, Option<ChildStdin>, BufReader<ChildStdout>)> {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    let stdin = child.stdin.take();
    let stdout = BufReader::new(child.stdout.take().context("driver stdout")?);
    Ok((child, stdin, stdout))
}

/// Reads one JSON line a driver process printed; names `what` and `path` if it exited.
pub(crate) fn read_json_line(
    stdout: &mut BufReader<ChildStdout>,
    path: &Path,
    what: &str,
) -> anyhow::Result<Value> {
    let mut line = String::new();
    if stdout.read_line(&mut line)? == 0 {
        bail!("{}: {what} process exited", path.display());
    }
    serde_json::from_str(&line)
        .with_context(|| format!("{}: {what} printed {line:?}", path.display()))
}

/// Runs a SQL script (several statements) in autocommit mode.
pub fn exec(db: &Path, sql: &str) -> anyhow::Result<()> {
    let mut cmd = driver();
    cmd.arg("exec").arg(db);
    run(cmd, Some(sql)).map(drop)
}

/// Runs one query and returns its rows; blobs come back as lowercase hex strings.
pub fn query(db: &Path, sql: &str) -> anyhow::Result<Vec<Vec<Value>>> {
    let mut cmd = driver();
    cmd.arg("query").arg(db).arg(sql);
    Ok(serde_json::from_value(run(cmd, None)?)?)
}

/// `PRAGMA integrity_check`: `"ok"` for a sound database.
pub fn integrity_check(db: &Path) -> anyhow::Result<String> {
    let mut cmd = driver();
    cmd.arg("integrity").arg(db);
    Ok(serde_json::from_value(run(cmd, None)?)?)
}

/// A canonical text dump (schema and every row), for comparing database contents.
pub fn dump(db: &Path) -> anyhow::Result<String> {
    let mut cmd = driver();
    cmd.arg("dump").arg(db);
    Ok(serde_json::from_value(run(cmd, None)?)?)
}

/// A WAL checkpoint mode, as `PRAGMA wal_checkpoint(MODE)` takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointMode {
    /// Copy what it can without waiting.
    Passive,
    /// Wait for the writer, copy everything.
    Full,
    /// Full, then wait for readers so the next writer restarts the WAL.
    Restart,
    /// Restart, then truncate the WAL to zero bytes.
    Truncate,
}

impl CheckpointMode {
    fn sql_name(self) -> &'static str {
        match self {
            Self::Passive => "PASSIVE",
            Self::Full => "FULL",
            Self::Restart => "RESTART",
            Self::Truncate => "TRUNCATE",
        }
    }
}

/// The three numbers `PRAGMA wal_checkpoint` returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct CheckpointResult {
    /// 1 if the checkpoint could not finish because of a lock (SQLITE_BUSY).
    pub busy: i64,
    /// Frames in the WAL, or -1.
    pub log: i64,
    /// Frames backfilled into the database, or -1.
    pub checkpointed: i64,
}

/// Runs `PRAGMA wal_checkpoint(mode)` from a new connection in a separate process.
pub fn checkpoint(db: &Path, mode: CheckpointMode) -> anyhow::Result<CheckpointResult> {
    let mut cmd = driver();
    cmd.arg("checkpoint").arg(db).arg(mode.sql_name());
    let [busy, log, checkpointed]: [i64; 3] = serde_json::from_value(run(cmd, None)?)?;
    Ok(CheckpointResult {
        busy,
        log,
        checkpointed,
    })
}

/// Copies `src` into `dst` with SQLite's online backup API (a consistent snapshot).
pub fn backup(src: &Path, dst: &Path) -> anyhow::Result<()> {
    let mut cmd = driver();
    cmd.arg("backup").arg(src).arg(dst);
    run(cmd, None).map(drop)
}

/// The journal mode a workload sets when it opens the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JournalMode {
    /// Write-ahead log (what walcast replicates).
    Wal,
    /// Rollback journal (what walcast refuses).
    Delete,
}

impl JournalMode {
    fn sql_name(self) -> &'static str {
        match self {
            Self::Wal => "WAL",
            Self::Delete => "DELETE",
        }
    }
}

/// Options of the random write workload (`sqlite_driver.py write --help`).
#[derive(Clone, Debug)]
pub struct Workload {
    /// Seed of the random operations; the same seed gives the same statements.
    pub seed: u64,
    /// Stop after this many commits (0: no limit).
    pub transactions: u64,
    /// Stop after this many seconds (0: no limit).
    pub seconds: f64,
    /// Statements per transaction.
    pub ops_per_tx: u32,
    /// Page size set before the first write (0: SQLite's default).
    pub page_size: u32,
    /// `PRAGMA wal_autocheckpoint` (0 disables).
    pub autocheckpoint: u32,
    /// `PRAGMA journal_size_limit` (-1 disables).
    pub journal_size_limit: i64,
    /// `PRAGMA busy_timeout` in milliseconds.
    pub busy_timeout_ms: u32,
    /// Fail the process on the first SQLITE_BUSY.
    pub fail_on_busy: bool,
    /// Run an explicit checkpoint every N commits (0: never) with a mode drawn from `checkpoint_modes`.
    pub checkpoint_every: u64,
    /// Modes drawn for explicit checkpoints.
    pub checkpoint_modes: Vec<CheckpointMode>,
    /// Close and reopen the connection every N commits (0: never).
    pub reopen_every: u64,
    /// Print a progress line every N commits (0: never).
    pub progress_every: u64,
    /// Journal mode set when the connection opens.
    pub journal_mode: JournalMode,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            seed: 1,
            transactions: 100,
            seconds: 0.0,
            ops_per_tx: 3,
            page_size: 0,
            autocheckpoint: 1000,
            journal_size_limit: -1,
            busy_timeout_ms: 5000,
            fail_on_busy: false,
            checkpoint_every: 0,
            checkpoint_modes: vec![
                CheckpointMode::Passive,
                CheckpointMode::Full,
                CheckpointMode::Restart,
                CheckpointMode::Truncate,
            ],
            reopen_every: 0,
            progress_every: 0,
            journal_mode: JournalMode::Wal,
        }
    }
}

/// What a finished workload reports.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct WorkloadSummary {
    /// Transactions committed.
    pub commits: u64,
    /// SQLITE_BUSY errors seen (statements and checkpoints).
    pub busy: u64,
    /// Explicit checkpoints run, by mode name.
    pub checkpoints: std::collections::BTreeMap<String, u64>,
}

impl Workload {
    fn command(&self, db: &Path) -> Command {
        let mut cmd = driver();
        cmd.arg("write").arg(db);
        let modes: Vec<&str> = self.checkpoint_modes.iter().map(|m| m.sql_name()).collect();
        let args = [
            ("--seed", self.seed.to_string()),
            ("--transactions", self.transactions.to_string()),
            ("--seconds", self.seconds.to_string()),
            ("--ops-per-tx", self.ops_per_tx.to_string()),
            ("--page-size", self.page_size.to_string()),
            ("--autocheckpoint", self.autocheckpoint.to_string()),
            ("--journal-size-limit", self.journal_size_limit.to_string()),
            ("--busy-timeout", self.busy_timeout_ms.to_string()),
            ("--checkpoint-every", self.checkpoint_every.to_string()),
            ("--checkpoint-modes", modes.join(",")),
            ("--reopen-every", self.reopen_every.to_string()),
            ("--progress-every", self.progress_every.to_string()),
            ("--journal-mode", self.journal_mode.sql_name().to_string()),
        ];
        for (flag, value) in args {
            cmd.arg(flag).arg(value);
        }
        if self.fail_on_busy {
            cmd.arg("--fail-on-busy");
        }
        cmd
    }

    /// Runs the workload to completion in a separate process.
    pub fn run(&self, db: &Path) -> anyhow::Result<WorkloadSummary> {
        self.spawn(db)?.wait()
    }

    /// Starts the workload in a separate process and returns at once.
    pub fn spawn(&self, db: &Path) -> anyhow::Result<WriterProcess> {
        let mut cmd = self.command(db);
        let described = format!("{cmd:?}");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {described}"))?;
        let stdout = BufReader::new(child.stdout.take().context("writer stdout")?);
        Ok(WriterProcess {
            child,
            stdout,
            described,
        })
    }
}

/// A running workload process. Dropping it kills the process.
pub struct WriterProcess {
    child: Child,
    stdout: BufReader<ChildStdout>,
    described: String,
}

impl WriterProcess {
    /// Process id of the writer.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// True while the writer process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Blocks until the writer prints its next progress line; returns its commit count,
    /// or `None` once the writer has finished.
    pub fn next_progress(&mut self) -> anyhow::Result<Option<u64>> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let v: Value = serde_json::from_str(&line)
            .with_context(|| format!("{}: bad line {line:?}", self.described))?;
        if v.get("done").is_some() {
            return Ok(None);
        }
        Ok(v.get("commits").and_then(Value::as_u64))
    }

    /// Waits for the writer to finish and returns its summary.
    pub fn wait(mut self) -> anyhow::Result<WorkloadSummary> {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.stdout, &mut rest)?;
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            std::io::Read::read_to_string(&mut e, &mut stderr)?;
        }
        let status = self.child.wait()?;
        if !status.success() {
            bail!("{} failed ({status}): {}", self.described, stderr.trim());
        }
        let last = rest
            .lines()
            .rev()
            .find(|l| l.contains("\"done\""))
            .with_context(|| format!("{}: finished without a summary line", self.described))?;
        Ok(serde_json::from_str(last)?)
    }
}

impl Drop for WriterProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_commits_and_sqlite_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.db");
        let summary = Workload {
            transactions: 50,
            checkpoint_every: 10,
            ..Workload::default()
        }
        .run(&db)
        .unwrap();
        assert_eq!(summary.commits, 50);
        assert_eq!(integrity_check(&db).unwrap(), "ok");
        let rows = query(&db, "SELECT count(*) > 0 FROM t").unwrap();
        assert_eq!(rows, vec![vec![Value::from(1)]]);
    }

    #[test]
    fn sqlite_errors_name_the_command_and_message() {
        let dir = tempfile::tempdir().unwrap();
        let err = query(&dir.path().join("x.db"), "SELECT * FROM missing").unwrap_err();
        assert!(
            format!("{err:#}").contains("no such table: missing"),
            "{err:#}"
        );
    }
}

/// One SQLite connection held open in a separate process, driven statement by statement.
///
/// Use it to put SQLite in a precise state while walcast runs: a reader inside a read
/// transaction, a checkpoint at a chosen moment, a connection closed at the end.
/// Dropping the session closes the connection (SQLite's last-close rules apply).
pub struct Session {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: BufReader<ChildStdout>,
    db: PathBuf,
}

/// SQLite's answer to one statement of a [`Session`].
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// The statement succeeded with these rows (blobs as lowercase hex).
    Rows(Vec<Vec<Value>>),
    /// SQLite returned an error; `code` is its extended name, e.g. `SQLITE_BUSY`.
    Error {
        /// SQLite's message.
        message: String,
        /// Extended result code name, when Python reports it.
        code: Option<String>,
    },
}

impl Session {
    /// Opens a connection to `db` with `busy_timeout_ms` (0: fail at once on a lock).
    pub fn open(db: &Path, busy_timeout_ms: u32) -> anyhow::Result<Self> {
        let mut cmd = driver();
        cmd.arg("session")
            .arg(db)
            .arg("--busy-timeout")
            .arg(busy_timeout_ms.to_string());
        let (child, stdin, stdout) = spawn_interactive(cmd)?;
        let mut session = Self {
            child,
            stdin,
            stdout,
            db: db.to_owned(),
        };
        let ready = session.read_reply()?;
        if ready.get("ready").is_none() {
            bail!("{}: session did not start: {ready}", db.display());
        }
        Ok(session)
    }

    /// Opens a connection that puts `db` in WAL mode with `page_size` (0: SQLite's default)
    /// and autocheckpoint off, so every committed frame stays in the WAL while it is open.
    pub fn open_wal_without_checkpoints(db: &Path, page_size: u32) -> anyhow::Result<Self> {
        let mut session = Self::open(db, 1000)?;
        if page_size != 0 {
            session.exec(&format!("PRAGMA page_size={page_size}"))?;
        }
        let mode = session.exec("PRAGMA journal_mode=WAL")?;
        if mode.first().and_then(|row| row.first()) != Some(&Value::from("wal")) {
            bail!("{}: journal_mode is {mode:?}, expected wal", db.display());
        }
        session.exec("PRAGMA wal_autocheckpoint=0")?;
        Ok(session)
    }

    /// Process id of the SQLite process.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    fn read_reply(&mut self) -> anyhow::Result<Value> {
        read_json_line(&mut self.stdout, &self.db, "SQLite session")
    }

    /// Runs one statement and returns SQLite's answer, success or error.
    pub fn try_exec(&mut self, sql: &str) -> anyhow::Result<Answer> {
        let request = serde_json::json!({ "sql": sql });
        let pipe = self.stdin.as_mut().context("session already closed")?;
        writeln!(pipe, "{request}")?;
        pipe.flush()?;
        let reply = self.read_reply()?;
        if let Some(message) = reply.get("error").and_then(Value::as_str) {
            let code = reply.get("code").and_then(Value::as_str).map(str::to_owned);
            return Ok(Answer::Error {
                message: message.to_owned(),
                code,
            });
        }
        Ok(Answer::Rows(serde_json::from_value(reply["rows"].clone())?))
    }

    /// Runs one statement that must succeed and returns its rows.
    pub fn exec(&mut self, sql: &str) -> anyhow::Result<Vec<Vec<Value>>> {
        match self.try_exec(sql)? {
            Answer::Rows(rows) => Ok(rows),
            Answer::Error { message, .. } => bail!("{}: {sql}: {message}", self.db.display()),
        }
    }

    /// Runs statements one by one, each of which must succeed (setting up a database).
    pub fn exec_all(&mut self, statements: &[&str]) -> anyhow::Result<()> {
        for sql in statements {
            self.exec(sql)?;
        }
        Ok(())
    }

    /// Closes the connection and waits for the process to end.
    pub fn close(mut self) -> anyhow::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> anyhow::Result<()> {
        if let Some(mut pipe) = self.stdin.take() {
            writeln!(pipe, "{}", serde_json::json!({ "close": true }))?;
            drop(pipe);
            let status = self.child.wait()?;
            if !status.success() {
                bail!("{}: session process failed ({status})", self.db.display());
            }
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.shutdown().is_err() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod session_tests {
    use super::*;

    #[test]
    fn a_held_write_lock_makes_another_process_busy() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let mut a = Session::open(&db, 0).unwrap();
        a.exec("PRAGMA journal_mode=WAL").unwrap();
        a.exec("CREATE TABLE x(v)").unwrap();
        a.exec("BEGIN IMMEDIATE").unwrap();
        let mut b = Session::open(&db, 0).unwrap();
        let answer = b.try_exec("INSERT INTO x VALUES (1)").unwrap();
        assert!(
            matches!(&answer, Answer::Error { message, .. } if message.contains("locked")),
            "{answer:?}"
        );
        a.exec("COMMIT").unwrap();
        b.exec("INSERT INTO x VALUES (1)").unwrap();
        assert_eq!(
            b.exec("SELECT count(*) FROM x").unwrap(),
            vec![vec![Value::from(1)]]
        );
        a.close().unwrap();
    }
}
