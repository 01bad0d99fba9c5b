//! Turns the replica argument of a command into a [`ReplicaSource`]: `file:///dir` or a
//! plain directory path (a directory replica), or `s3://`, `gs://`, `abs://` URLs (a
//! [`ReplicaClient`], credentials from the environment). Litestream's other schemes are
//! refused with a message saying so, never misread as paths.
//!
//! This module must never touch the replica: it only decides what the argument means
//! (building a client sends no request).

use anyhow::{Context, bail};
use walcast_replica::{DirReplica, ReplicaClient, ReplicaSource};

/// True if `arg` has a URL scheme (`scheme://…`) rather than being a path.
pub fn is_url(arg: &str) -> bool {
    arg.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    })
}

/// The replica `arg` names.
pub fn open(arg: &str) -> anyhow::Result<Box<dyn ReplicaSource>> {
    if !is_url(arg) {
        if arg.is_empty() {
            bail!("empty replica path");
        }
        return Ok(Box::new(DirReplica::new(arg)));
    }
    let (scheme, rest) = arg.split_once("://").unwrap_or_default();
    match scheme {
        "file" => {
            let path = rest
                .strip_prefix("localhost")
                .unwrap_or(rest)
                .split(['?', '#'])
                .next()
                .unwrap_or_default();
            if !path.starts_with('/') {
                bail!(
                    "replica URL {arg:?}: a file URL needs an absolute path, e.g. file:///var/backups/app"
                );
            }
            let path = percent_decode(path)
                .with_context(|| format!("replica URL {arg:?}: bad percent-encoding"))?;
            Ok(Box::new(DirReplica::new(path)))
        }
        "s3" | "gs" | "abs" => Ok(Box::new(ReplicaClient::from_url(arg)?)),
        "oss" | "sftp" | "webdav" | "webdavs" | "nats" => bail!(
            "replica URL {arg:?}: {scheme}:// replicas are not supported by walcast-restore yet; \
             copy the replica to a directory and restore from file:///that/dir"
        ),
        _ => bail!(
            "replica URL {arg:?}: unknown scheme {scheme:?}; use s3://, gs://, abs://, file:///dir or a directory path"
        ),
    }
}

/// Decodes `%XX` escapes; anything else is kept as is.
fn percent_decode(text: &str) -> anyhow::Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .with_context(|| format!("'%' at byte {i} is not followed by two hex digits"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).context("the decoded path is not UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_urls_and_paths_are_directory_replicas() {
        assert_eq!(open("file:///var/r").unwrap().describe(), "/var/r");
        assert_eq!(open("file://localhost/var/r").unwrap().describe(), "/var/r");
        assert_eq!(open("file:///a%20b").unwrap().describe(), "/a b");
        assert_eq!(open("backups/app").unwrap().describe(), "backups/app");
        assert!(!is_url("backups/app"));
        assert!(is_url("s3://bucket/x"));
    }

    #[test]
    fn object_store_urls_are_clients() {
        let s3 = open("s3://bucket/app?endpoint=http://127.0.0.1:1&region=us-east-1").unwrap();
        assert_eq!(s3.describe(), "s3://bucket/app");
    }

    #[test]
    fn other_urls_are_refused_with_a_reason() {
        let msg = |arg: &str| format!("{:#}", open(arg).err().unwrap());
        assert!(msg("sftp://h/p").contains("not supported"));
        assert!(msg("s3:///p").contains("bucket"), "{}", msg("s3:///p"));
        assert!(msg("ftp://b/p").contains("unknown scheme"));
        assert!(msg("file://host/p").contains("absolute path"));
        assert!(msg("file:///a%2").contains("percent"));
        assert!(msg("file:///a%ff").contains("UTF-8"));
        assert!(open("").is_err());
    }
}
