//! The read side of a replica, as restore, verify and listings need it: list the LTX
//! files of a level, open one as a byte stream, read its header timestamp, and name an
//! object for error messages.
//!
//! [`ReplicaSource`] is the seam between restore and the storage backends: the directory
//! replica and the [`ReplicaClient`] (every backend: file, s3, gs, abs) implement it here.
//!
//! This module must never write to a replica, never buffer a whole object, and never
//! trust a listed object's bytes: callers decode them with the LTX decoder, which
//! verifies checksums.

use std::io::Read;
use std::time::UNIX_EPOCH;

use walcast_ltx::{HEADER_SIZE, Header, LtxFileName};

use crate::dir::DirReplica;
use crate::error::ReplicaError;
use crate::layout::Level;
use crate::store::{ObjectLayout, ReplicaClient, StoreError};

/// One LTX object as a listing reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object's TXID range, from its name.
    pub name: LtxFileName,
    /// Size in bytes as the storage reports it.
    pub size: u64,
    /// Last-modified time in milliseconds since the Unix epoch, if the storage has one.
    /// Litestream sets it to the header timestamp on file replicas; other writers may not.
    pub modified_ms: Option<i64>,
}

/// A stream of one object's bytes.
pub type ObjectReader = Box<dyn Read + Send>;

/// What restore needs from a replica. Implementations must be usable from several
/// threads at once (restore reads several objects in parallel).
pub trait ReplicaSource: Send + Sync {
    /// The replica, as a user would name it (a directory path or URL).
    fn describe(&self) -> String;

    /// The LTX objects of one level, in TXID order. An absent level is an empty one.
    fn list(&self, level: Level) -> Result<Vec<ObjectInfo>, ReplicaError>;

    /// Opens one object for reading from its first byte.
    fn open(&self, level: Level, name: LtxFileName) -> Result<ObjectReader, ReplicaError>;

    /// How the replica names level directories (the directory layout unless overridden).
    fn layout(&self) -> ObjectLayout {
        ObjectLayout::LtxLevels
    }

    /// A quick check that the replica can be read at all (an object store answers, the
    /// bucket exists), failing in seconds with one clear message rather than after the
    /// retries of a listing. Nothing to check for a directory.
    fn check_reachable(&self) -> Result<(), ReplicaError> {
        Ok(())
    }

    /// One object, as a user would name it in an error message.
    fn describe_object(&self, level: Level, name: LtxFileName) -> String {
        format!(
            "{} in {}",
            self.layout().file_path(level, name),
            self.describe()
        )
    }

    /// The object's header timestamp (milliseconds since the Unix epoch): reads and
    /// validates its first 100 bytes. Backends that keep the timestamp as metadata may
    /// answer without reading the object.
    fn header_timestamp(&self, level: Level, name: LtxFileName) -> Result<i64, ReplicaError> {
        read_header_timestamp(self, level, name)
    }
}

/// Reads and validates the first 100 bytes of one object and returns its header timestamp.
fn read_header_timestamp<S: ReplicaSource + ?Sized>(
    source: &S,
    level: Level,
    name: LtxFileName,
) -> Result<i64, ReplicaError> {
    let mut raw = [0u8; HEADER_SIZE];
    let object = || source.describe_object(level, name);
    source
        .open(level, name)?
        .read_exact(&mut raw)
        .map_err(|source| ReplicaError::ObjectRead {
            object: object(),
            source,
        })?;
    let header = Header::decode(&raw).map_err(|e| ReplicaError::BadHeader {
        object: object(),
        detail: e.to_string(),
    })?;
    Ok(header.timestamp_ms)
}

impl ReplicaSource for DirReplica {
    fn describe(&self) -> String {
        self.root().display().to_string()
    }

    fn list(&self, level: Level) -> Result<Vec<ObjectInfo>, ReplicaError> {
        let names = DirReplica::list(self, level)?;
        let mut infos = Vec::with_capacity(names.len());
        for name in names {
            let path = self.path(level, name);
            // A file listed and then removed (retention running) is reported when opened.
            let Ok(meta) = std::fs::metadata(&path) else {
                infos.push(ObjectInfo {
                    name,
                    size: 0,
                    modified_ms: None,
                });
                continue;
            };
            let modified_ms = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .and_then(|d| i64::try_from(d.as_millis()).ok());
            infos.push(ObjectInfo {
                name,
                size: meta.len(),
                modified_ms,
            });
        }
        Ok(infos)
    }

    fn open(&self, level: Level, name: LtxFileName) -> Result<ObjectReader, ReplicaError> {
        Ok(Box::new(DirReplica::open(self, level, name)?))
    }

    fn describe_object(&self, level: Level, name: LtxFileName) -> String {
        self.path(level, name).display().to_string()
    }
}

impl From<StoreError> for ReplicaError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Dir(inner) => inner,
            other => ReplicaError::Store(Box::new(other)),
        }
    }
}

/// A client reads through its own listing and GETs; a body cut mid-way is resumed by the
/// client ([`crate::LtxReader`]). Listings carry no modification time (object stores'
/// last-modified is the upload time, not the LTX timestamp). Header timestamps come from
/// the `litestream-timestamp` metadata (a HEAD, no body) that Litestream and walcast
/// write from the header, as Litestream's own timestamp restores read them; an object
/// without it has its header read.
impl ReplicaSource for ReplicaClient {
    fn describe(&self) -> String {
        self.target().to_string()
    }

    fn list(&self, level: Level) -> Result<Vec<ObjectInfo>, ReplicaError> {
        Ok(ReplicaClient::list(self, level)?
            .into_iter()
            .map(|object| ObjectInfo {
                name: object.name,
                size: object.size,
                modified_ms: None,
            })
            .collect())
    }

    fn open(&self, level: Level, name: LtxFileName) -> Result<ObjectReader, ReplicaError> {
        Ok(Box::new(self.get(level, name)?))
    }

    fn describe_object(&self, level: Level, name: LtxFileName) -> String {
        self.location(level, name)
    }

    fn check_reachable(&self) -> Result<(), ReplicaError> {
        Ok(ReplicaClient::check_reachable(self)?)
    }

    fn layout(&self) -> ObjectLayout {
        self.object_replica()
            .map_or(ObjectLayout::LtxLevels, |replica| replica.layout())
    }

    fn header_timestamp(&self, level: Level, name: LtxFileName) -> Result<i64, ReplicaError> {
        if self.object_replica().is_some()
            && let Some(text) = self.timestamp(level, name)?
            && let Ok(ms) = crate::rfc3339::parse_millis(&text)
        {
            return Ok(ms);
        }
        read_header_timestamp(self, level, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use walcast_format::PageSize;
    use walcast_ltx::{Encoder, TxId};

    #[test]
    fn a_directory_replica_lists_opens_and_reads_header_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let replica = DirReplica::new(dir.path());
        let name = LtxFileName {
            min: TxId::FIRST,
            max: TxId::FIRST,
        };
        let header = Header::new(PageSize::new(512).unwrap(), 1, name.min, name.max, 1234);
        let mut enc = Encoder::new(Vec::new(), header).unwrap();
        enc.write_page(1, &[9u8; 512]).unwrap();
        let bytes = enc.finish(None).unwrap().writer;
        replica.put(Level::L0, name, &bytes[..]).unwrap();

        let source: &dyn ReplicaSource = &replica;
        let listed = source.list(Level::L0).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].name, listed[0].size), (name, bytes.len() as u64));
        assert!(source.list(Level::SNAPSHOT).unwrap().is_empty());
        assert_eq!(source.header_timestamp(Level::L0, name).unwrap(), 1234);
        let mut read = Vec::new();
        source
            .open(Level::L0, name)
            .unwrap()
            .read_to_end(&mut read)
            .unwrap();
        assert_eq!(read, bytes);
        assert!(
            source
                .describe_object(Level::L0, name)
                .ends_with("ltx/0/0000000000000001-0000000000000001.ltx")
        );

        std::fs::write(replica.path(Level::L0, name), b"LTX1 short").unwrap();
        let err = source.header_timestamp(Level::L0, name).unwrap_err();
        assert!(err.to_string().contains("0000000000000001.ltx"), "{err}");
    }
}
