//! Replicas: where LTX files live and how they get there and back.
//!
//! This crate owns the Litestream-compatible object layout for every backend, the
//! object_store clients built from URLs and config blocks, uploads and downloads with
//! retries, compaction levels, snapshots, retention and restore planning.
//!
//! It must never read the live database or take locks, and never make a partially
//! written object visible.

#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod dir;
mod error;
pub mod layout;
pub mod plan;
pub mod rfc3339;
pub mod source;

pub use dir::{DirReplica, PutOutcome};
pub use error::ReplicaError;
pub use layout::{Level, ReplicaLayout};
pub mod store;
pub mod target;
pub mod url;

pub use plan::{Catalog, PlanError, ReplicaFile, RestorePlan, RestoreTarget, Timestamps};
pub use source::{ObjectInfo, ObjectReader, ReplicaSource};
pub use store::{
    ClientSettings, Env, LtxObject, LtxReader, ObjectLayout, ObjectReplica, Operation,
    OperationCounts, ReplicaClient, ReplicaStats, RetryPolicy, StoreError,
};
pub use target::{AzureTarget, GcsTarget, ReplicaConfig, ReplicaTarget, S3Target, TargetError};
pub mod compact;

/// Entry points for the cargo-fuzz targets in `fuzz/` (not part of the API).
#[doc(hidden)]
pub mod fuzzing {
    /// RFC 3339 timestamps from `-timestamp` and object metadata.
    pub fn rfc3339(data: &[u8]) {
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = crate::rfc3339::parse_millis(text);
        }
    }
}
