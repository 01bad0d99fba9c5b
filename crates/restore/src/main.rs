//! `walcast-restore`: restore a database from a replica, verify a database against a
//! replica, list what a replica holds. It links no daemon code from the shipper.
//!
//! Each subcommand lives in its own module (`restore_cmd`, `verify_cmd`, `ltx_cmd`);
//! this file only parses arguments and turns results into exit codes (0 ok, 1 failure,
//! 2 usage).

#![deny(clippy::unwrap_used, clippy::expect_used)]

mod decode_thread;
mod ltx_cmd;
mod merged_pages;
mod replica_url;
mod restore_cmd;
mod rfc3339;
mod staged_output;
mod verify_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};
use walcast_ltx::TxId;
use walcast_replica::RestoreTarget;

use crate::restore_cmd::RestoreRequest;

/// Restore a SQLite database from a replica, and verify it byte for byte.
#[derive(Parser, Debug)]
#[command(name = "walcast-restore", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Restore the latest state, a TXID or a moment from a replica into a new file.
    Restore {
        /// The database file to write (required with a replica URL or directory).
        #[arg(short = 'o', value_name = "OUT")]
        output: Option<PathBuf>,
        /// Restore the state right after this TXID (16 hex digits).
        #[arg(long, value_name = "TXID", conflicts_with = "timestamp")]
        txid: Option<TxId>,
        /// Restore the newest state made before this moment (RFC 3339), as Litestream does.
        #[arg(long, value_name = "RFC3339", value_parser = rfc3339::parse_millis)]
        timestamp: Option<i64>,
        /// Do nothing (exit 0) if OUT already exists.
        #[arg(long = "if-db-not-exists")]
        if_db_not_exists: bool,
        /// Do nothing (exit 0) if the replica holds no backup.
        #[arg(long = "if-replica-exists")]
        if_replica_exists: bool,
        /// How many planned files (the largest) are read and decoded ahead, each on a thread
        /// of its own, while the merge runs; the others are decoded by the merge itself.
        #[arg(long, value_name = "N", default_value_t = 8,
              value_parser = clap::value_parser!(u16).range(1..=256))]
        parallelism: u16,
        /// Replace OUT (and remove its -wal and -shm files) if it exists.
        #[arg(long)]
        force: bool,
        /// Print the files the restore would merge, and the TXID they reach; write nothing.
        #[arg(long = "dry-run")]
        dry_run: bool,
        /// The replica: file:///dir or a directory path.
        #[arg(value_name = "DB|URL")]
        replica: String,
    },
    /// Check that a local database equals the replica's state at a TXID, page for page.
    Verify {
        /// The local database file.
        db: PathBuf,
        /// The replica: file:///dir or a directory path.
        #[arg(value_name = "URL")]
        replica: String,
        /// Compare with the state right after this TXID (default: the latest).
        #[arg(long, value_name = "TXID")]
        txid: Option<TxId>,
    },
    /// List the LTX files a replica holds, by level.
    Ltx {
        /// The replica: file:///dir or a directory path.
        #[arg(value_name = "URL")]
        replica: String,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli: Cli = walcast_cli::parse();
    walcast_cli::finish(match cli.command {
        Command::Restore {
            output,
            txid,
            timestamp,
            if_db_not_exists,
            if_replica_exists,
            parallelism,
            force,
            dry_run,
            replica,
        } => {
            let output = match output {
                Some(output) => output,
                None if dry_run => PathBuf::new(),
                None => missing_output(&replica),
            };
            let target = match (txid, timestamp) {
                (Some(txid), _) => RestoreTarget::TxId(txid),
                (None, Some(ms)) => RestoreTarget::Timestamp(ms),
                (None, None) => RestoreTarget::Latest,
            };
            restore_cmd::run(&RestoreRequest {
                output,
                replica,
                target,
                if_db_not_exists,
                if_replica_exists,
                parallelism: usize::from(parallelism),
                force,
                dry_run,
            })
        }
        Command::Verify { db, replica, txid } => verify_cmd::run(&db, &replica, txid, 8),
        Command::Ltx { replica, json } => ltx_cmd::run(&replica, json),
    })
}

/// Without `-o` the argument would name a database of the config file, which is not
/// supported yet: a usage error (exit 2).
fn missing_output(replica: &str) -> ! {
    let message = if replica_url::is_url(replica) {
        format!("restoring from the replica URL {replica:?} needs -o OUT")
    } else {
        format!(
            "-o OUT is required: restoring {replica:?} by its config file is not supported yet; \
             give the replica's directory or file:// URL and -o OUT"
        )
    };
    Cli::command()
        .error(ErrorKind::MissingRequiredArgument, message)
        .exit()
}
