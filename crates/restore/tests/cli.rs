//! The command line around the commands: `--version` names the commit, and
//! `walcast-restore completions SHELL` prints a script that knows every subcommand.

use std::process::Command;

fn walcast_restore(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_walcast-restore"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "walcast-restore {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn version_names_the_version_and_the_commit() {
    let version = walcast_restore(&["--version"]);
    let expected = format!("walcast-restore {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(version.starts_with(&expected), "{version:?}");
    assert!(version.trim_end().ends_with(')'), "{version:?}");
}

#[test]
fn completions_know_every_subcommand_in_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let script = walcast_restore(&["completions", shell]);
        for sub in ["restore", "verify", "ltx", "completions"] {
            assert!(script.contains(sub), "{shell} completions lack {sub}");
        }
        // Flags come from the same definitions as the parser.
        assert!(
            script.contains("if-db-not-exists"),
            "{shell} completions lack flags"
        );
    }
}
