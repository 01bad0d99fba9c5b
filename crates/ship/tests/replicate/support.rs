//! Running `walcast replicate` as a user does (its own process, stopped by a signal or
//! killed), and checking a replica with an independent restorer: the real Litestream
//! 0.5.17 (`scripts/testdeps` installs it; walcast-restore is tested on its own).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use walcast_testbed::litestream::Litestream;
use walcast_testbed::sqlite::{self, CheckpointMode, Session};
use walcast_testbed::wait;

/// Longest a stopped walcast may take for its final sync and upload.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// The application: a connection that holds `db` open in WAL mode (with its `-wal` and
/// `-shm`, which SQLite creates at the first read after switching), as a running app does.
pub fn open_app(db: &Path) -> anyhow::Result<Session> {
    let mut app = Session::open(db, 5000)?;
    app.exec_all(&[
        "PRAGMA journal_mode=WAL",
        "SELECT count(*) FROM sqlite_schema",
    ])?;
    Ok(app)
}

pub fn walcast() -> Command {
    Command::new(env!("CARGO_BIN_EXE_walcast"))
}

/// A `walcast replicate` process with its log in a file. Dropping it kills it.
pub struct Walcast {
    child: Child,
    log: PathBuf,
}

impl Walcast {
    /// `walcast replicate DB DIR [extra...]`, logging at debug level to `log`.
    pub fn start(db: &Path, replica: &Path, log: &Path, extra: &[&str]) -> anyhow::Result<Self> {
        let url = format!("file://{}", replica.display());
        Self::start_url(db, &url, &[], log, extra)
    }

    /// `walcast replicate DB URL [extra...]` with `env` added to its environment.
    pub fn start_url(
        db: &Path,
        url: &str,
        env: &[(String, String)],
        log: &Path,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let mut cmd = walcast();
        cmd.arg("replicate")
            .arg(db)
            .arg(url)
            .args(extra)
            .envs(env.iter().map(|(k, v)| (k, v)));
        Self::start_command(&mut cmd, log)
    }

    /// Starts `cmd` (a `walcast` command) logging at debug level to `log`.
    pub fn start_command(cmd: &mut Command, log: &Path) -> anyhow::Result<Self> {
        let out = File::options().create(true).append(true).open(log)?;
        let child = cmd
            .env("WALCAST_LOG", "walcast=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .context("cannot start walcast")?;
        Ok(Self {
            child,
            log: log.to_owned(),
        })
    }

    /// Waits until the log holds `text` at least `times` times (e.g. one "replicating"
    /// per replica).
    pub fn wait_for_log(&mut self, text: &str, times: usize) -> anyhow::Result<()> {
        let log = self.log.clone();
        let child = &mut self.child;
        wait::until(Duration::from_secs(30), text, || {
            if let Some(status) = child.try_wait()? {
                bail!("walcast exited ({status})");
            }
            Ok(std::fs::read_to_string(&log)?.matches(text).count() >= times)
        })
        .with_context(|| self.log())
    }

    /// Fails if walcast has exited.
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("walcast exited ({status})");
        }
        Ok(())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until walcast has attached and staged its first file (its log says so).
    pub fn wait_replicating(&mut self) -> anyhow::Result<()> {
        let log = self.log.clone();
        let child = &mut self.child;
        wait::until(
            Duration::from_secs(30),
            "walcast to start replicating",
            || {
                if let Some(status) = child.try_wait()? {
                    bail!("walcast exited ({status}) before replicating");
                }
                Ok(std::fs::read_to_string(&log)?.contains("replicating"))
            },
        )
        .with_context(|| self.log())
    }

    fn wait_exit(&mut self) -> anyhow::Result<ExitStatus> {
        let mut status = None;
        let child = &mut self.child;
        wait::until(STOP_TIMEOUT, "walcast to exit", || {
            status = child.try_wait()?;
            Ok(status.is_some())
        })?;
        status.context("no exit status")
    }

    /// SIGINT, then waits for a clean exit (final sync and upload done).
    pub fn stop(mut self) -> anyhow::Result<()> {
        let ok = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()?
            .success();
        if !ok {
            bail!("cannot signal walcast");
        }
        let status = self.wait_exit()?;
        if !status.success() {
            bail!("walcast exited with {status}; log:\n{}", self.log());
        }
        Ok(())
    }

    /// SIGKILL: no final sync, no cleanup.
    pub fn kill9(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Walcast {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Checkpoints the source completely, restores the replica with the real Litestream, and
/// requires the two files to be equal byte for byte and the restore to pass
/// `PRAGMA integrity_check`.
pub fn assert_restores_exactly(db: &Path, replica: &Path, out: &Path) -> anyhow::Result<()> {
    let url = format!("file://{}", replica.display());
    assert_url_restores_exactly(db, &url, &[], out)
}

/// [`assert_restores_exactly`] for any replica URL, Litestream running with `env` (the S3
/// server's credentials; the testbed already drops `AWS_CA_BUNDLE`).
pub fn assert_url_restores_exactly(
    db: &Path,
    url: &str,
    env: &[(String, String)],
    out: &Path,
) -> anyhow::Result<()> {
    let result = sqlite::checkpoint(db, CheckpointMode::Truncate)?;
    if result.busy != 0 {
        bail!(
            "{}: the final TRUNCATE checkpoint was busy: {result:?}",
            db.display()
        );
    }
    let restored = Litestream::locate()?
        .command(["restore", "-o"])
        .arg(out)
        .arg(url)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()?;
    if !restored.status.success() {
        bail!(
            "litestream restore {url}: {}",
            String::from_utf8_lossy(&restored.stderr)
        );
    }
    let (source, restored) = (std::fs::read(db)?, std::fs::read(out)?);
    if source.len() != restored.len() {
        bail!(
            "restored {} bytes, the source has {}",
            restored.len(),
            source.len()
        );
    }
    if let Some(at) = source.iter().zip(&restored).position(|(a, b)| a != b) {
        bail!(
            "restore differs from the source at byte {at} (page {})",
            at / 4096 + 1
        );
    }
    let check = sqlite::integrity_check(out)?;
    if check != "ok" {
        bail!("integrity_check of the restore: {check}");
    }
    Ok(())
}
