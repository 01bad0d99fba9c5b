//! `walcast inspect` streams a WAL: it inspects a 64 MiB WAL inside a 24 MiB address-space
//! limit (`ulimit -v`), which reading the file into memory could not do.

use std::io::{BufWriter, Write};
use std::process::Command;

use walcast_format::wal::{Salts, WalHeader, WalWriter};
use walcast_format::{PageSize, WordOrder};

#[test]
fn a_wal_larger_than_the_memory_limit_inspects_fully() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.db-wal");
    let page_size = PageSize::new(65536).unwrap();
    let header = WalHeader::new(
        WordOrder::Little,
        page_size,
        0,
        Salts {
            salt1: 9,
            salt2: 10,
        },
    );
    let file = BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut wal = WalWriter::new(file, header).unwrap();
    let frames = 1024u32; // 64 MiB of pages
    let mut page = vec![0u8; page_size.as_usize()];
    for n in 1..=frames {
        page[..4].copy_from_slice(&n.to_be_bytes());
        let commit = if n % 100 == 0 || n == frames { n } else { 0 };
        wal.write_frame(n, commit, &page).unwrap();
    }
    wal.into_inner().flush().unwrap();

    let limit_kib = 24 * 1024;
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {limit_kib} && exec \"$0\" inspect --json \"$1\""
        ))
        .arg(env!("CARGO_BIN_EXE_walcast"))
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["frames_valid"], frames);
    assert_eq!(report["frames_committed"], frames);
    assert_eq!(report["transactions"], frames / 100 + 1);
    assert_eq!(report["db_size_pages"], frames);
}
