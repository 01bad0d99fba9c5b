//! Property tests: whatever the encoder accepts decodes to the same header, pages and
//! trailer; and merging files equals applying them one after another.

mod common;

use std::collections::BTreeMap;

use common::database_image;
use proptest::prelude::*;
use walcast_format::PageSize;
use walcast_ltx::{
    Checksum, DatabaseChecksum, Decoder, Encoder, Header, HeaderFlags, MergeChecksums,
    MergeOptions, TxId, merge,
};

/// Page contents from a seed: some all-zero, some repetitive, some noisy (incompressible).
fn page_bytes(size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    match seed % 3 {
        0 => vec![0; size],
        1 => (0..size).map(|i| (i % 7) as u8 ^ seed as u8).collect(),
        _ => (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect(),
    }
}

fn base_header(page_size: u32, commit: u32, min: u64, max: u64) -> Header {
    let page_size = PageSize::new(page_size).unwrap();
    let (min_txid, max_txid) = (TxId::new(min).unwrap(), TxId::new(max).unwrap());
    Header::new(
        page_size,
        commit,
        min_txid,
        max_txid,
        1_700_000_000_000 + min as i64,
    )
}

#[derive(Debug, Clone)]
struct FileSpec {
    header: Header,
    pages: Vec<(u32, u64)>,
    post_apply: Option<Checksum>,
}

fn file_spec() -> impl Strategy<Value = FileSpec> {
    (
        prop::sample::select(vec![512u32, 1024, 4096, 65536]),
        1u32..40,
        any::<bool>(),
        any::<bool>(),
        prop::collection::btree_map(1u32..40, any::<u64>(), 0..40),
        any::<u64>(),
        (
            any::<i64>(),
            0u64..1 << 40,
            0u64..1 << 20,
            any::<u32>(),
            any::<u32>(),
            any::<u64>(),
        ),
    )
        .prop_map(|(page_size, commit, snapshot, tracked, pages, sum, wal)| {
            let min = if snapshot { 1 } else { 5 };
            let mut header = base_header(page_size, commit, min, min + 3);
            let (timestamp_ms, wal_offset, wal_size, salt1, salt2, node_id) = wal;
            header.timestamp_ms = timestamp_ms;
            if wal_offset > 0 {
                (header.wal_offset, header.wal_size) = (wal_offset, wal_size);
                (header.wal_salt1, header.wal_salt2) = (salt1, salt2);
            }
            header.node_id = node_id;
            let pages: Vec<(u32, u64)> = if snapshot {
                (1..=commit).map(|p| (p, u64::from(p) ^ sum)).collect()
            } else {
                pages.into_iter().filter(|&(p, _)| p <= commit).collect()
            };
            let mut post_apply = None;
            if tracked {
                header.flags = HeaderFlags::NONE;
                let random = Checksum::new(sum | Checksum::FLAG);
                if snapshot {
                    let mut db = DatabaseChecksum::empty(header.page_size);
                    for &(pgno, seed) in &pages {
                        db.add_page(pgno, &page_bytes(page_size as usize, seed));
                    }
                    post_apply = Some(db.value());
                } else {
                    header.pre_apply_checksum = random;
                    post_apply = random;
                }
            }
            FileSpec {
                header,
                pages,
                post_apply,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn what_is_encoded_decodes_unchanged(spec in file_spec()) {
        let size = spec.header.page_size.as_usize();
        let mut enc = Encoder::new(Vec::new(), spec.header).unwrap();
        for &(pgno, seed) in &spec.pages {
            enc.write_page(pgno, &page_bytes(size, seed)).unwrap();
        }
        let written = enc.finish(spec.post_apply).unwrap();
        let bytes = written.writer;

        let mut dec = Decoder::new(&bytes[..]).unwrap();
        prop_assert_eq!(dec.header(), &spec.header);
        for &(pgno, seed) in &spec.pages {
            let page = dec.next_page().unwrap().unwrap();
            prop_assert_eq!(page.pgno, pgno);
            prop_assert!(page.data == page_bytes(size, seed));
        }
        prop_assert!(dec.next_page().unwrap().is_none());
        let verified = dec.finish().unwrap();
        prop_assert_eq!(verified.trailer(), &written.trailer);
        prop_assert_eq!(verified.trailer().post_apply_checksum, spec.post_apply);
        prop_assert_eq!(verified.page_count(), spec.pages.len() as u64);
        prop_assert_eq!(verified.size(), bytes.len() as u64);
    }
}

/// A history of files for one database: the first is a snapshot; each later file holds
/// some pages plus every page the database grew by (as a real WAL commit would).
fn history() -> impl Strategy<Value = Vec<(u32, Vec<(u32, u64)>)>> {
    let step = (
        1u32..30,
        prop::collection::btree_map(1u32..30, any::<u64>(), 0..12),
    );
    (1u32..30, prop::collection::vec(step, 0..6)).prop_map(|(first_commit, steps)| {
        let mut files = vec![(
            first_commit,
            (1..=first_commit).map(|p| (p, u64::from(p))).collect(),
        )];
        let mut prev_commit = first_commit;
        for (commit, mut pages) in steps {
            for grown in prev_commit + 1..=commit {
                pages.entry(grown).or_insert(u64::from(grown) * 31);
            }
            pages.retain(|&p, _| p <= commit);
            files.push((commit, pages.into_iter().collect::<Vec<_>>()));
            prev_commit = commit;
        }
        files
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn merging_equals_applying_in_order(files in history()) {
        let size = 512usize;
        let mut encoded = Vec::new();
        let mut applied: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
        for (i, (commit, pages)) in files.iter().enumerate() {
            let txid = i as u64 + 1;
            let mut enc = Encoder::new(Vec::new(), base_header(512, *commit, txid, txid)).unwrap();
            for &(pgno, seed) in pages {
                let page = page_bytes(size, seed);
                enc.write_page(pgno, &page).unwrap();
                applied.insert(pgno, page);
            }
            applied.retain(|&pgno, _| pgno <= *commit);
            encoded.push(enc.finish(None).unwrap().writer);
        }
        let merged = merge(encoded.iter().map(|f| &f[..]), Vec::new(), &MergeOptions::default()).unwrap();
        let header = merged.output.header;
        prop_assert_eq!(header.min_txid, TxId::FIRST);
        prop_assert_eq!(header.max_txid.get(), files.len() as u64);
        prop_assert_eq!(header.commit, files.last().unwrap().0);
        prop_assert_eq!(header.timestamp_ms, base_header(512, 1, files.len() as u64, files.len() as u64).timestamp_ms);
        let (_, image) = database_image(&merged.output.writer);
        let expected: Vec<u8> = applied.values().flatten().copied().collect();
        prop_assert!(image == expected, "merged image differs from applying the files in order");
    }
}

#[test]
fn carried_checksums_chain_and_land_in_the_output() {
    let ps = PageSize::new(512).unwrap();
    let (a, b) = (page_bytes(512, 1), page_bytes(512, 2));
    let mut sum = DatabaseChecksum::empty(ps);
    sum.add_page(1, &a);
    let after_first = sum.value();
    let mut first = base_header(512, 1, 1, 1);
    first.flags = HeaderFlags::NONE;
    let mut enc = Encoder::new(Vec::new(), first).unwrap();
    enc.write_page(1, &a).unwrap();
    let first = enc.finish(Some(after_first)).unwrap().writer;

    sum.replace_page(1, &a, &b);
    let mut second = base_header(512, 1, 2, 2);
    second.flags = HeaderFlags::NONE;
    second.pre_apply_checksum = Some(after_first);
    let mut enc = Encoder::new(Vec::new(), second).unwrap();
    enc.write_page(1, &b).unwrap();
    let second = enc.finish(Some(sum.value())).unwrap().writer;

    let carry = MergeOptions {
        checksums: MergeChecksums::Carry,
        ..MergeOptions::default()
    };
    let merged = merge([&first[..], &second[..]], Vec::new(), &carry).unwrap();
    assert_eq!(merged.output.header.flags, HeaderFlags::NONE);
    assert_eq!(merged.output.trailer.post_apply_checksum, Some(sum.value()));
    walcast_ltx::verify(&merged.output.writer[..]).unwrap();

    // Dropping checksums (what Litestream does) gives a NoChecksum file.
    let dropped = merge(
        [&first[..], &second[..]],
        Vec::new(),
        &MergeOptions::default(),
    )
    .unwrap();
    assert_eq!(dropped.output.header.flags, HeaderFlags::NO_CHECKSUM);
    assert_eq!(dropped.output.trailer.post_apply_checksum, None);
}
