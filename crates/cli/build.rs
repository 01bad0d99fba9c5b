//! Records the git commit the binaries are built from, for `--version`.
//!
//! Sets `WALCAST_GIT_COMMIT` for the crate: `$WALCAST_GIT_COMMIT` when the builder sets
//! it (a release tarball has no `.git`), else `git rev-parse --short=12 HEAD`, else
//! `unknown`. Reruns when HEAD or the branch it points to moves.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=WALCAST_GIT_COMMIT");
    let commit = std::env::var("WALCAST_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    for watched in git_files_naming_head() {
        println!("cargo:rerun-if-changed={}", watched.display());
    }
    println!("cargo:rustc-env=WALCAST_GIT_COMMIT={commit}");
}

/// Runs git in this crate's directory; `None` when git is missing or fails (no `.git`).
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}

/// HEAD, the branch file it names, and packed-refs (works in linked worktrees too).
fn git_files_naming_head() -> Vec<PathBuf> {
    let mut refs = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    refs.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    refs.iter()
        .filter_map(|name| git(&["rev-parse", "--path-format=absolute", "--git-path", name]))
        .map(PathBuf::from)
        .filter(|path| path.exists())
        .collect()
}
