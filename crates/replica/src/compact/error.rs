//! Errors of compaction, snapshots and retention. Each names the replica object or
//! staging file involved and what to do; the client, codec or I/O error is the source.
//!
//! This module only describes failures; it never retries or deletes anything.

use std::io;
use std::path::PathBuf;

use walcast_ltx::{DecodeError, MergeError};

use crate::plan::PlanError;
use crate::store::StoreError;

/// Why a compaction step failed. Nothing is deleted after a failed step: every output is
/// durable before any input is removed, so the replica stays restorable and the next
/// [`crate::compact::Compactor::run_due`] tries again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompactError {
    /// The schedule is not usable.
    #[error("compaction schedule: {detail}")]
    Schedule {
        /// What is wrong.
        detail: String,
    },
    /// A request to the replica failed (listing, reading, writing or deleting an object).
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Merging the inputs failed (a damaged input, or inputs that do not chain).
    #[error(
        "merging {inputs} into {output} failed: {source}; the inputs stay in place, check the \
         named input with `walcast-restore ltx`"
    )]
    Merge {
        /// The input objects, oldest first (the merge error's index points into them).
        inputs: String,
        /// The object being built.
        output: String,
        /// The merge error.
        source: MergeError,
    },
    /// An object's LTX header could not be read (needed for its timestamp).
    #[error("{object}: cannot read its LTX header: {detail}; the object may be damaged")]
    Header {
        /// The object.
        object: String,
        /// What went wrong.
        detail: String,
    },
    /// An object of the output's name exists with other bytes and does not verify as an
    /// LTX file of that TXID range.
    #[error(
        "{object}: already exists with other contents and is not a valid LTX file of that \
         TXID range ({detail}); is another process writing to this replica? Remove the \
         object only if nothing else replicates here"
    )]
    ConflictingOutput {
        /// The object.
        object: String,
        /// Why the existing object was not accepted.
        detail: String,
    },
    /// The restore plan that a snapshot is built from cannot be made.
    #[error("cannot plan the snapshot of the replica: {0}")]
    Plan(#[from] PlanError),
    /// An internal rule was broken: a bug in walcast, not a problem of the replica.
    #[error("compaction: {detail}; this is a bug in walcast, please report it")]
    Bug {
        /// What went wrong.
        detail: String,
    },
    /// A local staging file or directory failed.
    #[error("{}: {operation}: {source}; check the staging directory's space and permissions", path.display())]
    Staging {
        /// The file or directory.
        path: PathBuf,
        /// What walcast was doing.
        operation: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

impl CompactError {
    /// True when the next run could succeed without anyone acting (the store was
    /// unreachable, overloaded or slow); false for a damaged object, a conflict, a broken
    /// chain of TXIDs or a local staging problem, which need a person (log them loudly).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Store(e) => e.is_transient(),
            _ => false,
        }
    }

    pub(crate) fn staging(
        path: &std::path::Path,
        operation: &'static str,
        source: io::Error,
    ) -> Self {
        Self::Staging {
            path: path.to_owned(),
            operation,
            source,
        }
    }

    pub(crate) fn header(object: String, error: impl std::fmt::Display) -> Self {
        Self::Header {
            object,
            detail: error.to_string(),
        }
    }

    pub(crate) fn conflicting(object: String, error: &DecodeError) -> Self {
        Self::ConflictingOutput {
            object,
            detail: error.to_string(),
        }
    }
}
