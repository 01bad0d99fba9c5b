//! Moving staged L0 files into the replica, in TXID order, on a thread of its own so a
//! slow or unreachable replica never delays copying frames out of the WAL.
//!
//! What was staged during one sync interval goes up as one object: the staged files are
//! merged (newest page wins, streaming, every input's checksum verified) into one L0 file
//! covering their TXID range, so steady writes cost one write per interval, not one per
//! local sync. A backlog drains in rounds of at most [`MAX_FILES_PER_OBJECT`] files, so
//! memory stays bounded (one decoder per input) whatever its size.
//!
//! Invariants: a staged file is removed only after the replica has it (written, or found
//! there with the same bytes after an interrupted upload); objects go up strictly in TXID
//! order, and the first failure stops the round so no later object overtakes it.

use std::fs::File;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use tracing::{debug, warn};
use walcast_ltx::{LtxFileName, MergeOptions};
use walcast_replica::compact::Compactor;
use walcast_replica::{Level, ReplicaClient};

use super::staging::StagingDir;

/// Most staged files merged into one object (each needs an open decoder).
const MAX_FILES_PER_OBJECT: usize = 256;
/// Uploads are retried at least this often while files are pending.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// How long the final upload at shutdown keeps retrying.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

/// Staged files of one database, and the replica they go to.
pub struct Uploader {
    pub staging: StagingDir,
    pub replica: ReplicaClient,
    /// At most one upload round per interval (Litestream's `sync-interval`).
    pub interval: Duration,
    /// Levels, snapshots and retention of the replica, run after each upload round.
    pub compactor: Compactor,
}

impl Uploader {
    /// Uploads every staged file in TXID order, in objects of up to
    /// [`MAX_FILES_PER_OBJECT`] merged files, removing each file once stored. Returns how
    /// many files went up.
    pub fn upload_pending(&self) -> anyhow::Result<usize> {
        let staged = self.staging.staged()?;
        for group in staged.chunks(MAX_FILES_PER_OBJECT) {
            self.upload_group(group)?;
        }
        Ok(staged.len())
    }

    fn upload_group(&self, group: &[LtxFileName]) -> anyhow::Result<()> {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            return Ok(());
        };
        let name = LtxFileName {
            min: first.min,
            max: last.max,
        };
        let merged;
        let path = if group.len() == 1 {
            self.staging.l0_path(*first)
        } else {
            merged = self.merge(group)?;
            merged.path().to_owned()
        };
        let outcome = self
            .replica
            .put_file(Level::L0, name, &path)
            .with_context(|| format!("cannot upload {name} to {}", self.replica.target()))?;
        debug!(file = %name, files = group.len(), ?outcome, "uploaded");
        for staged in group {
            self.staging.remove(*staged)?;
        }
        Ok(())
    }

    fn open_staged(&self, name: LtxFileName) -> anyhow::Result<File> {
        let path = self.staging.l0_path(name);
        File::open(&path).with_context(|| format!("{}: cannot open staged file", path.display()))
    }

    /// Merges staged files into a temporary file in the staging directory (removed when
    /// dropped).
    fn merge(&self, group: &[LtxFileName]) -> anyhow::Result<tempfile::NamedTempFile> {
        let inputs = group
            .iter()
            .map(|name| self.open_staged(*name).map(std::io::BufReader::new))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let out = tempfile::Builder::new()
            .prefix("upload-")
            .suffix(".ltx.tmp")
            .tempfile_in(self.staging.root())
            .with_context(|| {
                format!(
                    "{}: cannot create a temporary file",
                    self.staging.root().display()
                )
            })?;
        walcast_ltx::merge(inputs, out.as_file(), &MergeOptions::default()).with_context(|| {
            format!(
                "cannot merge staged files {}..{} in {}",
                group.first().map(ToString::to_string).unwrap_or_default(),
                group.last().map(ToString::to_string).unwrap_or_default(),
                self.staging.root().display()
            )
        })?;
        Ok(out)
    }

    /// Runs until `wake` is disconnected, uploading on every message and at least every
    /// [`RETRY_INTERVAL`]; then drains what is staged, retrying for a bounded time.
    pub fn spawn(mut self, wake: Receiver<()>) -> JoinHandle<anyhow::Result<()>> {
        std::thread::spawn(move || {
            let mut failing = false;
            let mut last_round = Instant::now()
                .checked_sub(self.interval)
                .unwrap_or_else(Instant::now);
            while let Ok(()) | Err(RecvTimeoutError::Timeout) = wake.recv_timeout(RETRY_INTERVAL) {
                // Let one interval's worth of syncs accumulate into one object.
                let since = last_round.elapsed();
                if since < self.interval {
                    std::thread::sleep(self.interval - since);
                }
                last_round = Instant::now();
                match self.upload_pending() {
                    Ok(_) if failing => {
                        warn!("replica reachable again; backlog uploaded");
                        failing = false;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if !failing {
                            warn!("upload failed, will retry: {e:#}");
                        }
                        failing = true;
                    }
                }
                if !failing {
                    self.compact();
                }
            }
            self.drain()
        })
    }

    /// Runs whatever compaction, snapshot or retention is due. Never fatal: the replica
    /// stays restorable and the next round retries.
    fn compact(&mut self) {
        match self
            .compactor
            .run_due(&self.replica, std::time::SystemTime::now())
        {
            Ok(report) => {
                for file in &report.written {
                    debug!(level = %file.level, file = %file.name, bytes = file.size, "compacted");
                }
                if !report.deleted.is_empty() {
                    debug!(files = report.deleted.len(), "retention deleted files");
                }
            }
            Err(e) if e.is_transient() => debug!("compaction will retry: {e}"),
            Err(e) => warn!("compaction failed: {e:#}"),
        }
    }

    fn drain(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + SHUTDOWN_DEADLINE;
        loop {
            match self.upload_pending() {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(e.context(format!(
                        "files are left in {} and will be uploaded at the next start",
                        self.staging.root().display()
                    )));
                }
                Err(_) => std::thread::sleep(RETRY_INTERVAL),
            }
        }
    }
}
