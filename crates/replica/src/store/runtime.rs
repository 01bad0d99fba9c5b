//! The small tokio runtime a [`super::ReplicaClient`] owns to drive its object-store
//! requests from blocking callers.
//!
//! It must never be entered from inside another runtime (blocking there would stall it);
//! dropping it anywhere, even inside another runtime, is safe.

use std::future::Future;

use crate::store::error::StoreError;

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
