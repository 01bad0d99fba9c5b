//! `walcast-restore`: restore and verify. It links no daemon code from the shipper.

#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Restore a SQLite database from a replica, and verify it byte for byte.
#[derive(Parser, Debug)]
#[command(name = "walcast-restore", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {}

// Until the first command lands the command enum is empty and main cannot return.
#[allow(unreachable_code, unused_variables)]
fn main() -> ExitCode {
    let cli: Cli = walcast_cli::parse();
    walcast_cli::finish(match cli.command {})
}
