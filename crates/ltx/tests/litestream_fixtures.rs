//! Files written by the real Litestream (committed in testdata/ltx, see its README):
//! 0.5.17's LZ4-block pages and 0.5.15's LZ4-frame pages both decode with verified
//! checksums, and merging the L0 files gives the database that Litestream restores.

mod common;

use std::path::PathBuf;

use common::{database_image, merge_files, replica_files, verify_litestream_file};
use walcast_ltx::{Decoder, Encoder, TxId};

const CASES: [&str; 2] = ["litestream-0.5.17", "litestream-0.5.15"];

fn fixture(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/ltx")
        .join(case)
}

#[test]
fn every_file_litestream_wrote_decodes_with_a_verified_checksum() {
    for case in CASES {
        let files = replica_files(&fixture(case));
        assert_eq!(files.len(), 3, "{case}: fixture incomplete");
        for file in files {
            let (_, verified) = verify_litestream_file(&file);
            let header = verified.header();
            assert_eq!(header.page_size.get(), 512);
            if header.is_snapshot() {
                assert_eq!(verified.page_count(), u64::from(header.commit));
            }
        }
    }
}

#[test]
fn merging_the_l0_files_gives_the_database_litestream_restored() {
    for case in CASES {
        let dir = fixture(case);
        let files = replica_files(&dir);
        let merged = merge_files(files.iter().filter(|f| f.level == 0));
        assert_eq!(merged.output.header.max_txid, TxId::new(2).unwrap());
        let (_, db) = database_image(&merged.output.writer);
        let restored = std::fs::read(dir.join("restored.db")).unwrap();
        assert!(
            db == restored,
            "{case}: merged pages differ from Litestream's restore"
        );
    }
}

#[test]
fn old_frame_encoded_pages_reencode_as_blocks_with_the_same_content() {
    let path = fixture("litestream-0.5.15").join("ltx/0/0000000000000001-0000000000000001.ltx");
    let old = std::fs::read(path).unwrap();
    assert_eq!(
        &old[104..106],
        &[0, 0],
        "fixture should use LZ4-frame pages"
    );
    let mut decoder = Decoder::new(&old[..]).unwrap();
    let mut encoder = Encoder::new(Vec::new(), *decoder.header()).unwrap();
    while let Some(page) = decoder.next_page().unwrap() {
        encoder.write_page(page.pgno, page.data).unwrap();
    }
    decoder.finish().unwrap();
    let new = encoder.finish(None).unwrap().writer;
    assert_eq!(&new[104..106], &[0, 1], "walcast writes LZ4-block pages");
    assert_eq!(database_image(&new).1, database_image(&old).1);
}
