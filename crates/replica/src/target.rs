//! Where a replica lives: a directory, or a bucket/container and a path in one of the object
//! stores walcast supports, built from a replica URL ([`crate::url`]) or from a replica config
//! block ([`ReplicaConfig`], the `replica:` block of a Litestream-style YAML config).
//!
//! This module owns the rules that turn a config block into a [`ReplicaTarget`]: `type` and
//! the URL scheme must agree, fields set in the block win over what the URL says (as in
//! Litestream), an S3/GCS/ABS replica needs a bucket or container. It never reads the
//! environment, never opens a connection and never touches storage.

use std::fmt;
use std::path::PathBuf;

/// A replica's storage and the prefix of its objects in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaTarget {
    /// A local directory (`file:///dir`, or a plain path).
    File(PathBuf),
    /// Amazon S3 or an S3-compatible store (MinIO, R2, B2, Tigris, …).
    S3(S3Target),
    /// Google Cloud Storage.
    Gcs(GcsTarget),
    /// Azure Blob Storage.
    Azure(AzureTarget),
}

/// An S3 (or S3-compatible) replica.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct S3Target {
    /// The bucket.
    pub bucket: String,
    /// The prefix inside the bucket, without leading or trailing `/` (may be empty).
    pub path: String,
    /// Endpoint of an S3-compatible store (`http://127.0.0.1:9000`, `https://…r2.cloudflarestorage.com`);
    /// `None` for AWS itself.
    pub endpoint: Option<String>,
    /// Region; `None` means the environment's (`AWS_REGION`), else `us-east-1`.
    pub region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`) instead of virtual-hosted style
    /// (`bucket.endpoint/key`); MinIO, B2 and most self-hosted stores need it.
    pub force_path_style: bool,
}

/// A Google Cloud Storage replica.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcsTarget {
    /// The bucket.
    pub bucket: String,
    /// The prefix inside the bucket, without leading or trailing `/` (may be empty).
    pub path: String,
}

/// An Azure Blob Storage replica.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AzureTarget {
    /// The storage account; `None` means the environment's (`AZURE_STORAGE_ACCOUNT_NAME`).
    pub account: Option<String>,
    /// The container.
    pub container: String,
    /// The prefix inside the container, without leading or trailing `/` (may be empty).
    pub path: String,
}

/// A replica config block as a YAML config parser fills it: Litestream's per-replica keys
/// that walcast supports. Every field is optional; [`ReplicaTarget::from_config`] checks
/// that they add up to one replica.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// `type`: `file`, `s3`, `gs` or `abs`. Defaults to the URL's scheme, or `file` when
    /// only `path` is given.
    pub kind: Option<String>,
    /// `url`: a replica URL ([`crate::url`]).
    pub url: Option<String>,
    /// `path`: the directory (file) or the prefix inside the bucket (others).
    pub path: Option<String>,
    /// `bucket`: the bucket (s3, gs) or container (abs).
    pub bucket: Option<String>,
    /// `endpoint`: an S3-compatible endpoint.
    pub endpoint: Option<String>,
    /// `region`: the S3 region.
    pub region: Option<String>,
    /// `force-path-style`: path-style S3 requests.
    pub force_path_style: Option<bool>,
}

/// Why a replica URL or config block does not name a replica. The message names the URL
/// or key and says what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// The URL cannot be used; `reason` says why and what to write.
    #[error("replica URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong and what to write instead.
        reason: String,
    },
    /// The config block cannot be used; `reason` names the key.
    #[error("replica config: {reason}")]
    Config {
        /// What is wrong, naming the key.
        reason: String,
    },
}

impl TargetError {
    pub(crate) fn url(url: &str, reason: impl Into<String>) -> Self {
        Self::Url {
            url: url.to_owned(),
            reason: reason.into(),
        }
    }

    fn config(reason: impl Into<String>) -> Self {
        Self::Config {
            reason: reason.into(),
        }
    }
}

/// The replica types walcast supports, as the `type` key and URL schemes spell them.
pub const SUPPORTED_TYPES: &str = "file, s3, gs, abs";

impl ReplicaTarget {
    /// The target a config block names (Litestream's rules: block fields win over the URL's).
    pub fn from_config(config: &ReplicaConfig) -> Result<Self, TargetError> {
        let from_url = config.url.as_deref().map(Self::parse_url).transpose()?;
        let kind = match (config.kind.as_deref(), &from_url) {
            (Some(kind), Some(url)) if kind != url.kind() => {
                return Err(TargetError::config(format!(
                    "`type: {kind}` does not match the `url` scheme `{}`; remove `type` or fix the url",
                    url.kind()
                )));
            }
            (Some(kind), _) => kind.to_owned(),
            (None, Some(url)) => url.kind().to_owned(),
            (None, None) if config.path.is_some() => "file".to_owned(),
            (None, None) => {
                return Err(TargetError::config(
                    "needs a `url`, or a `type` with `path`/`bucket` (e.g. `url: s3://bucket/path`)",
                ));
            }
        };
        let path = config.path.as_deref().map(trim_path);
        let bucket = config.bucket.clone();
        let target = match (kind.as_str(), from_url) {
            ("file", url) => {
                let dir = match (&config.path, url) {
                    (Some(p), _) => PathBuf::from(p),
                    (None, Some(ReplicaTarget::File(dir))) => dir,
                    _ => {
                        return Err(TargetError::config(
                            "`type: file` needs a `path` or a `url`",
                        ));
                    }
                };
                ReplicaTarget::File(dir)
            }
            ("s3", url) => {
                let mut t = match url {
                    Some(ReplicaTarget::S3(t)) => t,
                    _ => S3Target::default(),
                };
                set(&mut t.bucket, bucket);
                set(&mut t.path, path);
                t.endpoint = config.endpoint.clone().or(t.endpoint);
                t.region = config.region.clone().or(t.region);
                t.force_path_style = config.force_path_style.unwrap_or(t.force_path_style);
                ReplicaTarget::S3(t)
            }
            ("gs", url) => {
                let mut t = match url {
                    Some(ReplicaTarget::Gcs(t)) => t,
                    _ => GcsTarget::default(),
                };
                set(&mut t.bucket, bucket);
                set(&mut t.path, path);
                ReplicaTarget::Gcs(t)
            }
            ("abs", url) => {
                let mut t = match url {
                    Some(ReplicaTarget::Azure(t)) => t,
                    _ => AzureTarget::default(),
                };
                set(&mut t.container, bucket);
                set(&mut t.path, path);
                ReplicaTarget::Azure(t)
            }
            (other, _) => {
                return Err(TargetError::config(format!(
                    "`type: {other}` is not supported; use one of {SUPPORTED_TYPES}"
                )));
            }
        };
        target.check_config(config)?;
        Ok(target)
    }

    /// The scheme / `type` of this target: `file`, `s3`, `gs` or `abs`.
    pub fn kind(&self) -> &'static str {
        match self {
            ReplicaTarget::File(_) => "file",
            ReplicaTarget::S3(_) => "s3",
            ReplicaTarget::Gcs(_) => "gs",
            ReplicaTarget::Azure(_) => "abs",
        }
    }

    fn check_config(&self, config: &ReplicaConfig) -> Result<(), TargetError> {
        let s3_only = [
            ("endpoint", config.endpoint.is_some()),
            ("region", config.region.is_some()),
            ("force-path-style", config.force_path_style.is_some()),
        ];
        if !matches!(self, ReplicaTarget::S3(_))
            && let Some((key, _)) = s3_only.iter().find(|(_, set)| *set)
        {
            return Err(TargetError::config(format!(
                "`{key}` applies to s3 replicas only, not to `{}`",
                self.kind()
            )));
        }
        let missing_bucket = match self {
            ReplicaTarget::File(_) => false,
            ReplicaTarget::S3(t) => t.bucket.is_empty(),
            ReplicaTarget::Gcs(t) => t.bucket.is_empty(),
            ReplicaTarget::Azure(t) => t.container.is_empty(),
        };
        if missing_bucket {
            return Err(TargetError::config(format!(
                "a `{}` replica needs a `bucket` (or a url such as `{}://BUCKET/PATH`)",
                self.kind(),
                self.kind()
            )));
        }
        Ok(())
    }
}

fn set(field: &mut String, value: Option<String>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// A prefix without leading/trailing slashes or empty segments.
pub(crate) fn trim_path(path: &str) -> String {
    path.split('/')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

impl fmt::Display for ReplicaTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |bucket: &str, path: &str| {
            if path.is_empty() {
                bucket.to_owned()
            } else {
                format!("{bucket}/{path}")
            }
        };
        match self {
            ReplicaTarget::File(dir) => write!(f, "file://{}", dir.display()),
            ReplicaTarget::S3(t) => write!(f, "s3://{}", join(&t.bucket, &t.path)),
            ReplicaTarget::Gcs(t) => write!(f, "gs://{}", join(&t.bucket, &t.path)),
            ReplicaTarget::Azure(t) => match &t.account {
                Some(account) => write!(f, "abs://{account}@{}", join(&t.container, &t.path)),
                None => write!(f, "abs://{}", join(&t.container, &t.path)),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ReplicaConfig {
        ReplicaConfig::default()
    }

    #[test]
    fn block_fields_win_over_the_url() {
        let target = ReplicaTarget::from_config(&ReplicaConfig {
            url: Some("s3://from-url/a/b?region=eu-west-1".into()),
            path: Some("/db/one/".into()),
            endpoint: Some("http://127.0.0.1:9000".into()),
            force_path_style: Some(true),
            ..config()
        })
        .unwrap();
        assert_eq!(
            target,
            ReplicaTarget::S3(S3Target {
                bucket: "from-url".into(),
                path: "db/one".into(),
                endpoint: Some("http://127.0.0.1:9000".into()),
                region: Some("eu-west-1".into()),
                force_path_style: true,
            })
        );
        assert_eq!(target.to_string(), "s3://from-url/db/one");
    }

    #[test]
    fn typed_blocks_without_url() {
        let s3 = ReplicaTarget::from_config(&ReplicaConfig {
            kind: Some("s3".into()),
            bucket: Some("b".into()),
            path: Some("p".into()),
            ..config()
        })
        .unwrap();
        assert_eq!(s3.kind(), "s3");
        let file = ReplicaTarget::from_config(&ReplicaConfig {
            path: Some("/var/replica".into()),
            ..config()
        })
        .unwrap();
        assert_eq!(file, ReplicaTarget::File("/var/replica".into()));
        let abs = ReplicaTarget::from_config(&ReplicaConfig {
            kind: Some("abs".into()),
            bucket: Some("container".into()),
            ..config()
        })
        .unwrap();
        assert_eq!(abs.to_string(), "abs://container");
    }

    #[test]
    fn bad_blocks_name_the_key() {
        let cases = [
            (
                ReplicaConfig {
                    kind: Some("s3".into()),
                    path: Some("p".into()),
                    ..config()
                },
                "needs a `bucket`",
            ),
            (
                ReplicaConfig {
                    kind: Some("sftp".into()),
                    ..config()
                },
                "`type: sftp` is not supported",
            ),
            (
                ReplicaConfig {
                    kind: Some("gs".into()),
                    url: Some("s3://b/p".into()),
                    ..config()
                },
                "does not match",
            ),
            (
                ReplicaConfig {
                    url: Some("gs://b/p".into()),
                    endpoint: Some("http://x".into()),
                    ..config()
                },
                "`endpoint` applies to s3 replicas only",
            ),
            (config(), "needs a `url`"),
        ];
        for (block, expected) in cases {
            let err = ReplicaTarget::from_config(&block).unwrap_err().to_string();
            assert!(err.contains(expected), "{block:?}: {err}");
        }
    }
}
