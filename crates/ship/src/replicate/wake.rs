//! Waking the sync loop: inotify(7) on the WAL reports SQLite's writes within
//! microseconds, and a short timer backs it up (events can be lost when the queue
//! overflows, and a checkpoint changes the wal-index without touching the WAL).
//!
//! A missed or spurious wake costs one cheap look at the wal-index header, never data.

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::Duration;

use inotify::{Inotify, WatchMask};
use tracing::warn;

/// Wakes on WAL changes or after a timeout.
pub struct WalWaker {
    rx: Receiver<()>,
    timer: Duration,
}

impl WalWaker {
    /// Watches `wal`. Without inotify (unsupported, or the watch limit is reached) the
    /// timer alone paces the loop; that is logged once.
    pub fn watch(wal: &Path, timer: Duration) -> Self {
        let (tx, rx) = sync_channel(1);
        if let Err(e) = spawn_watch(wal, tx) {
            warn!(
                "{}: cannot watch with inotify ({e}); polling every {timer:?}",
                wal.display()
            );
        }
        Self { rx, timer }
    }

    /// Blocks until the WAL changes or the timer expires.
    pub fn wait(&self) {
        match self.rx.recv_timeout(self.timer) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            // The watcher is gone: fall back to the timer alone.
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(self.timer),
        }
    }
}

fn spawn_watch(wal: &Path, tx: SyncSender<()>) -> std::io::Result<()> {
    let mut inotify = Inotify::init()?;
    inotify.watches().add(wal, WatchMask::MODIFY)?;
    std::thread::Builder::new()
        .name("wal-watch".into())
        .spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match inotify.read_events_blocking(&mut buf) {
                    // One pending wake is enough: the loop reads everything new anyway.
                    // Blocking until the loop has taken the previous wake keeps this
                    // thread asleep while the loop gathers commits: the kernel coalesces
                    // the identical events queued meanwhile into one, so a busy WAL costs
                    // one read here per loop wake, not one per write.
                    Ok(_) => {
                        if tx.send(()).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        })?;
    Ok(())
}
