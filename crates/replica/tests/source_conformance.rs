//! The contract every [`ReplicaSource`] keeps, as one function any backend's test calls
//! with a fresh, empty replica and a way to store an object in it. The directory replica
//! and the replica client on the test S3 server run it here.
//!
//! The contract: an absent level lists as empty; listings are in TXID order and skip
//! names that are not LTX file names; sizes are the stored sizes; an object opens to
//! exactly its bytes; a missing object is an error that names it; header timestamps come
//! from the LTX header; `describe_object` names the level and file.

use std::io::Read;

use walcast_format::PageSize;
use walcast_ltx::{Encoder, Header, LtxFileName, TxId};
use walcast_replica::{
    ClientSettings, DirReplica, Env, Level, ObjectLayout, ReplicaClient, ReplicaSource,
    ReplicaTarget,
};
use walcast_testbed::s3::{BUCKET, S3Server};

fn name(min: u64, max: u64) -> LtxFileName {
    LtxFileName {
        min: TxId::new(min).unwrap(),
        max: TxId::new(max).unwrap(),
    }
}

fn ltx(min: u64, max: u64, timestamp_ms: i64) -> Vec<u8> {
    let ps = PageSize::new(512).unwrap();
    let header = Header::new(ps, 1, name(min, max).min, name(min, max).max, timestamp_ms);
    let mut enc = Encoder::new(Vec::new(), header).unwrap();
    if min == 1 {
        enc.write_page(1, &[min as u8; 512]).unwrap();
    }
    enc.finish(None).unwrap().writer
}

/// Runs the contract against `source`, storing objects with `put(level, path, bytes)`
/// where `path` is the object's name inside its level (possibly not an LTX name).
pub fn conformance(source: &dyn ReplicaSource, put: &dyn Fn(Level, &str, &[u8])) {
    assert!(source.list(Level::L0).unwrap().is_empty());
    assert!(source.list(Level::SNAPSHOT).unwrap().is_empty());

    let files = [(2, 3, 2_000), (1, 1, 1_000), (4, 4, 4_000)];
    for (min, max, ts) in files {
        put(Level::L0, &name(min, max).to_string(), &ltx(min, max, ts));
    }
    put(
        Level::L0,
        "0000000000000005-0000000000000005.ltx.tmp",
        b"partial",
    );
    put(Level::L0, "notes.txt", b"not a replica file");
    put(Level::SNAPSHOT, &name(1, 4).to_string(), &ltx(1, 4, 5_000));

    let listed = source.list(Level::L0).unwrap();
    let names: Vec<LtxFileName> = listed.iter().map(|o| o.name).collect();
    assert_eq!(names, vec![name(1, 1), name(2, 3), name(4, 4)]);
    for info in &listed {
        let expected = ltx(info.name.min.get(), info.name.max.get(), 0).len() as u64;
        assert_eq!(info.size, expected, "{}", info.name);
        let mut bytes = Vec::new();
        source
            .open(Level::L0, info.name)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        assert_eq!(bytes.len() as u64, info.size);
        let expected_ts = files
            .iter()
            .find(|f| (f.0, f.1) == (info.name.min.get(), info.name.max.get()))
            .unwrap()
            .2;
        assert_eq!(
            source.header_timestamp(Level::L0, info.name).unwrap(),
            expected_ts
        );
    }
    assert_eq!(source.list(Level::SNAPSHOT).unwrap().len(), 1);
    assert!(source.list(Level::new(1).unwrap()).unwrap().is_empty());

    let missing = name(9, 9);
    let err = source.open(Level::L0, missing).err().unwrap();
    assert!(err.to_string().contains(&missing.to_string()), "{err}");
    let described = source.describe_object(Level::SNAPSHOT, name(1, 4));
    assert!(
        described.contains("ltx/9/0000000000000001-0000000000000004.ltx")
            || described.contains("/0009/0000000000000001-0000000000000004.ltx"),
        "{described}"
    );
}

#[test]
fn a_directory_replica_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let replica = DirReplica::new(dir.path().join("replica"));
    let root = replica.root().to_owned();
    conformance(&replica, &|level, path, bytes| {
        let level_dir = root.join("ltx").join(level.to_string());
        std::fs::create_dir_all(&level_dir).unwrap();
        std::fs::write(level_dir.join(path), bytes).unwrap();
    });
}

#[test]
fn a_replica_client_on_s3_keeps_the_contract() {
    let server = S3Server::start().unwrap();
    let target = ReplicaTarget::parse_url(&server.url("dbs/app")).unwrap();
    let settings = ClientSettings {
        env: Env::from_pairs(server.credentials()),
        ..ClientSettings::default()
    };
    let client = ReplicaClient::open(target, settings).unwrap();
    assert!(client.describe().starts_with("s3://walcast/dbs/app"));
    let root = server.bucket_dir(BUCKET).join("dbs/app");
    conformance(&client, &|level, path, bytes| {
        let level_dir = root.join(ObjectLayout::HexLevels.level_dir(level));
        std::fs::create_dir_all(&level_dir).unwrap();
        std::fs::write(level_dir.join(path), bytes).unwrap();
    });
}

/// On object stores the header timestamp comes from the `litestream-timestamp` metadata
/// (one HEAD, no body): an object whose bytes were replaced behind the store's back still
/// reports the time its metadata records.
#[test]
fn a_replica_client_reads_header_timestamps_from_object_metadata() {
    let server = S3Server::start().unwrap();
    let target = ReplicaTarget::parse_url(&server.url("dbs/meta")).unwrap();
    let settings = ClientSettings {
        env: Env::from_pairs(server.credentials()),
        ..ClientSettings::default()
    };
    let client = ReplicaClient::open(target, settings).unwrap();
    client
        .put(Level::L0, name(1, 1), &ltx(1, 1, 1_000)[..])
        .unwrap();
    let file = server
        .bucket_dir(BUCKET)
        .join("dbs/meta/0000")
        .join(name(1, 1).to_string());
    std::fs::write(&file, ltx(1, 1, 9_000)).unwrap();
    assert_eq!(
        client.header_timestamp(Level::L0, name(1, 1)).unwrap(),
        1_000
    );
}
