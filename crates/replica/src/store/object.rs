//! An LTX replica in an object store (S3 and compatibles, GCS, Azure Blob), async, over
//! object_store, with the object keys Litestream uses on that backend
//! ([`crate::store::keys`]).
//!
//! Invariants:
//! - [`ObjectReplica::put`] is one whole-object PUT: a reader sees the complete object or
//!   nothing. It is conditional (`If-None-Match: *`, object_store's `PutMode::Create`), so it
//!   never replaces an existing object; when the name is taken, the stored bytes are compared
//!   with ours: equal is a retried upload ([`PutOutcome::AlreadyPresent`]), different is a
//!   [`StoreError::Conflict`]. This is what makes retrying a PUT whose answer was lost safe.
//! - The LTX header's timestamp goes into the object's user metadata as Litestream writes it
//!   (`litestream-timestamp`, RFC 3339 with nanoseconds, on S3 and GCS;
//!   `litestreamtimestamp` on Azure), so Litestream's `-timestamp` restores can use it.
//! - Listings return only `<min>-<max>.ltx` objects directly under the level's prefix, in
//!   TXID order; anything else there (other tools' files, uploads of other names) is ignored.
//! - Every request follows [`RetryPolicy`] ([`crate::store::retry`]).
//!
//! This type never buffers more than the object being put, never deletes anything but the
//! object it is asked to, and never touches local files.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    Attribute, AttributeValue, Attributes, GetOptions, GetRange, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMode, PutOptions, PutPayload,
};
use walcast_ltx::{HEADER_SIZE, Header, LtxFileName, TxId, rfc3339_millis};

use crate::dir::PutOutcome;
use crate::layout::{Level, ReplicaLayout};
use crate::store::LtxObject;
use crate::store::connect::Connected;
use crate::store::error::{StoreError, hint};
use crate::store::keys::ObjectLayout;
use crate::store::probe::{Unreachable, probe};
use crate::store::retry::{Counted, GaveUp, RetryPolicy, retry, retry_within};
use crate::store::stats::{Operation, ReplicaStats};

/// An LTX replica in an object store (see the module docs).
#[derive(Clone, Debug)]
pub struct ObjectReplica {
    store: Arc<dyn ObjectStore>,
    bucket_url: String,
    prefix: String,
    timestamp_key: &'static str,
    layout: ObjectLayout,
    endpoint: String,
    container: &'static str,
    policy: RetryPolicy,
    stats: Arc<ReplicaStats>,
}

/// A streamed object body.
pub type ObjectStream = BoxStream<'static, object_store::Result<Bytes>>;

/// An object body being streamed, and what is needed to resume it after a cut.
pub struct ObjectBody {
    /// The bytes from the requested offset on.
    pub stream: ObjectStream,
    /// The whole object's size.
    pub size: u64,
    /// The object's version tag, if the store gives one.
    pub e_tag: Option<String>,
}

impl std::fmt::Debug for ObjectBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectBody")
            .field("size", &self.size)
            .field("e_tag", &self.e_tag)
            .finish_non_exhaustive()
    }
}

impl ObjectReplica {
    pub(crate) fn new(connected: Connected, policy: RetryPolicy) -> Self {
        Self {
            store: connected.store,
            bucket_url: connected.bucket_url,
            prefix: connected.prefix,
            timestamp_key: connected.timestamp_key,
            layout: connected.layout,
            endpoint: connected.endpoint,
            container: connected.container,
            policy,
            stats: Arc::default(),
        }
    }

    /// The object key of one file (`<path>/0009/<min>-<max>.ltx` on S3).
    pub fn key(&self, level: Level, name: LtxFileName) -> String {
        self.under_prefix(&self.layout.file_path(level, name))
    }

    /// How this backend names level directories.
    pub fn layout(&self) -> ObjectLayout {
        self.layout
    }

    /// The object's full name for messages: `s3://bucket/<key>`.
    pub fn location(&self, level: Level, name: LtxFileName) -> String {
        format!("{}/{}", self.bucket_url, self.key(level, name))
    }

    fn under_prefix(&self, relative: &str) -> String {
        if self.prefix.is_empty() {
            relative.to_owned()
        } else {
            format!("{}/{relative}", self.prefix)
        }
    }

    fn failed(&self, location: String, operation: &'static str, gave_up: GaveUp) -> StoreError {
        match gave_up {
            GaveUp::Failed {
                error: object_store::Error::NotFound { .. },
                ..
            } => StoreError::Missing { location },
            GaveUp::Failed { attempts, error } => StoreError::Request {
                location,
                operation,
                attempts,
                hint: hint(&error),
                source: Box::new(error),
            },
            GaveUp::TimedOut { attempts, timeout } => StoreError::TimedOut {
                location,
                operation,
                attempts,
                timeout_secs: timeout.as_secs(),
            },
        }
    }

    /// Where this replica's requests go, for messages (`http://127.0.0.1:9000`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The startup check ([`crate::store::probe`]): one LIST under the replica's prefix,
    /// short deadline, no long retries. `Ok` when the store answered (even with nothing
    /// listed, or busy); [`StoreError::Unreachable`] naming the endpoint and what to do
    /// otherwise.
    pub async fn check_reachable(&self) -> Result<(), StoreError> {
        let prefix = (!self.prefix.is_empty()).then(|| Path::from(self.prefix.as_str()));
        let started = std::time::Instant::now();
        let result = probe(self.container, || async {
            // The first page of the listing is one request; its first entry is enough.
            match self.store.list(prefix.as_ref()).next().await {
                Some(Err(error)) => Err(error),
                Some(Ok(_)) | None => Ok(()),
            }
        })
        .await;
        self.stats
            .request(Operation::List, started.elapsed(), result.is_ok());
        result.map_err(|Unreachable { reason, hint }| StoreError::Unreachable {
            target: self.target_url(),
            endpoint: self.endpoint.clone(),
            reason,
            hint,
        })
    }

    /// `s3://bucket/prefix`, as the replica is named.
    fn target_url(&self) -> String {
        if self.prefix.is_empty() {
            self.bucket_url.clone()
        } else {
            format!("{}/{}", self.bucket_url, self.prefix)
        }
    }

    /// The LTX files of one level, in TXID order. An empty or missing level is empty.
    pub async fn list(&self, level: Level) -> Result<Vec<LtxObject>, StoreError> {
        let dir = self.under_prefix(&self.layout.level_dir(level));
        let prefix = Path::from(dir.as_str());
        let listed = retry(&self.policy, self.counted(Operation::List), || {
            self.store.list_with_delimiter(Some(&prefix))
        })
        .await
        .map_err(|e| self.failed(format!("{}/{dir}/", self.bucket_url), "list", e))?;
        let mut files: Vec<LtxObject> = listed
            .objects
            .iter()
            .filter_map(|meta| ltx_object(level, meta))
            .collect();
        files.sort_by_key(|f| f.name);
        Ok(files)
    }

    /// The LTX files of one level whose min TXID is above `after`, in TXID order. The store
    /// starts the listing there (S3 `start-after`), so the number of LIST requests depends
    /// on the files after `after`, not on every file the level holds.
    pub async fn list_after(
        &self,
        level: Level,
        after: TxId,
    ) -> Result<Vec<LtxObject>, StoreError> {
        let dir = self.under_prefix(&self.layout.level_dir(level));
        let prefix = Path::from(dir.as_str());
        // Names are fixed-width hex, so key order is TXID order, and every name with
        // min == after sorts at or below `<after>-ffffffffffffffff.ltx`.
        let offset = Path::from(format!("{dir}/{after}-ffffffffffffffff.ltx"));
        let listed = retry(&self.policy, self.counted(Operation::List), || {
            self.store
                .list_with_offset(Some(&prefix), &offset)
                .try_collect::<Vec<_>>()
        })
        .await
        .map_err(|e| self.failed(format!("{}/{dir}/", self.bucket_url), "list", e))?;
        let depth = prefix.parts_count() + 1;
        let mut files: Vec<LtxObject> = listed
            .iter()
            .filter(|meta| meta.location.parts_count() == depth)
            .filter_map(|meta| ltx_object(level, meta))
            .filter(|f| f.name.min > after)
            .collect();
        files.sort_by_key(|f| f.name);
        Ok(files)
    }

    /// Stores `bytes` as `level/name` unless an object of that name exists (see the module
    /// docs for what happens then).
    pub async fn put(
        &self,
        level: Level,
        name: LtxFileName,
        bytes: Bytes,
    ) -> Result<PutOutcome, StoreError> {
        let path = Path::from(self.key(level, name));
        let options = PutOptions {
            mode: PutMode::Create,
            attributes: self.attributes(&bytes),
            ..PutOptions::default()
        };
        let timeout = self.policy.put_timeout(bytes.len() as u64);
        let put = retry_within(&self.policy, timeout, self.counted(Operation::Put), || {
            self.store.put_opts(
                &path,
                PutPayload::from_bytes(bytes.clone()),
                options.clone(),
            )
        })
        .await;
        match put {
            Ok(_) => {
                self.stats.bytes(Operation::Put, bytes.len() as u64);
                Ok(PutOutcome::Written)
            }
            Err(GaveUp::Failed {
                error:
                    object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
                ..
            }) => {
                if self.get_bytes_within(level, name, timeout).await? == bytes {
                    Ok(PutOutcome::AlreadyPresent)
                } else {
                    Err(StoreError::Conflict {
                        location: self.location(level, name),
                    })
                }
            }
            Err(e) => Err(self.failed(self.location(level, name), "put", e)),
        }
    }

    /// Litestream's timestamp metadata, when `bytes` starts with a valid LTX header.
    fn attributes(&self, bytes: &[u8]) -> Attributes {
        let mut attributes = Attributes::new();
        let header = bytes
            .first_chunk::<HEADER_SIZE>()
            .and_then(|h| Header::decode(h).ok());
        if let Some(header) = header {
            attributes.insert(
                Attribute::Metadata(self.timestamp_key.into()),
                AttributeValue::from(rfc3339_nano(header.timestamp_ms)),
            );
        }
        attributes
    }

    /// Opens one object for streaming. A missing object is [`StoreError::Missing`].
    pub async fn get(&self, level: Level, name: LtxFileName) -> Result<ObjectStream, StoreError> {
        Ok(self.get_from(level, name, 0, None).await?.stream)
    }

    /// Opens one object for streaming from byte `offset`; with `e_tag`, only if the object
    /// is still that version (an object is never replaced, but may be deleted and written
    /// again by another process).
    pub async fn get_from(
        &self,
        level: Level,
        name: LtxFileName,
        offset: u64,
        e_tag: Option<String>,
    ) -> Result<ObjectBody, StoreError> {
        let path = Path::from(self.key(level, name));
        let options = GetOptions {
            range: (offset > 0).then_some(GetRange::Offset(offset)),
            if_match: e_tag,
            ..GetOptions::default()
        };
        let result = retry(&self.policy, self.counted(Operation::Get), || {
            self.store.get_opts(&path, options.clone())
        })
        .await
        .map_err(|e| self.failed(self.location(level, name), "get", e))?;
        Ok(ObjectBody {
            size: result.meta.size,
            e_tag: result.meta.e_tag.clone(),
            stream: result.into_stream(),
        })
    }

    /// What this replica's requests are counted in.
    pub fn stats(&self) -> &Arc<ReplicaStats> {
        &self.stats
    }

    fn counted(&self, operation: Operation) -> Counted<'_> {
        (&self.stats, operation)
    }

    /// The retry policy of this replica's requests.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// One whole object, read into memory (each attempt reads it entirely within the request
    /// timeout, so a body cut mid-way is retried; stream large objects with
    /// [`ObjectReplica::get_from`] instead).
    pub async fn get_bytes(&self, level: Level, name: LtxFileName) -> Result<Bytes, StoreError> {
        self.get_bytes_within(level, name, self.policy.request_timeout)
            .await
    }

    async fn get_bytes_within(
        &self,
        level: Level,
        name: LtxFileName,
        timeout: std::time::Duration,
    ) -> Result<Bytes, StoreError> {
        let path = Path::from(self.key(level, name));
        let bytes = retry_within(
            &self.policy,
            timeout,
            self.counted(Operation::Get),
            || async { self.store.get(&path).await?.bytes().await },
        )
        .await
        .map_err(|e| self.failed(self.location(level, name), "get", e))?;
        self.stats.bytes(Operation::Get, bytes.len() as u64);
        Ok(bytes)
    }

    /// The `litestream-timestamp` metadata of one object, if it has one.
    pub async fn timestamp(
        &self,
        level: Level,
        name: LtxFileName,
    ) -> Result<Option<String>, StoreError> {
        let path = Path::from(self.key(level, name));
        let options = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        let result = retry(&self.policy, self.counted(Operation::Head), || {
            self.store.get_opts(&path, options.clone())
        })
        .await
        .map_err(|e| self.failed(self.location(level, name), "head", e))?;
        Ok(result
            .attributes
            .get(&Attribute::Metadata(self.timestamp_key.into()))
            .map(|v| v.as_ref().to_owned()))
    }

    /// Removes one object. Removing a missing object is not an error.
    pub async fn delete(&self, level: Level, name: LtxFileName) -> Result<(), StoreError> {
        let path = Path::from(self.key(level, name));
        let counted = self.counted(Operation::Delete);
        match retry(&self.policy, counted, || self.store.delete(&path)).await {
            Ok(())
            | Err(GaveUp::Failed {
                error: object_store::Error::NotFound { .. },
                ..
            }) => Ok(()),
            Err(e) => Err(self.failed(self.location(level, name), "delete", e)),
        }
    }
}

/// Go's `time.RFC3339Nano` of a Unix-milliseconds time in UTC (trailing fractional zeros
/// dropped), as Litestream writes `litestream-timestamp`.
pub fn rfc3339_nano(ms: i64) -> String {
    let millis = rfc3339_millis(ms);
    match millis.strip_suffix('Z').and_then(|s| s.rsplit_once('.')) {
        Some((seconds, fraction)) => {
            let fraction = fraction.trim_end_matches('0');
            if fraction.is_empty() {
                format!("{seconds}Z")
            } else {
                format!("{seconds}.{fraction}Z")
            }
        }
        None => millis,
    }
}

/// A listed object as an LTX file of `level`, or `None` for anything else under the prefix.
fn ltx_object(level: Level, meta: &ObjectMeta) -> Option<LtxObject> {
    let name = meta
        .location
        .filename()
        .and_then(ReplicaLayout::parse_entry)?;
    Some(LtxObject {
        level,
        name,
        size: meta.size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_gos_rfc3339_nano() {
        assert_eq!(rfc3339_nano(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_nano(1_500), "1970-01-01T00:00:01.5Z");
        assert_eq!(rfc3339_nano(1_764_489_600_123), "2025-11-30T08:00:00.123Z");
    }
}
