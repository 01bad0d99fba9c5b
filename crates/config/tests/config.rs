//! walcast-config against whole config files: every key it accepts and what it becomes,
//! variable expansion, one test per refusal (each message must name the key and its line),
//! and Litestream 0.5.17 configs as the testbed writes them for real runs.

use std::path::Path;
use std::time::Duration;

use walcast_config::{
    Config, ConfigError, DEFAULT_LEVELS, DEFAULT_SNAPSHOT, LogFormat, LogLevel, Logging,
};
use walcast_replica::{ClientSettings, ReplicaTarget, S3Target};
use walcast_testbed::litestream::{self, Replica};

fn env(name: &str) -> Option<String> {
    match name {
        "BUCKET" => Some("from-env".into()),
        "KEY_ID" => Some("AKIA-ENV".into()),
        "HOME" => Some("/home/app".into()),
        _ => None,
    }
}

fn parse(yaml: &str) -> Result<Config, ConfigError> {
    Config::parse(yaml, "walcast.yml", &env)
}

/// The message of a refused config; asserts it names `walcast.yml:LINE` and every needle.
fn refused(yaml: &str, line: u64, needles: &[&str]) -> String {
    let message = parse(yaml).unwrap_err().to_string();
    let place = match line {
        0 => "walcast.yml: ".to_owned(),
        line => format!("walcast.yml:{line}:"),
    };
    assert!(message.starts_with(&place), "expected {place:?}: {message}");
    for needle in needles {
        assert!(message.contains(needle), "lacks {needle:?}: {message}");
    }
    message
}

const FULL: &str = r#"
addr: ":9090"
exec: "app serve --port 8080"
logging:
  level: DEBUG
  type: json
  stderr: true
levels:
  - interval: 10s
  - interval: 1m30s
snapshot:
  interval: 12h
  retention: 48h
l0-retention: 10m
access-key-id: ${KEY_ID}
secret-access-key: $UNSET_SECRET-shh
region: eu-west-1
force-path-style: true
sync-interval: 2s
dbs:
  - path: /var/lib/app/app.db
    monitor-interval: 100ms
    snapshot:
      interval: 1h
    replica:
      type: s3
      bucket: ${BUCKET}
      path: app
      endpoint: http://127.0.0.1:9000
  - path: ~/second.db
    replicas:
      - name: offsite
        url: s3://other/second?region=us-east-2
        region: ap-south-1
        force-path-style: false
        sync-interval: 250ms
        access-key-id: own
        secret-access-key: own-secret
      - type: file
        path: /mnt/backup/second
      - url: gs://gbucket/second
"#;

#[test]
fn every_key_comes_out_typed() {
    let config = parse(FULL).unwrap();
    assert_eq!(config.file, Path::new("walcast.yml"));
    assert_eq!(config.addr.as_deref(), Some(":9090"));
    assert_eq!(config.exec.as_deref(), Some("app serve --port 8080"));
    assert_eq!(
        config.logging,
        Logging {
            level: LogLevel::Debug,
            format: LogFormat::Json,
            stderr: true
        }
    );
    assert_eq!(
        config.levels,
        [Duration::from_secs(10), Duration::from_secs(90)]
    );
    assert_eq!(config.snapshot.interval, Duration::from_secs(12 * 3600));
    assert_eq!(config.snapshot.retention, Duration::from_secs(48 * 3600));
    assert_eq!(config.l0_retention, Duration::from_secs(600));

    let app = config.db(Path::new("/var/lib/app/app.db")).unwrap();
    assert_eq!(
        app.snapshot.interval,
        Duration::from_secs(3600),
        "per-db override"
    );
    assert_eq!(app.monitor_interval, Some(Duration::from_millis(100)));
    assert_eq!(
        app.snapshot.retention,
        Duration::from_secs(48 * 3600),
        "top level kept"
    );
    let [s3] = &app.replicas[..] else {
        panic!("{app:?}")
    };
    assert_eq!(s3.name, "s3");
    assert_eq!(
        s3.target,
        ReplicaTarget::S3(S3Target {
            bucket: "from-env".into(),
            path: "app".into(),
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: Some("eu-west-1".into()),
            force_path_style: true,
        })
    );
    assert_eq!(
        s3.sync_interval,
        Duration::from_secs(2),
        "top-level default"
    );
    let creds = s3.credentials.as_ref().unwrap();
    assert_eq!(creds.access_key_id, "AKIA-ENV");
    assert_eq!(
        creds.secret_access_key, "-shh",
        "an unset variable expands to nothing"
    );
    assert!(
        !format!("{s3:?}").contains("-shh"),
        "Debug hides the secret"
    );
    let settings = s3.client_settings(ClientSettings::default());
    assert_eq!(
        settings.env.get("LITESTREAM_ACCESS_KEY_ID"),
        Some("AKIA-ENV")
    );
    assert_eq!(
        settings.env.get("LITESTREAM_SECRET_ACCESS_KEY"),
        Some("-shh")
    );

    let second = config.db(Path::new("/home/app/second.db")).unwrap();
    assert_eq!(second.snapshot, config.snapshot);
    assert_eq!(second.monitor_interval, None, "default");
    let names: Vec<_> = second.replicas.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["offsite", "file-2", "gs-3"]);
    let offsite = &second.replicas[0];
    assert_eq!(
        offsite.target,
        ReplicaTarget::S3(S3Target {
            bucket: "other".into(),
            path: "second".into(),
            endpoint: None,
            region: Some("ap-south-1".into()),
            force_path_style: false,
        })
    );
    assert_eq!(offsite.sync_interval, Duration::from_millis(250));
    assert_eq!(offsite.credentials.as_ref().unwrap().access_key_id, "own");
    assert_eq!(
        second.replicas[1].target,
        ReplicaTarget::File("/mnt/backup/second".into())
    );
    assert_eq!(second.replicas[2].target.to_string(), "gs://gbucket/second");
    assert!(config.db(Path::new("/elsewhere.db")).is_none());
}

#[test]
fn defaults_are_litestreams() {
    let config = parse("dbs:\n  - path: /a.db\n    replica:\n      url: file:///r\n").unwrap();
    assert_eq!(config.levels, DEFAULT_LEVELS);
    assert_eq!(config.snapshot, DEFAULT_SNAPSHOT);
    assert_eq!(config.l0_retention, Duration::from_secs(300));
    assert_eq!(config.logging, Logging::default());
    assert_eq!((config.addr.clone(), config.exec.clone()), (None, None));
    let replica = &config.dbs[0].replicas[0];
    assert_eq!(replica.sync_interval, Duration::from_secs(1));
    assert_eq!(replica.name, "file");
    assert!(replica.credentials.is_none());
    assert_eq!(
        parse("l0-retention: 0\ndbs:\n  - path: /a.db\n    replica:\n      path: /r\n")
            .unwrap()
            .l0_retention,
        Duration::ZERO,
        "zero disables L0 retention, as in Litestream 0.5.17"
    );
}

#[test]
fn unknown_keys_are_named_with_their_line() {
    let yaml = "dbs:\n  - path: /a.db\n    replica:\n      url: file:///r\n      bukcet: x\n";
    refused(
        yaml,
        5,
        &["unknown key `bukcet`", "bucket", "sync-interval"],
    );
    refused(
        "colour: blue\ndbs: []\n",
        1,
        &["unknown key `colour`", "dbs"],
    );
    refused(
        "logging:\n  level: info\n  verbose: true\ndbs: []\n",
        3,
        &["unknown key `verbose`"],
    );
}

#[test]
fn litestream_keys_walcast_lacks_are_named_as_unsupported() {
    let message = refused(
        "dbs:\n  - path: /a.db\n    checkpoint-interval: 1m\n    replica:\n      path: /r\n",
        3,
        &["`checkpoint-interval` is a Litestream setting that walcast does not support"],
    );
    assert!(message.contains("remove it"), "{message}");
    refused(
        "dbs:\n  - path: /a.db\n    replica:\n      type: s3\n      bucket: b\n      part-size: 5MB\n",
        6,
        &["`part-size` is a Litestream setting"],
    );
    refused(
        "mcp-addr: :3001\n",
        1,
        &["`mcp-addr` is a Litestream setting"],
    );
}

#[test]
fn wrong_types_name_the_key_and_line() {
    refused(
        "dbs:\n  - path: /a.db\n    replica:\n      url: s3://b/p\n      force-path-style: maybe\n",
        5,
        &["`force-path-style`", "boolean"],
    );
    refused(
        "dbs:\n  - path: /a.db\n    replica:\n      path: /r\n      sync-interval: 10\n",
        5,
        &["`sync-interval`", "no unit", "10s"],
    );
    refused(
        "levels:\n  - interval: 1d\n",
        2,
        &["`interval`", "unknown unit", "1m30s"],
    );
    refused("dbs: /a.db\n", 1, &["`dbs`"]);
    refused("addr: [1, 2]\n", 1, &["`addr`"]);
    refused(
        "dbs:\n  - {path: /a.db, replica: {path: /r, sync-interval: 5}}\n",
        2,
        &["`sync-interval`", "no unit"],
    );
    refused("dbs:\n  - path: /a.db\n   replica: [\n", 3, &[]);
}

#[test]
fn incomplete_blocks_get_one_clear_message_each() {
    refused(
        "dbs:\n  - replica:\n      url: file:///r\n",
        2,
        &["a database needs a `path`"],
    );
    refused(
        "dbs:\n  - path: /a.db\n    replica:\n      region: eu-west-1\n",
        4,
        &["/a.db", "replica", "needs a `url`"],
    );
    refused(
        "dbs:\n  - path: /a.db\n    replica:\n      type: s3\n      path: app\n",
        4,
        &["/a.db", "s3", "needs a `bucket`"],
    );
    refused("dbs:\n  - path: /a.db\n", 2, &["/a.db has no replica"]);
    refused(
        "dbs:\n  - path: /a.db\n    replica: {path: /r}\n    replicas: [{path: /s}]\n",
        2,
        &["either `replica:`", "not both"],
    );
    refused(
        "dbs:\n  - path: /a.db\n    replicas:\n      - {name: x, path: /r}\n      - {name: x, path: /s}\n",
        5,
        &["two replicas are named \"x\""],
    );
    refused(
        "dbs:\n  - {path: /a.db, replica: {path: /r}}\n  - {path: /a.db, replica: {path: /s}}\n",
        3,
        &["/a.db is listed twice"],
    );
    refused(
        "dbs:\n  - path: /a.db\n    replica: {type: s3, bucket: b, access-key-id: k}\n",
        3,
        &["`secret-access-key` is not"],
    );
    refused(
        "dbs:\n  - path: /a.db\n    replica: {path: /r, access-key-id: k, secret-access-key: s}\n",
        3,
        &["s3 replicas only"],
    );
    refused("# nothing\n", 0, &["no databases"]);
    refused("dbs: []\n", 0, &["no databases"]);
}

#[test]
fn bad_values_name_the_key_and_line() {
    let db = "dbs:\n  - path: /a.db\n    replica: {path: /r}\n";
    refused(
        &format!("levels:\n  - interval: 0s\n{db}"),
        2,
        &["L1", "above zero"],
    );
    refused(
        &format!("levels:\n  - {{}}\n{db}"),
        2,
        &["needs an `interval`"],
    );
    refused(
        &format!("snapshot:\n  retention: 0s\n{db}"),
        2,
        &["`snapshot.retention`"],
    );
    refused(
        &format!("logging:\n  level: loud\n{db}"),
        2,
        &["`logging.level: loud`"],
    );
    refused(
        &format!("logging:\n  type: xml\n{db}"),
        2,
        &["`logging.type: xml`"],
    );
    refused(
        "dbs:\n  - path: /a.db\n    replica: {path: /r, sync-interval: 0s}\n",
        3,
        &["`sync-interval` must be above zero"],
    );
    refused("a: ${UNCLOSED\n", 1, &["${NAME}"]);
}

#[test]
fn load_reads_the_file_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("walcast.yml");
    std::fs::write(
        &path,
        "dbs:\n  - path: /a.db\n    replica:\n      oops: 1\n",
    )
    .unwrap();
    let message = Config::load(&path).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("{}:4:7", path.display())),
        "{message}"
    );
    let missing = Config::load(&dir.path().join("absent.yml"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("cannot read config file") && missing.contains("absent.yml"));
}

/// Configs exactly as the testbed writes them for the real Litestream 0.5.17 (which
/// replicates with them in the restore and replica tests) parse to the same targets.
#[test]
fn litestream_configs_from_the_testbed_parse_to_the_right_targets() {
    let mut dir_db = litestream::DbConfig::new("/data/dir.db", Replica::Dir("/backups/dir".into()));
    dir_db.sync_interval = Some(Duration::from_millis(200));
    dir_db.monitor_interval = Some(Duration::from_millis(250));
    let s3_db = litestream::DbConfig::new(
        "/data/s3.db",
        Replica::S3 {
            bucket: "walcast".into(),
            path: "dbs/s3".into(),
            endpoint: "http://127.0.0.1:45678".into(),
            region: "us-east-1".into(),
            access_key_id: "walcast-test-access".into(),
            secret_access_key: "walcast-test-secret-key".into(),
        },
    );
    let url_db = litestream::DbConfig::new(
        "/data/url.db",
        Replica::Url(
            "s3://walcast/u?endpoint=http://127.0.0.1:1&region=us-east-1&forcePathStyle=true"
                .into(),
        ),
    );
    let config = litestream::Config {
        levels: vec![Duration::from_secs(2), Duration::from_secs(5)],
        snapshot_interval: Some(Duration::from_secs(3600)),
        snapshot_retention: Some(Duration::from_secs(7200)),
        addr: Some("127.0.0.1:9091".into()),
        ..litestream::Config::new(vec![dir_db, s3_db, url_db])
    };
    let parsed = parse(&config.to_yaml()).unwrap();
    assert_eq!(
        parsed.levels,
        [Duration::from_secs(2), Duration::from_secs(5)]
    );
    assert_eq!(parsed.snapshot.interval, Duration::from_secs(3600));
    assert_eq!(parsed.snapshot.retention, Duration::from_secs(7200));
    assert_eq!(parsed.addr.as_deref(), Some("127.0.0.1:9091"));
    let only = |db: &str| {
        let db = parsed.db(Path::new(db)).unwrap();
        assert_eq!(db.replicas.len(), 1);
        db.replicas[0].clone()
    };
    let dir = only("/data/dir.db");
    assert_eq!(dir.target, ReplicaTarget::File("/backups/dir".into()));
    assert_eq!(dir.sync_interval, Duration::from_millis(200));
    assert_eq!(
        parsed
            .db(Path::new("/data/dir.db"))
            .unwrap()
            .monitor_interval,
        Some(Duration::from_millis(250))
    );
    let s3 = only("/data/s3.db");
    assert_eq!(
        s3.target,
        ReplicaTarget::S3(S3Target {
            bucket: "walcast".into(),
            path: "dbs/s3".into(),
            endpoint: Some("http://127.0.0.1:45678".into()),
            region: Some("us-east-1".into()),
            force_path_style: true,
        })
    );
    assert_eq!(
        s3.credentials.unwrap().secret_access_key,
        "walcast-test-secret-key"
    );
    let url = only("/data/url.db");
    let ReplicaTarget::S3(target) = url.target else {
        panic!("{url:?}")
    };
    assert_eq!(
        (target.bucket.as_str(), target.path.as_str()),
        ("walcast", "u")
    );
    assert!(target.force_path_style);
}

#[test]
fn a_key_given_twice_is_refused() {
    refused(
        "addr: a\naddr: b\ndbs:\n  - path: /a.db\n    replica: {path: /r}\n",
        2,
        &["addr"],
    );
    refused(
        "dbs:\n  - path: /a.db\n    path: /b.db\n    replica: {path: /r}\n",
        3,
        &["path"],
    );
}
