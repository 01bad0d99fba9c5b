//! walcast's LTX codec against the real Litestream 0.5.17.
//!
//! One replica is produced once per test binary: a real SQLite writer process writes
//! while `litestream replicate` ships to a directory replica with short compaction levels
//! (L1 every 2s, L2 every 5s), then `replicate -once -force-snapshot` adds a level-9
//! snapshot. The tests then prove, each on that replica:
//! - every file Litestream wrote, at every level, decodes with a verified checksum;
//! - walcast's merge reproduces Litestream's compaction (same header, same pages);
//! - Litestream restores files walcast re-encoded, at every level, byte-identically to
//!   its restore of its own files;
//! - walcast's merge of the L0 files, applied, is the database Litestream restores.

mod common;

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::{ReplicaFile, database_image, merge_files, replica_files, verify_litestream_file};
use walcast_ltx::{Decoder, Encoder, HeaderFlags, TxId, verify};
use walcast_testbed::litestream::{Config, DbConfig, Litestream, Replica, Target};
use walcast_testbed::{sqlite, wait};

/// The replica Litestream produced, shared by every test in this file.
struct LitestreamRun {
    litestream: Litestream,
    dir: PathBuf,
    replica: PathBuf,
    files: Vec<ReplicaFile>,
}

impl LitestreamRun {
    fn level(&self, level: u32) -> Vec<&ReplicaFile> {
        self.files.iter().filter(|f| f.level == level).collect()
    }

    /// Litestream's restore of its own replica at `txid`.
    fn restore(&self, txid: TxId, out: &Path) -> Vec<u8> {
        let url = format!("file://{}", self.replica.display());
        self.litestream
            .restore(&Target::Url(&url), out, Some(txid.get()))
            .unwrap();
        std::fs::read(out).unwrap()
    }
}

fn litestream_run() -> &'static LitestreamRun {
    static RUN: OnceLock<LitestreamRun> = OnceLock::new();
    RUN.get_or_init(|| produce_replica().unwrap_or_else(|e| panic!("{e:#}")))
}

fn produce_replica() -> anyhow::Result<LitestreamRun> {
    let litestream = Litestream::locate()?;
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ltx-litestream-interop");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let (db, replica, config) = (
        dir.join("app.db"),
        dir.join("replica"),
        dir.join("litestream.yml"),
    );

    sqlite::Workload {
        transactions: 200,
        page_size: 4096,
        ..sqlite::Workload::default()
    }
    .run(&db)?;
    let mut db_config = DbConfig::new(&db, Replica::Dir(replica.clone()));
    db_config.monitor_interval = Some(Duration::from_millis(250));
    db_config.sync_interval = Some(Duration::from_millis(250));
    Config {
        levels: vec![Duration::from_secs(2), Duration::from_secs(5)],
        ..Config::new(vec![db_config])
    }
    .write(&config)?;

    let mut daemon = litestream.replicate(&config)?;
    let max_at = |level| -> Option<TxId> {
        replica_files(&replica)
            .iter()
            .filter(|f| f.level == level)
            .map(|f| f.name.max)
            .max()
    };
    // Litestream takes the write lock once at startup; let it do so before the writer runs.
    wait::until(
        Duration::from_secs(30),
        "Litestream's first L0 file",
        || {
            daemon.check_running()?;
            Ok(max_at(0).is_some())
        },
    )?;
    sqlite::Workload {
        seed: 2,
        transactions: 0,
        seconds: 2.5,
        ops_per_tx: 4,
        ..sqlite::Workload::default()
    }
    .run(&db)?;
    // Several L0 files, so that L1 compactions merge more than one input.
    wait::until(Duration::from_secs(20), "three L0 files", || {
        daemon.check_running()?;
        Ok(max_at(0).is_some_and(|t| t.get() >= 3))
    })?;
    let shipped = max_at(0);
    wait::until(
        Duration::from_secs(30),
        "L1 and L2 compactions to cover every L0 file",
        || {
            daemon.check_running()?;
            Ok(max_at(1) >= shipped && max_at(2) >= shipped)
        },
    )?;
    daemon.stop()?;
    litestream.replicate_once(&config, true)?;

    let files = replica_files(&replica);
    let levels: BTreeSet<u32> = files.iter().map(|f| f.level).collect();
    anyhow::ensure!(
        levels == BTreeSet::from([0, 1, 2, 9]),
        "expected files at levels 0, 1, 2 and 9, found {levels:?}"
    );
    Ok(LitestreamRun {
        litestream,
        dir,
        replica,
        files,
    })
}

#[test]
fn litestream_refuses_to_restore_a_file_carrying_a_post_apply_checksum() {
    // Why walcast writes NoChecksum files for Litestream: its restore re-encodes its
    // inputs with NoChecksum and then fails on a post-apply checksum it copied over.
    let litestream = Litestream::locate().unwrap();
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/ltx/litestream-0.5.17/ltx/0/0000000000000001-0000000000000001.ltx");
    let original = std::fs::read(fixture).unwrap();
    let mut decoder = Decoder::new(&original[..]).unwrap();
    let mut header = *decoder.header();
    header.flags = HeaderFlags::NONE;
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join("replica/ltx/0")
        .join(header.file_name().to_string());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut encoder = Encoder::new(File::create(&path).unwrap(), header).unwrap();
    let mut sum = walcast_ltx::DatabaseChecksum::empty(header.page_size);
    while let Some(page) = decoder.next_page().unwrap() {
        sum.add_page(page.pgno, page.data);
        encoder.write_page(page.pgno, page.data).unwrap();
    }
    decoder.finish().unwrap();
    encoder.finish(Some(sum.value())).unwrap();
    verify(File::open(&path).unwrap()).unwrap();

    let url = format!("file://{}", dir.path().join("replica").display());
    let err = litestream
        .restore(&Target::Url(&url), &dir.path().join("out.db"), None)
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("post-apply checksum not allowed"),
        "{err:#}"
    );
}

#[test]
fn every_file_litestream_wrote_at_every_level_decodes_with_a_verified_checksum() {
    let run = litestream_run();
    for file in &run.files {
        let (bytes, verified) = verify_litestream_file(file);
        let header = verified.header();
        assert_eq!(&bytes[104..106], &[0, 1], "0.5.17 writes LZ4-block pages");
        if file.level == 0 {
            assert_eq!(header.min_txid, header.max_txid, "one TXID per L0 file");
        }
    }
    assert!(run.level(0).len() >= 3, "{:?}", run.files);
}

/// Decodes a whole file into (pgno, page) pairs; test files are small.
fn pages(bytes: &[u8]) -> Vec<(u32, Vec<u8>)> {
    let mut decoder = Decoder::new(bytes).unwrap();
    let mut pages = Vec::new();
    while let Some(page) = decoder.next_page().unwrap() {
        pages.push((page.pgno, page.data.to_vec()));
    }
    decoder.finish().unwrap();
    pages
}

#[test]
fn walcast_merge_reproduces_litestream_compaction() {
    let run = litestream_run();
    for level in [1, 2] {
        for compacted in run.level(level) {
            let merged =
                merge_files(run.level(level - 1).into_iter().filter(|f| {
                    f.name.min >= compacted.name.min && f.name.max <= compacted.name.max
                }));
            let theirs = std::fs::read(&compacted.path).unwrap();
            let path = compacted.path.display();
            assert_eq!(
                &merged.output.writer[..100],
                &theirs[..100],
                "{path}: header differs from walcast's merge of its sources"
            );
            assert!(
                pages(&merged.output.writer) == pages(&theirs),
                "{path}: pages differ from walcast's merge of its sources"
            );
        }
    }
}

/// Re-encodes `src` with walcast's encoder into `dst`, keeping its modification time.
fn reencode(src: &Path, dst: &Path) {
    let original = std::fs::read(src).unwrap();
    let mut decoder = Decoder::new(&original[..]).unwrap();
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    let out = File::create(dst).unwrap();
    let mut encoder = Encoder::new(out, *decoder.header()).unwrap();
    while let Some(page) = decoder.next_page().unwrap() {
        encoder.write_page(page.pgno, page.data).unwrap();
    }
    let verified = decoder.finish().unwrap();
    let written = encoder
        .finish(verified.trailer().post_apply_checksum)
        .unwrap();
    written
        .writer
        .set_modified(std::fs::metadata(src).unwrap().modified().unwrap())
        .unwrap();
    let reencoded = std::fs::read(dst).unwrap();
    assert_eq!(
        &reencoded[..100],
        &original[..100],
        "header bytes must survive"
    );
}

#[test]
fn litestream_restores_walcast_encoded_files_at_every_level_byte_identically() {
    let run = litestream_run();
    for level in [0, 1, 2, 9] {
        let copy = run.dir.join(format!("reencoded-level-{level}"));
        let _ = std::fs::remove_dir_all(&copy);
        for file in run.level(level) {
            let rel = file.path.strip_prefix(&run.replica).unwrap();
            reencode(&file.path, &copy.join(rel));
        }
        let txid = run.level(level).iter().map(|f| f.name.max).max().unwrap();
        let ours = run.dir.join(format!("restored-reencoded-{level}.db"));
        let url = format!("file://{}", copy.display());
        run.litestream
            .restore(&Target::Url(&url), &ours, Some(txid.get()))
            .unwrap_or_else(|e| panic!("level {level}: {e:#}"));
        let theirs = run.restore(txid, &run.dir.join(format!("restored-original-{level}.db")));
        assert!(
            std::fs::read(&ours).unwrap() == theirs,
            "level {level}, TXID {txid}: restore of walcast's files differs"
        );
        assert_eq!(sqlite::integrity_check(&ours).unwrap(), "ok");
    }
}

#[test]
fn walcast_merge_of_the_l0_files_is_the_database_litestream_restores() {
    let run = litestream_run();
    let merged = merge_files(run.level(0));
    let txid = merged.output.header.max_txid;
    assert_eq!(Some(txid), run.level(0).last().map(|f| f.name.max));
    let (_, ours) = database_image(&merged.output.writer);
    let theirs = run.restore(txid, &run.dir.join("restored-l0.db"));
    assert!(
        ours == theirs,
        "TXID {txid}: merged L0 differs from Litestream's restore"
    );
}
