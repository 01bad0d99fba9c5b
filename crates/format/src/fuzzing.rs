//! Entry points for the cargo-fuzz targets in fuzz/ (one line each) and for the unit test
//! that replays the committed seed corpora on stable. Each function must never panic on
//! any input; the assertions inside check invariants the parsers promise.

use crate::checksum::WalChecksum;
use crate::db_header::DatabaseHeader;
use crate::wal::{FRAME_HEADER_SIZE, WAL_HEADER_SIZE, WalHeader, WalReader, WalSlice};
use crate::wal_index::WalIndex;

/// Parses a database header; a valid one must report a sane page count.
pub fn db_header(data: &[u8]) {
    if let Ok(header) = DatabaseHeader::parse(data) {
        let count = header.page_count(data.len() as u64);
        assert!(header.usable_size() >= 480);
        assert!(count.pages <= u64::from(u32::MAX));
    }
}

/// Parses a wal-index header; a valid one must re-encode to the same header region.
pub fn wal_index(data: &[u8]) {
    if let Ok(index) = WalIndex::parse(data) {
        let encoded = crate::wal_index::encode(&index);
        assert_eq!(WalIndex::parse(&encoded), Ok(index));
    }
    let _ = WalIndex::parse_checkpoint_info(data);
}

/// Scans a WAL with the slice parser and the streaming reader and checks they agree.
///
/// The first input byte steers the harness; the rest is the WAL. Random bytes almost never
/// carry a valid checksum chain, so a fuzzer would only exercise the first checks: when the
/// steering byte is even, the harness first rewrites the header checksum and every frame
/// checksum so the chain holds, letting mutations reach salts, page numbers, commit sizes
/// and the end-of-log logic (as rustls turns off its MACs for fuzzing).
pub fn wal(data: &[u8]) {
    let Some((&steer, wal)) = data.split_first() else {
        return;
    };
    let mut bytes = wal.to_vec();
    if steer % 2 == 0 {
        repair_checksums(&mut bytes);
    }
    check_wal(&bytes);
}

fn check_wal(bytes: &[u8]) {
    let Ok(wal) = WalSlice::parse(bytes) else {
        assert!(WalReader::open(bytes).is_err());
        return;
    };
    let from_slice = wal.recover();
    let streamed = WalReader::open(bytes).and_then(WalReader::recover);
    assert_eq!(streamed.ok(), Some(from_slice));
    assert!(from_slice.mx_frame() <= from_slice.frames_valid);
    assert!(from_slice.frames_valid <= wal.frames_total());
    assert_eq!(from_slice.stop.frame, from_slice.frames_valid + 1);
    let committed: u32 = wal
        .transactions()
        .iter()
        .map(|t| t.frames().len() as u32)
        .sum();
    assert_eq!(committed, from_slice.mx_frame());
    assert_eq!(wal.transactions().len() as u32, from_slice.transactions);
}

/// Rewrites the header checksum and each whole frame's checksum so the chain is valid.
/// Invalid magic or page size leaves the bytes as they are.
pub fn repair_checksums(bytes: &mut [u8]) {
    let Some(head) = bytes.get(..WAL_HEADER_SIZE) else {
        return;
    };
    let Some(order) = (match head {
        [0x37, 0x7f, 0x06, 0x82, ..] => Some(crate::WordOrder::Little),
        [0x37, 0x7f, 0x06, 0x83, ..] => Some(crate::WordOrder::Big),
        _ => None,
    }) else {
        return;
    };
    let mut sum = WalChecksum::ZERO
        .extend(order, &head[..24])
        .unwrap_or_default();
    bytes[24..32].copy_from_slice(&sum.to_be_bytes());
    if let Ok(header) = WalHeader::parse(bytes) {
        let frame_size = header.frame_size();
        for frame in bytes[WAL_HEADER_SIZE..].chunks_exact_mut(frame_size) {
            sum = sum
                .extend(order, &frame[..8])
                .and_then(|s| s.extend(order, &frame[FRAME_HEADER_SIZE..]))
                .unwrap_or_default();
            frame[16..24].copy_from_slice(&sum.to_be_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    type Target = fn(&[u8]);

    /// Replays every committed seed (and any saved crash input) through its target, so
    /// stable CI exercises what the fuzzers found.
    #[test]
    fn committed_corpus_runs_clean() {
        let targets: [(&str, Target); 3] = [
            ("db_header", super::db_header),
            ("wal", super::wal),
            ("wal_index", super::wal_index),
        ];
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
        for (name, target) in targets {
            let entries = std::fs::read_dir(corpus.join(name)).unwrap();
            let mut seeds = 0;
            for entry in entries {
                let bytes = std::fs::read(entry.unwrap().path()).unwrap();
                target(&bytes);
                seeds += 1;
            }
            assert!(seeds > 0, "{name}: empty corpus");
        }
    }

    #[test]
    fn repaired_chain_makes_every_whole_frame_valid() {
        let wal = std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../testdata/format/damaged-frame/db-wal"),
        )
        .unwrap();
        let mut bytes = wal.clone();
        super::repair_checksums(&mut bytes);
        let before = crate::wal::WalSlice::parse(&wal).unwrap();
        let after = crate::wal::WalSlice::parse(&bytes).unwrap().recover();
        assert!(before.recover().frames_valid < after.frames_valid);
        assert_eq!(after.frames_valid, before.frames_total());
    }
}
