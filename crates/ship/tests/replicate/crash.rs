//! kill -9 of walcast while an upload to S3 is in flight, and while a compaction or a
//! snapshot is being stored, then a restart: the replica stays restorable and equal to the
//! source, by walcast-restore and by the real Litestream, and no partial object is ever
//! visible.
//!
//! "In flight" is made certain, not timed: the S3 traffic goes through the
//! [`FaultProxy`], which holds the next PUT of a chosen level (mid-body, or after the
//! server stored it but before walcast hears so), or the next GET of an L0 object, and
//! says when it holds it; only then is walcast killed. After every kill the stored
//! objects are checked (each decodes whole; L1 then L0 files chain from TXID 1 without a
//! hole, so no L0 file went before an L1 file covered it) and restored by both tools.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use walcast_ltx::{LtxFileName, TxId};
use walcast_testbed::fault_proxy::{FaultProxy, Hold};
use walcast_testbed::litestream::Litestream;
use walcast_testbed::s3::{BUCKET, S3Server};
use walcast_testbed::sqlite::{self, Session, Workload};
use walcast_testbed::wait;

use crate::support::{Walcast, assert_url_restores_exactly, open_app};

/// The replica's path in the bucket.
const PATH: &str = "app";

/// How long a restarted walcast may take to reach the PUT the proxy waits for.
const HOLD_TIMEOUT: Duration = Duration::from_secs(30);

fn writer(seed: u64, seconds: f64) -> Workload {
    Workload {
        seed,
        transactions: 0,
        seconds,
        autocheckpoint: 50,
        checkpoint_every: 30,
        ..Workload::default()
    }
}

/// An S3 server, the proxy in front of it, and the replica URLs through each.
struct Store {
    server: S3Server,
    proxy: FaultProxy,
}

impl Store {
    fn start() -> Self {
        let server = S3Server::start().unwrap();
        let proxy = FaultProxy::start(server.addr(), []).unwrap();
        Self { server, proxy }
    }

    /// The replica as walcast sees it (through the proxy).
    fn proxied_url(&self) -> String {
        self.direct_url()
            .replace(&self.server.endpoint(), &self.proxy.endpoint())
    }

    /// The replica as the restorers see it.
    fn direct_url(&self) -> String {
        self.server.url(PATH)
    }

    fn env(&self) -> Vec<(String, String)> {
        self.server.credentials()
    }

    /// Every object of the replica, by level: each one must be an LTX file whose name
    /// parses and whose every page and checksum verify (no partial object is visible).
    fn objects(&self) -> anyhow::Result<Vec<(u8, LtxFileName)>> {
        let root = self.server.bucket_dir(BUCKET).join(PATH);
        let mut found = Vec::new();
        if !root.exists() {
            return Ok(found);
        }
        for level_dir in std::fs::read_dir(&root)? {
            let level_dir = level_dir?.path();
            let level_name = level_dir.file_name().unwrap_or_default().to_string_lossy();
            let level = u8::from_str_radix(&level_name, 16)
                .with_context(|| format!("unexpected entry {}", level_dir.display()))?;
            for file in std::fs::read_dir(&level_dir)? {
                let path = file?.path();
                let file_name = path.file_name().unwrap_or_default().to_string_lossy();
                let name: LtxFileName = file_name
                    .parse()
                    .with_context(|| format!("unexpected object {}", path.display()))?;
                let verified =
                    walcast_ltx::verify(std::io::BufReader::new(std::fs::File::open(&path)?))
                        .with_context(|| format!("object {} does not decode", path.display()))?;
                let header = verified.header();
                if (header.min_txid, header.max_txid) != (name.min, name.max) {
                    bail!("{}: the header says {header:?}", path.display());
                }
                found.push((level, name));
            }
        }
        found.sort();
        Ok(found)
    }
}

/// The object key a held PUT target names (`/walcast/app/0001/<min>-<max>.ltx`).
fn held_name(target: &str) -> LtxFileName {
    let file = target
        .split('?')
        .next()
        .and_then(|path| path.rsplit('/').next())
        .unwrap_or_default();
    file.parse()
        .unwrap_or_else(|e| panic!("held PUT {target}: {e}"))
}

/// `walcast-restore`: built next to `walcast` by a workspace build (`cargo test
/// --workspace`, as scripts/test runs), or in `$WALCAST_STATIC_BIN_DIR`.
fn walcast_restore() -> Command {
    let beside = Path::new(env!("CARGO_BIN_EXE_walcast")).with_file_name("walcast-restore");
    let bin = [
        Some(beside.clone()),
        std::env::var_os("WALCAST_STATIC_BIN_DIR")
            .map(|d| PathBuf::from(d).join("walcast-restore")),
    ]
    .into_iter()
    .flatten()
    .find(|p| p.exists())
    .unwrap_or_else(|| {
        panic!(
            "{} is missing: run `cargo build -p walcast-restore` (or the whole workspace's tests)",
            beside.display()
        )
    });
    Command::new(bin)
}

/// Runs `cmd` and fails with its stderr unless it succeeds.
fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output()?;
    if !out.status.success() {
        bail!(
            "{cmd:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Restores the replica at `txid` (the latest when `None`) with walcast-restore and with
/// Litestream; both must succeed, agree byte for byte, pass `integrity_check`, and
/// walcast-restore verify must find the restore equal to the replica's state at `txid`.
/// Returns walcast-restore's file.
fn restore_both(store: &Store, txid: Option<TxId>, dir: &Path) -> anyhow::Result<PathBuf> {
    static RESTORES: AtomicUsize = AtomicUsize::new(0);
    let tag = txid.map_or_else(|| "latest".to_owned(), |t| t.to_string());
    let n = RESTORES.fetch_add(1, Ordering::SeqCst);
    let (ours, theirs) = (
        dir.join(format!("walcast-restore-{n}-{tag}.db")),
        dir.join(format!("litestream-{n}-{tag}.db")),
    );
    let url = store.direct_url();
    let env = store.env();
    let txid_args: Vec<String> = txid
        .map(|t| vec!["-txid".to_owned(), t.to_string()])
        .unwrap_or_default();
    run(walcast_restore()
        .arg("restore")
        .arg("-o")
        .arg(&ours)
        .args(&txid_args)
        .arg(&url)
        .envs(env.iter().map(|(k, v)| (k, v))))?;
    run(Litestream::locate()?
        .command(["restore", "-o"])
        .arg(&theirs)
        .args(&txid_args)
        .arg(&url)
        .envs(env.iter().map(|(k, v)| (k, v))))?;
    if std::fs::read(&ours)? != std::fs::read(&theirs)? {
        bail!("walcast-restore and Litestream restore {tag} differently");
    }
    let check = sqlite::integrity_check(&ours)?;
    if check != "ok" {
        bail!("integrity_check of the restore at {tag}: {check}");
    }
    run(walcast_restore()
        .arg("verify")
        .arg(&ours)
        .arg(&url)
        .args(&txid_args)
        .envs(env.iter().map(|(k, v)| (k, v))))?;
    Ok(ours)
}

/// Waits until the proxy has held `count` requests in all, committing a small transaction
/// from the application at each look until then so that there is always something new to
/// upload (the writer process may be done by then on a slow machine).
fn wait_held(
    store: &Store,
    walcast: &mut Walcast,
    app: &mut Session,
    count: usize,
) -> anyhow::Result<()> {
    app.exec("CREATE TABLE IF NOT EXISTS kick(n INTEGER)")?;
    wait::until(HOLD_TIMEOUT, "walcast's request to be held", || {
        if store.proxy.held().len() >= count {
            return Ok(true);
        }
        walcast.check_running()?;
        app.exec("INSERT INTO kick VALUES (1)")?;
        Ok(false)
    })
    .with_context(|| walcast.log())
}

/// After the final stop: the source, checkpointed, equals what walcast-restore and
/// Litestream restore from the replica, byte for byte.
fn assert_final_restores(store: &Store, db: &Path, dir: &Path, log: &str) {
    assert_url_restores_exactly(
        db,
        &store.direct_url(),
        &store.env(),
        &dir.join("litestream-final.db"),
    )
    .unwrap_or_else(|e| panic!("{e:#}\nwalcast log:\n{log}"));
    let ours =
        restore_both(store, None, dir).unwrap_or_else(|e| panic!("{e:#}\nwalcast log:\n{log}"));
    assert!(
        std::fs::read(db).unwrap() == std::fs::read(&ours).unwrap(),
        "walcast-restore's restore differs from the source\nwalcast log:\n{log}"
    );
    store
        .objects()
        .unwrap_or_else(|e| panic!("{e:#}\nwalcast log:\n{log}"));
}

/// The L0 files above the newest L1 file's max TXID (all of them when there is no L1
/// file). The L1 files, then those L0 files, must form one unbroken chain from TXID 1:
/// each compaction merged every L0 file since the previous one, and retention deleted an
/// L0 file only once an L1 file covered it.
fn l0_beyond_l1(objects: &[(u8, LtxFileName)]) -> anyhow::Result<Vec<LtxFileName>> {
    let l1: Vec<LtxFileName> = objects
        .iter()
        .filter(|(level, _)| *level == 1)
        .map(|(_, n)| *n)
        .collect();
    let covered = l1.iter().map(|n| n.max).max();
    let beyond: Vec<LtxFileName> = objects
        .iter()
        .filter(|(level, n)| *level == 0 && covered.is_none_or(|c| n.max > c))
        .map(|(_, n)| *n)
        .collect();
    let mut next = Some(TxId::FIRST);
    for (level, file) in l1
        .iter()
        .map(|f| (1, f))
        .chain(beyond.iter().map(|f| (0, f)))
    {
        if Some(file.min) != next {
            bail!(
                "chain broken: L{level} {file} where {} was due",
                next.map_or_else(|| "nothing".to_owned(), |t| t.to_string())
            );
        }
        next = file.max.next();
    }
    Ok(beyond)
}

/// Waits until the log holds `more` new lines with `text` after the first `from` bytes,
/// committing a small transaction from the application at each look meanwhile.
fn wait_log(
    walcast: &mut Walcast,
    app: &mut Session,
    from: usize,
    text: &str,
    more: usize,
) -> anyhow::Result<()> {
    app.exec("CREATE TABLE IF NOT EXISTS kick(n INTEGER)")?;
    wait::until(HOLD_TIMEOUT, text, || {
        walcast.check_running()?;
        let log = walcast.log();
        if log.get(from..).unwrap_or_default().matches(text).count() >= more {
            return Ok(true);
        }
        app.exec("INSERT INTO kick VALUES (1)")?;
        Ok(false)
    })
    .with_context(|| walcast.log())
}

/// How many times the (shared) log says walcast started replicating: a restarted walcast
/// is ready for SIGINT once there is one more.
fn replicating_lines(log: &Path) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches("replicating")
        .count()
}

#[test]
fn kill_9_during_l0_uploads_then_the_s3_replica_restores_exactly() {
    let store = Store::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let log = dir.path().join("walcast.log");
    let mut app = open_app(&db).unwrap();
    let writers = writer(7, 6.0).spawn(&db).unwrap();
    let args = ["-sync-interval", "200ms"];
    // (how, settle): the first kills catch the very first uploads after a start (the
    // replica's first object, then a backlog); the later ones let walcast upload a few
    // rounds first, so that the kill comes in the middle of steady replication.
    let rounds = [
        (Hold::MidBody, false),
        (Hold::Answer, false),
        (Hold::MidBody, true),
        (Hold::Answer, true),
        (Hold::MidBody, true),
    ];
    for (round, (hold, settle)) in rounds.into_iter().enumerate() {
        let from = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
        let mut walcast =
            Walcast::start_url(&db, &store.proxied_url(), &store.env(), &log, &args).unwrap();
        if settle {
            wait_log(&mut walcast, &mut app, from, "uploaded", 2).unwrap();
        }
        // The next L0 PUT is caught in flight; walcast dies while it hangs.
        store
            .proxy
            .hold_next("PUT", &format!("/{PATH}/0000/"), hold);
        wait_held(&store, &mut walcast, &mut app, round + 1).unwrap();
        walcast.kill9().unwrap();
        let held = store.proxy.held()[round].clone();
        let name = held_name(&held.target);
        let objects = store.objects().unwrap();
        // Mid-body: nothing of it is stored; answered: it is stored whole.
        assert_eq!(
            objects.contains(&(0, name)),
            hold == Hold::Answer,
            "{held:?}: {objects:?}"
        );
        // Nothing the kill interrupted left a hole in the TXID chain.
        l0_beyond_l1(&objects).unwrap_or_else(|e| panic!("round {round}: {e:#}: {objects:?}"));
        // The replica up to here restores, by both restorers alike (unless the kill came
        // during the very first upload: then there is nothing yet, which is right).
        if objects.is_empty() {
            assert_eq!(round, 0, "{held:?}");
            continue;
        }
        restore_both(&store, None, dir.path()).unwrap_or_else(|e| {
            panic!(
                "round {round}: {e:#}\nlog:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
    }
    let started = replicating_lines(&log);
    let mut walcast =
        Walcast::start_url(&db, &store.proxied_url(), &store.env(), &log, &args).unwrap();
    walcast.wait_for_log("replicating", started + 1).unwrap();
    writers.wait().unwrap();
    let text = walcast.log();
    walcast.stop().unwrap();
    app.close().unwrap();
    let objects = store.objects().unwrap();
    l0_beyond_l1(&objects).unwrap_or_else(|e| panic!("{e:#}: {objects:?}\nlog:\n{text}"));
    assert_final_restores(&store, &db, dir.path(), &text);
}

#[test]
fn kill_9_during_compaction_and_snapshots_then_the_s3_replica_restores_exactly() {
    let store = Store::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let log = dir.path().join("walcast.log");
    // L1 every second, a snapshot every two, and L0 files deleted soon after L1 covers
    // them: compaction, snapshots and retention all run many times within the test.
    let config = dir.path().join("walcast.yml");
    std::fs::write(
        &config,
        format!(
            "levels:\n  - interval: 1s\nsnapshot:\n  interval: 2s\n  retention: 1h\nl0-retention: 100ms\ndbs:\n  - path: {}\n    replica:\n      url: {}\n      sync-interval: 200ms\n",
            db.display(),
            store.proxied_url()
        ),
    )
    .unwrap();
    let start = || {
        let mut cmd = crate::support::walcast();
        cmd.arg("replicate")
            .arg("-config")
            .arg(&config)
            .envs(store.env());
        Walcast::start_command(&mut cmd, &log).unwrap()
    };
    let mut app = open_app(&db).unwrap();
    let writers = writer(8, 6.0).spawn(&db).unwrap();
    // (method, level of the object, how, settle): L1 compactions and L9 snapshots caught while
    // their output goes up (mid-body: not stored; answered: stored, walcast not told),
    // and a read of an L0 object (a compaction's or retention's input) left unanswered.
    // With `settle`, walcast first compacts and deletes covered L0 files a few times in
    // that run, so that the kill finds retention and compaction interleaved.
    let rounds = [
        ("PUT", 1, Hold::MidBody, false),
        ("PUT", 9, Hold::MidBody, false),
        ("PUT", 1, Hold::Answer, false),
        ("PUT", 9, Hold::Answer, false),
        ("GET", 0, Hold::Answer, false),
        ("PUT", 1, Hold::MidBody, true),
    ];
    for (round, (method, level, hold, settle)) in rounds.into_iter().enumerate() {
        let from = std::fs::metadata(&log).map_or(0, |m| m.len() as usize);
        let mut walcast = start();
        if settle {
            wait_log(&mut walcast, &mut app, from, "retention deleted files", 2).unwrap();
        }
        store
            .proxy
            .hold_next(method, &format!("/{PATH}/{level:04x}/"), hold);
        wait_held(&store, &mut walcast, &mut app, round + 1).unwrap();
        walcast.kill9().unwrap();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let held = store.proxy.held()[round].clone();
        let name = held_name(&held.target);
        let objects = store
            .objects()
            .unwrap_or_else(|e| panic!("round {round}: {e:#}\nlog:\n{text}"));
        // A PUT cut mid-body stored nothing; an answered PUT stored it whole; a GET found it.
        assert_eq!(
            objects.contains(&(level, name)),
            method == "GET" || hold == Hold::Answer,
            "round {round}, {held:?}: {objects:?}"
        );
        // No L0 file is gone that no stored L1 file covers.
        let uncovered = l0_beyond_l1(&objects)
            .unwrap_or_else(|e| panic!("round {round}: {e:#}: {objects:?}\nlog:\n{text}"));
        if level == 1 && hold == Hold::MidBody {
            // The L1 file that was not stored was to replace exactly the L0 files since
            // the newest stored L1 file, and they are all still there.
            assert_eq!(
                uncovered.first().map(|f| f.min),
                Some(name.min),
                "round {round}: L0 lost under the unstored {name}: {objects:?}\nlog:\n{text}"
            );
            let chain: Vec<&LtxFileName> =
                uncovered.iter().take_while(|f| f.max <= name.max).collect();
            assert_eq!(
                chain.last().map(|f| f.max),
                Some(name.max),
                "round {round}: L0 lost under the unstored {name}: {objects:?}\nlog:\n{text}"
            );
            // A restore inside its range, and at its end, still works.
            for txid in [chain[chain.len() / 2].max, name.max] {
                restore_both(&store, Some(txid), dir.path())
                    .unwrap_or_else(|e| panic!("round {round}, at {txid}: {e:#}\nlog:\n{text}"));
            }
        }
        restore_both(&store, None, dir.path())
            .unwrap_or_else(|e| panic!("round {round}: {e:#}\nlog:\n{text}"));
    }
    let started = replicating_lines(&log);
    let mut walcast = start();
    walcast.wait_for_log("replicating", started + 1).unwrap();
    writers.wait().unwrap();
    let text = walcast.log();
    walcast.stop().unwrap();
    app.close().unwrap();
    let objects = store.objects().unwrap();
    l0_beyond_l1(&objects).unwrap_or_else(|e| panic!("{e:#}: {objects:?}\nlog:\n{text}"));
    for level in [1, 9] {
        assert!(
            objects.iter().any(|(l, _)| *l == level),
            "no L{level} file: {objects:?}"
        );
    }
    assert_final_restores(&store, &db, dir.path(), &text);
}

#[test]
fn l0_uploads_go_on_while_a_compaction_output_hangs() {
    let store = Store::start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let log = dir.path().join("walcast.log");
    let config = dir.path().join("walcast.yml");
    std::fs::write(
        &config,
        format!(
            "levels:\n  - interval: 1s\ndbs:\n  - path: {}\n    replica:\n      url: {}\n      sync-interval: 100ms\n",
            db.display(),
            store.proxied_url()
        ),
    )
    .unwrap();
    let mut app = open_app(&db).unwrap();
    let mut cmd = crate::support::walcast();
    cmd.arg("replicate")
        .arg("-config")
        .arg(&config)
        .envs(store.env());
    let mut walcast = Walcast::start_command(&mut cmd, &log).unwrap();
    // The first L1 output stalls mid-body: the server never stores it until walcast
    // gives up on that request and retries.
    store
        .proxy
        .hold_next("PUT", &format!("/{PATH}/0001/"), Hold::MidBody);
    wait_held(&store, &mut walcast, &mut app, 1).unwrap();
    let l1 = held_name(&store.proxy.held()[0].target);
    let l0_max = |objects: &[(u8, LtxFileName)]| {
        objects
            .iter()
            .filter(|(level, _)| *level == 0)
            .map(|(_, n)| n.max)
            .max()
    };
    let stalled_at = l0_max(&store.objects().unwrap());
    // Meanwhile new commits keep reaching the replica as L0 objects, while that L1 file
    // is still not stored.
    wait::until(HOLD_TIMEOUT, "L0 uploads while the L1 output hangs", || {
        walcast.check_running()?;
        app.exec("INSERT INTO kick VALUES (1)")?;
        let objects = store.objects()?;
        let newer = objects
            .iter()
            .filter(|(level, n)| *level == 0 && Some(n.min) > stalled_at)
            .count();
        Ok(newer >= 3 && !objects.contains(&(1, l1)))
    })
    .with_context(|| walcast.log())
    .unwrap();
    assert!(l0_max(&store.objects().unwrap()) > stalled_at);
    let text = walcast.log();
    walcast.stop().unwrap();
    app.close().unwrap();
    assert_final_restores(&store, &db, dir.path(), &text);
}
