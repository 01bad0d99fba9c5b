//! Building replica clients from URLs, config blocks and the environment, against the real
//! S3 server on 127.0.0.1 where one runs here, and for construction only (gs, abs) where
//! none does. What it proves:
//! - a config block (type/bucket/path/endpoint/region/force-path-style) builds a working
//!   S3 client, as the URL does;
//! - Litestream's `LITESTREAM_ACCESS_KEY_ID`/`LITESTREAM_SECRET_ACCESS_KEY` authenticate,
//!   and take precedence over `AWS_*`;
//! - `AWS_CA_BUNDLE` (a real bundle, or garbage) never makes a client fail;
//! - wrong credentials, a missing bucket and an unreachable endpoint each give one error
//!   that names the object and says what to check; only the unreachable one is transient;
//! - gs and abs clients build from their URLs, and an abs URL without an account says how
//!   to name one.

use std::time::Duration;

use walcast_replica::{
    ClientSettings, Env, Level, ReplicaClient, ReplicaConfig, ReplicaTarget, RetryPolicy,
    StoreError,
};
use walcast_testbed::s3::{ACCESS_KEY, BUCKET, S3Server, SECRET_KEY};

fn quick() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        request_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
    }
}

fn open(url: &str, env: Env) -> ReplicaClient {
    let target = ReplicaTarget::parse_url(url).unwrap();
    ReplicaClient::open(
        target,
        ClientSettings {
            env,
            retry: quick(),
        },
    )
    .unwrap()
}

#[test]
fn a_config_block_builds_the_same_s3_client_as_the_url() {
    let server = S3Server::start().unwrap();
    let block = ReplicaConfig {
        kind: Some("s3".into()),
        bucket: Some(BUCKET.into()),
        path: Some("app".into()),
        endpoint: Some(server.endpoint()),
        region: Some("us-east-1".into()),
        force_path_style: Some(true),
        ..ReplicaConfig::default()
    };
    let target = ReplicaTarget::from_config(&block).unwrap();
    assert_eq!(
        target,
        ReplicaTarget::parse_url(&server.url("app")).unwrap()
    );
    let settings = ClientSettings {
        env: Env::from_pairs(server.credentials()),
        retry: quick(),
    };
    let client = ReplicaClient::open(target, settings).unwrap();
    assert_eq!(client.list(Level::L0).unwrap(), vec![]);
}

#[test]
fn litestream_credentials_win_and_a_ca_bundle_never_fails() {
    let server = S3Server::start().unwrap();
    for bundle in [
        "/etc/ssl/certs/ca-certificates.crt",
        "/nonexistent.pem",
        "/dev/null",
    ] {
        let env = Env::from_pairs([
            ("AWS_ACCESS_KEY_ID", "wrong"),
            ("AWS_SECRET_ACCESS_KEY", "wrong"),
            ("LITESTREAM_ACCESS_KEY_ID", ACCESS_KEY),
            ("LITESTREAM_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_CA_BUNDLE", bundle),
        ]);
        let client = open(&server.url("app"), env);
        assert_eq!(client.list(Level::L0).unwrap(), vec![], "{bundle}");
    }
}

#[test]
fn wrong_credentials_say_to_check_them() {
    let server = S3Server::start().unwrap();
    let env = Env::from_pairs([
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret"),
    ]);
    let err = open(&server.url("app"), env).list(Level::L0).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("s3://walcast/app/0000/"), "{message}");
    assert!(message.contains("credentials"), "{message}");
    assert!(!err.is_transient(), "{err:?}");
}

#[test]
fn a_missing_bucket_is_named() {
    let server = S3Server::start().unwrap();
    let url = server.url("app").replacen(BUCKET, "no-such-bucket", 1);
    let err = open(&url, Env::from_pairs(server.credentials()))
        .list(Level::SNAPSHOT)
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("s3://no-such-bucket/app/0009/"),
        "{message}"
    );
    assert!(message.contains("NoSuchBucket"), "{message}");
    assert!(
        message.contains("check that the bucket exists"),
        "{message}"
    );
    assert!(!err.is_transient(), "{err:?}");
}

#[test]
fn an_unreachable_endpoint_is_transient_and_named() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("s3://b/app?endpoint=http://127.0.0.1:{port}&forcePathStyle=true");
    // Credentials given, so nothing but the endpoint is contacted (without them the AWS
    // credential chain would ask the instance metadata service).
    let env = Env::from_pairs([("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s")]);
    let err = open(&url, env).list(Level::L0).unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("s3://b/app/0000/"), "{message}");
    assert!(message.contains("after 3 attempt(s)"), "{message}");
}

#[test]
fn gs_and_abs_clients_build_from_urls() {
    let gs = open("gs://bucket/db", Env::default());
    assert_eq!(gs.target().kind(), "gs");
    assert_eq!(
        gs.location(
            Level::L0,
            "0000000000000001-0000000000000001.ltx".parse().unwrap()
        ),
        "gs://bucket/db/ltx/0/0000000000000001-0000000000000001.ltx"
    );
    let abs = open(
        "abs://account@container/db",
        Env::from_pairs([("LITESTREAM_AZURE_ACCOUNT_KEY", "a2V5")]),
    );
    assert_eq!(
        abs.location(
            Level::SNAPSHOT,
            "0000000000000001-0000000000000002.ltx".parse().unwrap()
        ),
        "abs://container/db/ltx/9/0000000000000001-0000000000000002.ltx"
    );
    let target = ReplicaTarget::parse_url("abs://container/db").unwrap();
    let err = ReplicaClient::open(
        target,
        ClientSettings {
            env: Env::default(),
            retry: quick(),
        },
    )
    .unwrap_err();
    assert!(matches!(err, StoreError::Setup { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("abs://container/db"), "{message}");
    assert!(message.contains("AZURE_STORAGE_ACCOUNT_NAME"), "{message}");
}

#[test]
fn one_client_serves_many_threads_and_drops_anywhere() {
    fn shareable<T: Send + Sync>() {}
    fn sendable<T: Send>() {}
    shareable::<ReplicaClient>();
    sendable::<walcast_replica::LtxReader>();

    let server = S3Server::start().unwrap();
    let client = std::sync::Arc::new(open(
        &server.url("app"),
        Env::from_pairs(server.credentials()),
    ));
    let threads: Vec<_> = (1..=4u64)
        .map(|txid| {
            let client = std::sync::Arc::clone(&client);
            std::thread::spawn(move || {
                let name = walcast_ltx::LtxFileName {
                    min: walcast_ltx::TxId::new(txid).unwrap(),
                    max: walcast_ltx::TxId::new(txid).unwrap(),
                };
                client.put(Level::L0, name, &[txid as u8; 100][..]).unwrap()
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(client.list(Level::L0).unwrap().len(), 4);

    // The sync loop may live inside a daemon's runtime: dropping the client there is fine.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let client = std::sync::Arc::try_unwrap(client).unwrap();
    runtime.block_on(async move { drop(client) });
}

#[test]
fn an_s3_prefix_is_used_verbatim_in_keys() {
    // Litestream uses the path as written; walcast must not percent-encode it into the key.
    let server = S3Server::start().unwrap();
    let url = server.url("team%20a/db+1");
    let client = open(&url, Env::from_pairs(server.credentials()));
    let name = "0000000000000001-0000000000000001.ltx".parse().unwrap();
    client.put(Level::L0, name, &b"x"[..]).unwrap();
    let expected = server
        .bucket_dir(BUCKET)
        .join("team a/db+1/0000/0000000000000001-0000000000000001.ltx");
    assert!(expected.is_file(), "{}", expected.display());
    assert_eq!(client.list(Level::L0).unwrap().len(), 1);
}
