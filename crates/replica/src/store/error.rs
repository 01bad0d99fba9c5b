//! Errors of replica clients ([`crate::store`]). Every message names the replica object
//! (`s3://bucket/key`, or the file) and says what to do; the underlying object_store or
//! I/O error is kept as the source.
//!
//! This module only describes failures; it never decides whether to retry (see
//! [`crate::store::retry`]).

use std::io;

use crate::error::ReplicaError;
use crate::target::TargetError;

/// Why a replica client could not be built or an operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL or config block does not name a usable replica.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// The object store client could not be built from the target and environment.
    #[error("{target}: cannot set up the {kind} client: {source}; {hint}")]
    Setup {
        /// The replica (`s3://bucket/path`).
        target: String,
        /// `s3`, `gs` or `abs`.
        kind: &'static str,
        /// What to check.
        hint: &'static str,
        /// object_store's reason.
        source: Box<object_store::Error>,
    },
    /// The client's own runtime could not be started.
    #[error("cannot start the replica client's runtime: {0}")]
    Runtime(#[source] io::Error),
    /// A directory replica failed.
    #[error(transparent)]
    Dir(#[from] ReplicaError),
    /// The object is not in the replica.
    #[error("{location}: not in the replica (deleted by retention, or never written)")]
    Missing {
        /// The object (`s3://bucket/key`).
        location: String,
    },
    /// An object of that name already exists with other contents: another process
    /// (a second walcast, or Litestream) is replicating into the same place.
    #[error(
        "{location}: already exists with other contents; is another process replicating to the same replica?"
    )]
    Conflict {
        /// The object.
        location: String,
    },
    /// The store refused or failed the request, after retries where retrying made sense.
    #[error("{location}: {operation} failed after {attempts} attempt(s): {source}; {hint}")]
    Request {
        /// The object or prefix.
        location: String,
        /// What walcast was doing (`put`, `list`, `get`, `delete`).
        operation: &'static str,
        /// How many times it was tried.
        attempts: u32,
        /// What to check.
        hint: &'static str,
        /// object_store's error.
        source: Box<object_store::Error>,
    },
    /// No attempt finished within the request timeout.
    #[error(
        "{location}: {operation} timed out {attempts} time(s) after {timeout_secs}s each; check that the endpoint is reachable"
    )]
    TimedOut {
        /// The object or prefix.
        location: String,
        /// What walcast was doing.
        operation: &'static str,
        /// How many attempts timed out.
        attempts: u32,
        /// The per-attempt timeout in seconds.
        timeout_secs: u64,
    },
    /// The startup check ([`crate::ReplicaClient::check_reachable`]) found the store
    /// unreachable, or refusing the replica (no such bucket, access denied).
    #[error("{target}: cannot use the replica at {endpoint}: {reason}; {hint}")]
    Unreachable {
        /// The replica (`s3://bucket/path`).
        target: String,
        /// The endpoint requests go to (`http://127.0.0.1:9000`, `https://s3.us-east-1.amazonaws.com`).
        endpoint: String,
        /// What went wrong, in a few words (`connection refused`, `the bucket does not exist`).
        reason: String,
        /// What to do.
        hint: &'static str,
    },
    /// Reading the source of a put failed (a local staged file).
    #[error("{location}: cannot read what to upload: {source}")]
    Source {
        /// The object being written.
        location: String,
        /// The I/O error.
        source: io::Error,
    },
}

impl StoreError {
    /// True when retrying later could succeed (the store was unreachable, overloaded or slow),
    /// as opposed to a bad config, missing object or conflict.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::TimedOut { .. } => true,
            StoreError::Request { source, .. } => crate::store::retry::is_transient(source),
            StoreError::Dir(ReplicaError::Io { .. }) => true,
            _ => false,
        }
    }
}

/// What to check when a request fails, from the kind of error.
pub(crate) fn hint(error: &object_store::Error) -> &'static str {
    const CREDENTIALS: &str = "check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or LITESTREAM_ACCESS_KEY_ID/LITESTREAM_SECRET_ACCESS_KEY) and the bucket's permissions";
    match crate::store::retry::http_status(error) {
        Some(401 | 403) => return CREDENTIALS,
        Some(404) => return "check that the bucket exists and its name is right",
        _ => {}
    }
    match error {
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => {
            "check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or LITESTREAM_ACCESS_KEY_ID/LITESTREAM_SECRET_ACCESS_KEY) and the bucket's permissions"
        }
        object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. } => {
            "this store does not support the operation (conditional puts need If-None-Match support)"
        }
        _ => "check the endpoint, the bucket name and that the bucket exists",
    }
}
