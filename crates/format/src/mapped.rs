//! Read-only memory maps of files that cannot shrink while mapped.
//!
//! A mapped file that another process truncates kills the reader with SIGBUS. SQLite
//! truncates the WAL (TRUNCATE checkpoints, `journal_size_limit`), the database (checkpoint
//! to `nPage`) and the wal-index (to 3 bytes), so live files are read with pread, never
//! mapped. Map only offline copies: fixtures, staged files walcast owns, restored outputs.
//!
//! This module is one of the two places `unsafe` is allowed (the other is crates/lock).

#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::ops::Deref;

/// A read-only map of a whole file that nothing else modifies or truncates.
#[derive(Debug)]
pub struct OfflineMap {
    map: Option<memmap2::Mmap>,
}

impl OfflineMap {
    /// Maps `file`. The caller promises the file is offline: no other process (and no
    /// other handle in this one) writes or truncates it while the map lives.
    pub fn new(file: &File) -> io::Result<Self> {
        if file.metadata()?.len() == 0 {
            // Mapping zero bytes is an error on Linux; an empty file is an empty slice.
            return Ok(Self { map: None });
        }
        // SAFETY: the map is read-only and the caller guarantees the file is offline, so
        // its length and bytes do not change while mapped (no SIGBUS, no torn reads).
        let map = unsafe { memmap2::Mmap::map(file)? };
        Ok(Self { map: Some(map) })
    }
}

impl Deref for OfflineMap {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_wal_reads_like_the_file() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/format/page-4096/db-wal");
        let map = OfflineMap::new(&File::open(&path).unwrap()).unwrap();
        assert_eq!(&map[..], &std::fs::read(&path).unwrap()[..]);
        let recovered = crate::wal::WalSlice::parse(&map).unwrap().recover();
        assert!(recovered.mx_frame() > 0);
    }

    #[test]
    fn an_empty_file_maps_to_an_empty_slice() {
        let file = tempfile::tempfile().unwrap();
        assert!(OfflineMap::new(&file).unwrap().is_empty());
    }
}
