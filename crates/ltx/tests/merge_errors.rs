//! The merge refuses inputs that do not belong together and never leaves a valid output
//! behind when an input is corrupt.

use walcast_format::PageSize;
use walcast_ltx::{
    DecodeErrorKind, Encoder, Header, HeaderFlags, MergeChecksums, MergeError, MergeOptions, TxId,
    merge, verify,
};

fn file(min: u64, max: u64, commit: u32, page_size: u32, pages: &[u32]) -> Vec<u8> {
    let (min_txid, max_txid) = (TxId::new(min).unwrap(), TxId::new(max).unwrap());
    let page_size_checked = PageSize::new(page_size).unwrap();
    let mut header = Header::new(
        page_size_checked,
        commit,
        min_txid,
        max_txid,
        min as i64 * 1000,
    );
    (
        header.wal_offset,
        header.wal_size,
        header.wal_salt1,
        header.wal_salt2,
    ) = (32, 100, 1, 2);
    header.node_id = 3;
    let mut enc = Encoder::new(Vec::new(), header).unwrap();
    for &pgno in pages {
        enc.write_page(pgno, &vec![pgno as u8 ^ min as u8; page_size as usize])
            .unwrap();
    }
    enc.finish(None).unwrap().writer
}

#[test]
fn a_corrupt_input_fails_the_merge_and_leaves_no_valid_file() {
    let a = file(1, 1, 3, 512, &[1, 2, 3]);
    let mut b = file(2, 2, 3, 512, &[2]);
    let last = b.len() - 1;
    b[last] ^= 1; // file checksum
    let mut out = Vec::new();
    let err = merge([&a[..], &b[..]], &mut out, &MergeOptions::default()).unwrap_err();
    match &err {
        MergeError::Input { index: 1, source } => {
            assert!(
                matches!(source.kind(), DecodeErrorKind::ChecksumMismatch { .. }),
                "{err}"
            );
        }
        other => panic!("expected input 1 to fail, got {other}"),
    }
    assert!(!out.is_empty(), "pages were streamed to the output");
    let err = verify(&out[..]).unwrap_err();
    assert!(matches!(err.kind(), DecodeErrorKind::Truncated(_)), "{err}");
}

#[test]
fn the_output_header_follows_litestreams_compactor() {
    let a = file(3, 4, 9, 512, &[1, 5, 9]);
    let b = file(5, 7, 6, 512, &[2, 5]);
    let merged = merge([&a[..], &b[..]], Vec::new(), &MergeOptions::default()).unwrap();
    let h = merged.output.header;
    assert_eq!((h.min_txid.get(), h.max_txid.get(), h.commit), (3, 7, 6));
    assert_eq!(h.timestamp_ms, 5000);
    assert_eq!(
        (
            h.wal_offset,
            h.wal_size,
            h.wal_salt1,
            h.wal_salt2,
            h.node_id
        ),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(h.flags, HeaderFlags::NO_CHECKSUM);
    // Page 9 lies beyond the final commit of 6; page 5 comes from the newer file.
    let mut dec = walcast_ltx::Decoder::new(&merged.output.writer[..]).unwrap();
    let mut seen = Vec::new();
    while let Some(p) = dec.next_page().unwrap() {
        seen.push((p.pgno, p.data[0]));
    }
    dec.finish().unwrap();
    assert_eq!(seen, vec![(1, 1 ^ 3), (2, 2 ^ 5), (5, 5 ^ 5)]);
    assert_eq!(merged.inputs.len(), 2);
}

#[test]
fn inputs_must_agree_and_chain() {
    let a = file(1, 2, 2, 512, &[1, 2]);
    let gap = file(4, 4, 2, 512, &[1]);
    let err = merge([&a[..], &gap[..]], Vec::new(), &MergeOptions::default()).unwrap_err();
    assert!(
        matches!(err, MergeError::NotContiguous { index: 1, .. }),
        "{err}"
    );
    let allow = MergeOptions {
        allow_gaps: true,
        ..MergeOptions::default()
    };
    merge([&a[..], &gap[..]], Vec::new(), &allow).unwrap();

    // Overlap is allowed as long as the next file ends later (ltx.IsContiguous).
    let overlap = file(2, 3, 2, 512, &[2]);
    merge([&a[..], &overlap[..]], Vec::new(), &MergeOptions::default()).unwrap();
    let stale = file(2, 2, 2, 512, &[2]);
    let err = merge([&a[..], &stale[..]], Vec::new(), &MergeOptions::default()).unwrap_err();
    assert!(matches!(err, MergeError::NotContiguous { .. }), "{err}");

    let other_size = file(3, 3, 2, 1024, &[1]);
    let err = merge(
        [&a[..], &other_size[..]],
        Vec::new(),
        &MergeOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            MergeError::PageSizeMismatch {
                index: 1,
                expected: 512,
                found: 1024
            }
        ),
        "{err}"
    );

    let none: [&[u8]; 0] = [];
    assert!(matches!(
        merge(none, Vec::new(), &MergeOptions::default()),
        Err(MergeError::NoInputs)
    ));

    let carry = MergeOptions {
        checksums: MergeChecksums::Carry,
        ..MergeOptions::default()
    };
    let err = merge([&a[..]], Vec::new(), &carry).unwrap_err();
    assert!(
        matches!(err, MergeError::ChecksumsNotTracked { index: 0 }),
        "{err}"
    );
}
