//! `walcast`: the shipper. Thin binary: parse arguments, run one command, turn the
//! error chain into a message and an exit code (0 ok, 1 failure, 2 usage).

#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod inspect;

/// Continuous replication of live SQLite databases to object storage.
#[derive(Parser, Debug)]
#[command(name = "walcast", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show what a SQLite database, WAL, wal-index (-shm) or LTX file holds.
    ///
    /// The kind is detected from the file's content, not its name.
    ///
    /// Example: walcast inspect app.db-wal --json
    Inspect(inspect::InspectArgs),
}

fn main() -> ExitCode {
    let cli: Cli = walcast_cli::parse();
    walcast_cli::finish(match cli.command {
        Command::Inspect(args) => inspect::run(&args),
    })
}
