//! Truncated, corrupted and hand-crafted LTX files: each gives a typed error at the right
//! byte offset, never a panic, never a page accepted with contents other than those
//! written, and never a large allocation from a size field.

mod common;

use common::RawLtx;
use walcast_format::PageSize;
use walcast_ltx::{
    Checksum, DecodeError, DecodeErrorKind, Decoder, Encoder, Header, HeaderFlags, PageOrderError,
    TxId, verify,
};

fn header(min: u64, max: u64, commit: u32) -> Header {
    let (min, max) = (TxId::new(min).unwrap(), TxId::new(max).unwrap());
    let mut header = Header::new(
        PageSize::new(512).unwrap(),
        commit,
        min,
        max,
        1_700_000_000_000,
    );
    (
        header.wal_offset,
        header.wal_size,
        header.wal_salt1,
        header.wal_salt2,
    ) = (32, 4096, 7, 9);
    header
}

fn page(seed: u8) -> Vec<u8> {
    (0..512u32)
        .map(|i| if i < 200 { seed ^ (i as u8) } else { 0 })
        .collect()
}

/// A small valid snapshot of 4 pages.
fn snapshot() -> Vec<u8> {
    let mut enc = Encoder::new(Vec::new(), header(1, 3, 4)).unwrap();
    for pgno in 1..=4 {
        enc.write_page(pgno, &page(pgno as u8)).unwrap();
    }
    enc.finish(None).unwrap().writer
}

type Pages = Vec<(u32, Vec<u8>)>;

fn decode_pages(bytes: &[u8]) -> Result<(Header, Pages), DecodeError> {
    let mut dec = Decoder::new(bytes)?;
    let mut pages = Vec::new();
    while let Some(p) = dec.next_page()? {
        pages.push((p.pgno, p.data.to_vec()));
    }
    let verified = dec.finish()?;
    Ok((*verified.header(), pages))
}

#[test]
fn every_truncation_is_reported_where_the_file_ends() {
    let file = snapshot();
    for len in 0..file.len() {
        let err = verify(&file[..len]).unwrap_err();
        assert!(
            matches!(err.kind(), DecodeErrorKind::Truncated(_)) && err.offset() == len as u64,
            "truncated to {len}: {err}"
        );
    }
}

#[test]
fn no_single_byte_corruption_changes_what_is_accepted() {
    let file = snapshot();
    let original = decode_pages(&file).unwrap();
    for at in 0..file.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = file.clone();
            bad[at] ^= flip;
            if let Ok(decoded) = decode_pages(&bad) {
                // Only an equivalent encoding may pass (e.g. a different LZ4 match
                // offset inside a run of equal bytes).
                assert_eq!(
                    decoded, original,
                    "byte {at} ^ {flip:#x} changed the content"
                );
            }
        }
    }
}

#[test]
fn a_corrupted_page_is_caught_by_the_checksum_only_at_the_end() {
    let mut file = snapshot();
    // The first page's LZ4 block starts at 110 with literals; change one literal byte.
    file[112] ^= 0x55;
    let mut dec = Decoder::new(&file[..]).unwrap();
    let mut seen = 0;
    while dec.next_page().unwrap().is_some() {
        seen += 1;
    }
    assert_eq!(seen, 4, "pages stream out before the checksum is known");
    let err = dec.finish().unwrap_err();
    assert!(
        matches!(err.kind(), DecodeErrorKind::ChecksumMismatch { .. }),
        "{err}"
    );
    assert_eq!(err.offset(), file.len() as u64 - 8);
}

#[test]
fn a_huge_compressed_size_is_refused_before_reading_it() {
    let mut file = snapshot();
    file[106..110].copy_from_slice(&u32::MAX.to_be_bytes());
    let err = verify(&file[..]).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            DecodeErrorKind::CompressedSizeTooLarge {
                pgno: 1,
                size: u32::MAX,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.offset(), 106);
}

#[test]
fn page_rules_are_reported_at_the_offending_frame() {
    let frame2_at = |file: &[u8]| {
        // Frame 1 is header(6) + size(4) + its block.
        let size = u32::from_be_bytes(file[106..110].try_into().unwrap());
        110 + u64::from(size)
    };
    let cases: Vec<(RawLtx, PageOrderError)> = vec![
        (
            RawLtx::new(&header(2, 2, 9))
                .page(5, page(1))
                .page(3, page(2)),
            PageOrderError::OutOfOrder { prev: 5, pgno: 3 },
        ),
        (
            RawLtx::new(&header(2, 2, 9))
                .page(5, page(1))
                .page(10, page(2)),
            PageOrderError::BeyondCommit {
                pgno: 10,
                commit: 9,
            },
        ),
        (
            RawLtx::new(&header(1, 1, 9))
                .page(1, page(1))
                .page(3, page(2)),
            PageOrderError::SnapshotGap {
                expected: 2,
                pgno: 3,
            },
        ),
    ];
    for (raw, expected) in cases {
        let file = raw.build();
        let err = verify(&file[..]).unwrap_err();
        match err.kind() {
            DecodeErrorKind::PageOrder(found) => assert_eq!(found, &expected),
            other => panic!("expected {expected}, got {other}"),
        }
        assert_eq!(err.offset(), frame2_at(&file), "{err}");
    }

    // The lock-byte page (page 2097153 with 512-byte pages) never appears.
    let lock = PageSize::new(512).unwrap().lock_byte_page();
    let file = RawLtx::new(&header(2, 2, lock + 1))
        .page(lock, page(1))
        .build();
    let err = verify(&file[..]).unwrap_err();
    assert!(
        matches!(err.kind(), DecodeErrorKind::PageOrder(PageOrderError::LockPage { pgno }) if *pgno == lock),
        "{err}"
    );
    assert_eq!(err.offset(), 100);

    // A snapshot that stops early is reported at the end-of-pages marker.
    let file = RawLtx::new(&header(1, 1, 3))
        .page(1, page(1))
        .page(2, page(2))
        .build();
    let err = verify(&file[..]).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            DecodeErrorKind::PageOrder(PageOrderError::SnapshotIncomplete {
                expected: 3,
                commit: 3
            })
        ),
        "{err}"
    );
}

#[test]
fn unknown_page_flags_and_short_pages_are_refused() {
    let mut raw = RawLtx::new(&header(2, 2, 9)).page(4, page(1));
    raw.frames[0].1 = 0x0003;
    let err = verify(&raw.build()[..]).unwrap_err();
    assert!(
        matches!(err.kind(), DecodeErrorKind::PageFlags { pgno: 4, flags: 3 }),
        "{err}"
    );
    assert_eq!(err.offset(), 100);

    let raw = RawLtx::new(&header(2, 2, 9)).page(4, vec![9u8; 100]);
    let err = verify(&raw.build()[..]).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            DecodeErrorKind::PageLength {
                pgno: 4,
                len: 100,
                page_size: 512
            }
        ),
        "{err}"
    );
    assert_eq!(err.offset(), 110);
}

#[test]
fn the_page_index_must_describe_the_frames() {
    let good = RawLtx::new(&header(2, 2, 9))
        .page(4, page(1))
        .page(6, page(2))
        .build();
    verify(&good[..]).unwrap();
    // The index ends 24 bytes before the end (size field, trailer); each of its entries
    // here is 3 one-byte uvarints: pgno, offset, size.
    let index_len = u64::from_be_bytes(good[good.len() - 24..good.len() - 16].try_into().unwrap());
    let index_at = good.len() - 24 - index_len as usize;

    let mut bad = good.clone();
    bad[index_at] = 5; // first entry names page 5
    let err = verify(&bad[..]).unwrap_err();
    assert!(
        matches!(err.kind(), DecodeErrorKind::IndexMismatch),
        "{err}"
    );
    assert_eq!(err.offset(), index_at as u64);

    let mut bad = good.clone();
    bad[index_at + 1] = 101; // first entry's offset
    let err = verify(&bad[..]).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            DecodeErrorKind::IndexOffset {
                entry: 0,
                found: 101,
                expected: 100
            }
        ),
        "{err}"
    );

    let mut bad = good.clone();
    let size_at = good.len() - 24;
    bad[size_at + 7] ^= 1;
    let err = verify(&bad[..]).unwrap_err();
    assert!(
        matches!(err.kind(), DecodeErrorKind::IndexSize { .. }),
        "{err}"
    );
    assert_eq!(err.offset(), size_at as u64);

    let mut bad = good.clone();
    bad.push(0);
    let err = verify(&bad[..]).unwrap_err();
    assert!(
        matches!(err.kind(), DecodeErrorKind::TrailingBytes),
        "{err}"
    );
    assert_eq!(err.offset(), good.len() as u64);
}

#[test]
fn trailer_checksum_rules_follow_the_header() {
    let mut raw = RawLtx::new(&header(2, 2, 9)).page(4, page(1));
    raw.post_apply = Checksum::FLAG | 77;
    let file = raw.build();
    let err = verify(&file[..]).unwrap_err();
    assert!(
        matches!(err.kind(), DecodeErrorKind::PostApply { .. }),
        "{err}"
    );
    assert_eq!(err.offset(), file.len() as u64 - 16);

    // A snapshot that tracks checksums must store its pages' database checksum.
    let mut tracked = header(1, 1, 1);
    tracked.flags = HeaderFlags::NONE;
    let mut raw = RawLtx::new(&tracked).page(1, page(1));
    raw.post_apply = Checksum::FLAG | 77;
    let err = verify(&raw.build()[..]).unwrap_err();
    assert!(
        matches!(err.kind(), DecodeErrorKind::SnapshotChecksum { .. }),
        "{err}"
    );
    let mut sum = walcast_ltx::DatabaseChecksum::empty(tracked.page_size);
    sum.add_page(1, &page(1));
    raw.post_apply = sum.value().get();
    verify(&raw.build()[..]).unwrap();
}

#[test]
fn a_decoder_that_failed_stays_failed() {
    let mut file = snapshot();
    file[106..110].copy_from_slice(&u32::MAX.to_be_bytes());
    let mut dec = Decoder::new(&file[..]).unwrap();
    assert!(dec.next_page().is_err());
    assert!(dec.current_page().is_none());
    let err = dec.next_page().unwrap_err();
    assert!(matches!(err.kind(), DecodeErrorKind::AfterError), "{err}");
    let err = dec.finish().unwrap_err();
    assert!(matches!(err.kind(), DecodeErrorKind::AfterError), "{err}");
}

#[test]
fn header_errors_name_the_field_offset() {
    let mut file = snapshot();
    file[8..12].copy_from_slice(&1000u32.to_be_bytes());
    let err = verify(&file[..]).unwrap_err();
    assert!(matches!(err.kind(), DecodeErrorKind::Header(_)), "{err}");
    assert_eq!(err.offset(), 8);
    assert!(err.to_string().contains("1000"), "{err}");
    let err = verify(&b"SQLite format 3\0"[..]).unwrap_err();
    assert!(
        matches!(err.kind(), DecodeErrorKind::Truncated("header")),
        "{err}"
    );
    let err = verify(&[0u8; 0][..]).unwrap_err();
    assert_eq!(err.offset(), 0);
}
