//! `walcast replicate DB URL`: replicate one live database to a replica until SIGINT or
//! SIGTERM, then finish the last sync and upload, and release every lock.
//!
//! Threads: the sync loop (this thread) copies frames into the staging directory; the
//! uploader moves staged files to the replica; a watcher wakes the loop on WAL writes.
//! The boundary between producing LTX files (`sync`, `encode`, `staging`) and storing
//! them (`upload`) is the staging directory.
//!
//! Nothing is created or locked before the database has been checked: a refused database
//! (missing, rollback journal, exclusive locking mode, unknown WAL version) leaves no trace.

mod duration;
mod encode;
mod exec;
mod frames;
mod staging;
mod start;
mod sync;
mod upload;
mod wake;

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tracing::{info, warn};
use walcast_lock::AttachError;
use walcast_replica::ReplicaClient;
use walcast_replica::compact::{Compactor, LevelSchedule};

use self::exec::ExecChild;
use self::staging::StagingDir;
use self::sync::{DatabaseSync, StepError, Stepped};
use self::upload::Uploader;
use self::wake::WalWaker;

/// The backup timer behind inotify: the longest a commit waits to be noticed if a wake
/// is lost.
const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// Pause after a failed step before the next attempt.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// Pause between attach attempts while the application has not opened the database.
const ATTACH_RETRY: Duration = Duration::from_millis(100);

#[derive(Args, Debug)]
pub struct ReplicateArgs {
    /// The SQLite database to replicate (in WAL mode, opened by the application).
    pub db: PathBuf,
    /// Where to replicate: a directory, file:///path, s3://bucket/path?endpoint=…&region=…,
    /// gs://bucket/path or abs://account@container/path. S3 credentials come from
    /// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or LITESTREAM_ACCESS_KEY_ID/…).
    pub url: String,
    /// Sync and upload once, then exit (for cron jobs and tests).
    #[arg(long)]
    pub once: bool,
    /// Run this command (through `sh -c`) as the application: signals are forwarded to it,
    /// and when it exits walcast finishes its last upload and exits with its code.
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// How often staged changes go up to the replica, as one object per interval.
    #[arg(long = "sync-interval", default_value = "1s", value_parser = duration::parse_duration)]
    pub sync_interval: Duration,
}

/// A replica client for a URL (`file:///dir`, `s3://…`, `gs://…`, `abs://…`) or a
/// directory path. Builds the client and sends no request.
fn replica_from_url(url: &str) -> anyhow::Result<ReplicaClient> {
    let url = if url.contains("://") {
        url.to_owned()
    } else {
        let path = std::path::absolute(url).with_context(|| format!("replica path {url:?}"))?;
        path.to_str()
            .with_context(|| format!("replica path {url:?} is not UTF-8"))?
            .to_owned()
    };
    ReplicaClient::from_url(&url).with_context(|| format!("replica URL {url:?}"))
}

/// SIGINT and SIGTERM set the returned flag; a second one exits at once (code 1).
fn shutdown_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&flag))?;
        signal_hook::flag::register(signal, Arc::clone(&flag))?;
    }
    Ok(flag)
}

/// When to stop: on SIGINT/SIGTERM, or, with `-exec`, when the application exits (a
/// signal is forwarded to it first, and replication goes on until it has exited).
struct Lifetime {
    shutdown: Arc<AtomicBool>,
    child: Option<ExecChild>,
    child_status: Option<ExitStatus>,
}

impl Lifetime {
    fn should_stop(&mut self) -> anyhow::Result<bool> {
        let Some(child) = self.child.as_mut() else {
            return Ok(self.shutdown.load(Ordering::Relaxed));
        };
        if let Some(status) = child.exited()? {
            info!("the application exited ({status})");
            self.child_status = Some(status);
            return Ok(true);
        }
        if self.shutdown.load(Ordering::Relaxed) {
            child.forward_shutdown();
        }
        Ok(false)
    }
}

pub fn run(args: &ReplicateArgs) -> anyhow::Result<()> {
    let db = std::path::absolute(&args.db)
        .with_context(|| format!("database path {}", args.db.display()))?;
    let replica = replica_from_url(&args.url)?;
    let mut life = Lifetime {
        shutdown: shutdown_flag()?,
        child: None,
        child_status: None,
    };
    let staging = StagingDir::for_database(&db)?;
    let replica_max = sync::replica_max(&replica)
        .with_context(|| format!("cannot read the replica at {}", replica.target()))?;
    if let Some(command) = &args.exec {
        life.child = Some(ExecChild::spawn(command)?);
    }
    let mut sync = DatabaseSync::new(&db, staging.clone(), replica_max);
    if first_step(&mut sync, &mut life)? {
        replicate(args, &mut sync, staging, replica, &mut life)?;
    }
    if let Some(status) = life.child_status {
        let code = exec::exit_code(status);
        if code != 0 {
            std::process::exit(code);
        }
    }
    Ok(())
}

/// The sync loop once attached, then the final sync and upload.
fn replicate(
    args: &ReplicateArgs,
    sync: &mut DatabaseSync,
    staging: StagingDir,
    replica: ReplicaClient,
    life: &mut Lifetime,
) -> anyhow::Result<()> {
    let db = sync.db().to_owned();
    info!(db = %db.display(), replica = %replica.target(), "replicating");
    let (upload_tx, upload_rx) = sync_channel(1);
    let compactor = Compactor::new(LevelSchedule::default(), staging.root().join("compact"))
        .context("cannot prepare compaction")?;
    let uploader = Uploader {
        staging,
        replica,
        interval: args.sync_interval,
        compactor,
    }
    .spawn(upload_rx);
    let _ = upload_tx.try_send(());
    if !args.once {
        let waker = WalWaker::watch(&wal_path(&db), POLL_INTERVAL);
        while !life.should_stop()? {
            match sync.step() {
                Ok(Stepped::Staged) => {
                    let _ = upload_tx.try_send(());
                }
                Ok(Stepped::Idle) => {}
                Err(e) => pause_after(&db, e)?,
            }
            waker.wait();
        }
        info!(db = %db.display(), "stopping: final sync");
    }
    let finished = sync.finish();
    drop(upload_tx);
    let uploaded = uploader
        .join()
        .map_err(|_| anyhow::anyhow!("the upload thread panicked"))?;
    if let Err(e) = finished {
        warn!("final sync of {} failed: {e:#}", db.display());
    }
    uploaded?;
    if let Some(position) = sync.last_position() {
        info!(db = %db.display(), txid = %position.txid, "stopped; replica is up to date");
    }
    if let Some(child) = life.child.take().filter(|_| life.child_status.is_none()) {
        // -once with -exec: wait for the application as well.
        life.child_status = Some(child.wait()?);
    }
    Ok(())
}

fn wal_path(db: &Path) -> PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// Attaches and runs the first sync, waiting while the application has not opened the
/// database. `false` if a signal came first.
fn first_step(sync: &mut DatabaseSync, life: &mut Lifetime) -> anyhow::Result<bool> {
    let mut told = false;
    while !life.should_stop()? {
        match sync.step() {
            Ok(_) => return Ok(true),
            // With -exec the application may not have created its database yet.
            Err(StepError::Attach(e))
                if e.is_retryable()
                    || (life.child.is_some()
                        && matches!(e, AttachError::DatabaseMissing { .. })) =>
            {
                if !told {
                    info!("{e}");
                    told = true;
                }
                std::thread::sleep(ATTACH_RETRY);
            }
            Err(StepError::Attach(e)) => {
                return Err(e).with_context(|| format!("cannot replicate {}", sync.db().display()));
            }
            Err(e) => pause_after(sync.db(), e)?,
        }
    }
    Ok(false)
}

/// Logs a failed step and pauses; a refusal to attach ends the command.
fn pause_after(db: &Path, e: StepError) -> anyhow::Result<()> {
    match e {
        StepError::Attach(e) if !e.is_retryable() => {
            return Err(e).with_context(|| format!("cannot replicate {}", db.display()));
        }
        e => warn!(db = %db.display(), "{e:#}; retrying"),
    }
    std::thread::sleep(RETRY_PAUSE);
    Ok(())
}
