//! The YAML config file `walcast` and `walcast-restore` read: Litestream 0.5.17's keys for
//! what walcast supports, plus several replicas per database (`replicas:`), which
//! Litestream 0.5 dropped.
//!
//! ```
//! # fn main() -> Result<(), walcast_config::ConfigError> {
//! let yaml = "
//! levels: [{interval: 10s}, {interval: 5m}]
//! dbs:
//!   - path: /var/lib/app/app.db
//!     replicas:
//!       - url: s3://backups/app?region=eu-west-1
//!         sync-interval: 500ms
//!       - type: file
//!         path: /mnt/backup/app
//! ";
//! let config = walcast_config::Config::parse(yaml, "walcast.yml", &|_| None)?;
//! let db = config.db("/var/lib/app/app.db".as_ref()).unwrap();
//! assert_eq!(db.replicas.len(), 2);
//! assert_eq!(db.replicas[0].name, "s3-1");
//! assert_eq!(db.replicas[0].sync_interval, std::time::Duration::from_millis(500));
//! assert_eq!(config.levels[0], std::time::Duration::from_secs(10));
//! # Ok(()) }
//! ```
//!
//! What the file may hold (all optional except `dbs`):
//! - top level: `dbs`, `addr`, `exec`, `logging` {`level`, `type`: text|json, `stderr`},
//!   `levels` (list of {`interval`}, L1..Ln), `snapshot` {`interval`, `retention`},
//!   `l0-retention`, and replica defaults (`access-key-id`, `secret-access-key`, `region`,
//!   `bucket`, `endpoint`, `force-path-style`, `sync-interval`) copied into every replica
//!   that does not set them, as in Litestream;
//! - per database: `path`, `monitor-interval`, `replica` (one block) or `replicas` (a
//!   list), `snapshot` (overrides the top-level one for this database only);
//! - per replica: `name`, `type`, `url`, `path`, `bucket`, `endpoint`, `region`,
//!   `force-path-style`, `sync-interval`, `access-key-id`, `secret-access-key`.
//!
//! Durations use Go's syntax (`500ms`, `1m30s`, `24h`). `${VAR}` and `$VAR` are expanded
//! from the environment before parsing, as Litestream does ([`expand_env`]).
//!
//! Invariants: a loaded [`Config`] has at least one database, every database an absolute
//! path and at least one replica whose [`ReplicaTarget`] is valid, replica names unique per
//! database, every interval above zero. Any other key, a key Litestream has but walcast
//! does not support, or a value of the wrong type is a [`ConfigError`] naming the file,
//! line and key. This crate never opens a database or a connection.

#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod build;
mod duration;
mod error;
mod expand;
mod raw;

use std::path::{Path, PathBuf};
use std::time::Duration;

use walcast_replica::{
    ClientSettings, Env, ReplicaClient, ReplicaConfig, ReplicaTarget, StoreError,
};

pub use duration::parse_go_duration;
pub use error::ConfigError;
pub use expand::expand_env;

/// The default config file.
pub const DEFAULT_PATH: &str = "/etc/walcast.yml";
/// Litestream's default config file, read when [`DEFAULT_PATH`] does not exist so that a
/// Litestream installation can switch binaries without moving its config.
pub const LITESTREAM_PATH: &str = "/etc/litestream.yml";
/// The environment variable that names the config file when `-config` is not given.
pub const PATH_VARIABLE: &str = "WALCAST_CONFIG";

/// Compaction levels L1..Ln when `levels` is not set (Litestream's).
pub const DEFAULT_LEVELS: [Duration; 3] = [
    Duration::from_secs(30),
    Duration::from_secs(5 * 60),
    Duration::from_secs(60 * 60),
];
/// `snapshot` when not set (Litestream's: 24h and 24h).
pub const DEFAULT_SNAPSHOT: SnapshotSchedule = SnapshotSchedule {
    interval: Duration::from_secs(24 * 60 * 60),
    retention: Duration::from_secs(24 * 60 * 60),
};
/// `l0-retention` when not set (Litestream's).
pub const DEFAULT_L0_RETENTION: Duration = Duration::from_secs(5 * 60);
/// A replica's `sync-interval` when not set (Litestream's).
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// A loaded and checked config file (see the crate docs for its invariants).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The file it was read from, as given.
    pub file: PathBuf,
    /// The databases, in file order.
    pub dbs: Vec<DbConfig>,
    /// `addr`: where to serve `/metrics` (e.g. `:9090`); `None` serves nothing.
    pub addr: Option<String>,
    /// `exec`: the command to run as a child (the shipper exits when it does).
    pub exec: Option<String>,
    /// `logging`.
    pub logging: Logging,
    /// `levels`: the compaction interval of L1, L2, … in order.
    pub levels: Vec<Duration>,
    /// The top-level `snapshot` (each database has its effective copy in [`DbConfig`]).
    pub snapshot: SnapshotSchedule,
    /// `l0-retention`: how long L0 files stay after a compaction covered them; zero
    /// disables time-based L0 retention (as in Litestream 0.5.17).
    pub l0_retention: Duration,
}

/// One database and where it replicates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbConfig {
    /// The database file, absolute (`~/` expanded, relative paths from the working directory).
    pub path: PathBuf,
    /// Its replicas (at least one), in file order.
    pub replicas: Vec<ReplicaSpec>,
    /// Its snapshot schedule: its own `snapshot` block over the top-level one.
    pub snapshot: SnapshotSchedule,
    /// `monitor-interval`: the shortest time between two local L0 files while no
    /// checkpoint is imminent (commits of one interval go into one file, as in
    /// Litestream). `None`: the shipper's default (walcast: the smallest replica
    /// `sync-interval`, at most 25 ms).
    pub monitor_interval: Option<Duration>,
}

/// One replica of a database.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplicaSpec {
    /// `name`, or the type (`s3`) for a database's only replica, or `type-N` (1-based
    /// position) when it has several.
    pub name: String,
    /// The block as written (with top-level defaults filled in); builds a client with
    /// [`walcast_replica::ReplicaClient::from_config`] or [`ReplicaSpec::client_settings`].
    pub config: ReplicaConfig,
    /// Where it lives (already checked).
    pub target: ReplicaTarget,
    /// `sync-interval`: how often staged L0 files go up together.
    pub sync_interval: Duration,
    /// `access-key-id` and `secret-access-key`, when the file sets them (s3 only).
    pub credentials: Option<Credentials>,
}

impl std::fmt::Debug for ReplicaSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaSpec")
            .field("name", &self.name)
            .field("target", &self.target)
            .field("sync_interval", &self.sync_interval)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl ReplicaSpec {
    /// A client for this replica: [`ReplicaSpec::client_settings`] over `base` (usually
    /// [`ClientSettings::from_process`]). Sends no request.
    pub fn open_client(&self, base: ClientSettings) -> Result<ReplicaClient, StoreError> {
        ReplicaClient::open(self.target.clone(), self.client_settings(base))
    }

    /// Client settings for this replica: `base` with the file's credentials, if any, taking
    /// precedence over the environment's (as Litestream's config keys do).
    pub fn client_settings(&self, base: ClientSettings) -> ClientSettings {
        let Some(credentials) = &self.credentials else {
            return base;
        };
        let vars = base
            .env
            .with_prefix("")
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .chain([
                (
                    "LITESTREAM_ACCESS_KEY_ID".to_owned(),
                    credentials.access_key_id.clone(),
                ),
                (
                    "LITESTREAM_SECRET_ACCESS_KEY".to_owned(),
                    credentials.secret_access_key.clone(),
                ),
            ])
            .collect::<Vec<_>>();
        ClientSettings {
            env: Env::from_pairs(vars),
            ..base
        }
    }
}

/// Static S3 credentials from the file. Debug output hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// `access-key-id`.
    pub access_key_id: String,
    /// `secret-access-key`.
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .finish()
    }
}

/// `snapshot`: how often a full snapshot (level 9) is written and how long one is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotSchedule {
    /// `interval`.
    pub interval: Duration,
    /// `retention`.
    pub retention: Duration,
}

/// `logging`. The binaries let `LOG_LEVEL` override [`Logging::level`], as Litestream does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Logging {
    /// `level`: debug, info (default), warn, error.
    pub level: LogLevel,
    /// `type`: text (default) or json.
    pub format: LogFormat,
    /// `stderr`: log to stderr instead of stdout.
    pub stderr: bool,
}

/// `logging.level`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogLevel {
    /// `debug`.
    Debug,
    /// `info`.
    #[default]
    Info,
    /// `warn`.
    Warn,
    /// `error`.
    Error,
}

/// `logging.type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// `text`.
    #[default]
    Text,
    /// `json`.
    Json,
}

impl Config {
    /// Reads, expands (from the process environment) and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string(), &|name| {
            std::env::var(name).ok()
        })
    }

    /// Checks `text` as the contents of `file` (named in messages), expanding variables
    /// with `lookup`; `~/` in database paths uses `lookup("HOME")`.
    pub fn parse(
        text: &str,
        file: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let expanded = expand_env(text, lookup).map_err(|e| e.into_config_error(file))?;
        let raw = raw::parse(&expanded, file)?;
        build::build(raw, file, lookup("HOME").as_deref())
    }

    /// The config file to read when `-config` is not given: `$WALCAST_CONFIG`, else
    /// [`DEFAULT_PATH`], else [`LITESTREAM_PATH`] if only that one exists.
    pub fn default_path() -> PathBuf {
        if let Some(path) = std::env::var_os(PATH_VARIABLE).filter(|p| !p.is_empty()) {
            return PathBuf::from(path);
        }
        let walcast = Path::new(DEFAULT_PATH);
        let litestream = Path::new(LITESTREAM_PATH);
        if !walcast.exists() && litestream.exists() {
            return litestream.to_owned();
        }
        walcast.to_owned()
    }

    /// The database whose path is `path` (compared as absolute paths).
    pub fn db(&self, path: &Path) -> Option<&DbConfig> {
        let wanted = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        self.dbs.iter().find(|db| db.path == wanted)
    }
}

/// Entry points for the cargo-fuzz targets in `fuzz/` (not part of the API).
#[doc(hidden)]
pub mod fuzzing {
    /// Parses arbitrary bytes as a config file: it must return an error, never panic.
    pub fn config(data: &[u8]) {
        if let Ok(text) = std::str::from_utf8(data) {
            let lookup = |name: &str| (name == "HOME").then(|| "/home/fuzz".to_owned());
            let _ = crate::Config::parse(text, "fuzz.yml", &lookup);
        }
    }
}
