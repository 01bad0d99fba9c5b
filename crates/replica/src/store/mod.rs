//! Replica clients: one [`ReplicaClient`] for every backend walcast supports (`file`, `s3`,
//! `gs`, `abs`), built from a replica URL or config block, with a blocking API for the
//! non-async threads that drive it (the sync loop, restore).
//!
//! ```no_run
//! use walcast_ltx::LtxFileName;
//! use walcast_replica::{Level, ReplicaClient};
//! # fn main() -> Result<(), walcast_replica::StoreError> {
//! let client = ReplicaClient::from_url("s3://backups/app?endpoint=http://127.0.0.1:9000&forcePathStyle=true")?;
//! let name: LtxFileName = "0000000000000001-0000000000000001.ltx".parse().unwrap();
//! client.put_file(Level::L0, name, "staged.ltx".as_ref())?; // never overwrites
//! for file in client.list(Level::L0)? {
//!     let mut body = client.get(file.level, file.name)?; // std::io::Read
//!     std::io::copy(&mut body, &mut std::io::sink()).unwrap();
//! }
//! # Ok(()) }
//! ```
//!
//! Backends: `file` is a [`DirReplica`] (durable tmp + fsync + link, Litestream's file
//! layout); the others are an [`ObjectReplica`] (async, over object_store) driven by a
//! small runtime the client owns (one worker thread). Requests are timed out and retried
//! as [`retry`] documents. The async [`ObjectReplica`] is available through
//! [`ReplicaClient::object_replica`] for callers that run their own runtime.
//!
//! Rules:
//! - The blocking methods must not be called from inside an async runtime (they block the
//!   calling thread until the request ends); dropping a client anywhere is fine.
//! - [`ReplicaClient::put`] reads its whole source into memory before the single PUT;
//!   [`ReplicaClient::put_file`] uploads a staged file from a read-only map instead, so
//!   memory stays bounded for large snapshots. Both are one PUT (S3 allows up to 5 GiB per
//!   PUT; multipart uploads for larger objects are not done yet).

mod connect;
mod env;
mod error;
pub mod keys;
mod object;
pub mod probe;
mod reader;
pub mod retry;
mod runtime;
mod stats;

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use walcast_format::mapped::OfflineMap;
use walcast_ltx::{HEADER_SIZE, Header, LtxFileName, TxId};

use crate::dir::{DirReplica, PutOutcome};
use crate::layout::Level;
use crate::target::{ReplicaConfig, ReplicaTarget};

pub use connect::DEFAULT_REGION;
pub use env::Env;
pub use error::StoreError;
pub use keys::ObjectLayout;
pub use object::{ObjectBody, ObjectReplica, ObjectStream, rfc3339_nano};
pub use reader::LtxReader;
pub use retry::RetryPolicy;
pub use stats::{Operation, OperationCounts, ReplicaStats};

/// One LTX file listed in a replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LtxObject {
    /// Its level.
    pub level: Level,
    /// Its TXID range (file name).
    pub name: LtxFileName,
    /// Its size in bytes.
    pub size: u64,
}

/// What a client is built with besides the target.
#[derive(Clone, Debug, Default)]
pub struct ClientSettings {
    /// Credentials, region and CA bundle come from here.
    pub env: Env,
    /// Timeouts and retries of every request.
    pub retry: RetryPolicy,
}

impl ClientSettings {
    /// The process environment and the default policy.
    pub fn from_process() -> Self {
        Self {
            env: Env::from_process(),
            retry: RetryPolicy::default(),
        }
    }
}

/// A replica client with a blocking API (see the module docs).
#[derive(Debug)]
pub struct ReplicaClient {
    target: ReplicaTarget,
    backend: Backend,
    stats: Arc<ReplicaStats>,
}

#[derive(Debug)]
enum Backend {
    Dir(DirReplica),
    Object {
        replica: ObjectReplica,
        runtime: Arc<runtime::ClientRuntime>,
    },
}

impl ReplicaClient {
    /// A client for a replica URL, with the process environment and default retries.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        Self::open(
            ReplicaTarget::parse_url(url)?,
            ClientSettings::from_process(),
        )
    }

    /// A client for a replica config block, with the process environment and default retries.
    pub fn from_config(config: &ReplicaConfig) -> Result<Self, StoreError> {
        Self::open(
            ReplicaTarget::from_config(config)?,
            ClientSettings::from_process(),
        )
    }

    /// A client for `target`. Checks the settings; sends no request.
    pub fn open(target: ReplicaTarget, settings: ClientSettings) -> Result<Self, StoreError> {
        let (env, policy) = (&settings.env, &settings.retry);
        let connected = match &target {
            ReplicaTarget::File(dir) => {
                let backend = Backend::Dir(DirReplica::new(dir.clone()));
                let stats = Arc::default();
                return Ok(Self {
                    target,
                    backend,
                    stats,
                });
            }
            ReplicaTarget::S3(t) => connect::s3(t, env, policy)?,
            ReplicaTarget::Gcs(t) => connect::gcs(t, env, policy)?,
            ReplicaTarget::Azure(t) => connect::azure(t, env, policy)?,
        };
        let replica = ObjectReplica::new(connected, settings.retry);
        let stats = Arc::clone(replica.stats());
        let backend = Backend::Object {
            replica,
            runtime: Arc::new(runtime::ClientRuntime::start()?),
        };
        Ok(Self {
            target,
            backend,
            stats,
        })
    }

    /// Where the replica is.
    pub fn target(&self) -> &ReplicaTarget {
        &self.target
    }

    /// What this client asked of its store so far, by operation (for a directory, one
    /// request per call; bytes are counted for puts).
    pub fn stats(&self) -> &ReplicaStats {
        &self.stats
    }

    /// A shared handle on [`ReplicaClient::stats`], for a metrics endpoint on another thread.
    pub fn stats_handle(&self) -> Arc<ReplicaStats> {
        Arc::clone(&self.stats)
    }

    /// Runs one operation on a directory replica, counted like a request.
    fn counted<T>(
        &self,
        operation: Operation,
        op: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = op();
        self.stats
            .request(operation, started.elapsed(), result.is_ok());
        result
    }

    /// The async client of an object-store replica (`None` for a directory), for callers
    /// with their own runtime.
    ///
    /// Its HTTP connections are pooled, and a pooled connection belongs to the runtime that
    /// opened it: drive one client either through this async API from one runtime, or
    /// through the blocking methods, not both (a connection opened by the other side could
    /// stall a request until its timeout).
    pub fn object_replica(&self) -> Option<&ObjectReplica> {
        match &self.backend {
            Backend::Object { replica, .. } => Some(replica),
            Backend::Dir(_) => None,
        }
    }

    /// The startup check of a replica ([`probe`]): one cheap LIST with a short deadline,
    /// so an unreachable endpoint, a missing bucket or refused credentials are reported in
    /// seconds as one [`StoreError::Unreachable`] naming the endpoint and what to do,
    /// before anything else is done. A directory replica passes (it is checked when used).
    pub fn check_reachable(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Dir(_) => Ok(()),
            Backend::Object { replica, runtime } => runtime.block_on(replica.check_reachable()),
        }
    }

    /// The full name of one file for messages: `s3://bucket/path/ltx/0/….ltx` or a path.
    pub fn location(&self, level: Level, name: LtxFileName) -> String {
        match &self.backend {
            Backend::Dir(dir) => dir.path(level, name).display().to_string(),
            Backend::Object { replica, .. } => replica.location(level, name),
        }
    }

    /// The LTX files of one level, in TXID order; other objects are ignored.
    pub fn list(&self, level: Level) -> Result<Vec<LtxObject>, StoreError> {
        match &self.backend {
            Backend::Dir(dir) => self.counted(Operation::List, || {
                let names = dir.list(level)?;
                let mut files = Vec::with_capacity(names.len());
                for name in names {
                    // A file deleted between the listing and here is simply not listed.
                    if let Ok(meta) = std::fs::metadata(dir.path(level, name)) {
                        files.push(LtxObject {
                            level,
                            name,
                            size: meta.len(),
                        });
                    }
                }
                Ok(files)
            }),
            Backend::Object { replica, runtime } => runtime.block_on(replica.list(level)),
        }
    }

    /// The LTX files of one level whose min TXID is above `after`, in TXID order. On object
    /// stores the listing starts there, so steady-state polling costs LIST requests in
    /// proportion to what is new, not to what the level holds.
    pub fn list_after(&self, level: Level, after: TxId) -> Result<Vec<LtxObject>, StoreError> {
        match &self.backend {
            Backend::Dir(_) => {
                let mut files = self.list(level)?;
                files.retain(|f| f.name.min > after);
                Ok(files)
            }
            Backend::Object { replica, runtime } => {
                runtime.block_on(replica.list_after(level, after))
            }
        }
    }

    /// Stores what `source` yields as `level/name`, whole, never replacing an existing file:
    /// same bytes already there -> [`PutOutcome::AlreadyPresent`], other bytes ->
    /// [`StoreError::Conflict`].
    pub fn put(
        &self,
        level: Level,
        name: LtxFileName,
        mut source: impl Read,
    ) -> Result<PutOutcome, StoreError> {
        match &self.backend {
            Backend::Dir(dir) => self.put_dir(dir, level, name, source),
            Backend::Object { replica, runtime } => {
                let mut bytes = Vec::new();
                source
                    .read_to_end(&mut bytes)
                    .map_err(|source| StoreError::Source {
                        location: replica.location(level, name),
                        source,
                    })?;
                runtime.block_on(replica.put(level, name, Bytes::from(bytes)))
            }
        }
    }

    /// A put into a directory replica, counted, with the file time set to the LTX header's
    /// timestamp as Litestream's file backend does.
    fn put_dir(
        &self,
        dir: &DirReplica,
        level: Level,
        name: LtxFileName,
        source: impl Read,
    ) -> Result<PutOutcome, StoreError> {
        self.counted(Operation::Put, || {
            let mut counting = CountingReader {
                inner: source,
                read: 0,
                head: Vec::new(),
            };
            let outcome = dir.put(level, name, &mut counting)?;
            self.stats.bytes(Operation::Put, counting.read);
            if outcome == PutOutcome::Written {
                stamp_file_time(&dir.path(level, name), &counting.head);
            }
            Ok(outcome)
        })
    }

    /// Stores the local file `path` (a staged LTX file that nothing modifies or truncates
    /// while it is uploaded) as `level/name`, like [`ReplicaClient::put`], without reading
    /// it into memory: the upload is served from a read-only map of the file, so memory
    /// stays bounded whatever the file's size.
    pub fn put_file(
        &self,
        level: Level,
        name: LtxFileName,
        path: &Path,
    ) -> Result<PutOutcome, StoreError> {
        let location = self.location(level, name);
        let source = |source| StoreError::Source {
            location: format!("{location} (from {})", path.display()),
            source,
        };
        let file = std::fs::File::open(path).map_err(source)?;
        match &self.backend {
            Backend::Dir(dir) => self.put_dir(dir, level, name, file),
            Backend::Object { replica, runtime } => {
                let map = OfflineMap::new(&file).map_err(source)?;
                let bytes = Bytes::from_owner(MappedFile(map));
                runtime.block_on(replica.put(level, name, bytes))
            }
        }
    }

    /// Opens one file for reading; the body streams as it is read, and a body cut mid-way
    /// is resumed where it stopped (see [`LtxReader`]).
    pub fn get(&self, level: Level, name: LtxFileName) -> Result<LtxReader, StoreError> {
        match &self.backend {
            Backend::Dir(dir) => self.counted(Operation::Get, || {
                let file = dir.open(level, name).map_err(|e| match e {
                    crate::ReplicaError::Missing { path } => StoreError::Missing {
                        location: path.display().to_string(),
                    },
                    other => StoreError::Dir(other),
                })?;
                Ok(LtxReader::file(file))
            }),
            Backend::Object { replica, runtime } => {
                let body = runtime.block_on(replica.get_from(level, name, 0, None))?;
                Ok(LtxReader::remote(
                    body,
                    replica.clone(),
                    level,
                    name,
                    Arc::clone(runtime),
                ))
            }
        }
    }

    /// The time Litestream records for one file, RFC 3339 (`2006-01-02T15:04:05.999Z`):
    /// the `litestream-timestamp` metadata of an object (`None` if it has none), or the
    /// modification time of a file in a directory replica.
    pub fn timestamp(&self, level: Level, name: LtxFileName) -> Result<Option<String>, StoreError> {
        match &self.backend {
            Backend::Dir(dir) => self.counted(Operation::Head, || {
                let path = dir.path(level, name);
                let modified = std::fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::NotFound => StoreError::Missing {
                            location: path.display().to_string(),
                        },
                        _ => StoreError::Dir(crate::ReplicaError::Io {
                            path: path.clone(),
                            operation: "read the file time",
                            source: e,
                        }),
                    })?;
                Ok(unix_millis(modified).map(rfc3339_nano))
            }),
            Backend::Object { replica, runtime } => {
                runtime.block_on(replica.timestamp(level, name))
            }
        }
    }

    /// Removes one file; removing a missing file is not an error.
    pub fn delete(&self, level: Level, name: LtxFileName) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Dir(dir) => self.counted(Operation::Delete, || Ok(dir.delete(level, name)?)),
            Backend::Object { replica, runtime } => runtime.block_on(replica.delete(level, name)),
        }
    }
}

/// A mapped staged file as the owner of upload bytes.
struct MappedFile(OfflineMap);

impl AsRef<[u8]> for MappedFile {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A reader that counts the bytes it yields.
struct CountingReader<R> {
    inner: R,
    read: u64,
    /// The first [`HEADER_SIZE`] bytes read.
    head: Vec<u8>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let wanted = HEADER_SIZE.saturating_sub(self.head.len()).min(n);
        self.head.extend_from_slice(&buf[..wanted]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Sets a new directory-replica file's modification time to its LTX header's timestamp, as
/// Litestream's file backend does (its `-timestamp` restores read it). Best effort: the
/// file is complete and durable already, and only its time would be off.
fn stamp_file_time(path: &Path, head: &[u8]) {
    let Some(header) = head
        .first_chunk::<HEADER_SIZE>()
        .and_then(|h| Header::decode(h).ok())
    else {
        return;
    };
    let Ok(ms) = u64::try_from(header.timestamp_ms) else {
        return;
    };
    let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(time));
}

fn unix_millis(time: SystemTime) -> Option<i64> {
    let since = time.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    i64::try_from(since.as_millis()).ok()
}
