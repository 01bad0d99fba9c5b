//! `walcast`: the shipper. Thin binary: parse arguments, run one command, turn the
//! error chain into a message and an exit code (0 ok, 1 failure, 2 usage).

#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod inspect;
mod listing;
mod replicate;
mod status;

/// Continuous replication of live SQLite databases to object storage.
#[derive(Parser, Debug)]
#[command(name = "walcast", version = walcast_cli::VERSION, about, propagate_version = true)]
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
    /// Replicate a live SQLite database to a replica until SIGINT or SIGTERM.
    ///
    /// Every transaction the application commits is copied out of the WAL into the
    /// staging directory `.<db>-walcast/` next to the database, then uploaded. walcast never
    /// writes to the database and never runs checkpoints: the application's own keep the
    /// WAL small. The database must be in WAL mode; walcast waits until the application
    /// has it open.
    ///
    /// Example: walcast replicate /var/lib/app/app.db file:///var/backups/app
    Replicate(replicate::ReplicateArgs),
    /// List the databases of the config and their replicas.
    ///
    /// Example: walcast databases -config /etc/walcast.yml
    Databases(listing::DatabasesArgs),
    /// List the LTX files a replica holds: level, TXID range, size, creation time.
    ///
    /// Give a replica URL or directory, or a database path with -config.
    ///
    /// Example: walcast ltx s3://backups/app --level 0
    Ltx(listing::LtxArgs),
    /// Show how far each database of the config is replicated: position, WAL size,
    /// files waiting, and per replica the last upload and last error.
    ///
    /// Reads what `walcast replicate` records in each staging directory; works whether
    /// or not it is running.
    ///
    /// Example: walcast status -config /etc/walcast.yml --json
    Status(status::StatusArgs),
    /// Print a shell completion script for walcast.
    ///
    /// Example: walcast completions bash > /etc/bash_completion.d/walcast
    Completions(walcast_cli::CompletionsArgs),
}

fn main() -> ExitCode {
    let cli: Cli = walcast_cli::parse();
    let logging = match &cli.command {
        Command::Replicate(args) => replicate::logging(args),
        _ => walcast_config::Logging::default(),
    };
    init_logging(logging);
    walcast_cli::finish(match cli.command {
        Command::Inspect(args) => inspect::run(&args),
        Command::Replicate(args) => replicate::run(&args),
        Command::Databases(args) => listing::databases(&args),
        Command::Ltx(args) => listing::ltx(&args),
        Command::Status(args) => status::run(&args),
        Command::Completions(args) => walcast_cli::print_completions::<Cli>(&args),
    })
}

/// Logs go to stderr (whatever `logging.stderr` says: stdout belongs to the application
/// run by `-exec`, and to the commands' output), at the config's `logging.level`, as text
/// or, with `logging.type: json`, one JSON object per line. `WALCAST_LOG` (e.g. `debug`,
/// `walcast=trace`) overrides the level.
fn init_logging(logging: walcast_config::Logging) {
    use walcast_config::{LogFormat, LogLevel};
    let level = match logging.level {
        LogLevel::Debug => "debug",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WALCAST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match logging.format {
        LogFormat::Json => builder.json().init(),
        _ => builder.init(),
    }
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
