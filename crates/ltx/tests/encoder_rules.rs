//! The encoder refuses what the decoder would refuse, before writing anything, and stays
//! usable after refusing a page; after an I/O error it refuses everything.

use std::io::{self, Write};

use walcast_format::PageSize;
use walcast_ltx::{
    Checksum, EncodeError, Encoder, Header, HeaderError, HeaderFlags, PageOrderError, TxId, verify,
};

fn header(min: u64, commit: u32) -> Header {
    let txid = TxId::new(min).unwrap();
    Header::new(PageSize::new(512).unwrap(), commit, txid, txid, 0)
}

#[test]
fn refused_pages_leave_the_encoder_usable() {
    let mut enc = Encoder::new(Vec::new(), header(2, 10)).unwrap();
    enc.write_page(4, &[1; 512]).unwrap();
    assert!(matches!(
        enc.write_page(4, &[1; 512]),
        Err(EncodeError::PageOrder(PageOrderError::OutOfOrder {
            prev: 4,
            pgno: 4
        }))
    ));
    assert!(matches!(
        enc.write_page(11, &[1; 512]),
        Err(EncodeError::PageOrder(PageOrderError::BeyondCommit {
            pgno: 11,
            commit: 10
        }))
    ));
    assert!(matches!(
        enc.write_page(5, &[1; 100]),
        Err(EncodeError::PageLength {
            pgno: 5,
            len: 100,
            page_size: 512
        })
    ));
    assert!(matches!(
        enc.write_page(0, &[1; 512]),
        Err(EncodeError::PageOrder(
            PageOrderError::ZeroPageNumber { .. }
        ))
    ));
    enc.write_page(5, &[2; 512]).unwrap();
    let file = enc.finish(None).unwrap();
    assert_eq!(file.page_count, 2);
    assert_eq!(verify(&file.writer[..]).unwrap().page_count(), 2);
}

#[test]
fn snapshots_must_be_complete_and_checksums_follow_the_flags() {
    let mut enc = Encoder::new(Vec::new(), header(1, 3)).unwrap();
    enc.write_page(1, &[1; 512]).unwrap();
    enc.write_page(2, &[1; 512]).unwrap();
    assert!(matches!(
        enc.finish(None),
        Err(EncodeError::PageOrder(PageOrderError::SnapshotIncomplete {
            expected: 3,
            commit: 3
        }))
    ));

    let enc = Encoder::new(Vec::new(), header(2, 3)).unwrap();
    assert!(matches!(
        enc.finish(Checksum::new(Checksum::FLAG)),
        Err(EncodeError::PostApply { .. })
    ));

    let mut tracked = header(1, 1);
    tracked.flags = HeaderFlags::NONE;
    let mut enc = Encoder::new(Vec::new(), tracked).unwrap();
    enc.write_page(1, &[1; 512]).unwrap();
    assert!(matches!(
        enc.finish(Checksum::new(Checksum::FLAG | 1)),
        Err(EncodeError::SnapshotChecksum { .. })
    ));

    let mut bad = header(2, 3);
    bad.flags = HeaderFlags::NONE; // tracks checksums but has no pre-apply checksum
    assert!(matches!(
        Encoder::new(Vec::new(), bad),
        Err(EncodeError::Header {
            source: HeaderError::PreApplyMissing
        })
    ));
}

/// A writer that accepts `budget` bytes, then fails.
struct FailingWriter {
    budget: usize,
}

impl Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.budget == 0 {
            return Err(io::Error::other("disk full"));
        }
        let n = buf.len().min(self.budget);
        self.budget -= n;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn after_a_write_error_the_encoder_refuses_everything() {
    let mut enc = Encoder::new(FailingWriter { budget: 1000 }, header(2, 100_000)).unwrap();
    let noisy: Vec<u8> = (0..512u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
        .collect();
    let mut failed_at = None;
    for pgno in 1..2000 {
        if let Err(err) = enc.write_page(pgno, &noisy) {
            assert!(matches!(err, EncodeError::Io { .. }), "{err}");
            assert!(err.to_string().contains("disk full"), "{err}");
            failed_at = Some(pgno);
            break;
        }
    }
    let pgno = failed_at.expect("the 64 KiB buffer must eventually reach the writer");
    assert!(matches!(
        enc.write_page(pgno + 1, &noisy),
        Err(EncodeError::AfterError)
    ));
    assert!(matches!(enc.finish(None), Err(EncodeError::AfterError)));
}
