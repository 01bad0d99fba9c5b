//! A database that crosses the lock-byte page (the page holding byte offset 1 GiB, which
//! SQLite never writes and LTX never encodes): the merged pages must put zeros there
//! and carry on with the next page.
//!
//! With 64 KiB pages the lock-byte page is page 16385; the database here has 16386 pages
//! (1 GiB + 64 KiB). Its pages are zeros except for a page-number stamp, so the LTX file
//! stays small and the local copy is a sparse file: `verify` streams the whole gigabyte
//! without writing it. The restore to disk writes the full gigabyte, so it is ignored
//! by default (`cargo test -p walcast-restore --test lock_page -- --ignored`).

mod common;

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::Path;

use common::{name, restore, run};
use walcast_format::PageSize;
use walcast_ltx::{Encoder, Header, TxId};
use walcast_replica::{DirReplica, Level};

const PAGE_SIZE: u32 = 65536;
const COMMIT: u32 = 16386;

/// Page `pgno` of the test database: zeros, stamped with its number; page 1 carries the
/// SQLite header fields verify reads (the page size at bytes 16-17).
fn page(pgno: u32) -> Vec<u8> {
    let mut page = vec![0u8; PAGE_SIZE as usize];
    page[..4].copy_from_slice(&pgno.to_be_bytes());
    if pgno == 1 {
        page[..16].copy_from_slice(b"SQLite format 3\0");
        page[16..18].copy_from_slice(&1u16.to_be_bytes()); // 1 means 65536
    }
    page
}

fn lock_page() -> u32 {
    PageSize::new(PAGE_SIZE).unwrap().lock_byte_page()
}

/// A replica holding one snapshot of the database, and a sparse local copy of it.
fn setup(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    assert_eq!(lock_page(), 16385);
    let ps = PageSize::new(PAGE_SIZE).unwrap();
    let header = Header::new(ps, COMMIT, TxId::FIRST, TxId::FIRST, 0);
    let mut enc = Encoder::new(Vec::new(), header).unwrap();
    for pgno in (1..=COMMIT).filter(|&p| p != lock_page()) {
        enc.write_page(pgno, &page(pgno)).unwrap();
    }
    let ltx = enc.finish(None).unwrap().writer;
    let root = dir.join("replica");
    DirReplica::new(&root)
        .put(Level::L0, name(1, 1), &ltx[..])
        .unwrap();

    let local = dir.join("local.db");
    let file = File::create(&local).unwrap();
    file.set_len(u64::from(COMMIT) * u64::from(PAGE_SIZE))
        .unwrap();
    for pgno in (1..=COMMIT).filter(|&p| p != lock_page()) {
        let at = u64::from(pgno - 1) * u64::from(PAGE_SIZE);
        let bytes = page(pgno);
        let stamped = if pgno == 1 { &bytes[..18] } else { &bytes[..4] };
        file.write_all_at(stamped, at).unwrap();
    }
    (root, local)
}

#[test]
fn verify_streams_past_the_lock_byte_page() {
    let dir = tempfile::tempdir().unwrap();
    let (root, local) = setup(dir.path());
    let (local_s, root_s) = (local.to_str().unwrap(), root.to_str().unwrap());
    let equal = run(["verify", local_s, root_s]);
    equal.ok();
    assert!(equal.stdout.contains("16386 pages"), "{equal:#?}");

    // The page after the lock page is compared too.
    let file = fs::OpenOptions::new().write(true).open(&local).unwrap();
    let after_lock = u64::from(lock_page()) * u64::from(PAGE_SIZE);
    file.write_all_at(&[0xff], after_lock + 100).unwrap();
    run(["verify", local_s, root_s]).fails_with(1, &["first different page: 16386"]);
}

#[test]
#[ignore = "writes 1 GiB to disk; run with --ignored (CI, bench harness)"]
fn restore_writes_zeros_at_the_lock_byte_page() {
    let dir = tempfile::tempdir().unwrap();
    let (root, local) = setup(dir.path());
    let out = dir.path().join("restored.db");
    restore(&out, &root, &[]).ok();
    assert_eq!(
        fs::metadata(&out).unwrap().len(),
        u64::from(COMMIT) * u64::from(PAGE_SIZE)
    );
    let restored = File::open(&out).unwrap();
    let mut lock = vec![1u8; PAGE_SIZE as usize];
    restored
        .read_exact_at(&mut lock, u64::from(lock_page() - 1) * u64::from(PAGE_SIZE))
        .unwrap();
    assert!(
        lock.iter().all(|&b| b == 0),
        "the lock-byte page is not zeros"
    );
    run(["verify", out.to_str().unwrap(), root.to_str().unwrap()]).ok();
    run(["verify", local.to_str().unwrap(), root.to_str().unwrap()]).ok();
}
