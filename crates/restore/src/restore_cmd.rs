//! `walcast-restore restore`: plan, merge and write a database from a replica.
//!
//! Order of work: refuse early what would be refused anyway (an existing output without
//! `-force`), list the replica, plan, stream the merged pages into `<OUT>.tmp`, verify
//! every planned file, then publish. This module must never leave `<OUT>` partial or
//! replace it without `-force`, and never publish before every input verified.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use walcast_replica::{Catalog, ReplicaSource, RestorePlan, RestoreTarget, Timestamps};

use crate::merged_pages::{MergedPages, walk_database};
use crate::staged_output::{Publish, StagedOutput, with_suffix};

/// What the user asked for, after argument parsing.
#[derive(Debug)]
pub struct RestoreRequest {
    /// The database file to write.
    pub output: PathBuf,
    /// The replica, as the user chose it.
    pub replica: crate::replica_choice::ReplicaChoice,
    /// Which state.
    pub target: RestoreTarget,
    /// Exit 0 without restoring when the output exists.
    pub if_db_not_exists: bool,
    /// Exit 0 without restoring when the replica holds nothing.
    pub if_replica_exists: bool,
    /// Planned files decoded on threads of their own.
    pub parallelism: usize,
    /// Replace an existing output.
    pub force: bool,
    /// Print the plan and stop: nothing is read but the listing, nothing is written.
    pub dry_run: bool,
}

/// Runs the restore; prints one summary line on stderr.
pub fn run(request: &RestoreRequest) -> anyhow::Result<()> {
    let out = &request.output;
    if request.dry_run {
        return print_plan(request);
    }
    if let Some(existing) = existing_output(out) {
        if request.if_db_not_exists && existing == *out {
            eprintln!(
                "{} already exists; nothing restored (-if-db-not-exists)",
                out.display()
            );
            return Ok(());
        }
        if !request.force {
            bail!(
                "{} already exists; refusing to overwrite it (use -force to replace the database and its -wal and -shm files)",
                existing.display()
            );
        }
    }
    let Some(Planned {
        source,
        replica,
        plan,
    }) = plan(request)?
    else {
        return Ok(());
    };

    let started = Instant::now();
    let mut staged = StagedOutput::create(out)?;
    let merged = MergedPages::open(source.as_ref(), &plan, request.parallelism)
        .with_context(|| format!("cannot restore from replica {replica}"))?;
    let mut progress = Progress::new(plan.files().len());
    let walked = walk_database(merged, |pgno, page| {
        progress.page(pgno);
        staged.write(page)
    })
    .with_context(|| format!("cannot restore from replica {replica}"))?;
    progress.clear();
    let how = if request.force {
        Publish::Replace
    } else {
        Publish::CreateNew
    };
    staged.publish(how)?;

    let bytes: u64 = walked.verified.iter().map(|v| v.size()).sum();
    eprintln!(
        "restored {} at TXID {} (made {}) from {replica}: {} pages of {} bytes, {} file{} ({:.1} MiB) verified, in {:.2}s",
        out.display(),
        walked.txid,
        walked
            .verified
            .last()
            .map_or_else(String::new, |v| v.header().timestamp_rfc3339()),
        walked.commit,
        walked.page_size.get(),
        walked.verified.len(),
        if walked.verified.len() == 1 { "" } else { "s" },
        bytes as f64 / (1024.0 * 1024.0),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A replica and the plan that restores the target from it.
struct Planned {
    source: Box<dyn ReplicaSource>,
    replica: String,
    plan: RestorePlan,
}

/// Lists the replica and plans; `None` when it is empty and `-if-replica-exists` says
/// that is fine.
fn plan(request: &RestoreRequest) -> anyhow::Result<Option<Planned>> {
    let source = request.replica.open()?;
    let replica = source.describe();
    let timestamps = match request.target {
        RestoreTarget::Timestamp(_) => Timestamps::Read,
        _ => Timestamps::Skip,
    };
    let catalog = Catalog::read(source.as_ref(), timestamps)
        .with_context(|| format!("cannot list replica {replica}"))?;
    if catalog.is_empty() && request.if_replica_exists {
        eprintln!("replica {replica} holds no backups; nothing restored (-if-replica-exists)");
        return Ok(None);
    }
    let plan = catalog
        .plan(request.target)
        .with_context(|| format!("cannot restore {} from replica {replica}", request.target))?;
    Ok(Some(Planned {
        source,
        replica,
        plan,
    }))
}

/// `-dry-run`: the planned files on stdout, one per line, then the TXID they reach.
fn print_plan(request: &RestoreRequest) -> anyhow::Result<()> {
    let Some(Planned { replica, plan, .. }) = plan(request)? else {
        return Ok(());
    };
    for file in plan.files() {
        println!("{}  {} bytes", file.path(), file.size);
    }
    println!(
        "restores TXID {} from {} file{} ({} bytes) of {replica}",
        plan.txid(),
        plan.files().len(),
        if plan.files().len() == 1 { "" } else { "s" },
        plan.bytes()
    );
    Ok(())
}

/// The output or one of its sidecars, if any exists (a dangling symlink counts).
fn existing_output(out: &Path) -> Option<PathBuf> {
    [
        out.to_owned(),
        with_suffix(out, "-wal"),
        with_suffix(out, "-shm"),
    ]
    .into_iter()
    .find(|p| p.symlink_metadata().is_ok())
}

/// A one-line progress display on a terminal; nothing otherwise.
struct Progress {
    on_terminal: bool,
    files: usize,
    shown: u32,
}

impl Progress {
    fn new(files: usize) -> Self {
        Self {
            on_terminal: std::io::stderr().is_terminal(),
            files,
            shown: 0,
        }
    }

    fn page(&mut self, pgno: u32) {
        if self.on_terminal && pgno >= self.shown.saturating_add(4096) {
            self.shown = pgno;
            eprint!("\rrestoring: page {pgno} from {} files", self.files);
            let _ = std::io::stderr().flush();
        }
    }

    fn clear(&self) {
        if self.on_terminal && self.shown > 0 {
            eprint!("\r\x1b[K");
        }
    }
}
