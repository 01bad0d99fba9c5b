//! The config file as YAML holds it: one struct per block, every key Litestream spells and
//! walcast supports, unknown keys refused (`deny_unknown_fields`), block positions kept
//! ([`Spanned`]) so later checks can name a line.
//!
//! This module owns turning the parser's errors into [`ConfigError::Syntax`] messages that
//! name the file, line, column and key, and that tell a Litestream key walcast does not
//! support from a key nobody knows. It must never apply defaults or cross-check values:
//! [`crate::build`] does.

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::duration::GoDuration;
use crate::error::ConfigError;

/// The top level.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawConfig {
    pub dbs: Option<Vec<Spanned<RawDb>>>,
    pub addr: Option<String>,
    pub logging: Option<RawLogging>,
    pub exec: Option<String>,
    pub levels: Option<Vec<Spanned<RawLevel>>>,
    pub snapshot: Option<RawSnapshot>,
    pub l0_retention: Option<Spanned<GoDuration>>,
    // Replica settings at the top level are defaults for every replica, as in Litestream.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub region: Option<String>,
    pub bucket: Option<String>,
    pub endpoint: Option<String>,
    pub force_path_style: Option<bool>,
    pub sync_interval: Option<Spanned<GoDuration>>,
}

/// One entry of `dbs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawDb {
    pub path: Option<String>,
    pub monitor_interval: Option<Spanned<GoDuration>>,
    pub replica: Option<Spanned<RawReplica>>,
    pub replicas: Option<Vec<Spanned<RawReplica>>>,
    pub snapshot: Option<RawSnapshot>,
}

/// A `replica` block, or one entry of `replicas`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawReplica {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub url: Option<String>,
    pub path: Option<String>,
    pub bucket: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub force_path_style: Option<bool>,
    pub sync_interval: Option<Spanned<GoDuration>>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

/// `logging`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawLogging {
    pub level: Option<Spanned<String>>,
    #[serde(rename = "type")]
    pub format: Option<Spanned<String>>,
    pub stderr: Option<bool>,
}

/// One entry of `levels`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawLevel {
    pub interval: Option<Spanned<GoDuration>>,
}

/// `snapshot` (top level or per database).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawSnapshot {
    pub interval: Option<Spanned<GoDuration>>,
    pub retention: Option<Spanned<GoDuration>>,
}

/// Keys Litestream 0.5.17 accepts that walcast does not (yet): refused with a message
/// saying so rather than "unknown".
#[rustfmt::skip]
const LITESTREAM_ONLY_KEYS: &[&str] = &[
    // top level
    "socket", "validation", "l0-retention-check-interval", "verify-compaction", "retention",
    "heartbeat-url", "heartbeat-interval", "mcp-addr", "shutdown-sync-timeout",
    "shutdown-sync-interval",
    // per database
    "dir", "pattern", "recursive", "watch", "meta-path", "meta-dir",
    "checkpoint-interval", "busy-timeout", "min-checkpoint-page-count", "truncate-page-n",
    "max-sync-wal-bytes", "restore-if-db-not-exists",
    // per replica
    "validation-interval", "max-sync-ltx-files", "auto-recover", "sign-payload",
    "require-content-md5", "skip-verify", "storage-class", "part-size", "concurrency",
    "sse-customer-algorithm", "sse-customer-key", "sse-customer-key-path", "sse-kms-key-id",
    "account-name", "account-key", "sas-token", "host", "user", "password", "key-path",
    "concurrent-writes", "host-key", "webdav-url", "webdav-username", "webdav-password",
    "jwt", "seed", "creds", "nkey", "username", "token", "tls", "root-cas",
    "client-cert", "client-key", "max-reconnects", "reconnect-wait", "timeout", "age",
    // logging
    "source",
];

/// Parses the (expanded) text of `file`.
pub fn parse(text: &str, file: &str) -> Result<RawConfig, ConfigError> {
    if text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    }) {
        return Ok(RawConfig::default());
    }
    serde_saphyr::from_str(text).map_err(|e| syntax_error(&e, text, file))
}

fn syntax_error(error: &serde_saphyr::Error, text: &str, file: &str) -> ConfigError {
    let (line, column) = error.location().map_or((0, 0), |l| (l.line(), l.column()));
    let bare = error.without_snippet().to_string();
    // serde-saphyr prefixes "error: line L column C: "; keep only what is wrong.
    let reason = bare
        .split_once(": ")
        .filter(|(head, _)| head.starts_with("error"))
        .map_or(bare.as_str(), |(_, rest)| rest);
    let reason = reason
        .strip_prefix(&format!("line {line} column {column}: "))
        .unwrap_or(reason);
    let reason = reason
        .strip_suffix(&format!(" at line {line}, column {column}"))
        .unwrap_or(reason)
        .to_owned();
    let message = match unknown_field(&reason) {
        Some(key) if LITESTREAM_ONLY_KEYS.contains(&key) => format!(
            "`{key}` is a Litestream setting that walcast does not support; remove it ({})",
            expected_part(&reason)
        ),
        Some(key) => format!("unknown key `{key}` ({})", expected_part(&reason)),
        None => match key_before(text, line, column) {
            Some(key) => format!("`{key}`: {reason}"),
            None => reason,
        },
    };
    ConfigError::Syntax {
        file: file.to_owned(),
        line,
        column,
        message,
    }
}

/// The key of serde's "unknown field `KEY`, expected …" message.
fn unknown_field(reason: &str) -> Option<&str> {
    reason
        .strip_prefix("unknown field `")?
        .split_once('`')
        .map(|(key, _)| key)
}

/// "expected one of a, b" from serde's message, as "keys here: a, b".
fn expected_part(reason: &str) -> String {
    match reason.split_once(", expected ") {
        Some((_, expected)) => format!(
            "keys allowed here: {}",
            expected.trim_start_matches("one of ").replace('`', "")
        ),
        None => "no keys are allowed here".to_owned(),
    }
}

/// The mapping key whose value starts at 1-based `line` and `column` of `text`: the last
/// `key:` before that column (`  - key: value`, or `{a: 1, key: value}` in flow style).
fn key_before(text: &str, line: u64, column: u64) -> Option<&str> {
    let source = text
        .lines()
        .nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let end = usize::try_from(column)
        .ok()
        .filter(|&c| c > 0)
        .and_then(|c| source.char_indices().nth(c - 1).map(|(i, _)| i))
        .unwrap_or(source.len());
    let before = source.get(..end)?;
    let (head, _) = before.rsplit_once(':')?;
    let key = head
        .rsplit(['{', ',', ' ', '\t'])
        .find(|part| !part.is_empty())?
        .trim_matches(['"', '\'']);
    (!key.is_empty() && key != "-").then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_of_a_value() {
        let text =
            "a: 1\n  - path: x\n    \"force-path-style\": y\n- just a value\n    r: {p: 1, s: 9}\n";
        assert_eq!(key_before(text, 1, 4), Some("a"));
        assert_eq!(key_before(text, 2, 11), Some("path"));
        assert_eq!(key_before(text, 3, 25), Some("force-path-style"));
        assert_eq!(key_before(text, 4, 3), None);
        assert_eq!(key_before(text, 5, 17), Some("s"));
        assert_eq!(key_before(text, 5, 11), Some("p"));
        assert_eq!(key_before(text, 0, 1), None);
        assert_eq!(key_before(text, 9, 1), None);
    }
}
