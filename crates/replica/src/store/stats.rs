//! Counts of what a replica client asked of its store, by kind of operation (PUT, GET, HEAD,
//! LIST, DELETE): requests sent (every attempt, retries included, so the figures are what
//! the store bills), requests that failed or timed out, bytes moved, and time spent.
//! Metrics (`litestream_replica_operation_*`-style) and benchmarks read them.
//!
//! This module only counts: lock-free, never blocking a request, never deciding anything.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A kind of store operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Uploads.
    Put,
    /// Downloads (whole objects, streams and resumed ranges).
    Get,
    /// Metadata reads.
    Head,
    /// Listings (one per request; a long listing takes several).
    List,
    /// Deletions.
    Delete,
}

impl Operation {
    /// Every kind, in a fixed order.
    pub const ALL: [Operation; 5] = [
        Operation::Put,
        Operation::Get,
        Operation::Head,
        Operation::List,
        Operation::Delete,
    ];

    /// The name metrics use: `PUT`, `GET`, `HEAD`, `LIST`, `DELETE`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Put => "PUT",
            Operation::Get => "GET",
            Operation::Head => "HEAD",
            Operation::List => "LIST",
            Operation::Delete => "DELETE",
        }
    }

    fn index(self) -> usize {
        match self {
            Operation::Put => 0,
            Operation::Get => 1,
            Operation::Head => 2,
            Operation::List => 3,
            Operation::Delete => 4,
        }
    }
}

/// The counts of one kind of operation so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OperationCounts {
    /// Requests sent, retries included.
    pub requests: u64,
    /// Requests that failed or timed out (including answers such as "not found").
    pub errors: u64,
    /// Body bytes uploaded (PUT) or downloaded (GET).
    pub bytes: u64,
    /// Time spent in requests.
    pub duration: Duration,
}

/// The counters of one replica client, shared by its clones and readers.
#[derive(Debug, Default)]
pub struct ReplicaStats {
    counters: [Counter; 5],
}

#[derive(Debug, Default)]
struct Counter {
    requests: AtomicU64,
    errors: AtomicU64,
    bytes: AtomicU64,
    micros: AtomicU64,
}

impl ReplicaStats {
    /// The counts of `operation` so far.
    pub fn get(&self, operation: Operation) -> OperationCounts {
        let c = &self.counters[operation.index()];
        OperationCounts {
            requests: c.requests.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            bytes: c.bytes.load(Ordering::Relaxed),
            duration: Duration::from_micros(c.micros.load(Ordering::Relaxed)),
        }
    }

    /// One request of `operation` that took `took` and succeeded or not.
    pub(crate) fn request(&self, operation: Operation, took: Duration, ok: bool) {
        let c = &self.counters[operation.index()];
        c.requests.fetch_add(1, Ordering::Relaxed);
        if !ok {
            c.errors.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        c.micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// `bytes` moved by `operation`.
    pub(crate) fn bytes(&self, operation: Operation, bytes: u64) {
        self.counters[operation.index()]
            .bytes
            .fetch_add(bytes, Ordering::Relaxed);
    }
}
