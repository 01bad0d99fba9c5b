//! Replica URLs, spelled as Litestream 0.5 spells them, parsed into a [`ReplicaTarget`]:
//!
//! ```text
//! file:///var/lib/app-replica      (or a plain path: /var/lib/app-replica)
//! s3://BUCKET/PATH?endpoint=http://127.0.0.1:9000&region=us-east-1&force-path-style=true
//! gs://BUCKET/PATH
//! abs://[ACCOUNT@]CONTAINER/PATH
//! ```
//!
//! S3 query parameters: `endpoint` (a bare host gets `https://`), `region`, and
//! `force-path-style` (Litestream's docs also spell it `forcePathStyle`; both are accepted)
//! with `true`/`false`. Any other parameter is an error that names it, so a typo never
//! silently changes where backups go. Litestream's guessing of provider endpoints from
//! hostnames (`s3://bucket.localhost:9000`) is not supported: give `endpoint` instead.
//!
//! This module only parses; it never reads the environment or touches storage.
//!
//! ```
//! use walcast_replica::ReplicaTarget;
//! let target = ReplicaTarget::parse_url(
//!     "s3://backups/app?endpoint=http://127.0.0.1:9000&forcePathStyle=true",
//! ).unwrap();
//! assert_eq!(target.to_string(), "s3://backups/app");
//! ```

use std::path::PathBuf;

use url::Url;

use crate::target::{
    AzureTarget, GcsTarget, ReplicaTarget, S3Target, SUPPORTED_TYPES, TargetError, trim_path,
};

const S3_PARAMETERS: &str = "endpoint, region, force-path-style";

impl ReplicaTarget {
    /// Parses a replica URL (see the module docs).
    pub fn parse_url(input: &str) -> Result<Self, TargetError> {
        if !input.contains("://") {
            if input.is_empty() {
                return Err(TargetError::url(input, "is empty"));
            }
            return Ok(ReplicaTarget::File(PathBuf::from(input)));
        }
        let url = Url::parse(input).map_err(|e| TargetError::url(input, e.to_string()))?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let path = trim_path(&percent_decoded(input, url.path())?);
        match url.scheme() {
            "file" => {
                if !host.is_empty() && host != "localhost" {
                    return Err(TargetError::url(
                        input,
                        "a file URL has no host; write file:///absolute/path",
                    ));
                }
                no_query(input, &url)?;
                let dir = url.to_file_path().map_err(|()| {
                    TargetError::url(
                        input,
                        "is not an absolute path; write file:///absolute/path",
                    )
                })?;
                Ok(ReplicaTarget::File(dir))
            }
            "s3" => parse_s3(input, &url, host, path).map(ReplicaTarget::S3),
            "gs" => {
                need_bucket(input, &host, "gs://BUCKET/PATH")?;
                no_query(input, &url)?;
                Ok(ReplicaTarget::Gcs(GcsTarget { bucket: host, path }))
            }
            "abs" => {
                need_bucket(input, &host, "abs://[ACCOUNT@]CONTAINER/PATH")?;
                no_query(input, &url)?;
                let account = Some(url.username().to_owned()).filter(|a| !a.is_empty());
                Ok(ReplicaTarget::Azure(AzureTarget {
                    account,
                    container: host,
                    path,
                }))
            }
            other => Err(TargetError::url(
                input,
                format!("scheme `{other}` is not supported; use one of {SUPPORTED_TYPES}"),
            )),
        }
    }
}

fn parse_s3(input: &str, url: &Url, bucket: String, path: String) -> Result<S3Target, TargetError> {
    need_bucket(input, &bucket, "s3://BUCKET/PATH")?;
    let mut target = S3Target {
        bucket,
        path,
        ..S3Target::default()
    };
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "endpoint" => {
                let endpoint = if value.contains("://") {
                    value.into_owned()
                } else {
                    format!("https://{value}")
                };
                target.endpoint = Some(endpoint);
            }
            "region" => target.region = Some(value.into_owned()),
            "force-path-style" | "forcePathStyle" => {
                target.force_path_style = match value.as_ref() {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(TargetError::url(
                            input,
                            format!("`{key}={other}`: write true or false"),
                        ));
                    }
                }
            }
            other => {
                return Err(TargetError::url(
                    input,
                    format!("query parameter `{other}` is not supported; s3 takes {S3_PARAMETERS}"),
                ));
            }
        }
    }
    Ok(target)
}

fn need_bucket(input: &str, host: &str, form: &str) -> Result<(), TargetError> {
    if host.is_empty() {
        return Err(TargetError::url(
            input,
            format!("names no bucket; write {form}"),
        ));
    }
    Ok(())
}

fn no_query(input: &str, url: &Url) -> Result<(), TargetError> {
    match url.query_pairs().next() {
        Some((key, _)) => Err(TargetError::url(
            input,
            format!(
                "query parameter `{key}` is not supported for {} replicas",
                url.scheme()
            ),
        )),
        None => Ok(()),
    }
}

fn percent_decoded(input: &str, path: &str) -> Result<String, TargetError> {
    percent_decode(path)
        .ok_or_else(|| TargetError::url(input, "path is not valid UTF-8 after percent-decoding"))
}

/// `%XX` sequences decoded; `None` if the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            let hex = std::str::from_utf8(&hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn litestream_spellings() {
        let both = [
            "s3://bkt/a/b/?endpoint=http://127.0.0.1:9000&region=us-east-1&force-path-style=true",
            "s3://bkt/a/b?endpoint=http://127.0.0.1:9000&region=us-east-1&forcePathStyle=true",
        ];
        for url in both {
            assert_eq!(
                ReplicaTarget::parse_url(url).unwrap(),
                ReplicaTarget::S3(S3Target {
                    bucket: "bkt".into(),
                    path: "a/b".into(),
                    endpoint: Some("http://127.0.0.1:9000".into()),
                    region: Some("us-east-1".into()),
                    force_path_style: true,
                }),
                "{url}"
            );
        }
        let bare = ReplicaTarget::parse_url("s3://bkt?endpoint=minio.local:9000").unwrap();
        let ReplicaTarget::S3(bare) = bare else {
            panic!("{bare:?}")
        };
        assert_eq!(bare.endpoint.as_deref(), Some("https://minio.local:9000"));
        assert_eq!(bare.path, "");
        assert_eq!(
            ReplicaTarget::parse_url("file:///var/lib/my%20replica").unwrap(),
            ReplicaTarget::File("/var/lib/my replica".into())
        );
        assert_eq!(
            ReplicaTarget::parse_url("relative/dir").unwrap(),
            ReplicaTarget::File("relative/dir".into())
        );
        assert_eq!(
            ReplicaTarget::parse_url("gs://b/p").unwrap(),
            ReplicaTarget::Gcs(GcsTarget {
                bucket: "b".into(),
                path: "p".into()
            })
        );
        assert_eq!(
            ReplicaTarget::parse_url("abs://acct@cont/x/y").unwrap(),
            ReplicaTarget::Azure(AzureTarget {
                account: Some("acct".into()),
                container: "cont".into(),
                path: "x/y".into()
            })
        );
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("s3://b/p?endpont=http://x", "`endpont` is not supported"),
            ("s3://b/p?force-path-style=yes", "write true or false"),
            ("s3:///p", "names no bucket"),
            ("ftp://b/p", "scheme `ftp` is not supported"),
            ("file://host/dir", "has no host"),
            ("gs://b/p?region=x", "`region` is not supported for gs"),
            ("", "is empty"),
        ];
        for (url, expected) in cases {
            let err = ReplicaTarget::parse_url(url).unwrap_err().to_string();
            assert!(err.contains(expected), "{url}: {err}");
        }
    }
}
