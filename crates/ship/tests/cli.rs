//! The command line around the commands: `--version` names the commit, and
//! `walcast completions SHELL` prints a script that knows every subcommand.

use std::process::Command;

fn walcast(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_walcast"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "walcast {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn version_names_the_version_and_the_commit() {
    let version = walcast(&["--version"]);
    let expected = format!("walcast {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(version.starts_with(&expected), "{version:?}");
    // The commit is hex from git, or "unknown" when built without .git.
    let commit = version.trim_end().trim_start_matches(&expected);
    let commit = commit.strip_suffix(')').unwrap();
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{version:?}"
    );
}

#[test]
fn completions_know_every_subcommand_in_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let script = walcast(&["completions", shell]);
        for sub in ["replicate", "inspect", "completions"] {
            assert!(script.contains(sub), "{shell} completions lack {sub}");
        }
    }
}
