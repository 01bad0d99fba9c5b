//! The shipped static binaries need nothing but themselves: `walcast` replicates and
//! `walcast-restore` restores while each runs chrooted into a root directory that holds
//! only the binary, the database directory and the replica directory.
//!
//! How: `unshare --mount` gives the binary a private mount namespace, in which the real
//! database and replica directories are bind-mounted into an otherwise empty root, then
//! `chroot` runs the binary there (no /lib, /etc, /proc, /tmp, /dev; no loader, libc,
//! certificates or shell). The application is real SQLite running OUTSIDE the root and
//! writing the database through its normal path; walcast inside sees the same inode
//! through the bind mount, so their locks (SQLite's POSIX locks, walcast's OFD locks) and
//! the shared `-shm` mapping meet exactly as they would without the chroot. After SIGINT,
//! `walcast-restore` restores inside the root, and the restore must equal the
//! checkpointed source byte for byte. A second test does the same with an S3 server on
//! loopback, reached by host name: that root also holds `/etc/hosts`, and no CA
//! certificates (the binaries fall back on the roots built into them, so a `FROM scratch`
//! image needs none). Needs root (or unprivileged user namespaces) for
//! the mount namespace and chroot; CI runs as root.
//!
//! The binaries: `$WALCAST_STATIC_BIN_DIR` (scripts/test builds them with
//! `scripts/dist --profile release`), else this test runs that command itself.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, bail};
use walcast_testbed::s3::{BUCKET, S3Server};
use walcast_testbed::sqlite::{self, CheckpointMode, Session, Workload};
use walcast_testbed::wait;

/// Where the test puts the binaries it builds when `$WALCAST_STATIC_BIN_DIR` is unset.
const SELF_BUILT_DIR: &str = "target/static-test";

/// Directory holding static `walcast` and `walcast-restore`, built once per test run.
fn static_bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("WALCAST_STATIC_BIN_DIR") {
            return PathBuf::from(dir);
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let status = Command::new(workspace.join("scripts/dist"))
            .args(["--profile", "release", "--out", SELF_BUILT_DIR])
            .current_dir(&workspace)
            .status()
            .expect("cannot run scripts/dist");
        assert!(status.success(), "scripts/dist failed: {status}");
        workspace.join(SELF_BUILT_DIR)
    })
}

/// A root directory holding only the two binaries and empty mount points.
struct EmptyRoot {
    root: PathBuf,
}

/// Mount points inside the root.
const DB_DIR: &str = "/db";
const REPLICA_DIR: &str = "/replica";
const OUT_DIR: &str = "/out";

/// Mounts each `source target` pair (target relative to the root) in the private mount
/// namespace `unshare` made, then runs the rest of the arguments chrooted into the root.
const BIND_THEN_CHROOT: &str = r#"set -e
root="$1"; shift
while [ "$1" != "--" ]; do mount --bind "$1" "$root$2"; shift 2; done
shift
exec chroot "$root" "$@""#;

impl EmptyRoot {
    fn create(root: &Path) -> anyhow::Result<Self> {
        for dir in [DB_DIR, REPLICA_DIR, OUT_DIR] {
            std::fs::create_dir_all(root.join(dir.trim_start_matches('/')))?;
        }
        for bin in ["walcast", "walcast-restore"] {
            let from = static_bin_dir().join(bin);
            std::fs::copy(&from, root.join(bin))
                .with_context(|| format!("cannot copy {}", from.display()))?;
        }
        Ok(Self {
            root: root.to_owned(),
        })
    }

    /// `argv` run chrooted into the root with `db_dir` on /db and `replica_dir` on
    /// /replica; the process keeps this command's pid (unshare and sh exec, no fork).
    fn command(&self, db_dir: &Path, replica_dir: &Path, argv: &[&str]) -> Command {
        let mut cmd = Command::new("unshare");
        if !rustix::process::geteuid().is_root() {
            // Without root, a user namespace grants the rights to mount and chroot.
            cmd.arg("--map-root-user");
        }
        cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(BIND_THEN_CHROOT)
            .arg("sh")
            .arg(&self.root)
            .arg(db_dir)
            .arg(DB_DIR)
            .arg(replica_dir)
            .arg(REPLICA_DIR)
            .arg("--")
            .args(argv)
            .env_clear()
            // For unshare, sh, mount and chroot outside; the binaries inside need nothing.
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("WALCAST_LOG", "walcast=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    }
}

/// Waits until `child` has exited, naming `what` on timeout.
fn wait_exit(child: &mut Child, what: &str) -> anyhow::Result<std::process::ExitStatus> {
    let mut status = None;
    wait::until(Duration::from_secs(60), what, || {
        status = child.try_wait()?;
        Ok(status.is_some())
    })?;
    status.context("no exit status")
}

/// Where the chrooted binaries replicate to, and what they need for it.
struct ReplicaTarget {
    /// The URL as seen inside the root.
    url: String,
    /// Environment of both binaries (credentials, CA bundle).
    env: Vec<(String, String)>,
}

/// Real SQLite writes `db_dir/app.db` outside the root while `walcast replicate` runs in
/// it; after SIGINT and a TRUNCATE checkpoint, `walcast-restore restore` and `verify` run
/// in the root, and the restore must equal the source byte for byte.
fn replicate_then_restore_inside(root: &EmptyRoot, dir: &Path, target: &ReplicaTarget) {
    let (db_dir, replica_dir) = (dir.join("data"), dir.join("replica"));
    std::fs::create_dir_all(&db_dir).unwrap();
    std::fs::create_dir_all(&replica_dir).unwrap();
    let db = db_dir.join("app.db");

    // The application, outside the root, has the database open in WAL mode.
    let mut app = Session::open(&db, 5000).unwrap();
    app.exec_all(&[
        "PRAGMA journal_mode=WAL",
        "CREATE TABLE seed(x)",
        "INSERT INTO seed VALUES (1)",
    ])
    .unwrap();

    let log_path = dir.join("walcast.log");
    let log = File::create(&log_path).unwrap();
    let replicate = [
        "/walcast",
        "replicate",
        "/db/app.db",
        &target.url,
        "-sync-interval",
        "100ms",
    ];
    let mut walcast = root
        .command(&db_dir, &replica_dir, &replicate)
        .envs(target.env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    wait::until(Duration::from_secs(30), "walcast to replicate", || {
        if let Some(status) = walcast.try_wait()? {
            bail!(
                "walcast exited ({status}) before replicating:\n{}",
                read_log()
            );
        }
        Ok(read_log().contains("replicating"))
    })
    .unwrap();

    // A writer outside the root, with checkpoints, while walcast inside ships the WAL.
    let writer = Workload {
        seed: 7,
        transactions: 300,
        autocheckpoint: 50,
        ..Workload::default()
    };
    writer.run(&db).unwrap();

    rustix::process::kill_process(
        rustix::process::Pid::from_child(&walcast),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let status = wait_exit(&mut walcast, "walcast to stop after SIGINT").unwrap();
    assert!(status.success(), "walcast exited {status}:\n{}", read_log());
    app.close().unwrap();

    let checkpoint = sqlite::checkpoint(&db, CheckpointMode::Truncate).unwrap();
    assert_eq!(
        checkpoint.busy, 0,
        "final checkpoint was busy: {checkpoint:?}"
    );

    let restore = [
        "/walcast-restore",
        "restore",
        "-o",
        "/out/app.db",
        &target.url,
    ];
    let verify = ["/walcast-restore", "verify", "/db/app.db", &target.url];
    for argv in [&restore[..], &verify[..]] {
        let out = root
            .command(&db_dir, &replica_dir, argv)
            .envs(target.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{argv:?} in the root: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let restored_path = root.root.join("out/app.db");
    let (source, restored) = (
        std::fs::read(&db).unwrap(),
        std::fs::read(&restored_path).unwrap(),
    );
    assert_eq!(source.len(), restored.len(), "restored size differs");
    let first_difference = source.iter().zip(&restored).position(|(a, b)| a != b);
    assert_eq!(first_difference, None, "restore differs from the source");
    assert_eq!(sqlite::integrity_check(&restored_path).unwrap(), "ok");
}

/// The root's entries, sorted.
fn root_entries(root: &EmptyRoot) -> Vec<String> {
    let mut entries: Vec<String> = std::fs::read_dir(&root.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    entries
}

#[test]
fn static_binaries_replicate_and_restore_a_directory_replica_in_an_empty_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = EmptyRoot::create(&dir.path().join("root")).unwrap();
    let target = ReplicaTarget {
        url: format!("file://{REPLICA_DIR}"),
        env: Vec::new(),
    };
    replicate_then_restore_inside(&root, dir.path(), &target);
    // Nothing but the binaries and the mount points ended up in the root.
    assert_eq!(
        root_entries(&root),
        ["db", "out", "replica", "walcast", "walcast-restore"]
    );
}

/// An S3 server by host name: the root adds only `/etc/hosts` (name resolution); no CA
/// certificates anywhere (no /etc/ssl, no `SSL_CERT_FILE`, no `AWS_CA_BUNDLE`), as in a
/// `FROM scratch` image: the TLS client must start on the roots built into the binary.
/// Catches static-only failures in the network path, such as getrandom's fallback to a
/// /dev/urandom the root does not have (scripts/dist).
#[test]
fn static_binaries_replicate_and_restore_an_s3_replica_in_a_root_without_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let root = EmptyRoot::create(&dir.path().join("root")).unwrap();
    std::fs::create_dir_all(root.root.join("etc")).unwrap();
    std::fs::write(root.root.join("etc/hosts"), "127.0.0.1 s3.walcast.test\n").unwrap();

    let server = S3Server::start().unwrap();
    let target = ReplicaTarget {
        url: format!(
            "s3://{BUCKET}/app?endpoint=http://s3.walcast.test:{}&region=us-east-1&forcePathStyle=true",
            server.addr().port()
        ),
        env: server.credentials(),
    };
    replicate_then_restore_inside(&root, dir.path(), &target);
    assert!(
        server.bucket_dir(BUCKET).join("app").exists(),
        "nothing reached the S3 server"
    );
    assert_eq!(
        root_entries(&root),
        ["db", "etc", "out", "replica", "walcast", "walcast-restore"]
    );
}
