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
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tracing::{debug, warn};
use walcast_ltx::{Decoder, Encoder, Header, LtxFileName, MergeOptions, TxId, rfc3339_millis};
use walcast_replica::compact::{Compactor, L0Copies};
use walcast_replica::{Level, ReplicaClient};

use super::fanout::{SnapshotRequest, UploadProgress};
use super::staging::StagingDir;

/// Most staged files merged into one object (each needs an open decoder).
const MAX_FILES_PER_OBJECT: usize = 256;
/// Uploads are retried at least this often while files are pending.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// How long the final upload at shutdown keeps retrying.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(30);

/// What `walcast status` shows of a replica.
#[derive(Debug, Default)]
struct UploadStatus {
    last_upload: Option<SystemTime>,
    last_error: Option<(String, SystemTime)>,
}

/// Staged files of one database, and one replica they go to.
pub struct Uploader {
    pub staging: StagingDir,
    pub replica: Arc<ReplicaClient>,
    /// The replica's name (config), for its status file.
    pub name: String,
    /// This replica's index in `progress`.
    pub index: usize,
    /// What every replica of the database has.
    pub progress: Arc<UploadProgress>,
    /// Where to ask for a snapshot when this replica cannot continue.
    pub snapshots: Arc<SnapshotRequest>,
    /// At most one upload round per interval (Litestream's `sync-interval`).
    pub interval: Duration,
    /// Where L0 objects just stored are kept for the replica's compaction (see
    /// [`spawn_compaction`]).
    pub copies: L0Copies,
    /// Tells the replica's compaction thread that an upload round went well.
    pub compaction: std::sync::mpsc::SyncSender<()>,
}

impl Uploader {
    /// Uploads the staged files this replica lacks in TXID order, in objects of up to
    /// [`MAX_FILES_PER_OBJECT`] merged files; removes staged files every replica has.
    /// Returns how many files went up.
    pub fn upload_pending(&self) -> anyhow::Result<usize> {
        let staged = self.staging.staged()?;
        let have = self.progress.get(self.index);
        let lacking: Vec<LtxFileName> = staged
            .iter()
            .filter(|f| have.is_none_or(|h| f.max > h))
            .copied()
            .collect();
        let mut rest = &lacking[..];
        let mut uploaded = 0;
        let expected = have.map_or(Some(TxId::FIRST), TxId::next);
        // Behind: the next file this replica needs is not staged (it starts later, or
        // nothing is staged while other replicas are ahead).
        let behind = match rest.first() {
            Some(first) => Some(first.min) != expected,
            None => have < self.progress.newest(),
        };
        if behind {
            // A gap: only a snapshot can start this replica's chain again.
            match rest.iter().position(|f| self.staging.is_snapshot(*f)) {
                Some(at) => {
                    self.upload_as_snapshot(rest[at])?;
                    self.progress.record(self.index, rest[at].max);
                    uploaded += 1;
                    rest = &rest[at + 1..];
                }
                None => {
                    warn!(
                        replica = %self.replica.target(),
                        "replica has up to {}, the staged files start at {}: asking for a snapshot",
                        have.map_or_else(|| "nothing".to_owned(), |t| t.to_string()),
                        rest.first().map_or_else(|| "later".to_owned(), |f| f.min.to_string())
                    );
                    self.snapshots.request();
                    rest = &[];
                }
            }
        }
        for group in rest.chunks(MAX_FILES_PER_OBJECT) {
            self.upload_group(group)?;
            if let Some(last) = group.last() {
                self.progress.record(self.index, last.max);
            }
            uploaded += group.len();
        }
        if let Some(everywhere) = self.progress.everywhere() {
            for name in staged.iter().filter(|f| f.max <= everywhere) {
                self.staging.remove(*name)?;
            }
        }
        Ok(uploaded)
    }

    /// Uploads a staged snapshot (every page, at TXID N) as the level-9 file `1-N`, which
    /// restore planning starts a chain from. Re-encoded with the new TXID range; the staged
    /// file's checksum is verified before anything is uploaded.
    fn upload_as_snapshot(&self, staged: LtxFileName) -> anyhow::Result<()> {
        let path = self.staging.l0_path(staged);
        let input = self.open_staged(staged)?;
        let mut decoder = Decoder::new(std::io::BufReader::new(input))
            .with_context(|| format!("{}", path.display()))?;
        let from = *decoder.header();
        let header = Header::new(
            from.page_size,
            from.commit,
            TxId::FIRST,
            from.max_txid,
            from.timestamp_ms,
        );
        let out = self.temporary()?;
        let mut encoder = Encoder::new(out.as_file(), header)?;
        while let Some(page) = decoder
            .next_page()
            .with_context(|| format!("{}", path.display()))?
        {
            encoder.write_page(page.pgno, page.data)?;
        }
        decoder
            .finish()
            .with_context(|| format!("{}", path.display()))?;
        encoder.finish(None)?;
        let name = header.file_name();
        self.replica
            .put_file(Level::SNAPSHOT, name, out.path())
            .with_context(|| {
                format!("cannot upload snapshot {name} to {}", self.replica.target())
            })?;
        warn!(replica = %self.replica.target(), file = %name, "uploaded a snapshot to start the replica's chain again");
        Ok(())
    }

    fn temporary(&self) -> anyhow::Result<tempfile::NamedTempFile> {
        tempfile::Builder::new()
            .prefix("upload-")
            .suffix(".ltx.tmp")
            .tempfile_in(self.staging.root())
            .with_context(|| {
                format!(
                    "{}: cannot create a temporary file",
                    self.staging.root().display()
                )
            })
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
        debug!(replica = %self.replica.target(), file = %name, files = group.len(), ?outcome, "uploaded");
        // A local copy, so that the L1 merge does not download it.
        self.copies.keep(name, &path);
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
        let out = self.temporary()?;
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
    pub fn spawn(self, wake: Receiver<()>) -> JoinHandle<anyhow::Result<()>> {
        std::thread::spawn(move || {
            let mut failing = false;
            let mut status = UploadStatus::default();
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
                    Ok(uploaded) => {
                        if failing {
                            warn!("replica reachable again; backlog uploaded");
                        }
                        failing = false;
                        if uploaded > 0 {
                            status.last_upload = Some(SystemTime::now());
                        }
                    }
                    Err(e) => {
                        if !failing {
                            warn!("upload failed, will retry: {e:#}");
                        }
                        failing = true;
                        status.last_error = Some((format!("{e:#}"), SystemTime::now()));
                    }
                }
                if !failing {
                    // Compaction runs on its own thread: a long merge (a snapshot of a big
                    // database) must not hold back the next L0 uploads.
                    let _ = self.compaction.try_send(());
                }
                self.record_status(&status);
            }
            self.drain()
        })
    }

    /// Writes this replica's status file for `walcast status` (best effort).
    fn record_status(&self, status: &UploadStatus) {
        let ms = |t: &SystemTime| {
            let ms = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
            rfc3339_millis(i64::try_from(ms).unwrap_or(i64::MAX))
        };
        let json = serde_json::json!({
            "replica": self.replica.target().to_string(),
            "txid": self.progress.get(self.index).map(|t| t.to_string()),
            "last_upload": status.last_upload.as_ref().map(ms),
            "last_error": status.last_error.as_ref().map(|(e, _)| e),
            "last_error_at": status.last_error.as_ref().map(|(_, t)| ms(t)),
        });
        let path = self.staging.replica_status_path(&self.name);
        if let Err(e) = self.staging.write_small(&path, json.to_string().as_bytes()) {
            debug!("{e:#}");
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

/// Runs the replica's levels, snapshots and retention on a thread of its own, after each
/// upload round that went well (one `tick`), until the uploader is gone (a tick already
/// sent is still served). Joined only by `-once`: at a signal's shutdown a merge may be cut
/// short by the process exiting, which leaves the replica restorable (outputs are stored
/// whole before any input is deleted) and leftovers that the next start removes.
pub fn spawn_compaction(
    mut compactor: Compactor,
    replica: Arc<ReplicaClient>,
    tick: Receiver<()>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("compaction".into())
        .spawn(move || {
            while tick.recv().is_ok() {
                compact(&mut compactor, &replica);
            }
        })
}

/// Runs whatever compaction, snapshot or retention is due. Never fatal: the replica stays
/// restorable and the next round retries.
fn compact(compactor: &mut Compactor, replica: &ReplicaClient) {
    match compactor.run_due(replica, SystemTime::now()) {
        Ok(report) => {
            for file in &report.written {
                debug!(level = %file.level, file = %file.name, bytes = file.size, "compacted");
            }
            if !report.deleted.is_empty() {
                debug!(files = report.deleted.len(), "retention deleted files");
            }
        }
        Err(e) if e.is_transient() => debug!("compaction will retry: {e}"),
        Err(e) => warn!(replica = %replica.target(), "compaction failed: {e:#}"),
    }
}
