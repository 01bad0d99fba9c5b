//! From the YAML blocks ([`crate::raw`]) to the typed [`Config`]: defaults applied (the same
//! as Litestream's), top-level replica settings copied into every replica that does not set
//! them, and every cross-check that needs more than one key, each with its line.
//!
//! This module must never read files or the environment: [`crate::Config::parse`] hands it
//! expanded, parsed text.

use std::path::PathBuf;
use std::time::Duration;

use serde_saphyr::Spanned;
use walcast_replica::{ReplicaConfig, ReplicaTarget};

use crate::duration::GoDuration;
use crate::error::ConfigError;
use crate::raw::{RawConfig, RawDb, RawLevel, RawLogging, RawReplica, RawSnapshot};
use crate::{
    Config, Credentials, DEFAULT_L0_RETENTION, DEFAULT_LEVELS, DEFAULT_SNAPSHOT,
    DEFAULT_SYNC_INTERVAL, DbConfig, LogFormat, LogLevel, Logging, ReplicaSpec, SnapshotSchedule,
};

/// Builds and checks a config; `file` names the source in messages, `home` expands `~/`.
pub fn build(raw: RawConfig, file: &str, home: Option<&str>) -> Result<Config, ConfigError> {
    let invalid = |line: u64, message: String| ConfigError::Invalid {
        file: file.to_owned(),
        line,
        message,
    };
    let levels = match &raw.levels {
        None => DEFAULT_LEVELS.to_vec(),
        Some(levels) => levels
            .iter()
            .enumerate()
            .map(|(i, level)| {
                level_interval(i, level).map_err(|m| invalid(level.referenced.line(), m))
            })
            .collect::<Result<_, _>>()?,
    };
    let snapshot = snapshot(
        raw.snapshot.as_ref(),
        DEFAULT_SNAPSHOT,
        "snapshot",
        &invalid,
    )?;
    let l0_retention = raw.l0_retention.map_or(DEFAULT_L0_RETENTION, |d| d.value.0);
    let logging = logging(raw.logging.as_ref(), &invalid)?;
    let defaults = RawReplica {
        access_key_id: raw.access_key_id.clone(),
        secret_access_key: raw.secret_access_key.clone(),
        region: raw.region.clone(),
        bucket: raw.bucket.clone(),
        endpoint: raw.endpoint.clone(),
        force_path_style: raw.force_path_style,
        sync_interval: raw.sync_interval.clone(),
        ..RawReplica::default()
    };
    let Some(raw_dbs) = raw.dbs.filter(|dbs| !dbs.is_empty()) else {
        return Err(invalid(
            0,
            "no databases: add a `dbs:` list with at least one `- path: /path/to/app.db` and its `replica:`".into(),
        ));
    };
    let mut dbs: Vec<DbConfig> = Vec::with_capacity(raw_dbs.len());
    for raw_db in raw_dbs {
        let line = raw_db.referenced.line();
        let db = database(raw_db.value, &defaults, snapshot, home).map_err(|e| match e {
            DbError::AtDb(message) => invalid(line, message),
            DbError::At(line, message) => invalid(line, message),
        })?;
        if let Some(other) = dbs.iter().find(|d| d.path == db.path) {
            return Err(invalid(
                line,
                format!(
                    "database {} is listed twice; keep one entry and list its replicas under `replicas:`",
                    other.path.display()
                ),
            ));
        }
        dbs.push(db);
    }
    Ok(Config {
        file: PathBuf::from(file),
        dbs,
        addr: raw.addr.filter(|a| !a.is_empty()),
        exec: raw.exec.filter(|e| !e.trim().is_empty()),
        logging,
        levels,
        snapshot,
        l0_retention,
    })
}

fn level_interval(index: usize, level: &Spanned<RawLevel>) -> Result<Duration, String> {
    let n = index + 1;
    match &level.value.interval {
        None => Err(format!(
            "`levels` entry {n} (L{n}) needs an `interval`, e.g. `- interval: 30s`"
        )),
        Some(Spanned {
            value: GoDuration(d),
            ..
        }) if d.is_zero() => Err(format!(
            "`levels` entry {n} (L{n}): `interval` must be above zero"
        )),
        Some(d) => Ok(d.value.0),
    }
}

fn snapshot(
    raw: Option<&RawSnapshot>,
    defaults: SnapshotSchedule,
    key: &str,
    invalid: &dyn Fn(u64, String) -> ConfigError,
) -> Result<SnapshotSchedule, ConfigError> {
    let Some(raw) = raw else { return Ok(defaults) };
    let positive = |value: &Option<Spanned<GoDuration>>, name: &str, default: Duration| match value
    {
        None => Ok(default),
        Some(d) if d.value.0.is_zero() => Err(invalid(
            d.referenced.line(),
            format!(
                "`{key}.{name}` must be above zero (default {})",
                show(default)
            ),
        )),
        Some(d) => Ok(d.value.0),
    };
    Ok(SnapshotSchedule {
        interval: positive(&raw.interval, "interval", defaults.interval)?,
        retention: positive(&raw.retention, "retention", defaults.retention)?,
    })
}

fn logging(
    raw: Option<&RawLogging>,
    invalid: &dyn Fn(u64, String) -> ConfigError,
) -> Result<Logging, ConfigError> {
    let mut logging = Logging::default();
    let Some(raw) = raw else { return Ok(logging) };
    if let Some(level) = &raw.level {
        logging.level = match level.value.to_ascii_lowercase().as_str() {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" | "warning" => LogLevel::Warn,
            "error" => LogLevel::Error,
            other => {
                return Err(invalid(
                    level.referenced.line(),
                    format!(
                        "`logging.level: {other}` is not a level; use debug, info, warn or error"
                    ),
                ));
            }
        };
    }
    if let Some(format) = &raw.format {
        logging.format = match format.value.to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid(
                    format.referenced.line(),
                    format!("`logging.type: {other}` is not a log format; use text or json"),
                ));
            }
        };
    }
    logging.stderr = raw.stderr.unwrap_or(false);
    Ok(logging)
}

/// Why a database entry is refused: a message for the entry's own line, or for another.
enum DbError {
    AtDb(String),
    At(u64, String),
}

/// One database.
fn database(
    raw: RawDb,
    defaults: &RawReplica,
    global_snapshot: SnapshotSchedule,
    home: Option<&str>,
) -> Result<DbConfig, DbError> {
    let path = match raw.path.as_deref().map(str::trim) {
        None | Some("") => {
            return Err(DbError::AtDb(
                "a database needs a `path` (the SQLite file, e.g. `- path: /var/lib/app/app.db`)"
                    .into(),
            ));
        }
        Some(path) => db_path(path, home),
    };
    let blocks: Vec<Spanned<RawReplica>> = match (raw.replica, raw.replicas) {
        (Some(_), Some(_)) => {
            return Err(DbError::AtDb(format!(
                "database {}: use either `replica:` (one) or `replicas:` (a list), not both",
                path.display()
            )));
        }
        (Some(one), None) => vec![one],
        (None, Some(list)) if !list.is_empty() => list,
        (None, _) => {
            return Err(DbError::AtDb(format!(
                "database {} has no replica: add `replica:` with a `url` (e.g. `url: s3://bucket/app`) or a `replicas:` list",
                path.display()
            )));
        }
    };
    let snapshot_invalid = |line: u64, message: String| ConfigError::Invalid {
        file: String::new(),
        line,
        message,
    };
    let snapshot = snapshot(
        raw.snapshot.as_ref(),
        global_snapshot,
        "snapshot",
        &snapshot_invalid,
    )
    .map_err(|e| match e {
        ConfigError::Invalid { line, message, .. } => {
            DbError::At(line, format!("database {}: {message}", path.display()))
        }
        other => DbError::AtDb(other.to_string()),
    })?;
    let mut replicas: Vec<ReplicaSpec> = Vec::with_capacity(blocks.len());
    let several = blocks.len() > 1;
    for (index, block) in blocks.into_iter().enumerate() {
        let line = block.referenced.line();
        let spec = replica(block.value, defaults, index, several)
            .map_err(|m| DbError::At(line, format!("database {}, replica: {m}", path.display())))?;
        if replicas.iter().any(|r| r.name == spec.name) {
            return Err(DbError::At(
                line,
                format!(
                    "database {}: two replicas are named {:?}; give each a different `name`",
                    path.display(),
                    spec.name
                ),
            ));
        }
        replicas.push(spec);
    }
    let monitor_interval = match raw.monitor_interval {
        None => None,
        Some(d) if d.value.0.is_zero() => {
            return Err(DbError::At(
                d.referenced.line(),
                format!(
                    "database {}: `monitor-interval` must be above zero (default: the smallest replica sync-interval, at most 25ms)",
                    path.display()
                ),
            ));
        }
        Some(d) => Some(d.value.0),
    };
    Ok(DbConfig {
        path,
        replicas,
        snapshot,
        monitor_interval,
    })
}

/// `~/x` under `home`; a relative path is taken from the working directory, as Litestream does.
fn db_path(path: &str, home: Option<&str>) -> PathBuf {
    let path = match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    };
    std::path::absolute(&path).unwrap_or(path)
}

fn replica(
    raw: RawReplica,
    defaults: &RawReplica,
    index: usize,
    several: bool,
) -> Result<ReplicaSpec, String> {
    // Top-level settings are defaults only for the replicas they apply to: s3 keys for s3
    // replicas, `bucket` for bucket-based ones (Litestream's file backend ignores them).
    let kind = replica_kind(&raw);
    let s3 = kind == Some("s3");
    let bucketed = matches!(kind, Some("s3" | "gs" | "abs"));
    let or = |own: Option<String>, default: &Option<String>, applies: bool| {
        own.or_else(|| default.clone().filter(|_| applies))
    };
    let config = ReplicaConfig {
        kind: raw.kind.clone(),
        url: raw.url.clone(),
        path: raw.path.clone(),
        bucket: or(raw.bucket, &defaults.bucket, bucketed),
        endpoint: or(raw.endpoint, &defaults.endpoint, s3),
        region: or(raw.region, &defaults.region, s3),
        force_path_style: raw
            .force_path_style
            .or(defaults.force_path_style.filter(|_| s3)),
    };
    let target = ReplicaTarget::from_config(&config).map_err(|e| match e {
        walcast_replica::TargetError::Config { reason } => reason,
        other => other.to_string(),
    })?;
    let sync_interval = raw
        .sync_interval
        .or_else(|| defaults.sync_interval.clone())
        .map_or(DEFAULT_SYNC_INTERVAL, |d| d.value.0);
    if sync_interval.is_zero() {
        return Err("`sync-interval` must be above zero (default 1s)".into());
    }
    let credentials = match (
        or(raw.access_key_id, &defaults.access_key_id, s3),
        or(raw.secret_access_key, &defaults.secret_access_key, s3),
    ) {
        (None, None) => None,
        (Some(access_key_id), Some(secret_access_key)) => Some(Credentials {
            access_key_id,
            secret_access_key,
        }),
        (Some(_), None) => return Err("`access-key-id` is set but `secret-access-key` is not; set both (an unset ${VAR} expands to nothing), or neither to use the environment (AWS_ACCESS_KEY_ID, ...)".into()),
        (None, Some(_)) => return Err("`secret-access-key` is set but `access-key-id` is not; set both, or neither to use the environment (AWS_ACCESS_KEY_ID, ...)".into()),
    };
    if credentials.is_some() && !matches!(target, ReplicaTarget::S3(_)) {
        return Err(format!(
            "`access-key-id`/`secret-access-key` apply to s3 replicas only, not to `{}`",
            target.kind()
        ));
    }
    let name = match raw.name {
        Some(name) if name.trim().is_empty() => return Err("`name` is empty".into()),
        Some(name) => name,
        None if several => format!("{}-{}", target.kind(), index + 1),
        None => target.kind().to_owned(),
    };
    Ok(ReplicaSpec {
        name,
        config,
        target,
        sync_interval,
        credentials,
    })
}

/// The replica type a block names: `type`, else the URL's scheme, else `file` for a bare
/// `path`.
fn replica_kind(raw: &RawReplica) -> Option<&str> {
    if let Some(kind) = raw.kind.as_deref() {
        return Some(kind);
    }
    match raw.url.as_deref() {
        Some(url) => url.split_once("://").map(|(scheme, _)| scheme),
        None => raw.path.as_ref().map(|_| "file"),
    }
}

/// A duration in Go's spelling, for messages.
pub(crate) fn show(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 {
        format!("{}ms", d.as_millis())
    } else if secs.is_multiple_of(3600) && secs > 0 {
        format!("{}h", secs / 3600)
    } else if secs.is_multiple_of(60) && secs > 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}
