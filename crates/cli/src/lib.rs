//! Command-line conventions shared by `walcast` and `walcast-restore`.
//!
//! - Litestream users type long flags with one dash (`-config`, `-txid`); clap wants two.
//!   [`parse`] accepts both by rewriting `-name` to `--name` when `name` is a long flag
//!   of the command tree. Short flags and values are left alone.
//! - Exit codes: 0 success, 1 failure, 2 usage (clap's own code for usage errors).
//! - Errors print as one line, `error: <what>: <cause>: ...`, the whole context chain.
//! - `--version` prints the version and the git commit built from ([`VERSION`]).
//! - `completions SHELL` prints a completion script generated from the command tree
//!   ([`CompletionsArgs`], [`print_completions`]).
//! - Every subcommand's `--help` ends with an example ([`subcommands_without_example`]
//!   lets each binary test that).
//!
//! This crate must never hold command logic: it only shapes argument parsing and exits.

#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

/// Exit code for a command that ran and failed.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a command line that could not be understood (clap uses it too).
pub const EXIT_USAGE: u8 = 2;

/// `0.1.0 (commit 0123456789ab)`: the version `--version` prints, with the git commit
/// the build script found (`unknown` when built outside a git checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("WALCAST_GIT_COMMIT"),
    ")"
);

/// Arguments of the `completions` subcommand both binaries have.
#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to generate the script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Writes `P`'s completion script for `shell` to stdout.
pub fn print_completions<P: CommandFactory>(args: &CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = P::command();
    let name = cmd.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, name, &mut script);
    std::io::Write::write_all(&mut std::io::stdout().lock(), &script)
        .map_err(|e| anyhow::anyhow!("cannot write the completion script to stdout: {e}"))
}

/// The text every subcommand's long help must contain to count as having an example.
pub const EXAMPLE_MARKER: &str = "Example:";

/// Names (`walcast replicate`) of the subcommands, at any depth, whose `--help` has no
/// line with [`EXAMPLE_MARKER`]; clap's own `help` subcommand is exempt.
pub fn subcommands_without_example(cmd: &clap::Command) -> Vec<String> {
    let mut missing = Vec::new();
    collect_without_example(cmd, cmd.get_name(), &mut missing);
    missing
}

fn collect_without_example(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let sub_path = format!("{path} {}", sub.get_name());
        let help = sub.clone().render_long_help().to_string();
        if !help.contains(EXAMPLE_MARKER) {
            missing.push(sub_path.clone());
        }
        collect_without_example(sub, &sub_path, missing);
    }
}

/// Parses the process arguments into `P`, accepting `-flag` as well as `--flag`.
/// On a usage error prints clap's message and exits with code 2.
pub fn parse<P: Parser>() -> P {
    P::parse_from(normalize_args::<P>(std::env::args_os()))
}

/// Rewrites single-dash long flags (`-config x`, `-txid=00..01`) to clap's `--` form.
pub fn normalize_args<P: CommandFactory>(
    args: impl IntoIterator<Item = OsString>,
) -> Vec<OsString> {
    let longs = long_flag_names(&P::command());
    let mut after_double_dash = false;
    args.into_iter()
        .map(|arg| {
            if after_double_dash {
                return arg;
            }
            let Some(text) = arg.to_str() else { return arg };
            if text == "--" {
                after_double_dash = true;
                return arg;
            }
            match single_dash_long(text) {
                Some(name) if longs.contains(name) => OsString::from(format!("-{text}")),
                _ => arg,
            }
        })
        .collect()
}

/// `-name` or `-name=value` with a name of two or more characters, else `None`.
fn single_dash_long(arg: &str) -> Option<&str> {
    let rest = arg.strip_prefix('-')?;
    if rest.starts_with('-') {
        return None;
    }
    let name = rest.split_once('=').map_or(rest, |(name, _)| name);
    (name.len() >= 2 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')).then_some(name)
}

fn long_flag_names(cmd: &clap::Command) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = cmd
        .get_arguments()
        .filter_map(|a| a.get_long())
        .map(str::to_owned)
        .collect();
    names.extend(["help", "version"].map(str::to_owned));
    for sub in cmd.get_subcommands() {
        names.extend(long_flag_names(sub));
    }
    names
}

/// Turns a command's result into the process exit code, printing the error chain.
pub fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        cmd: Sub,
    }
    #[derive(clap::Subcommand, Debug)]
    enum Sub {
        Restore {
            #[arg(long)]
            txid: Option<String>,
            #[arg(short = 'o', long = "output")]
            output: Option<String>,
            #[arg(long = "if-db-not-exists")]
            if_db_not_exists: bool,
            target: String,
        },
    }

    fn parse(args: &[&str]) -> Cli {
        let args = normalize_args::<Cli>(args.iter().map(OsString::from));
        Cli::try_parse_from(args).unwrap()
    }

    #[test]
    fn single_dash_long_flags_parse_like_double_dash() {
        let Sub::Restore {
            txid,
            output,
            if_db_not_exists,
            target,
        } = parse(&[
            "x",
            "restore",
            "-txid",
            "0000000000000010",
            "-if-db-not-exists",
            "-o",
            "out.db",
            "db",
        ])
        .cmd;
        assert_eq!(txid.as_deref(), Some("0000000000000010"));
        assert_eq!(output.as_deref(), Some("out.db"));
        assert!(if_db_not_exists);
        assert_eq!(target, "db");
    }

    #[test]
    fn equals_form_and_values_after_double_dash_are_kept() {
        let Sub::Restore { txid, target, .. } =
            parse(&["x", "restore", "-txid=0a", "--", "-output"]).cmd;
        assert_eq!(txid.as_deref(), Some("0a"));
        assert_eq!(target, "-output");
    }

    #[test]
    fn unknown_single_dash_words_are_left_for_clap_to_reject() {
        let args = normalize_args::<Cli>(["x", "restore", "-bogus", "db"].map(OsString::from));
        assert_eq!(args[2], OsString::from("-bogus"));
        assert!(Cli::try_parse_from(args).is_err());
    }
}
