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
mod replica_choice;
mod replica_url;
mod restore_cmd;
mod staged_output;
mod verify_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser, Subcommand};
use walcast_ltx::TxId;
use walcast_replica::RestoreTarget;

use crate::replica_choice::ReplicaChoice;
use crate::restore_cmd::RestoreRequest;

/// Restore a SQLite database from a replica, and verify it byte for byte.
#[derive(Parser, Debug)]
#[command(
    name = "walcast-restore",
    version = walcast_cli::VERSION,
    about,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Restore the latest state, a TXID or a moment from a replica into a new file.
    ///
    /// Example: walcast-restore restore -o /var/lib/app/app.db -if-db-not-exists s3://bucket/app
    Restore {
        /// The database file to write (required with a replica URL or directory; with
        /// -config it defaults to the database's own path).
        #[arg(short = 'o', value_name = "OUT")]
        output: Option<PathBuf>,
        /// Restore the state right after this TXID (16 hex digits).
        #[arg(long, value_name = "TXID", conflicts_with = "timestamp")]
        txid: Option<TxId>,
        /// Restore the newest state made before this moment (RFC 3339), as Litestream does.
        #[arg(long, value_name = "RFC3339", value_parser = walcast_replica::rfc3339::parse_millis)]
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
        #[command(flatten)]
        source: SourceArgs,
        /// The replica: s3://…, gs://…, abs://…, file:///dir or a directory path; with
        /// -config, the database path the config file names.
        #[arg(value_name = "DB|URL")]
        replica: String,
    },
    /// Check that a local database equals the replica's state at a TXID, page for page.
    ///
    /// Example: walcast-restore verify restored.db file:///var/backups/app -txid 00000000000000a0
    Verify {
        /// The local database file.
        db: PathBuf,
        /// The replica: s3://…, gs://…, abs://…, file:///dir or a directory path; with
        /// -config, the database path the config file names (default: DB itself).
        #[arg(value_name = "URL", required_unless_present = "config")]
        replica: Option<String>,
        #[command(flatten)]
        source: SourceArgs,
        /// Compare with the state right after this TXID (default: the latest).
        #[arg(long, value_name = "TXID")]
        txid: Option<TxId>,
    },
    /// List the LTX files a replica holds, by level.
    ///
    /// Example: walcast-restore ltx s3://bucket/app --json
    Ltx {
        /// The replica: s3://…, gs://…, abs://…, file:///dir or a directory path; with
        /// -config, the database path the config file names.
        #[arg(value_name = "DB|URL")]
        replica: String,
        #[command(flatten)]
        source: SourceArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script for walcast-restore.
    ///
    /// Example: walcast-restore completions zsh > ~/.zfunc/_walcast-restore
    Completions(walcast_cli::CompletionsArgs),
}

/// Flags that choose the replica through a config file.
#[derive(clap::Args, Debug)]
struct SourceArgs {
    /// Read the replica from this walcast (or Litestream) config file: the argument is
    /// then the database path it lists.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    /// With -config: which of the database's replicas (its `name`, or `s3`, `file`, …
    /// for an unnamed one; `type-N` when it has several). Default: the first.
    #[arg(long = "replica", value_name = "NAME", requires = "config")]
    replica_name: Option<String>,
}

impl SourceArgs {
    fn choice(self, arg: String) -> ReplicaChoice {
        ReplicaChoice {
            arg,
            config: self.config,
            name: self.replica_name,
        }
    }
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
            source,
            replica,
        } => {
            let choice = source.choice(replica);
            let output = match (output, choice.config_db()) {
                (Some(output), _) => output,
                (None, _) if dry_run => PathBuf::new(),
                (None, Some(db)) => db,
                (None, None) => missing_output(&choice.arg),
            };
            let target = match (txid, timestamp) {
                (Some(txid), _) => RestoreTarget::TxId(txid),
                (None, Some(ms)) => RestoreTarget::Timestamp(ms),
                (None, None) => RestoreTarget::Latest,
            };
            restore_cmd::run(&RestoreRequest {
                output,
                replica: choice,
                target,
                if_db_not_exists,
                if_replica_exists,
                parallelism: usize::from(parallelism),
                force,
                dry_run,
            })
        }
        Command::Verify {
            db,
            replica,
            source,
            txid,
        } => {
            let arg = replica.unwrap_or_else(|| db.display().to_string());
            verify_cmd::run(&db, &source.choice(arg), txid, 8)
        }
        Command::Ltx {
            replica,
            source,
            json,
        } => ltx_cmd::run(&source.choice(replica), json),
        Command::Completions(args) => walcast_cli::print_completions::<Cli>(&args),
    })
}

/// Without `-o` and `-config` there is nowhere to write: a usage error (exit 2).
fn missing_output(replica: &str) -> ! {
    let message = if replica_url::is_url(replica) {
        format!("restoring from the replica URL {replica:?} needs -o OUT")
    } else {
        format!(
            "-o OUT is required when {replica:?} is a replica directory; to restore a database \
             by its path, give -config FILE too"
        )
    };
    Cli::command()
        .error(ErrorKind::MissingRequiredArgument, message)
        .exit()
}

#[cfg(test)]
mod help_tests {
    use clap::CommandFactory;

    #[test]
    fn every_subcommand_help_has_an_example() {
        let missing = walcast_cli::subcommands_without_example(&super::Cli::command());
        assert!(
            missing.is_empty(),
            "no \"Example:\" in the --help of {missing:?}"
        );
    }
}
