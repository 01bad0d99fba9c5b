//! The real Litestream (0.5.17, the peer walcast must interoperate with), run as a child
//! process: locate the binary, write its YAML config, run `replicate` in the background
//! (stoppable with SIGINT, killable), `replicate -once [-force-snapshot]`, `restore` and
//! `ltx -json`.
//!
//! Every command runs without `AWS_CA_BUNDLE`: Litestream 0.5.17's S3 client fails on
//! every request when it is set (test-environment.md).
//!
//! ```no_run
//! use std::time::Duration;
//! use walcast_testbed::litestream::{Config, DbConfig, Litestream, Replica, Target};
//! # fn main() -> anyhow::Result<()> {
//! let ls = Litestream::locate()?;
//! let config = Config {
//!     levels: vec![Duration::from_secs(2), Duration::from_secs(5)],
//!     ..Config::new(vec![DbConfig::new("/tmp/app.db", Replica::Dir("/tmp/replica".into()))])
//! };
//! config.write("/tmp/litestream.yml".as_ref())?;
//! let daemon = ls.replicate("/tmp/litestream.yml".as_ref())?;
//! // … write to the database, wait for files …
//! daemon.stop()?;
//! ls.restore(&Target::Url("file:///tmp/replica"), "/tmp/out.db".as_ref(), None)?;
//! # Ok(()) }
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::wait;

/// How long a stopped `replicate` may take for its final sync and shutdown.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The Litestream binary.
#[derive(Clone, Debug)]
pub struct Litestream {
    bin: PathBuf,
}

/// Which replica a read command (`restore`, `ltx`) works on.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// The replica configured for `db` in the config file.
    Config {
        /// The config file.
        config: &'a Path,
        /// The database path as the config names it.
        db: &'a Path,
    },
    /// A replica URL (`file:///dir`, `s3://bucket/path?endpoint=…`).
    Url(&'a str),
}

impl Target<'_> {
    fn args(&self, cmd: &mut Command) {
        match self {
            Target::Config { config, db } => cmd.arg("-config").arg(config).arg(db),
            Target::Url(url) => cmd.arg(url),
        };
    }
}

/// One row of `litestream ltx -json`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct LtxInfo {
    /// Compaction level (0-9).
    pub level: u32,
    /// First TXID, 16 hex digits.
    pub min_txid: String,
    /// Last TXID, 16 hex digits.
    pub max_txid: String,
    /// Size in bytes.
    pub size: u64,
    /// Creation time as Litestream prints it.
    pub timestamp: String,
}

impl Litestream {
    /// Finds the binary: `$WALCAST_LITESTREAM` if set, else what `scripts/testdeps`
    /// installs (running it once per process).
    pub fn locate() -> anyhow::Result<Self> {
        if let Some(path) = std::env::var_os("WALCAST_LITESTREAM") {
            return Ok(Self { bin: path.into() });
        }
        static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
        let installed = INSTALLED.get_or_init(|| install().map_err(|e| format!("{e:#}")));
        match installed {
            Ok(bin) => Ok(Self { bin: bin.clone() }),
            Err(e) => bail!("{e}"),
        }
    }

    /// Path of the binary.
    pub fn path(&self) -> &Path {
        &self.bin
    }

    /// A command running the binary with `args`, stdin closed, `AWS_CA_BUNDLE` unset.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env_remove("AWS_CA_BUNDLE")
            .stdin(Stdio::null());
        cmd
    }

    /// `litestream version`.
    pub fn version(&self) -> anyhow::Result<String> {
        Ok(run(self.command(["version"]))?.trim().to_owned())
    }

    /// Starts `litestream replicate -config CONFIG` in the background; its output goes
    /// to `CONFIG.replicate.log`.
    pub fn replicate(&self, config: &Path) -> anyhow::Result<Replicator> {
        let log = log_path(config, "replicate");
        let out = File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
        let mut cmd = self.command(["replicate", "-config"]);
        cmd.arg(config).stdout(out.try_clone()?).stderr(out);
        let described = format!("{cmd:?}");
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {described}"))?;
        Ok(Replicator {
            child,
            log,
            described,
        })
    }

    /// `litestream replicate -once [-force-snapshot] -config CONFIG`: one sync of every
    /// database (and with `force_snapshot` a level-9 snapshot), then exit. Returns the log.
    pub fn replicate_once(&self, config: &Path, force_snapshot: bool) -> anyhow::Result<String> {
        let mut cmd = self.command(["replicate", "-once"]);
        if force_snapshot {
            cmd.arg("-force-snapshot");
        }
        cmd.arg("-config").arg(config);
        run(cmd)
    }

    /// `litestream restore -o OUT [-txid TXID] TARGET`.
    pub fn restore(
        &self,
        target: &Target<'_>,
        out: &Path,
        txid: Option<u64>,
    ) -> anyhow::Result<()> {
        let mut cmd = self.command(["restore", "-o"]);
        cmd.arg(out);
        if let Some(txid) = txid {
            cmd.arg("-txid").arg(format!("{txid:016x}"));
        }
        target.args(&mut cmd);
        run(cmd).map(drop)
    }

    /// `litestream ltx -json -level LEVEL TARGET`; `level` `None` lists every level.
    pub fn ltx(&self, target: &Target<'_>, level: Option<u32>) -> anyhow::Result<Vec<LtxInfo>> {
        let level = level.map_or_else(|| "all".to_owned(), |l| l.to_string());
        let mut cmd = self.command(["ltx", "-json", "-level", &level]);
        target.args(&mut cmd);
        let described = format!("{cmd:?}");
        let out = run(cmd)?;
        serde_json::from_str(&out)
            .with_context(|| format!("{described}: unreadable output {out:?}"))
    }
}

/// A running `litestream replicate`. Dropping it kills the process.
pub struct Replicator {
    child: Child,
    log: PathBuf,
    described: String,
}

impl Replicator {
    /// Process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process has printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails if the process has exited (for use inside a wait condition).
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); its log:\n{}",
                self.described,
                self.log()
            );
        }
        Ok(())
    }

    /// Sends SIGINT (Litestream's graceful shutdown: final sync, then exit) and waits for
    /// the process; kills it if it has not exited within 30 s. Returns the log.
    pub fn stop(mut self) -> anyhow::Result<String> {
        let status = Command::new("kill")
            .arg("-INT")
            .arg(self.id().to_string())
            .status()
            .context("cannot run kill -INT")?;
        if !status.success() {
            bail!("kill -INT {} failed ({status})", self.id());
        }
        let mut exited: Option<ExitStatus> = None;
        let waited = wait::until(STOP_TIMEOUT, "litestream replicate to exit", || {
            exited = self.child.try_wait()?;
            Ok(exited.is_some())
        });
        if let Err(e) = waited {
            let _ = self.child.kill();
            let _ = self.child.wait();
            bail!("{e}; killed it. Its log:\n{}", self.log());
        }
        match exited {
            Some(status) if status.success() => Ok(self.log()),
            _ => bail!(
                "{} failed ({exited:?}); its log:\n{}",
                self.described,
                self.log()
            ),
        }
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for Replicator {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Where a replica lives, as Litestream's config names it.
#[derive(Clone, Debug)]
pub enum Replica {
    /// A directory (`type: file`).
    Dir(PathBuf),
    /// An S3-compatible bucket.
    S3 {
        /// Bucket (must exist: Litestream does not create it).
        bucket: String,
        /// Key prefix inside the bucket.
        path: String,
        /// Endpoint URL, e.g. `http://127.0.0.1:9000`.
        endpoint: String,
        /// Region.
        region: String,
        /// Access key id.
        access_key_id: String,
        /// Secret access key.
        secret_access_key: String,
    },
    /// Any replica URL Litestream accepts.
    Url(String),
}

/// One database in the config.
#[derive(Clone, Debug)]
pub struct DbConfig {
    /// The database file.
    pub path: PathBuf,
    /// Its replica.
    pub replica: Replica,
    /// `monitor-interval`: how often the WAL is checked (Litestream's default 1s).
    pub monitor_interval: Option<Duration>,
    /// `checkpoint-interval` (default 1m).
    pub checkpoint_interval: Option<Duration>,
    /// The replica's `sync-interval` (default 1s).
    pub sync_interval: Option<Duration>,
}

impl DbConfig {
    /// A database with Litestream's default intervals.
    pub fn new(path: impl Into<PathBuf>, replica: Replica) -> Self {
        Self {
            path: path.into(),
            replica,
            monitor_interval: None,
            checkpoint_interval: None,
            sync_interval: None,
        }
    }
}

/// A Litestream YAML config.
#[derive(Clone, Debug)]
pub struct Config {
    /// The databases.
    pub dbs: Vec<DbConfig>,
    /// Compaction levels L1…Ln by interval (empty: Litestream's 30s, 5m, 1h).
    pub levels: Vec<Duration>,
    /// `snapshot.interval` (default 24h).
    pub snapshot_interval: Option<Duration>,
    /// `snapshot.retention` (default 24h).
    pub snapshot_retention: Option<Duration>,
    /// `addr`: where Litestream serves `/metrics`.
    pub addr: Option<String>,
    /// Raw YAML appended at the top level, for keys not modelled here.
    pub extra: String,
}

impl Config {
    /// A config for `dbs` with Litestream's defaults for everything else.
    pub fn new(dbs: Vec<DbConfig>) -> Self {
        Self {
            dbs,
            levels: Vec::new(),
            snapshot_interval: None,
            snapshot_retention: None,
            addr: None,
            extra: String::new(),
        }
    }

    /// The config as YAML (strings double-quoted JSON-style, which YAML accepts).
    pub fn to_yaml(&self) -> String {
        let mut y = String::new();
        if let Some(addr) = &self.addr {
            y += &format!("addr: {}\n", quote(addr));
        }
        if !self.levels.is_empty() {
            y += "levels:\n";
            for interval in &self.levels {
                y += &format!("  - interval: {}\n", go_duration(*interval));
            }
        }
        if self.snapshot_interval.is_some() || self.snapshot_retention.is_some() {
            y += "snapshot:\n";
            if let Some(d) = self.snapshot_interval {
                y += &format!("  interval: {}\n", go_duration(d));
            }
            if let Some(d) = self.snapshot_retention {
                y += &format!("  retention: {}\n", go_duration(d));
            }
        }
        y += "dbs:\n";
        for db in &self.dbs {
            y += &db_yaml(db);
        }
        y += &self.extra;
        y
    }

    /// Writes the YAML to `path`.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, self.to_yaml())
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

fn db_yaml(db: &DbConfig) -> String {
    let mut y = format!("  - path: {}\n", quote(&db.path.to_string_lossy()));
    if let Some(d) = db.monitor_interval {
        y += &format!("    monitor-interval: {}\n", go_duration(d));
    }
    if let Some(d) = db.checkpoint_interval {
        y += &format!("    checkpoint-interval: {}\n", go_duration(d));
    }
    y += "    replica:\n";
    let field = |key: &str, value: &str| format!("      {key}: {}\n", quote(value));
    match &db.replica {
        Replica::Dir(dir) => {
            y += &field("type", "file");
            y += &field("path", &dir.to_string_lossy());
        }
        Replica::S3 {
            bucket,
            path,
            endpoint,
            region,
            access_key_id,
            secret_access_key,
        } => {
            y += &field("type", "s3");
            y += &field("bucket", bucket);
            y += &field("path", path);
            y += &field("endpoint", endpoint);
            y += &field("region", region);
            y += &field("access-key-id", access_key_id);
            y += &field("secret-access-key", secret_access_key);
            y += "      force-path-style: true\n";
        }
        Replica::Url(url) => y += &field("url", url),
    }
    if let Some(d) = db.sync_interval {
        y += &format!("      sync-interval: {}\n", go_duration(d));
    }
    y
}

/// A YAML double-quoted scalar (JSON string syntax is a subset).
fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// A duration as Go's `time.ParseDuration` reads it, in whole milliseconds.
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn log_path(config: &Path, what: &str) -> PathBuf {
    let mut name = config.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{what}.log"));
    config.with_file_name(name)
}

/// Runs a command to completion; returns stdout+stderr, or fails with them.
fn run(mut cmd: Command) -> anyhow::Result<String> {
    let described = format!("{cmd:?}");
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {described}"))?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text += &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("{described} failed ({}): {}", out.status, text.trim());
    }
    Ok(text)
}

/// Runs `scripts/testdeps` and reads the `WALCAST_LITESTREAM` it prints.
fn install() -> anyhow::Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/testdeps");
    let out = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !out.status.success() {
        bail!("{} failed ({})", script.display(), out.status);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("export WALCAST_LITESTREAM="))
        .map(|v| PathBuf::from(v.trim_matches('\'')))
        .with_context(|| {
            format!(
                "{} printed no WALCAST_LITESTREAM: {stdout:?}",
                script.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_yaml_names_every_setting() {
        let mut db = DbConfig::new("/data/app \"x\".db", Replica::Dir("/r".into()));
        db.monitor_interval = Some(Duration::from_millis(250));
        db.sync_interval = Some(Duration::from_secs(1));
        let config = Config {
            levels: vec![Duration::from_secs(2), Duration::from_secs(5)],
            ..Config::new(vec![db])
        };
        assert_eq!(
            config.to_yaml(),
            "levels:\n  - interval: 2s\n  - interval: 5s\ndbs:\n  - path: \"/data/app \\\"x\\\".db\"\n    monitor-interval: 250ms\n    replica:\n      type: \"file\"\n      path: \"/r\"\n      sync-interval: 1s\n"
        );
    }

    #[test]
    fn litestream_reads_the_config_and_lists_an_empty_replica() {
        let ls = Litestream::locate().unwrap();
        assert_eq!(ls.version().unwrap(), "0.5.17");
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        let config = dir.path().join("litestream.yml");
        Config::new(vec![DbConfig::new(
            &db,
            Replica::Dir(dir.path().join("replica")),
        )])
        .write(&config)
        .unwrap();
        let files = ls
            .ltx(
                &Target::Config {
                    config: &config,
                    db: &db,
                },
                None,
            )
            .unwrap();
        assert_eq!(files, vec![]);
    }
}
