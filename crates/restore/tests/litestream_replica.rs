//! walcast-restore against replicas the real Litestream 0.5.17 wrote.
//!
//! One replica is produced once per test binary, by real components only: a real SQLite
//! writer process, and Litestream replicating to a directory
//! - three times `replicate -once` after a writer phase (the content at each resulting
//!   TXID is recorded: its dump, its TXID, its L0 file's header timestamp);
//! - then the daemon with short compaction levels (L1 every 2s, L2 every 5s) while a
//!   writer runs, until L1 and L2 cover what it shipped (recorded after it stopped);
//! - then `replicate -once -force-snapshot` (a level-9 snapshot), one more writer phase
//!   and `replicate -once` (recorded), and finally the source checkpointed (TRUNCATE).
//!
//! The tests prove on it:
//! - byte-identical output to `litestream restore` at every TXID and at the latest, with
//!   plans that use L0, compacted and snapshot files, and `verify` finding Litestream's
//!   output equal to the replica at each of them;
//! - the latest restore equal to the checkpointed source byte for byte, and `verify`
//!   saying so;
//! - every recorded moment restored by TXID and by timestamp with the recorded content,
//!   and byte-identical to `litestream restore -timestamp` at the same moments (both take
//!   the files made strictly before the moment; a moment after the newest file Litestream
//!   refuses and walcast restores as the latest state);
//! - `ltx` listing what `litestream ltx` lists.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::{restore, run};
use walcast_ltx::{HEADER_SIZE, Header, TxId, rfc3339_millis};
use walcast_replica::{Catalog, DirReplica, Level, RestoreTarget, Timestamps};
use walcast_testbed::litestream::{Config, DbConfig, Litestream, Replica, Target};
use walcast_testbed::sqlite::{self, CheckpointMode, Workload};
use walcast_testbed::wait;

/// The database content at one TXID, recorded while nothing was writing.
struct Moment {
    txid: TxId,
    timestamp_ms: i64,
    dump: String,
}

struct LitestreamRun {
    litestream: Litestream,
    dir: PathBuf,
    db: PathBuf,
    replica: PathBuf,
    moments: Vec<Moment>,
}

impl LitestreamRun {
    fn url(&self) -> String {
        format!("file://{}", self.replica.display())
    }

    fn catalog(&self) -> Catalog {
        Catalog::read(&DirReplica::new(&self.replica), Timestamps::Skip).unwrap()
    }
}

fn litestream_run() -> &'static LitestreamRun {
    static RUN: OnceLock<LitestreamRun> = OnceLock::new();
    RUN.get_or_init(|| produce().unwrap_or_else(|e| panic!("{e:#}")))
}

/// The newest TXID of a level, from the file names.
fn max_at(replica: &Path, level: u8) -> Option<TxId> {
    DirReplica::new(replica)
        .list(Level::new(level)?)
        .ok()?
        .last()
        .map(|n| n.max)
}

/// A dump without Litestream's bookkeeping tables, which Litestream itself may write
/// after its last sync (on shutdown).
fn content(db: &Path) -> anyhow::Result<String> {
    Ok(sqlite::dump(db)?
        .lines()
        .filter(|l| !l.contains("_litestream"))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Records the content at the newest L0 TXID and that file's header timestamp.
fn record(db: &Path, replica: &Path) -> anyhow::Result<Moment> {
    let txid = max_at(replica, 0).ok_or_else(|| anyhow::anyhow!("no L0 file"))?;
    let name = walcast_ltx::LtxFileName {
        min: txid,
        max: txid,
    };
    let path = DirReplica::new(replica).path(Level::L0, name);
    let bytes = std::fs::read(&path)?;
    let raw: [u8; HEADER_SIZE] = bytes[..HEADER_SIZE].try_into()?;
    Ok(Moment {
        txid,
        timestamp_ms: Header::decode(&raw)?.timestamp_ms,
        dump: content(db)?,
    })
}

fn produce() -> anyhow::Result<LitestreamRun> {
    let litestream = Litestream::locate()?;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("restore-litestream");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let (db, replica, config) = (
        dir.join("app.db"),
        dir.join("replica"),
        dir.join("litestream.yml"),
    );
    let mut db_config = DbConfig::new(&db, Replica::Dir(replica.clone()));
    db_config.monitor_interval = Some(Duration::from_millis(250));
    db_config.sync_interval = Some(Duration::from_millis(250));
    Config {
        levels: vec![Duration::from_secs(2), Duration::from_secs(5)],
        ..Config::new(vec![db_config])
    }
    .write(&config)?;
    let writer = |seed: u64, transactions: u64| Workload {
        seed,
        transactions,
        page_size: 4096,
        ops_per_tx: 4,
        ..Workload::default()
    };

    let mut moments = Vec::new();
    for seed in 1..=3 {
        writer(seed, 60).run(&db)?;
        litestream.replicate_once(&config, false)?;
        moments.push(record(&db, &replica)?);
    }

    let before = max_at(&replica, 0);
    let mut daemon = litestream.replicate(&config)?;
    Workload {
        seconds: 2.5,
        ..writer(4, 0)
    }
    .run(&db)?;
    wait::until(Duration::from_secs(30), "three more L0 files", || {
        daemon.check_running()?;
        Ok(max_at(&replica, 0).map(TxId::get) >= before.map(|t| t.get() + 3))
    })?;
    let shipped = max_at(&replica, 0);
    wait::until(
        Duration::from_secs(30),
        "L1 and L2 compactions to cover every shipped L0 file",
        || {
            daemon.check_running()?;
            Ok(max_at(&replica, 1) >= shipped && max_at(&replica, 2) >= shipped)
        },
    )?;
    daemon.stop()?;
    moments.push(record(&db, &replica)?);

    litestream.replicate_once(&config, true)?;
    writer(5, 40).run(&db)?;
    litestream.replicate_once(&config, false)?;
    moments.push(record(&db, &replica)?);
    sqlite::checkpoint(&db, CheckpointMode::Truncate)?;

    let levels: BTreeSet<u8> = Catalog::read(&DirReplica::new(&replica), Timestamps::Skip)?
        .files()
        .iter()
        .map(|f| f.level.get())
        .collect();
    anyhow::ensure!(
        levels == BTreeSet::from([0, 1, 2, 9]),
        "expected files at levels 0, 1, 2 and 9, found {levels:?}"
    );
    Ok(LitestreamRun {
        litestream,
        dir,
        db,
        replica,
        moments,
    })
}

#[test]
fn output_is_byte_identical_to_litestream_restore_at_every_txid() {
    let ls = litestream_run();
    let catalog = ls.catalog();
    let latest = catalog.plan(RestoreTarget::Latest).unwrap().txid();
    let url = ls.url();
    let mut levels_used = BTreeSet::new();
    let mut targets: Vec<Option<TxId>> = (1..=latest.get()).map(TxId::new).collect();
    targets.push(None);
    for txid in targets {
        let label = txid.map_or_else(|| "latest".to_owned(), |t| t.to_string());
        let target = txid.map_or(RestoreTarget::Latest, RestoreTarget::TxId);
        let plan = catalog.plan(target).unwrap();
        levels_used.extend(plan.files().iter().map(|f| f.level.get()));
        let theirs = ls.dir.join(format!("litestream-{label}.db"));
        let ours = ls.dir.join(format!("walcast-{label}.db"));
        let _ = std::fs::remove_file(&theirs);
        let _ = std::fs::remove_file(&ours);
        ls.litestream
            .restore(&Target::Url(&url), &theirs, txid.map(TxId::get))
            .unwrap();
        let txid_arg = txid.map(|t| t.to_string());
        let extra: Vec<&str> = match &txid_arg {
            Some(t) => vec!["-txid", t],
            None => vec![],
        };
        let restored = restore(&ours, Path::new(&url), &extra);
        restored.ok();
        assert!(
            restored
                .stderr
                .contains(&format!("at TXID {}", plan.txid())),
            "{restored:#?}"
        );
        assert!(
            std::fs::read(&ours).unwrap() == std::fs::read(&theirs).unwrap(),
            "{label}: walcast-restore's output differs from litestream restore's"
        );
        // verify computes the same state without writing it: Litestream's file is equal.
        let mut args = vec![
            "verify".to_owned(),
            theirs.display().to_string(),
            url.clone(),
        ];
        if let Some(t) = &txid_arg {
            args.extend(["-txid".to_owned(), t.clone()]);
        }
        run(&args).ok();
    }
    // Which compaction level a plan picks depends on where Litestream's wall-clock
    // compactions happened to end; every run has snapshots, compactions and L0 files.
    assert!(
        levels_used.contains(&0)
            && levels_used.contains(&9)
            && levels_used.range(1..=8).count() > 0,
        "the plans should have merged L0, compacted and snapshot files, used {levels_used:?}"
    );
}

#[test]
fn latest_equals_the_checkpointed_source_and_verify_agrees() {
    let ls = litestream_run();
    let out = ls.dir.join("latest-vs-source.db");
    let _ = std::fs::remove_file(&out);
    restore(&out, &ls.replica, &["-parallelism", "2"]).ok();
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(&ls.db).unwrap(),
        "the latest restore differs from the checkpointed source"
    );
    assert_eq!(sqlite::integrity_check(&out).unwrap(), "ok");
    let verified = run(["verify", ls.db.to_str().unwrap(), ls.url().as_str()]);
    verified.ok();
    assert!(
        verified.stdout.trim_end().ends_with("equal"),
        "{verified:#?}"
    );
}

/// `litestream restore -o OUT -timestamp AT URL`.
fn litestream_restore_at(ls: &LitestreamRun, out: &Path, at: &str) {
    let _ = std::fs::remove_file(out);
    let mut cmd = ls.litestream.command(["restore", "-o"]);
    cmd.arg(out).arg("-timestamp").arg(at).arg(ls.url());
    let output = cmd.output().unwrap();
    assert!(
        output.status.success(),
        "litestream restore -timestamp {at}: {output:?}"
    );
}

#[test]
fn every_recorded_moment_restores_by_txid_and_by_timestamp() {
    let ls = litestream_run();
    assert!(ls.moments.len() >= 5);
    let newest_ms = Catalog::read(&DirReplica::new(&ls.replica), Timestamps::Read)
        .unwrap()
        .files()
        .iter()
        .filter_map(|f| f.timestamp_ms)
        .max()
        .unwrap();
    for (i, moment) in ls.moments.iter().enumerate() {
        let by_txid = ls.dir.join(format!("moment-{i}-txid.db"));
        let by_time = ls.dir.join(format!("moment-{i}-time.db"));
        let _ = std::fs::remove_file(&by_txid);
        let _ = std::fs::remove_file(&by_time);
        let txid = moment.txid.to_string();
        restore(&by_txid, &ls.replica, &["-txid", &txid]).ok();
        // Files made strictly before the moment count, so one millisecond after the
        // moment's file is the first moment that restores it.
        let at = rfc3339_millis(moment.timestamp_ms + 1);
        let restored = restore(&by_time, &ls.replica, &["-timestamp", &at]);
        restored.ok();
        assert!(
            restored.stderr.contains(&format!("at TXID {txid}")),
            "{at}: {restored:#?}"
        );
        // Litestream refuses a moment after its newest file ("timestamp does not exist");
        // walcast restores the newest state. Where both restore, they agree.
        if moment.timestamp_ms < newest_ms {
            let theirs = ls.dir.join(format!("moment-{i}-litestream.db"));
            litestream_restore_at(ls, &theirs, &at);
            assert!(
                std::fs::read(&theirs).unwrap() == std::fs::read(&by_time).unwrap(),
                "-timestamp {at}: output differs from litestream restore's"
            );
        }
        if i > 0 {
            // At the moment's own millisecond its file does not count yet: both tools
            // restore the state before it.
            let at = rfc3339_millis(moment.timestamp_ms);
            let ours = ls.dir.join(format!("moment-{i}-exact.db"));
            let theirs = ls.dir.join(format!("moment-{i}-exact-litestream.db"));
            let _ = std::fs::remove_file(&ours);
            let exact = restore(&ours, &ls.replica, &["-timestamp", &at]);
            exact.ok();
            litestream_restore_at(ls, &theirs, &at);
            assert!(std::fs::read(&theirs).unwrap() == std::fs::read(&ours).unwrap());
            let restored_txid: TxId = exact.stderr.split("at TXID ").nth(1).unwrap()[..16]
                .parse()
                .unwrap();
            assert!(restored_txid < moment.txid, "{at}: {exact:#?}");
        }
        for out in [&by_txid, &by_time] {
            assert_eq!(sqlite::integrity_check(out).unwrap(), "ok");
            assert!(
                content(out).unwrap() == moment.dump,
                "{}: content differs from what SQLite held at TXID {txid}",
                out.display()
            );
        }
    }
    // Before the first file there is nothing to restore.
    let first = ls.moments[0].timestamp_ms;
    let before = ls.dir.join("before-everything.db");
    restore(
        &before,
        &ls.replica,
        &["-timestamp", &rfc3339_millis(first - 60_000)],
    )
    .fails_with(1, &["nothing to restore at timestamp"]);
    common::assert_no_output(&before);
}

#[test]
fn ltx_lists_what_litestream_lists() {
    let ls = litestream_run();
    let theirs = ls.litestream.ltx(&Target::Url(&ls.url()), None).unwrap();
    let listed = run(["ltx", ls.url().as_str(), "-json"]);
    listed.ok();
    let ours: Vec<serde_json::Value> = serde_json::from_str(&listed.stdout).unwrap();
    let key =
        |level: u64, min: &str, max: &str, size: u64| (level, min.to_owned(), max.to_owned(), size);
    let mut theirs: Vec<_> = theirs
        .iter()
        .map(|f| key(u64::from(f.level), &f.min_txid, &f.max_txid, f.size))
        .collect();
    let mut ours: Vec<_> = ours
        .iter()
        .map(|f| {
            key(
                f["level"].as_u64().unwrap(),
                f["min_txid"].as_str().unwrap(),
                f["max_txid"].as_str().unwrap(),
                f["size"].as_u64().unwrap(),
            )
        })
        .collect();
    theirs.sort();
    ours.sort();
    assert_eq!(ours, theirs);
    let table = run(["ltx", ls.replica.to_str().unwrap()]);
    table.ok();
    assert_eq!(table.stdout.lines().count(), ours.len() + 1);
}
