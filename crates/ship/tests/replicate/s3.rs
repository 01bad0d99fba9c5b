//! Replicating to an S3-protocol server (s3s-fs on 127.0.0.1, real SigV4) and through
//! storage faults: a replica the real Litestream 0.5.17 restores byte for byte, and an
//! outage that loses nothing.

use walcast_testbed::fault_proxy::{Fault, FaultProxy};
use walcast_testbed::s3::S3Server;
use walcast_testbed::sqlite::Workload;
use walcast_testbed::wait;

use crate::support::{Walcast, assert_url_restores_exactly, open_app};

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

#[test]
fn replicates_to_s3_and_litestream_restores_it_exactly() {
    let server = S3Server::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let url = server.url("walcast/app");
    let app = open_app(&db).unwrap();
    let env = server.credentials();
    let log = dir.path().join("walcast.log");
    let mut walcast =
        Walcast::start_url(&db, &url, &env, &log, &["-sync-interval", "200ms"]).unwrap();
    walcast.wait_replicating().unwrap();
    writer(1, 4.0).run(&db).unwrap();
    let text = walcast.log();
    walcast.stop().unwrap();
    app.close().unwrap();
    assert_url_restores_exactly(&db, &url, &env, &dir.path().join("restored.db"))
        .unwrap_or_else(|e| panic!("{e:#}\nwalcast log:\n{text}"));
}

#[test]
fn an_outage_of_the_store_loses_nothing_and_the_backlog_drains_in_order() {
    let server = S3Server::start().unwrap();
    let proxy = FaultProxy::start(server.addr(), []).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let through_proxy = server
        .url("walcast/app")
        .replace(&server.endpoint(), &proxy.endpoint());
    let app = open_app(&db).unwrap();
    let env = server.credentials();
    let log = dir.path().join("walcast.log");
    let args = ["-sync-interval", "200ms"];
    let mut walcast = Walcast::start_url(&db, &through_proxy, &env, &log, &args).unwrap();
    walcast.wait_replicating().unwrap();

    // The store goes down while the application writes (30 s, as the issue asks).
    proxy.begin_outage(Fault::Status(503));
    let writers = writer(2, 30.0).spawn(&db).unwrap();
    let staging = dir.path().join(".app.db-walcast/ltx/0");
    // Staged files pile up locally while nothing can be uploaded.
    wait::until(
        std::time::Duration::from_secs(20),
        "a local backlog",
        || Ok(staging.read_dir()?.count() > 20),
    )
    .unwrap();
    writers.wait().unwrap();
    proxy.end_outage();
    // Back up: the backlog drains (the staging directory empties) without a restart.
    wait::until(
        std::time::Duration::from_secs(60),
        "the backlog to drain",
        || Ok(staging.read_dir()?.count() == 0),
    )
    .unwrap();
    walcast.stop().unwrap();
    // Read after the stop: the "reachable again" line is written just after the drain.
    let text = std::fs::read_to_string(&log).unwrap();
    app.close().unwrap();
    assert!(proxy.faulted() > 0, "the outage was never hit");
    assert_url_restores_exactly(
        &db,
        &server.url("walcast/app"),
        &env,
        &dir.path().join("restored.db"),
    )
    .unwrap_or_else(|e| panic!("{e:#}\nwalcast log:\n{text}"));
}
