//! The compactor ([`walcast_replica::compact`]) on replicas of a real SQLite database, on
//! the file backend and on a real S3 server (s3s-fs in process), with an injected clock:
//!
//! - every round uploads one L0 file (the page differences between two checkpointed
//!   states of the database, encoded with walcast's encoder), then runs the compactor; after
//!   each round walcast's own restore planning + merge gives the latest state byte for
//!   byte, retention has deleted exactly what its rules allow (the files gone are the ones
//!   reported, each allowed, and no remaining file is deletable), and the number of LIST
//!   requests a run makes stays small and constant;
//! - at the end every TXID that planning can still reach restores byte-identically, and
//!   the real Litestream 0.5.17 restores the compacted replica byte-identically (latest,
//!   the retained snapshot, a retained L0 file);
//! - a compaction stopped after storing its outputs and before retention leaves a
//!   restorable replica; a compactor that did not see those outputs rebuilds the same
//!   bytes (already present), and the next run finishes retention;
//! - an object already at an output's name is kept if it verifies as an LTX file of that
//!   TXID range and refused, with nothing deleted, if not;
//! - more inputs than the open-inputs limit merge in rounds through staging files;
//! - a snapshot and a compaction of a 24 MiB database of incompressible pages raise the
//!   peak memory of a child process (`VmHWM`) by far less than a tenth of the database.
//! - a replica the real Litestream wrote (three `replicate -once` rounds) is compacted,
//!   snapshotted and trimmed by walcast, then Litestream's restore and walcast's agree
//!   byte for byte and hold the source's content.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use walcast_format::PageSize;
use walcast_ltx::{Decoder, Encoder, Header, LtxFileName, MergeOptions, TxId, merge};
use walcast_replica::compact::{
    CompactError, CompactionReport, Compactor, LevelSchedule, MAX_OPEN_INPUTS, OutputOutcome,
};
use walcast_replica::{
    Catalog, ClientSettings, Env, Level, Operation, PlanError, ReplicaClient, ReplicaFile,
    ReplicaTarget, RestoreTarget,
};
use walcast_testbed::litestream::Litestream;
use walcast_testbed::s3::S3Server;
use walcast_testbed::sqlite::Session;

/// The first L0 file's time is this plus 10 s; an hour boundary, so the schedule's
/// boundaries fall at round multiples of it.
const T0_MS: i64 = 1_699_999_200_000;
/// Seconds between rounds (one L0 file each).
const ROUND_SECS: i64 = 10;

/// The header timestamp of L0 file `txid` (and of every compaction ending at it).
fn time_of(txid: u64) -> i64 {
    T0_MS + i64::try_from(txid).unwrap() * ROUND_SECS * 1000
}

fn at(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap())
}

/// Short intervals: L1 30 s, L2 60 s, snapshots every 60 s kept 90 s, L0 kept 20 s.
fn schedule() -> LevelSchedule {
    LevelSchedule::new(
        vec![Duration::from_secs(30), Duration::from_secs(60)],
        Duration::from_secs(60),
        Duration::from_secs(90),
        Duration::from_secs(20),
    )
    .unwrap()
}

/// `n` states of a real SQLite database, each after a TRUNCATE checkpoint: inserts of
/// blobs, deletes, and a VACUUM now and then (the database shrinks).
fn history(dir: &Path, n: usize) -> Vec<Vec<u8>> {
    let db = dir.join("source.db");
    let mut s = Session::open_wal_without_checkpoints(&db, 4096).unwrap();
    s.exec("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        .unwrap();
    let mut states = Vec::with_capacity(n);
    for k in 0..n {
        let sql = match k % 7 {
            3 => "DELETE FROM t WHERE id % 3 = 0".to_owned(),
            6 => "VACUUM".to_owned(),
            _ => format!(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {}) \
                 INSERT INTO t(v) SELECT randomblob(1500) FROM c",
                3 + k % 5
            ),
        };
        s.exec(&sql).unwrap();
        s.exec("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        states.push(std::fs::read(&db).unwrap());
    }
    states
}

/// The L0 file `txid` that takes the database from `prev` (none: empty) to `next`.
fn encode_l0(prev: Option<&[u8]>, next: &[u8], txid: u64) -> (LtxFileName, Vec<u8>) {
    let page_size =
        PageSize::from_db_header_field(u16::from_be_bytes([next[16], next[17]])).unwrap();
    let size = page_size.as_usize();
    let commit = u32::try_from(next.len() / size).unwrap();
    let id = TxId::new(txid).unwrap();
    let header = Header::new(page_size, commit, id, id, time_of(txid));
    let mut encoder = Encoder::new(Vec::new(), header).unwrap();
    for (i, page) in next.chunks_exact(size).enumerate() {
        let pgno = u32::try_from(i + 1).unwrap();
        let old = prev.and_then(|p| p.get(i * size..(i + 1) * size));
        if pgno != page_size.lock_byte_page() && old != Some(page) {
            encoder.write_page(pgno, page).unwrap();
        }
    }
    (header.file_name(), encoder.finish(None).unwrap().writer)
}

/// Every page of `db` as one file `1-txid` stamped `timestamp_ms`.
fn full_file(db: &[u8], txid: u64, timestamp_ms: i64) -> Vec<u8> {
    let page_size = PageSize::new(4096).unwrap();
    let commit = u32::try_from(db.len() / 4096).unwrap();
    let header = Header::new(
        page_size,
        commit,
        TxId::FIRST,
        TxId::new(txid).unwrap(),
        timestamp_ms,
    );
    let mut encoder = Encoder::new(Vec::new(), header).unwrap();
    for (i, page) in db.chunks_exact(4096).enumerate() {
        let pgno = u32::try_from(i + 1).unwrap();
        if pgno != page_size.lock_byte_page() {
            encoder.write_page(pgno, page).unwrap();
        }
    }
    encoder.finish(None).unwrap().writer
}

fn upload(client: &ReplicaClient, states: &[Vec<u8>], txid: u64) {
    let k = usize::try_from(txid).unwrap();
    let prev = k.checked_sub(2).map(|i| &states[i][..]);
    let (name, bytes) = encode_l0(prev, &states[k - 1], txid);
    client.put(Level::L0, name, &bytes[..]).unwrap();
}

/// Every file of the replica, by level then TXID.
fn listing(client: &ReplicaClient) -> BTreeSet<(Level, LtxFileName)> {
    let mut all = BTreeSet::new();
    for level in Level::all() {
        for object in client.list(level).unwrap() {
            all.insert((level, object.name));
        }
    }
    all
}

fn catalog(client: &ReplicaClient) -> Catalog {
    let files = listing(client)
        .into_iter()
        .map(|(level, name)| ReplicaFile {
            level,
            name,
            size: 0,
            timestamp_ms: None,
            layout: walcast_replica::ReplicaSource::layout(client),
        })
        .collect();
    Catalog::new(files)
}

/// walcast's restore: plan, merge the planned files, write the pages out.
fn restore(client: &ReplicaClient, target: RestoreTarget) -> Result<Vec<u8>, PlanError> {
    let plan = catalog(client).plan(target)?;
    let readers = plan
        .files()
        .iter()
        .map(|f| client.get(f.level, f.name).unwrap());
    let merged = merge(readers, Vec::new(), &MergeOptions::default()).unwrap();
    Ok(pages_to_db(&merged.output.writer))
}

/// The database a snapshot-style LTX file (TXID 1 on) describes.
fn pages_to_db(ltx: &[u8]) -> Vec<u8> {
    let mut decoder = Decoder::new(ltx).unwrap();
    let header = *decoder.header();
    assert_eq!(header.min_txid, TxId::FIRST);
    let size = header.page_size.as_usize();
    let mut db = vec![0u8; usize::try_from(header.commit).unwrap() * size];
    while let Some(page) = decoder.next_page().unwrap() {
        let at = usize::try_from(page.pgno - 1).unwrap() * size;
        db[at..at + size].copy_from_slice(page.data);
    }
    decoder.finish().unwrap();
    db
}

fn s3_client(server: &S3Server, path: &str) -> ReplicaClient {
    let target = ReplicaTarget::parse_url(&server.url(path)).unwrap();
    let settings = ClientSettings {
        env: Env::from_pairs(server.credentials()),
        ..ClientSettings::default()
    };
    ReplicaClient::open(target, settings).unwrap()
}

/// Checks one round's retention against the rules, from the listings around the run.
struct RetentionCheck {
    /// The newest max TXID of every snapshot retention deleted so far.
    floor: Option<TxId>,
}

impl RetentionCheck {
    fn check(
        &mut self,
        before: &BTreeSet<(Level, LtxFileName)>,
        after: &BTreeSet<(Level, LtxFileName)>,
        report: &CompactionReport,
        now_ms: i64,
    ) {
        let gone: BTreeSet<_> = before.difference(after).copied().collect();
        let reported: BTreeSet<_> = report.deleted.iter().copied().collect();
        assert_eq!(gone, reported, "files gone vs files reported deleted");
        let of = |level: Level| -> Vec<LtxFileName> {
            after.iter().filter(|f| f.0 == level).map(|f| f.1).collect()
        };
        let age = |name: &LtxFileName| now_ms - time_of(name.max.get());
        let l1_max = of(Level::new(1).unwrap()).last().map(|n| n.max);

        // L0: each deleted file was covered by L1 and old enough; the oldest remaining
        // one (but the newest) is not deletable; the newest is there.
        let l0 = of(Level::L0);
        let newest_l0 = *l0.last().expect("the newest L0 file is never deleted");
        for (level, name) in gone.iter().filter(|f| f.0 == Level::L0) {
            assert!(
                Some(name.max) <= l1_max && age(name) >= 20_000,
                "{level} {name}"
            );
            assert!(name.max < newest_l0.max);
        }
        if let Some(oldest) = l0.first().filter(|n| **n != newest_l0) {
            assert!(
                Some(oldest.max) > l1_max || age(oldest) < 20_000,
                "{oldest} deletable"
            );
        }
        // Snapshots: one at least; the deleted ones were old, the others (but the newest)
        // are young.
        let snapshots = of(Level::SNAPSHOT);
        let (_, older) = snapshots.split_last().expect("the newest snapshot is kept");
        for name in older {
            assert!(age(name) < 90_000, "snapshot {name} should be gone");
        }
        for (_, name) in gone.iter().filter(|f| f.0 == Level::SNAPSHOT) {
            assert!(age(name) >= 90_000, "snapshot {name} deleted too early");
            self.floor = self.floor.max(Some(name.max));
        }
        // L1..L8: below the floor gone, at or above it kept.
        for (level, name) in before.iter().filter(|f| (1..=8).contains(&f.0.get())) {
            let deleted = gone.contains(&(*level, *name));
            let below = self.floor.is_some_and(|floor| name.max < floor);
            assert_eq!(deleted, below, "L{level} {name}, floor {:?}", self.floor);
        }
    }
}

/// Rounds 1..=`rounds`: upload L0 `k`, run the compactor at its time + 1 s, check.
/// Returns the compactor's outputs.
fn run_rounds(
    client: &ReplicaClient,
    checker: &ReplicaClient,
    staging: &Path,
    states: &[Vec<u8>],
) -> Vec<CompactionReport> {
    let mut compactor = Compactor::new(schedule(), staging).unwrap();
    let mut retention = RetentionCheck { floor: None };
    let mut reports = Vec::new();
    for k in 1..=u64::try_from(states.len()).unwrap() {
        upload(client, states, k);
        let before = listing(checker);
        let lists_before = client.stats().get(Operation::List).requests;
        let now_ms = time_of(k) + 1000;
        let report = compactor.run_due(client, at(now_ms)).unwrap();
        let lists = client.stats().get(Operation::List).requests - lists_before;
        if k > 1 {
            assert!(lists <= 1, "round {k}: {lists} LIST requests");
        }
        retention.check(&before, &listing(checker), &report, now_ms);
        let latest = restore(checker, RestoreTarget::Latest).unwrap();
        assert!(
            latest == states[usize::try_from(k).unwrap() - 1],
            "round {k}: restore differs"
        );
        reports.push(report);
    }
    assert!(
        retention.floor.is_some(),
        "the history is long enough to expire a snapshot"
    );
    reports
}

/// Every TXID planning reaches restores to its state; returns those TXIDs.
fn restorable_points(client: &ReplicaClient, states: &[Vec<u8>]) -> Vec<u64> {
    let mut reached = Vec::new();
    for (i, state) in states.iter().enumerate() {
        let txid = u64::try_from(i + 1).unwrap();
        if let Ok(db) = restore(client, RestoreTarget::TxId(TxId::new(txid).unwrap())) {
            assert!(db == *state, "restore at TXID {txid} differs");
            reached.push(txid);
        }
    }
    reached
}

fn run_ok(mut cmd: Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Litestream restores `url` at the latest TXID and at `txids`, byte for byte.
fn assert_litestream_restores(
    command: impl Fn(&[&str]) -> Command,
    url: &str,
    dir: &Path,
    states: &[Vec<u8>],
    txids: &[u64],
) {
    let latest = u64::try_from(states.len()).unwrap();
    for txid in std::iter::once(None).chain(txids.iter().copied().map(Some)) {
        let out = dir.join(format!("litestream-{}.db", txid.unwrap_or(0)));
        let _ = std::fs::remove_file(&out); // an earlier check's
        let hex = txid.map(|t| format!("{t:016x}"));
        let mut args = vec!["restore", "-o", out.to_str().unwrap()];
        if let Some(hex) = &hex {
            args.extend(["-txid", hex.as_str()]);
        }
        args.push(url);
        run_ok(command(&args));
        let expected = &states[usize::try_from(txid.unwrap_or(latest)).unwrap() - 1];
        assert!(
            std::fs::read(&out).unwrap() == *expected,
            "Litestream's restore of {url} at {txid:?} differs from the source"
        );
    }
}

/// What every backend must show after 20 rounds.
fn assert_history_kept(client: &ReplicaClient, states: &[Vec<u8>], reports: &[CompactionReport]) {
    let written: Vec<(u8, String)> = reports
        .iter()
        .flat_map(|r| {
            r.written
                .iter()
                .map(|b| (b.level.get(), b.name.to_string()))
        })
        .collect();
    for level in [1, 2, 9] {
        assert!(
            written.iter().any(|w| w.0 == level),
            "no L{level} output: {written:?}"
        );
    }
    let points = restorable_points(client, states);
    // The two retained snapshots and the retained L0 files are restore points.
    for txid in [12, 18, 19, 20] {
        assert!(
            points.contains(&txid),
            "TXID {txid} not restorable: {points:?}"
        );
    }
}

const ROUNDS: usize = 20;

#[test]
fn file_replica_compacts_snapshots_and_retains_by_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let states = history(dir.path(), ROUNDS);
    let url = format!("file://{}", dir.path().join("replica").display());
    let client = ReplicaClient::from_url(&url).unwrap();
    let checker = ReplicaClient::from_url(&url).unwrap();
    let reports = run_rounds(&client, &checker, &dir.path().join("staging"), &states);
    assert_history_kept(&checker, &states, &reports);
    let ls = Litestream::locate().unwrap();
    let command = |args: &[&str]| ls.command(args);
    assert_litestream_restores(command, &url, dir.path(), &states, &[12, 19]);
}

#[test]
fn s3_replica_compacts_snapshots_and_retains_by_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let states = history(dir.path(), ROUNDS);
    let server = S3Server::start().unwrap();
    let client = s3_client(&server, "walcast/app");
    let checker = s3_client(&server, "walcast/app");
    let reports = run_rounds(&client, &checker, &dir.path().join("staging"), &states);
    assert_history_kept(&checker, &states, &reports);
    let ls = Litestream::locate().unwrap();
    let command = |args: &[&str]| {
        let mut cmd = ls.command(args);
        cmd.envs(server.credentials());
        cmd
    };
    let url = server.url("walcast/app");
    assert_litestream_restores(command, &url, dir.path(), &states, &[12, 19]);
}

/// A replica to test on: its URL and the credentials its clients and Litestream need.
struct Place {
    url: String,
    credentials: Vec<(String, String)>,
}

impl Place {
    fn directory(dir: &Path, tag: &str) -> Self {
        let url = format!("file://{}", dir.join(tag).display());
        Self {
            url,
            credentials: Vec::new(),
        }
    }

    fn s3(server: &S3Server, tag: &str) -> Self {
        Self {
            url: server.url(&format!("walcast/{tag}")),
            credentials: server.credentials(),
        }
    }

    fn client(&self) -> ReplicaClient {
        let target = ReplicaTarget::parse_url(&self.url).unwrap();
        let settings = ClientSettings {
            env: Env::from_pairs(self.credentials.clone()),
            ..ClientSettings::default()
        };
        ReplicaClient::open(target, settings).unwrap()
    }

    /// Litestream restores this replica at the latest TXID and at `txids`, byte for byte.
    fn assert_litestream_restores(&self, dir: &Path, states: &[Vec<u8>], txids: &[u64]) {
        let ls = Litestream::locate().unwrap();
        let command = |args: &[&str]| {
            let mut cmd = ls.command(args);
            cmd.envs(self.credentials.iter().cloned());
            cmd
        };
        assert_litestream_restores(command, &self.url, dir, states, txids);
    }
}

/// A compaction stopped after storing its outputs, before retention, on `place`.
fn interrupted_compaction(place: &Place, dir: &Path) {
    let states = history(dir, 6);
    let client = place.client();
    for k in 1..=6 {
        upload(&client, &states, k);
    }
    let staging = dir.join("staging");
    let l1 = Level::new(1).unwrap();
    // A second compactor looks at the replica before the first one writes (it will not
    // see the first one's outputs: as after a crash that lost the answer to a PUT).
    let mut stale = Compactor::new(schedule(), &staging).unwrap();
    let none = stale.enforce_retention(&client, at(time_of(6))).unwrap();
    assert!(none.is_empty());

    // The first one stores L1 and a snapshot, then "crashes" before retention.
    let mut first = Compactor::new(schedule(), &staging).unwrap();
    let built = first.compact_level(&client, l1).unwrap().unwrap();
    let expected = "0000000000000001-0000000000000006.ltx";
    assert_eq!(built.name.to_string(), expected);
    assert_eq!(built.outcome, OutputOutcome::Written);
    let snapshot = first.snapshot(&client).unwrap().unwrap();
    assert_eq!(snapshot.level, Level::SNAPSHOT);
    drop(first);
    assert!(restore(&client, RestoreTarget::Latest).unwrap() == states[5]);
    place.assert_litestream_restores(dir, &states, &[3]);

    // The retry rebuilds the same bytes: already present, not a conflict.
    let again = stale.compact_level(&client, l1).unwrap().unwrap();
    assert_eq!(
        (again.name, again.outcome),
        (built.name, OutputOutcome::AlreadyPresent)
    );
    let again = stale.snapshot(&client).unwrap().unwrap();
    let present = (snapshot.name, OutputOutcome::AlreadyPresent);
    assert_eq!((again.name, again.outcome), present);

    // A fresh compactor later finishes retention: L0 1..5 are covered and old.
    let mut next = Compactor::new(schedule(), &staging).unwrap();
    let report = next.run_due(&client, at(time_of(6) + 60_000)).unwrap();
    let deleted: Vec<u64> = report.deleted.iter().map(|(_, n)| n.max.get()).collect();
    assert_eq!(deleted, [1, 2, 3, 4, 5]);
    assert!(restore(&client, RestoreTarget::Latest).unwrap() == states[5]);
    place.assert_litestream_restores(dir, &states, &[]);
    assert_eq!(staging_files(&staging), 0, "staging files left");
}

#[test]
fn an_interrupted_compaction_on_a_directory_leaves_it_restorable_and_the_next_run_completes() {
    let dir = tempfile::tempdir().unwrap();
    interrupted_compaction(&Place::directory(dir.path(), "replica"), dir.path());
}

#[test]
fn an_interrupted_compaction_on_s3_leaves_it_restorable_and_the_next_run_completes() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start().unwrap();
    interrupted_compaction(&Place::s3(&server, "app"), dir.path());
}

/// An object already at an output's name, valid or damaged, on `adopted` and `damaged`.
fn existing_output(adopted: &Place, damaged: &Place, dir: &Path) {
    let states = history(dir, 3);
    let l1 = Level::new(1).unwrap();
    let name: LtxFileName = "0000000000000001-0000000000000003.ltx".parse().unwrap();
    let replica = |place: &Place| {
        let client = place.client();
        for k in 1..=3 {
            upload(&client, &states, k);
        }
        client
    };

    // Another valid file of TXIDs 1-3 (every page of state 3, another timestamp), stored
    // after the compactor listed L1 (as by an earlier run that crashed).
    let client = replica(adopted);
    let mut compactor = Compactor::new(schedule(), dir.join("s1")).unwrap();
    assert!(
        compactor
            .enforce_retention(&client, at(0))
            .unwrap()
            .is_empty()
    );
    let other = full_file(&states[2], 3, time_of(3) + 5);
    client.put(l1, name, &other[..]).unwrap();
    let built = compactor.compact_level(&client, l1).unwrap().unwrap();
    assert_eq!((built.name, built.outcome), (name, OutputOutcome::Adopted));

    // A damaged object there: refused, named, and retention deletes nothing.
    let client = replica(damaged);
    let mut compactor = Compactor::new(schedule(), dir.join("s2")).unwrap();
    assert!(
        compactor
            .enforce_retention(&client, at(0))
            .unwrap()
            .is_empty()
    );
    client.put(l1, name, &b"LTX1 not really"[..]).unwrap();
    let before = listing(&client);
    let later = at(time_of(3) + 600_000);
    let err = compactor.run_due(&client, later).unwrap_err();
    assert!(
        matches!(err, CompactError::ConflictingOutput { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&name.to_string()), "{err}");
    assert_eq!(listing(&client), before);
}

#[test]
fn an_existing_output_in_a_directory_is_kept_only_if_it_verifies_as_that_txid_range() {
    let dir = tempfile::tempdir().unwrap();
    let (adopted, damaged) = (
        Place::directory(dir.path(), "a"),
        Place::directory(dir.path(), "d"),
    );
    existing_output(&adopted, &damaged, dir.path());
}

#[test]
fn an_existing_output_on_s3_is_kept_only_if_it_verifies_as_that_txid_range() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start().unwrap();
    let (adopted, damaged) = (Place::s3(&server, "a"), Place::s3(&server, "d"));
    existing_output(&adopted, &damaged, dir.path());
}

#[test]
fn more_inputs_than_can_be_open_at_once_merge_in_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let n = 2 * MAX_OPEN_INPUTS + 5;
    let states = history(dir.path(), n);
    let url = format!("file://{}", dir.path().join("replica").display());
    let client = ReplicaClient::from_url(&url).unwrap();
    for k in 1..=u64::try_from(n).unwrap() {
        upload(&client, &states, k);
    }
    let staging = dir.path().join("staging");
    let mut compactor = Compactor::new(schedule(), &staging).unwrap();
    let built = compactor
        .compact_level(&client, Level::new(1).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(built.name.max.get(), u64::try_from(n).unwrap());
    assert_eq!(built.timestamp_ms, time_of(u64::try_from(n).unwrap()));
    let l1_only = {
        let level = Level::new(1).unwrap();
        let mut c = catalog(&client).files().to_vec();
        c.retain(|f| f.level == level);
        Catalog::new(c)
    };
    assert_eq!(
        l1_only.plan(RestoreTarget::Latest).unwrap().files().len(),
        1
    );
    let db = restore(&client, RestoreTarget::Latest).unwrap();
    assert!(
        db == states[n - 1],
        "the merged backlog differs from the source"
    );
    assert_eq!(staging_files(&staging), 0, "staging files left");
}

/// Files left in a compactor's staging directory (its `l0/` directory of local copies
/// aside, which lives as long as the compactor's owner uses it).
fn staging_files(staging: &Path) -> usize {
    std::fs::read_dir(staging)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_file())
        .count()
}

/// Environment variable that turns [`memory_probe`] on in a child process.
const PROBE: &str = "WALCAST_COMPACT_MEMORY_PROBE";

/// Peak resident memory of this process so far, in KiB (`VmHWM`).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Run by [`a_snapshot_of_a_large_database_does_not_hold_it_in_memory`] in a child
/// process (alone, so no other test's memory counts): snapshots and compacts the replica
/// named by [`PROBE`] and prints its peak memory before and after.
#[test]
#[ignore = "run by a_snapshot_of_a_large_database_does_not_hold_it_in_memory"]
fn memory_probe() {
    let Ok(spec) = std::env::var(PROBE) else {
        return;
    };
    let (url, staging) = spec.split_once('\n').unwrap();
    let client = ReplicaClient::from_url(url).unwrap();
    let mut compactor = Compactor::new(schedule(), staging).unwrap();
    let before = peak_rss_kib();
    let built = compactor.snapshot(&client).unwrap().unwrap();
    compactor
        .compact_level(&client, Level::new(1).unwrap())
        .unwrap()
        .unwrap();
    let after = peak_rss_kib();
    println!("PROBE {before} {after} {}", built.size);
}

#[test]
fn a_snapshot_of_a_large_database_does_not_hold_it_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("large.db");
    let mut s = Session::open_wal_without_checkpoints(&db, 4096).unwrap();
    let mut states = Vec::new();
    for rows in [8000, 50] {
        s.exec_all(&[
            "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB)",
            &format!(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows}) \
                 INSERT INTO t(v) SELECT randomblob(3000) FROM c"
            ),
            "PRAGMA wal_checkpoint(TRUNCATE)",
        ])
        .unwrap();
        states.push(std::fs::read(&db).unwrap());
    }
    let db_kib = u64::try_from(states[1].len() / 1024).unwrap();
    assert!(db_kib > 24 * 1024, "the database is only {db_kib} KiB");
    let url = format!("file://{}", dir.path().join("replica").display());
    let client = ReplicaClient::from_url(&url).unwrap();
    upload(&client, &states, 1);
    upload(&client, &states, 2);
    drop(states);

    let staging = dir.path().join("staging");
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "memory_probe",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PROBE, format!("{url}\n{}", staging.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let probe: Vec<u64> = stdout
        .lines()
        .find_map(|l| l.split_once("PROBE ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no probe line in {stdout}"))
        .split(' ')
        .map(|n| n.parse().unwrap())
        .collect();
    let (before, after, snapshot_bytes) = (probe[0], probe[1], probe[2]);
    assert!(
        snapshot_bytes / 1024 > db_kib / 2,
        "a snapshot of incompressible pages"
    );
    // The merge holds a few pages per input and ~10 bytes of index per page: far less
    // than a tenth of the database (it would be all of it if a file were buffered).
    assert!(
        after.saturating_sub(before) < db_kib / 10,
        "peak memory grew from {before} KiB to {after} KiB merging a {db_kib} KiB database"
    );
    let restored = restore(&client, RestoreTarget::Latest).unwrap();
    assert!(
        restored == std::fs::read(&db).unwrap(),
        "the snapshot differs from the source"
    );
}

#[test]
fn a_compactor_can_live_on_the_uploader_thread_or_its_own() {
    fn send<T: Send>() {}
    fn shared<T: Send + Sync>() {}
    send::<Compactor>();
    send::<CompactError>();
    shared::<ReplicaClient>();
}

/// A dump without Litestream's bookkeeping tables (Litestream may write them after its
/// last sync).
fn content(db: &Path) -> String {
    walcast_testbed::sqlite::dump(db)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("_litestream"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn walcast_compacts_what_litestream_replicated_and_litestream_restores_it() {
    use walcast_testbed::litestream::{Config, DbConfig, Replica};
    use walcast_testbed::sqlite::Workload;

    let ls = Litestream::locate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (db, replica) = (dir.path().join("app.db"), dir.path().join("replica"));
    let config = dir.path().join("litestream.yml");
    let mut db_config = DbConfig::new(&db, Replica::Dir(replica.clone()));
    db_config.monitor_interval = Some(Duration::from_millis(250));
    Config::new(vec![db_config]).write(&config).unwrap();
    for seed in 1..=3 {
        let workload = Workload {
            seed,
            transactions: 30,
            page_size: 4096,
            ..Workload::default()
        };
        workload.run(&db).unwrap();
        ls.replicate_once(&config, false).unwrap();
    }
    let url = format!("file://{}", replica.display());
    let client = ReplicaClient::from_url(&url).unwrap();
    let l0 = client.list(Level::L0).unwrap();
    assert!(l0.len() >= 3, "Litestream wrote {} L0 files", l0.len());
    let newest = l0.last().unwrap().name;

    // Litestream's L0 files carry real times: run a day after the newest.
    let mut compactor = Compactor::new(schedule(), dir.path().join("staging")).unwrap();
    let now_ms = l0_time(&client, newest) + 86_400_000;
    let report = compactor.run_due(&client, at(now_ms)).unwrap();
    let written: BTreeSet<u8> = report.written.iter().map(|b| b.level.get()).collect();
    assert_eq!(written, BTreeSet::from([1, 2, 9]), "{report:?}");
    let left: Vec<LtxFileName> = client
        .list(Level::L0)
        .unwrap()
        .iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(left, [newest], "L0 retention keeps only the newest file");

    let ours = dir.path().join("walcast.db");
    std::fs::write(&ours, restore(&client, RestoreTarget::Latest).unwrap()).unwrap();
    let theirs = dir.path().join("litestream.db");
    run_ok(ls.command(["restore", "-o", theirs.to_str().unwrap(), &url]));
    assert!(std::fs::read(&ours).unwrap() == std::fs::read(&theirs).unwrap());
    assert_eq!(content(&theirs), content(&db));
}

/// The header time of one L0 file, in Unix ms.
fn l0_time(client: &ReplicaClient, name: LtxFileName) -> i64 {
    let mut raw = [0u8; walcast_ltx::HEADER_SIZE];
    std::io::Read::read_exact(&mut client.get(Level::L0, name).unwrap(), &mut raw).unwrap();
    Header::decode(&raw).unwrap().timestamp_ms
}

/// Every object of the replica with its bytes, by level then TXID.
fn contents(client: &ReplicaClient) -> Vec<(Level, LtxFileName, Vec<u8>)> {
    listing(client)
        .into_iter()
        .map(|(level, name)| {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut client.get(level, name).unwrap(), &mut bytes).unwrap();
            (level, name, bytes)
        })
        .collect()
}

#[test]
fn l0_files_the_uploader_stored_are_merged_from_local_copies_without_a_get() {
    // L1 every 30 s, snapshots daily: every L1 merge reads only L0 files, and the only
    // snapshot (the first run) reads only the first L0 file.
    let schedule = LevelSchedule::new(
        vec![Duration::from_secs(30)],
        Duration::from_secs(86_400),
        Duration::from_secs(86_400),
        Duration::from_secs(20),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let states = history(dir.path(), 12);
    let server = S3Server::start().unwrap();
    let (told, downloaded) = (
        s3_client(&server, "walcast/told"),
        s3_client(&server, "walcast/downloaded"),
    );
    let mut with_copies = Compactor::new(schedule.clone(), dir.path().join("told")).unwrap();
    let mut without = Compactor::new(schedule, dir.path().join("downloaded")).unwrap();
    let mut merged_l1 = 0;
    for k in 1..=u64::try_from(states.len()).unwrap() {
        let i = usize::try_from(k).unwrap();
        let (name, bytes) = encode_l0(i.checked_sub(2).map(|p| &states[p][..]), &states[i - 1], k);
        let file = dir.path().join(format!("upload-{k}.ltx"));
        std::fs::write(&file, &bytes).unwrap();
        told.put_file(Level::L0, name, &file).unwrap();
        with_copies.l0_copies().keep(name, &file);
        std::fs::remove_file(&file).unwrap();
        downloaded.put(Level::L0, name, &bytes[..]).unwrap();

        let now = at(time_of(k) + 1000);
        let report = with_copies.run_due(&told, now).unwrap();
        assert_eq!(
            report,
            without.run_due(&downloaded, now).unwrap(),
            "round {k}"
        );
        merged_l1 += report.written.iter().filter(|b| b.level.get() == 1).count();
    }
    assert!(
        merged_l1 >= 3,
        "only {merged_l1} L1 merges: the test proves little"
    );
    // Every L0 file is read once by an L1 merge: downloaded, all 12 are GETs; with
    // copies, none is. (The first snapshot reads the first L1 file, one GET in both.)
    let gets = |c: &ReplicaClient| c.stats().get(Operation::Get).requests;
    assert_eq!(gets(&told), 1);
    assert!(gets(&downloaded) > 12, "{} GETs", gets(&downloaded));
    assert!(
        contents(&told) == contents(&downloaded),
        "the outputs differ"
    );
    assert!(restore(&told, RestoreTarget::Latest).unwrap() == *states.last().unwrap());
}

#[test]
fn a_damaged_local_l0_copy_fails_one_run_and_the_next_downloads_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let states = history(dir.path(), 4);
    let client =
        ReplicaClient::from_url(&format!("file://{}", dir.path().join("r").display())).unwrap();
    let staging = dir.path().join("staging");
    let mut compactor = Compactor::new(schedule(), &staging).unwrap();
    let mut copies = Vec::new();
    for k in 1..=4u64 {
        let i = usize::try_from(k).unwrap();
        let (name, bytes) = encode_l0(i.checked_sub(2).map(|p| &states[p][..]), &states[i - 1], k);
        let file = dir.path().join(format!("upload-{k}.ltx"));
        std::fs::write(&file, &bytes).unwrap();
        client.put_file(Level::L0, name, &file).unwrap();
        compactor.l0_copies().keep(name, &file);
        std::fs::remove_file(&file).unwrap();
        copies.push(name);
    }
    // The local copies live in `<staging>/l0/<name>` (the layout the compactor documents);
    // flip a byte in the middle of the first one, as a failing disk would.
    let copy = staging.join("l0").join(copies[0].to_string());
    let mut damaged = std::fs::read(&copy).unwrap();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0xff;
    std::fs::remove_file(&copy).unwrap();
    std::fs::write(&copy, damaged).unwrap();

    let now = at(time_of(4) + 1000);
    let err = compactor.run_due(&client, now).unwrap_err();
    assert!(
        err.to_string().contains(&copies[0].to_string()) || format!("{err:?}").contains("hecksum"),
        "{err}"
    );
    assert_eq!(
        listing(&client)
            .iter()
            .filter(|(l, _)| l.get() != 0)
            .count(),
        0,
        "nothing built from a damaged copy may be stored"
    );
    let report = compactor.run_due(&client, now).unwrap();
    assert!(!report.written.is_empty());
    assert!(restore(&client, RestoreTarget::Latest).unwrap() == states[3]);
}
