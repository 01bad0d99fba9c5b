//! [`LtxReader`], the blocking `std::io::Read` over a replica file that
//! [`super::ReplicaClient::get`] returns: a local file, or an object body streamed chunk by
//! chunk on the client's runtime.
//!
//! A body cut mid-way (connection reset, timeout) is resumed where it stopped with a range
//! request for the same object version (its ETag), up to the policy's attempts with its
//! backoff ([`crate::store::retry`]); only then is it an error naming the object. The
//! reader never returns bytes past a cut as if they followed it, and never returns a short
//! body as a complete one.
//!
//! This module must never be used from inside an async runtime (blocking there would stall
//! it) and never buffers more than one body chunk.

use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures_util::StreamExt;

use walcast_ltx::LtxFileName;

use crate::layout::Level;
use crate::store::object::{ObjectBody, ObjectReplica};
use crate::store::runtime::ClientRuntime;
use crate::store::stats::Operation;

/// A replica file being read (see the module docs).
pub struct LtxReader {
    inner: Inner,
}

enum Inner {
    File(File),
    Remote(Box<RemoteBody>),
}

/// An object body being streamed, and where to resume it.
struct RemoteBody {
    body: ObjectBody,
    chunk: Bytes,
    /// Bytes of the object returned so far.
    offset: u64,
    /// Cuts in a row without a byte received in between.
    resumed: u32,
    /// `offset` at the last cut.
    offset_at_cut: u64,
    replica: ObjectReplica,
    level: Level,
    name: LtxFileName,
    runtime: Arc<ClientRuntime>,
}

impl RemoteBody {
    fn location(&self) -> String {
        self.replica.location(self.level, self.name)
    }

    /// The next chunk, resuming after a cut; `None` at the end of the object.
    fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            if self.offset >= self.body.size {
                return Ok(None);
            }
            let policy = *self.replica.policy();
            let stream = &mut self.body.stream;
            // The timer is made inside the runtime (block_on), which it needs.
            let next = self.runtime.block_on(async {
                tokio::time::timeout(policy.request_timeout, stream.next()).await
            });
            let error = match next {
                Ok(Some(Ok(chunk))) => {
                    let stats = self.replica.stats();
                    stats.bytes(Operation::Get, chunk.len() as u64);
                    return Ok(Some(chunk));
                }
                Ok(Some(Err(e))) => e.to_string(),
                Ok(None) => "the body ended early".to_owned(),
                Err(_) => format!("no bytes for {}s", policy.request_timeout.as_secs_f32()),
            };
            // Only cuts with no progress in between count against the policy, so a long
            // download over a flaky link keeps going while it makes progress.
            if self.offset > self.offset_at_cut {
                self.resumed = 0;
            }
            self.offset_at_cut = self.offset;
            self.resumed += 1;
            if self.resumed >= policy.max_attempts {
                return Err(io::Error::other(format!(
                    "{}: reading the object failed at byte {} of {} after {} attempt(s): {error}; check the connection to the store and read it again",
                    self.location(),
                    self.offset,
                    self.body.size,
                    self.resumed
                )));
            }
            let (replica, level, name, offset) =
                (&self.replica, self.level, self.name, self.offset);
            let e_tag = self.body.e_tag.clone();
            let resumed = self.runtime.block_on(async {
                tokio::time::sleep(policy.backoff(self.resumed)).await;
                replica.get_from(level, name, offset, e_tag).await
            });
            self.body = resumed.map_err(io::Error::other)?;
        }
    }
}

impl std::fmt::Debug for LtxReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Inner::File(file) => f.debug_tuple("LtxReader").field(file).finish(),
            Inner::Remote(remote) => f
                .debug_tuple("LtxReader")
                .field(&remote.location())
                .finish(),
        }
    }
}

impl LtxReader {
    pub(crate) fn file(file: File) -> Self {
        Self {
            inner: Inner::File(file),
        }
    }

    pub(crate) fn remote(
        body: ObjectBody,
        replica: ObjectReplica,
        level: Level,
        name: LtxFileName,
        runtime: Arc<ClientRuntime>,
    ) -> Self {
        Self {
            inner: Inner::Remote(Box::new(RemoteBody {
                body,
                chunk: Bytes::new(),
                offset: 0,
                resumed: 0,
                offset_at_cut: 0,
                replica,
                level,
                name,
                runtime,
            })),
        }
    }
}

impl Read for LtxReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::File(file) => file.read(buf),
            Inner::Remote(remote) => {
                while remote.chunk.is_empty() {
                    match remote.next_chunk()? {
                        None => return Ok(0),
                        Some(chunk) => remote.chunk = chunk,
                    }
                }
                let n = buf.len().min(remote.chunk.len());
                remote.chunk.copy_to_slice(&mut buf[..n]);
                remote.offset += n as u64;
                Ok(n)
            }
        }
    }
}
