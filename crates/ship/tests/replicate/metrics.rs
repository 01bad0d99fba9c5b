//! `-addr`: Prometheus metrics of a running replication.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use walcast_testbed::sqlite::Workload;

use crate::support::{Walcast, open_app};

fn get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// The value of the sample whose line starts with `prefix`.
fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix} in:\n{text}"))
}

#[test]
fn metrics_report_syncs_txid_and_replica_requests() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let app = open_app(&db).unwrap();
    // An ephemeral port that was free a moment ago.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let log = dir.path().join("walcast.log");
    let mut walcast = Walcast::start(
        &db,
        &dir.path().join("replica"),
        &log,
        &["-addr", &addr, "-sync-interval", "100ms"],
    )
    .unwrap();
    walcast.wait_replicating().unwrap();
    Workload {
        transactions: 200,
        ..Workload::default()
    }
    .run(&db)
    .unwrap();
    let label = format!("db=\"{}\"", db.display());
    walcast_testbed::wait::until(std::time::Duration::from_secs(30), "an upload", || {
        let text = get(&addr, "/metrics");
        Ok(sample(
            &text,
            &format!(
                "walcast_replica_operation_total{{{label},replica=\"replica\",operation=\"PUT\"}}"
            ),
        ) >= 2.0)
    })
    .unwrap();
    let text = get(&addr, "/metrics");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        sample(&text, &format!("walcast_db_txid{{{label}}}")) >= 2.0,
        "{text}"
    );
    assert!(
        sample(&text, &format!("walcast_sync_count{{{label}}}")) >= 1.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!("walcast_sync_error_count{{{label}}}")),
        0.0,
        "{text}"
    );
    assert!(text.contains("walcast_wal_size_bytes"), "{text}");
    assert!(get(&addr, "/other").starts_with("HTTP/1.1 404"));
    walcast.stop().unwrap();
    app.close().unwrap();
}
