//! Prometheus metrics on `addr` (`GET /metrics`, text format 0.0.4), named after
//! Litestream's with a `walcast_` prefix: per database the TXID, WAL size, syncs, sync
//! errors and replication lag; per replica the requests, errors, bytes and seconds of each
//! operation kind.
//!
//! The HTTP side is deliberately tiny (one thread, one request per connection, only
//! `GET /metrics`); it never blocks replication: values are atomics and a stat of the WAL.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use tracing::{debug, info};
use walcast_lock::DatabasePaths;
use walcast_replica::{Operation, ReplicaStats};

/// What one database's sync loop reports.
#[derive(Debug, Default)]
pub struct DbMetrics {
    pub txid: AtomicU64,
    pub syncs: AtomicU64,
    pub sync_errors: AtomicU64,
    /// Unix ms of the last staged file.
    pub last_staged_ms: AtomicU64,
}

impl DbMetrics {
    pub fn staged(&self, txid: u64) {
        self.txid.store(txid, Ordering::Relaxed);
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.last_staged_ms.store(now_ms(), Ordering::Relaxed);
    }
}

/// Milliseconds since the last staged file, if the WAL changed after it.
fn lag_ms(db: &std::path::Path, m: &DbMetrics) -> u64 {
    let staged = m.last_staged_ms.load(Ordering::Relaxed);
    let changed = std::fs::metadata(DatabasePaths::new(db).wal)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(0));
    if changed > staged {
        now_ms().saturating_sub(staged)
    } else {
        0
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

struct DbEntry {
    path: PathBuf,
    metrics: Arc<DbMetrics>,
}

struct ReplicaEntry {
    db: PathBuf,
    name: String,
    stats: Arc<ReplicaStats>,
}

/// Everything the endpoint shows.
#[derive(Default)]
pub struct Registry {
    dbs: Mutex<Vec<DbEntry>>,
    replicas: Mutex<Vec<ReplicaEntry>>,
}

impl Registry {
    pub fn database(&self, path: PathBuf) -> Arc<DbMetrics> {
        let metrics = Arc::new(DbMetrics::default());
        if let Ok(mut dbs) = self.dbs.lock() {
            dbs.push(DbEntry {
                path,
                metrics: Arc::clone(&metrics),
            });
        }
        metrics
    }

    pub fn replica(&self, db: PathBuf, name: String, stats: Arc<ReplicaStats>) {
        if let Ok(mut replicas) = self.replicas.lock() {
            replicas.push(ReplicaEntry { db, name, stats });
        }
    }

    /// The Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let gauge = |out: &mut String, name: &str, help: &str, kind: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        let dbs = self
            .dbs
            .lock()
            .map(|d| {
                d.iter()
                    .map(|e| (e.path.clone(), Arc::clone(&e.metrics)))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let label = |p: &PathBuf| {
            p.display()
                .to_string()
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
        };
        type DbValue = fn(&PathBuf, &DbMetrics) -> String;
        let per_db: [(&str, &str, &str, DbValue); 5] = [
            (
                "walcast_db_txid",
                "TXID of the last staged LTX file.",
                "gauge",
                |_, m| m.txid.load(Ordering::Relaxed).to_string(),
            ),
            (
                "walcast_wal_size_bytes",
                "Size of the WAL file.",
                "gauge",
                |p, _| {
                    std::fs::metadata(DatabasePaths::new(p).wal)
                        .map_or(0, |m| m.len())
                        .to_string()
                },
            ),
            (
                "walcast_sync_count",
                "Syncs that staged an LTX file.",
                "counter",
                |_, m| m.syncs.load(Ordering::Relaxed).to_string(),
            ),
            (
                "walcast_sync_error_count",
                "Syncs that failed.",
                "counter",
                |_, m| m.sync_errors.load(Ordering::Relaxed).to_string(),
            ),
            (
                "walcast_replication_lag_seconds",
                "Seconds since the last staged file while the WAL has changed since (0 when caught up).",
                "gauge",
                |p, m| format!("{:.3}", lag_ms(p, m) as f64 / 1000.0),
            ),
        ];
        for (metric, help, kind, value) in per_db {
            gauge(&mut out, metric, help, kind);
            for (p, m) in &dbs {
                let _ = writeln!(out, "{metric}{{db=\"{}\"}} {}", label(p), value(p, m));
            }
        }
        let replicas = self
            .replicas
            .lock()
            .map(|r| {
                r.iter()
                    .map(|e| (e.db.clone(), e.name.clone(), Arc::clone(&e.stats)))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for (metric, help, pick) in [
            (
                "walcast_replica_operation_total",
                "Requests to the replica, by operation.",
                0,
            ),
            (
                "walcast_replica_operation_errors_total",
                "Failed requests to the replica, by operation.",
                1,
            ),
            (
                "walcast_replica_operation_bytes_total",
                "Bytes sent or received, by operation.",
                2,
            ),
            (
                "walcast_replica_operation_seconds_total",
                "Time spent in requests, by operation.",
                3,
            ),
        ] {
            gauge(&mut out, metric, help, "counter");
            for (db, name, stats) in &replicas {
                for op in Operation::ALL {
                    let c = stats.get(op);
                    let value = match pick {
                        0 => c.requests.to_string(),
                        1 => c.errors.to_string(),
                        2 => c.bytes.to_string(),
                        _ => format!("{:.6}", c.duration.as_secs_f64()),
                    };
                    let _ = writeln!(
                        out,
                        "{metric}{{db=\"{}\",replica=\"{name}\",operation=\"{}\"}} {value}",
                        label(db),
                        op.name()
                    );
                }
            }
        }
        out
    }
}

/// Serves `registry` on `addr` (`host:port`, or Litestream's `:port` for every interface)
/// from a thread of its own.
pub fn serve(addr: &str, registry: Arc<Registry>) -> anyhow::Result<()> {
    let bind = match addr.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => addr.to_owned(),
    };
    let listener =
        TcpListener::bind(&bind).with_context(|| format!("cannot serve metrics on {addr:?}"))?;
    info!("metrics on http://{bind}/metrics");
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = answer(stream, &registry) {
                    debug!("metrics request: {e}");
                }
            }
        })?;
    Ok(())
}

fn answer(stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = String::new();
    BufReader::new(&stream).read_line(&mut request)?;
    let mut out = &stream;
    if request.starts_with("GET /metrics ") {
        let body = registry.render();
        write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    } else {
        write!(
            out,
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    }
}
