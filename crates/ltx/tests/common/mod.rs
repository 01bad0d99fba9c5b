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

/// Builds LTX bytes by hand, skipping every rule the encoder enforces, so tests can make
/// files that break exactly one rule. Frames use LZ4 blocks; the index and the file
/// checksum are computed like Litestream's encoder does.
pub struct RawLtx {
    pub header: [u8; 100],
    /// (pgno, flags, page) per frame; flag 0x1 frames get a size field.
    pub frames: Vec<(u32, u16, Vec<u8>)>,
    pub post_apply: u64,
}

impl RawLtx {
    pub fn new(header: &walcast_ltx::Header) -> Self {
        Self {
            header: header.encode(),
            frames: Vec::new(),
            post_apply: 0,
        }
    }

    pub fn page(mut self, pgno: u32, page: Vec<u8>) -> Self {
        self.frames.push((pgno, 1, page));
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut crc = walcast_ltx::Crc64::new();
        let mut out = self.header.to_vec();
        crc.update(&self.header);
        let mut index = Vec::new();
        for (pgno, flags, page) in &self.frames {
            let at = out.len() as u64;
            let mut head = pgno.to_be_bytes().to_vec();
            head.extend_from_slice(&flags.to_be_bytes());
            let compressed = lz4_flex::block::compress(page);
            head.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
            crc.update(&head);
            crc.update(page);
            out.extend_from_slice(&head);
            out.extend_from_slice(&compressed);
            for v in [u64::from(*pgno), at, out.len() as u64 - at] {
                uvarint(&mut index, v);
            }
        }
        index.push(0);
        let mut tail = vec![0u8; 6];
        tail.extend_from_slice(&index);
        tail.extend_from_slice(&(index.len() as u64).to_be_bytes());
        tail.extend_from_slice(&self.post_apply.to_be_bytes());
        crc.update(&tail);
        out.extend_from_slice(&tail);
        out.extend_from_slice(&(crc.value() | 1 << 63).to_be_bytes());
        out
    }
}

fn uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads and verifies a file Litestream wrote, checking what every such file has: the
/// header names the file, NoChecksum is set, no post-apply checksum.
pub fn verify_litestream_file(file: &ReplicaFile) -> (Vec<u8>, VerifiedFile) {
    let bytes = std::fs::read(&file.path).unwrap();
    let verified =
        walcast_ltx::verify(&bytes[..]).unwrap_or_else(|e| panic!("{}: {e}", file.path.display()));
    let header = verified.header();
    assert_eq!(header.file_name(), file.name, "{}", file.path.display());
    assert_eq!(header.flags, walcast_ltx::HeaderFlags::NO_CHECKSUM);
    assert_eq!(verified.trailer().post_apply_checksum, None);
    assert_eq!(verified.size(), bytes.len() as u64);
    (bytes, verified)
}

/// Merges `files` (oldest first) as Litestream's compaction and restore do.
pub fn merge_files<'a>(
    files: impl IntoIterator<Item = &'a ReplicaFile>,
) -> walcast_ltx::Merged<Vec<u8>> {
    let inputs = files
        .into_iter()
        .map(|f| std::fs::File::open(&f.path).unwrap());
    walcast_ltx::merge(inputs, Vec::new(), &walcast_ltx::MergeOptions::default()).unwrap()
}
