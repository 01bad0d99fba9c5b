//! Several replicas per database: one TXID sequence, staged once, uploaded to each replica
//! by its own uploader at its own pace.
//!
//! Invariants:
//! - A staged file is removed only when every replica has it ([`UploadProgress`]).
//! - A replica that cannot continue from the staged files (new and empty while others
//!   have data, or behind a file that is gone) asks the sync loop for a snapshot
//!   ([`SnapshotRequest`]) and receives that snapshot as a level-9 file `1-<txid>`, which
//!   starts a restorable chain; the other replicas take the same file as a plain L0 file.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use walcast_ltx::TxId;

/// The newest TXID each replica has, by replica index (`None`: nothing yet).
#[derive(Debug)]
pub struct UploadProgress {
    uploaded: Mutex<Vec<Option<TxId>>>,
}

impl UploadProgress {
    pub fn new(start: Vec<Option<TxId>>) -> Self {
        Self {
            uploaded: Mutex::new(start),
        }
    }

    pub fn get(&self, replica: usize) -> Option<TxId> {
        self.uploaded
            .lock()
            .map_or(None, |u| u.get(replica).copied().flatten())
    }

    pub fn record(&self, replica: usize, txid: TxId) {
        if let Ok(mut u) = self.uploaded.lock()
            && let Some(slot) = u.get_mut(replica)
        {
            *slot = Some((*slot).max(Some(txid)).unwrap_or(txid));
        }
    }

    /// The newest TXID any replica has.
    pub fn newest(&self) -> Option<TxId> {
        self.uploaded
            .lock()
            .ok()
            .and_then(|u| u.iter().copied().max().flatten())
    }

    /// The newest TXID every replica has (staged files up to it can go).
    pub fn everywhere(&self) -> Option<TxId> {
        self.uploaded
            .lock()
            .ok()
            .and_then(|u| u.iter().copied().min().flatten())
    }
}

/// A replica's request for a snapshot, served by the sync loop at its next step.
#[derive(Debug, Default)]
pub struct SnapshotRequest(AtomicBool);

impl SnapshotRequest {
    pub fn request(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// True once per request.
    pub fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_files_go_only_when_every_replica_has_them() {
        let t = |n| TxId::new(n);
        let progress = UploadProgress::new(vec![t(3), None]);
        assert_eq!(progress.everywhere(), None);
        progress.record(1, TxId::new(5).unwrap());
        assert_eq!(progress.everywhere(), t(3));
        progress.record(0, TxId::new(9).unwrap());
        progress.record(0, TxId::new(7).unwrap());
        assert_eq!((progress.get(0), progress.everywhere()), (t(9), t(5)));
        let request = SnapshotRequest::default();
        assert!(!request.take());
        request.request();
        assert!(request.take() && !request.take());
    }
}
