//! Helpers shared by the integration tests: reading replica directories and turning a
//! merged snapshot into a database image.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use walcast_ltx::{Decoder, LtxFileName, VerifiedFile};

/// One LTX file of a file replica: its level, parsed name and path.
#[derive(Clone, Debug)]
pub struct ReplicaFile {
    pub level: u32,
    pub name: LtxFileName,
    pub path: PathBuf,
}

/// Every `ltx/<level>/<name>.ltx` under `replica`, by level then TXID.
pub fn replica_files(replica: &Path) -> Vec<ReplicaFile> {
    let mut files = Vec::new();
    let Ok(levels) = std::fs::read_dir(replica.join("ltx")) else {
        return files;
    };
    for level_dir in levels {
        let level_dir = level_dir.unwrap().path();
        let level: u32 = level_dir
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        for entry in std::fs::read_dir(&level_dir).unwrap() {
            let path = entry.unwrap().path();
            let Ok(name) = path.file_name().unwrap().to_str().unwrap().parse() else {
                continue; // Litestream's temporary files while it writes
            };
            files.push(ReplicaFile { level, name, path });
        }
    }
    files.sort_by_key(|f| (f.level, f.name));
    files
}

/// Decodes a snapshot LTX file (all pages) into the database file it describes.
pub fn database_image(ltx: &[u8]) -> (VerifiedFile, Vec<u8>) {
    let mut decoder = Decoder::new(ltx).unwrap();
    assert!(decoder.header().is_snapshot(), "not a snapshot");
    let page_size = decoder.header().page_size.as_usize();
    let mut db = vec![0u8; decoder.header().commit as usize * page_size];
    while let Some(page) = decoder.next_page().unwrap() {
        let at = (page.pgno as usize - 1) * page_size;
        db[at..at + page_size].copy_from_slice(page.data);
    }
    (decoder.finish().unwrap(), db)
}
