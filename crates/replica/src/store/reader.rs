//! The blocking side of the replica client: the small tokio runtime a [`super::ReplicaClient`]
//! owns, and [`LtxReader`], a `std::io::Read` over a replica file (a local file, or an
//! object body streamed chunk by chunk).
//!
//! This module must never be used from inside an async runtime (blocking there would stall
//! it) and never buffers more than one body chunk.

use std::fs::File;
use std::future::Future;
use std::io::{self, Read};
use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures_util::StreamExt;

use crate::store::error::StoreError;
use crate::store::object::ObjectStream;

/// A runtime with one worker thread that drives the client's requests; shut down in the
/// background when dropped, so dropping it inside another runtime cannot panic.
#[derive(Debug)]
pub(crate) struct ClientRuntime {
    handle: tokio::runtime::Handle,
    /// `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl ClientRuntime {
    pub(crate) fn start() -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("walcast-replica-io")
            .enable_all()
            .build()
            .map_err(StoreError::Runtime)?;
        Ok(Self {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// Runs `future` to completion on the calling thread (its I/O is driven by the worker).
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.handle.block_on(future)
    }
}

impl Drop for ClientRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A replica file being read (see the module docs).
pub struct LtxReader {
    inner: Inner,
}

enum Inner {
    File(File),
    Remote {
        stream: ObjectStream,
        chunk: Bytes,
        runtime: Arc<ClientRuntime>,
        location: String,
    },
}

impl std::fmt::Debug for LtxReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Inner::File(file) => f.debug_tuple("LtxReader").field(file).finish(),
            Inner::Remote { location, .. } => f.debug_tuple("LtxReader").field(location).finish(),
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
        stream: ObjectStream,
        runtime: Arc<ClientRuntime>,
        location: String,
    ) -> Self {
        Self {
            inner: Inner::Remote {
                stream,
                chunk: Bytes::new(),
                runtime,
                location,
            },
        }
    }
}

impl Read for LtxReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::File(file) => file.read(buf),
            Inner::Remote {
                stream,
                chunk,
                runtime,
                location,
            } => {
                while chunk.is_empty() {
                    match runtime.block_on(stream.next()) {
                        None => return Ok(0),
                        Some(Ok(next)) => *chunk = next,
                        Some(Err(e)) => {
                            return Err(io::Error::other(format!(
                                "{location}: reading the object failed: {e}; read it again"
                            )));
                        }
                    }
                }
                let n = buf.len().min(chunk.len());
                chunk.copy_to_slice(&mut buf[..n]);
                Ok(n)
            }
        }
    }
}
