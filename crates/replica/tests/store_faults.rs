//! Storage faults between the S3 client and a real S3 server on 127.0.0.1, injected by the
//! testbed's fault proxy (the first requests get the faults, later ones are relayed). What
//! it proves:
//! - 500/503 answers and requests that never get an answer (timeouts) are retried and
//!   the put lands, exactly once, with its bytes;
//! - a PUT that took effect but whose answer was lost is retried, meets its own object,
//!   and is reported `AlreadyPresent` (not a conflict, not a second object);
//! - an upload cut mid-body leaves no object behind, and the retry stores the whole one;
//! - a download cut or stalled mid-body is resumed where it stopped (same bytes in the
//!   end); when the store cannot be reached to resume, the reader fails naming the object
//!   rather than returning short data;
//!   `get_bytes` retries too;
//! - when every attempt fails, the error says so and nothing is visible in the listing;
//! - after an outage (every connection cut, every request failing), the same client
//!   carries on once the store is back.

use std::io::Read;
use std::time::Duration;

use walcast_ltx::LtxFileName;
use walcast_replica::dir::PutOutcome;
use walcast_replica::{
    ClientSettings, Env, Level, Operation, ReplicaClient, ReplicaTarget, RetryPolicy,
};
use walcast_testbed::fault_proxy::{Fault, FaultProxy};
use walcast_testbed::s3::{BUCKET, S3Server};

struct Rig {
    server: S3Server,
    proxy: FaultProxy,
    /// Talks to the server through the proxy.
    client: ReplicaClient,
    /// Talks to the server directly.
    direct: ReplicaClient,
}

/// A client of `server`'s bucket through `endpoint`, with a quick policy of 4 attempts.
fn open(server: &S3Server, endpoint: &str) -> ReplicaClient {
    let url = format!("s3://{BUCKET}/app?endpoint={endpoint}&region=us-east-1&forcePathStyle=true");
    let settings = ClientSettings {
        env: Env::from_pairs(server.credentials()),
        retry: RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            request_timeout: Duration::from_millis(1500),
            connect_timeout: Duration::from_secs(2),
        },
    };
    ReplicaClient::open(ReplicaTarget::parse_url(&url).unwrap(), settings).unwrap()
}

fn rig(faults: impl IntoIterator<Item = Fault>) -> Rig {
    let server = S3Server::start().unwrap();
    let proxy = FaultProxy::start(server.addr(), faults).unwrap();
    let client = open(&server, &proxy.endpoint());
    let direct = open(&server, &server.endpoint());
    Rig {
        server,
        proxy,
        client,
        direct,
    }
}

fn name() -> LtxFileName {
    "0000000000000001-0000000000000003.ltx".parse().unwrap()
}

/// 256 KiB that are not all alike, so a truncated copy cannot match.
fn body() -> Vec<u8> {
    (0..256 * 1024u32).map(|i| (i * 31 % 251) as u8).collect()
}

fn stored(rig: &Rig) -> Vec<u8> {
    let mut bytes = Vec::new();
    rig.direct
        .get(Level::L0, name())
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

#[test]
fn server_errors_and_timeouts_are_retried() {
    let rig = rig([Fault::Status(503), Fault::Status(500), Fault::Stall]);
    let outcome = rig.client.put(Level::L0, name(), &body()[..]).unwrap();
    assert_eq!(outcome, PutOutcome::Written);
    assert_eq!(rig.proxy.faulted(), 3);
    assert_eq!(stored(&rig), body());
    assert_eq!(rig.direct.list(Level::L0).unwrap().len(), 1);
    let put = rig.client.stats().get(Operation::Put);
    assert_eq!(
        (put.requests, put.errors),
        (4, 3),
        "every attempt is counted"
    );
    assert_eq!(put.bytes, body().len() as u64);
}

#[test]
fn a_put_whose_answer_was_lost_finds_itself() {
    let rig = rig([Fault::DropResponse]);
    let outcome = rig.client.put(Level::L0, name(), &body()[..]).unwrap();
    assert_eq!(outcome, PutOutcome::AlreadyPresent);
    assert_eq!(rig.proxy.faulted(), 1);
    assert_eq!(stored(&rig), body());
}

#[test]
fn an_upload_cut_mid_body_leaves_nothing_and_is_retried_whole() {
    let rig = rig([Fault::CutRequest]);
    let outcome = rig.client.put(Level::L0, name(), &body()[..]).unwrap();
    assert_eq!(outcome, PutOutcome::Written);
    assert_eq!(rig.proxy.faulted(), 1);
    assert_eq!(stored(&rig), body());

    let rig = self::rig([Fault::CutRequest; 4]);
    let err = rig.client.put(Level::L0, name(), &body()[..]).unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("after 4 attempt(s)"), "{err}");
    assert_eq!(rig.direct.list(Level::L0).unwrap(), vec![]);
    assert!(
        std::fs::read_dir(rig.server.bucket_dir(BUCKET))
            .unwrap()
            .next()
            .is_none(),
        "no object, not even a partial one"
    );
}

#[test]
fn a_download_cut_mid_body_is_resumed_and_never_short() {
    let rig = rig([]);
    rig.direct.put(Level::L0, name(), &body()[..]).unwrap();
    let read = |client: &ReplicaClient| {
        let mut bytes = Vec::new();
        client
            .get(Level::L0, name())
            .unwrap()
            .read_to_end(&mut bytes)
            .map(|_| bytes)
    };

    // Cut, cut again, then stalled past the 1.5 s request timeout: resumed each time.
    let faults = [Fault::CutResponse, Fault::CutResponse, Fault::StallResponse];
    let flaky = FaultProxy::start(rig.server.addr(), faults).unwrap();
    let resumed = read(&open(&rig.server, &flaky.endpoint())).unwrap();
    assert_eq!(flaky.faulted(), 3);
    assert!(resumed == body(), "the resumed body differs");

    // Cut, then the store fails every attempt to resume: an error naming the object.
    let faults = [Fault::CutResponse]
        .into_iter()
        .chain([Fault::Status(503); 4]);
    let down = FaultProxy::start(rig.server.addr(), faults).unwrap();
    let err = read(&open(&rig.server, &down.endpoint())).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("s3://walcast/app/0000/0000000000000001-0000000000000003.ltx"),
        "{message}"
    );
    assert!(
        message.contains("get failed after 4 attempt(s)"),
        "{message}"
    );

    // The async whole-object read retries too.
    let cut_once = FaultProxy::start(rig.server.addr(), [Fault::CutResponse]).unwrap();
    let client = open(&rig.server, &cut_once.endpoint());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let whole = runtime
        .block_on(
            client
                .object_replica()
                .unwrap()
                .get_bytes(Level::L0, name()),
        )
        .unwrap();
    assert!(whole == body(), "get_bytes differs");
    assert_eq!(cut_once.faulted(), 1);
}

#[test]
fn when_every_attempt_fails_nothing_is_visible() {
    let rig = rig([Fault::Status(503); 4]);
    let err = rig.client.put(Level::L0, name(), &body()[..]).unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("put failed after 4 attempt(s)"),
        "{message}"
    );
    assert!(
        message.contains("0000000000000001-0000000000000003.ltx"),
        "{message}"
    );
    assert_eq!(rig.direct.list(Level::L0).unwrap(), vec![]);
}

#[test]
fn after_an_outage_the_same_client_carries_on() {
    let rig = rig([]);
    let n = |txid: u64| -> LtxFileName { format!("{txid:016x}-{txid:016x}.ltx").parse().unwrap() };
    rig.client.put(Level::L0, n(1), &body()[..]).unwrap();

    // Down: pooled connections are cut and every request fails, so puts give up (the sync
    // loop keeps its staged files and tries again later).
    rig.proxy.begin_outage(Fault::Status(503));
    let err = rig.client.put(Level::L0, n(2), &body()[..]).unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    assert!(rig.client.list(Level::L0).unwrap_err().is_transient());

    // Back: the same client, without being rebuilt, uploads what it could not.
    rig.proxy.end_outage();
    for txid in [2, 3] {
        assert_eq!(
            rig.client.put(Level::L0, n(txid), &body()[..]).unwrap(),
            PutOutcome::Written
        );
    }
    let names: Vec<_> = rig
        .direct
        .list(Level::L0)
        .unwrap()
        .iter()
        .map(|f| f.name)
        .collect();
    assert_eq!(names, [n(1), n(2), n(3)]);
}
