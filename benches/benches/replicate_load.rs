//! Load bench for `walcast replicate` (issue 4): the same sustained small-transaction load
//! (benches/py/load.py, real SQLite in its own process) with and without walcast
//! replicating the database to a directory, interleaved, repeated. Reports medians:
//!
//! - application transactions/s, and the ratio with/without (goal >= 95%);
//! - largest WAL size seen (sampled every 2 ms; goal <= 2x without);
//! - walcast CPU-seconds per 10,000 transactions (/proc/<pid>/stat);
//! - commit-to-staged lag p50/p99: the load stamps a probe row with the wall clock before
//!   COMMIT every 10 ms; this harness watches the staging directory with inotify, decodes
//!   each new L0 file and takes the first sighting of each probe (goal p99 <= 50 ms).
//!
//! Run: `cargo bench -p walcast-benches --bench replicate_load` (builds the release
//! binary first if needed). `WALCAST_BENCH_SECONDS` (default 20) and
//! `WALCAST_BENCH_REPEATS` (default 3) change the run length, `WALCAST_BENCH_RATE` paces
//! the load (transactions/s; default 0: as fast as it can). Not a test: it asserts
//! nothing, it measures.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use inotify::{Inotify, WatchMask};
use walcast_ltx::Decoder;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn walcast_bin() -> Res<PathBuf> {
    if let Some(bin) = std::env::var_os("WALCAST_BIN") {
        return Ok(bin.into());
    }
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "walcast"])
        .current_dir(workspace())
        .status()?;
    if !status.success() {
        return Err("cargo build --release -p walcast failed".into());
    }
    Ok(workspace().join("target/release/walcast"))
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug, Default, Clone)]
struct Sample {
    tx_per_s: f64,
    max_wal: u64,
    cpu_per_10k: Option<f64>,
    lags_ms: Vec<f64>,
    missed_files: u64,
}

/// Holds the database open in WAL mode, as the application would, until dropped.
struct Holder(Child);

impl Holder {
    fn open(db: &Path) -> Res<Self> {
        let script = "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\nc.execute('pragma journal_mode=wal')\n\
c.execute('create table if not exists t(id integer primary key, v blob)')\nc.execute('select 1 from sqlite_schema').fetchall()\n\
print('ready',flush=True)\nsys.stdin.read()\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().ok_or("holder stdout")?),
            &mut line,
        )?;
        Ok(Self(child))
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

fn sample_wal(wal: PathBuf, stop: Arc<AtomicBool>) -> JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut max = 0;
        while !stop.load(Ordering::Relaxed) {
            if let Ok(meta) = std::fs::metadata(&wal) {
                max = max.max(meta.len());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        max
    })
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Probe stamps found in a decoded page.
fn probes(page: &[u8], out: &mut Vec<u128>) {
    const TAG: &[u8] = b"PROBE:";
    let mut at = 0;
    while let Some(pos) = page[at..].windows(TAG.len()).position(|w| w == TAG) {
        let start = at + pos + TAG.len();
        if let Some(digits) = page.get(start..start + 20)
            && let Some(ns) = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse().ok())
        {
            out.push(ns);
        }
        at = start;
    }
}

/// Watches the staging directory and hard-links every new L0 file into `keep` under a
/// name carrying the time it appeared, so the analysis (decoding) runs after the load and
/// does not compete with walcast for the CPU. Returns the files missed (gone before linked).
fn watch_staging(dir: PathBuf, keep: PathBuf, stop: Arc<AtomicBool>) -> Res<JoinHandle<u64>> {
    let mut inotify = Inotify::init()?;
    inotify.watches().add(&dir, WatchMask::MOVED_TO)?;
    std::fs::create_dir_all(&keep)?;
    Ok(std::thread::spawn(move || {
        let mut missed = 0u64;
        let mut buf = [0u8; 8192];
        while !stop.load(Ordering::Relaxed) {
            let events = match inotify.read_events(&mut buf) {
                Ok(events) => events
                    .filter_map(|e| e.name.map(|n| n.to_owned()))
                    .collect::<Vec<_>>(),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                Err(_) => break,
            };
            for name in events {
                let at = now_ns();
                if std::fs::hard_link(dir.join(&name), keep.join(format!("{at}"))).is_err() {
                    missed += 1;
                }
            }
        }
        missed
    }))
}

/// First-sighting lag of every probe, in ms, from the files `watch_staging` kept.
fn probe_lags(keep: &Path) -> Res<Vec<f64>> {
    let mut files: Vec<(u128, PathBuf)> = std::fs::read_dir(keep)?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
        .collect();
    files.sort();
    let (mut seen, mut lags, mut found) = (HashSet::new(), Vec::new(), Vec::new());
    for (staged_at, path) in files {
        let mut decoder = Decoder::new(File::open(path)?)?;
        while let Some(page) = decoder.next_page()? {
            found.clear();
            probes(page.data, &mut found);
            for &ns in &found {
                if seen.insert(ns) {
                    lags.push(staged_at.saturating_sub(ns) as f64 / 1e6);
                }
            }
        }
    }
    Ok(lags)
}

fn cpu_seconds(pid: u32) -> Res<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .ok_or("stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    let hz: f64 = String::from_utf8(Command::new("getconf").arg("CLK_TCK").output()?.stdout)?
        .trim()
        .parse()?;
    Ok(ticks / hz)
}

fn run_once(walcast: Option<&Path>, seconds: u64) -> Res<Sample> {
    let dir = tempfile::tempdir_in(workspace().join("target"))?;
    let db = dir.path().join("app.db");
    let holder = Holder::open(&db)?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut child = None;
    let mut watcher = None;
    if let Some(bin) = walcast {
        let log = dir.path().join("walcast.log");
        let mut c = Command::new(bin)
            .arg("replicate")
            .arg(&db)
            .arg(dir.path().join("replica"))
            .stderr(File::create(&log)?)
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !std::fs::read_to_string(&log)?.contains("replicating") {
            if Instant::now() > deadline || c.try_wait()?.is_some() {
                return Err(
                    format!("walcast did not start: {}", std::fs::read_to_string(&log)?).into(),
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        watcher = Some(watch_staging(
            dir.path().join(".app.db-walcast/ltx/0"),
            dir.path().join("staged-copies"),
            stop.clone(),
        )?);
        child = Some(c);
        let _ = &mut child;
    }
    let sampler = sample_wal(dir.path().join("app.db-wal"), stop.clone());
    let out = Command::new("python3")
        .arg(workspace().join("benches/py/load.py"))
        .arg(&db)
        .arg(seconds.to_string())
        .args(["--rate", &env_number("WALCAST_BENCH_RATE", 0).to_string()])
        .output()?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let commits = report["commits"].as_u64().ok_or("commits")?;
    let elapsed = report["seconds"].as_f64().ok_or("seconds")?;
    let mut sample = Sample {
        tx_per_s: commits as f64 / elapsed,
        ..Sample::default()
    };
    if let Some(mut c) = child {
        // Let the last commits reach the staging directory before stopping the watcher.
        std::thread::sleep(Duration::from_millis(300));
        sample.cpu_per_10k = Some(cpu_seconds(c.id())? / commits as f64 * 10_000.0);
        Command::new("kill")
            .args(["-INT", &c.id().to_string()])
            .status()?;
        c.wait()?;
    }
    stop.store(true, Ordering::Relaxed);
    sample.max_wal = sampler.join().map_err(|_| "sampler")?;
    if let Some(w) = watcher {
        sample.missed_files = w.join().map_err(|_| "watcher")?;
        sample.lags_ms = probe_lags(&dir.path().join("staged-copies"))?;
    }
    drop(holder);
    Ok(sample)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn percentile(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(((v.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

fn main() -> Res<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(());
    }
    let bin = walcast_bin()?;
    let seconds = env_number("WALCAST_BENCH_SECONDS", 20);
    let repeats = env_number("WALCAST_BENCH_REPEATS", 3);
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for round in 0..repeats {
        let a = run_once(None, seconds)?;
        let b = run_once(Some(&bin), seconds)?;
        eprintln!(
            "round {round}: without {:.0} tx/s, WAL max {} KiB | with {:.0} tx/s, WAL max {} KiB, CPU {:.3} s/10k tx, lag p50 {:.1} ms p99 {:.1} ms ({} probes, {} files missed)",
            a.tx_per_s,
            a.max_wal / 1024,
            b.tx_per_s,
            b.max_wal / 1024,
            b.cpu_per_10k.unwrap_or(f64::NAN),
            percentile(&b.lags_ms, 0.5),
            percentile(&b.lags_ms, 0.99),
            b.lags_ms.len(),
            b.missed_files
        );
        without.push(a);
        with.push(b);
    }
    let m = |v: &[Sample], f: fn(&Sample) -> f64| median(v.iter().map(f).collect());
    let (tx_a, tx_b) = (m(&without, |s| s.tx_per_s), m(&with, |s| s.tx_per_s));
    let (wal_a, wal_b) = (
        m(&without, |s| s.max_wal as f64),
        m(&with, |s| s.max_wal as f64),
    );
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\nmedians over {repeats} interleaved rounds of {seconds} s\n"
    )?;
    writeln!(
        out,
        "| metric | without walcast | with walcast | ratio / goal |"
    )?;
    writeln!(out, "|---|---|---|---|")?;
    writeln!(
        out,
        "| application tx/s | {tx_a:.0} | {tx_b:.0} | {:.1}% (goal >= 95%) |",
        tx_b / tx_a * 100.0
    )?;
    writeln!(
        out,
        "| max WAL size | {:.0} KiB | {:.0} KiB | {:.2}x (goal <= 2x) |",
        wal_a / 1024.0,
        wal_b / 1024.0,
        wal_b / wal_a
    )?;
    writeln!(
        out,
        "| walcast CPU-s per 10k tx | - | {:.3} | |",
        m(&with, |s| s.cpu_per_10k.unwrap_or(f64::NAN))
    )?;
    writeln!(
        out,
        "| commit-to-staged lag p50 | - | {:.1} ms | |",
        m(&with, |s| percentile(&s.lags_ms, 0.5))
    )?;
    writeln!(
        out,
        "| commit-to-staged lag p99 | - | {:.1} ms | goal <= 50 ms |",
        m(&with, |s| percentile(&s.lags_ms, 0.99))
    )?;
    Ok(())
}
