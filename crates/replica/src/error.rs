//! Errors of replica operations. Each names the file or object and what walcast was doing.

use std::io;
use std::path::{Path, PathBuf};

/// Why a replica operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    /// An I/O error on a replica file or directory.
    #[error("{}: {operation}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What walcast was doing.
        operation: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// Reading an object's bytes failed.
    #[error("{object}: cannot read: {source}")]
    ObjectRead {
        /// The object, as [`crate::ReplicaSource::describe_object`] names it.
        object: String,
        /// The I/O error.
        source: io::Error,
    },
    /// An object's LTX header is not valid: the object is damaged or not an LTX file.
    #[error("{object}: not a valid LTX file: {detail}")]
    BadHeader {
        /// The object, as [`crate::ReplicaSource::describe_object`] names it.
        object: String,
        /// What is wrong, with the byte offset.
        detail: String,
    },
    /// The file is not in the replica.
    #[error("{}: not in the replica (deleted by retention, or never written)", path.display())]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// A replica client request failed (an object missing, the store unreachable, …); the
    /// message names the object (`s3://bucket/key`).
    #[error(transparent)]
    Store(Box<crate::store::StoreError>),
    /// A file of that name already exists with other contents: another writer (a second
    /// walcast or Litestream) is replicating into the same replica.
    #[error(
        "{}: already exists with other contents; is another process replicating to the same replica?",
        path.display()
    )]
    Conflict {
        /// The path.
        path: PathBuf,
    },
}

impl ReplicaError {
    pub(crate) fn io(path: &Path, operation: &'static str, source: io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            operation,
            source,
        }
    }
}
