//! Page frames: the part of an LTX file between the header and the page index.
//!
//! Byte layout of one frame (integers big-endian):
//!
//! ```text
//! LZ4-block frame (Litestream 0.5.16+, the only one written here):
//!   +0   4  pgno (>= 1)
//!   +4   2  flags = 0x0001 (a size field follows; the data is one LZ4 block)
//!   +6   4  n: size of the compressed block, at most the LZ4 bound of the page size
//!  +10   n  LZ4 block that decompresses to exactly page-size bytes
//!
//! LZ4-frame frame (Litestream 0.5.0-0.5.15; read only):
//!   +0   4  pgno
//!   +4   2  flags = 0x0000
//!   +6   …  one LZ4 frame (magic 0x184D2204) that decompresses to exactly page-size bytes
//!
//! End of pages: six zero bytes (pgno 0, flags 0).
//! ```
//!
//! The file checksum covers each frame's 6-byte header, its 4-byte size field when present,
//! and the *decompressed* page, never the compressed bytes.
//!
//! Order rules ([`PageSequence`]): page numbers strictly ascend, never exceed the header's
//! commit, never name the lock-byte page; a snapshot holds every page from 1 to commit
//! except the lock-byte page.

/// Size of a page frame header (and of the end-of-pages marker).
pub const PAGE_HEADER_SIZE: usize = 6;
/// Size of the compressed-size field after an LZ4-block page header.
pub const BLOCK_SIZE_FIELD: usize = 4;
/// Page header flag: a 4-byte size follows and the page is one LZ4 block.
pub const PAGE_FLAG_BLOCK: u16 = 0x0001;

/// The largest compressed block accepted for a page of `page_size` bytes: LZ4's
/// worst-case expansion (`LZ4_COMPRESSBOUND`), which every conforming compressor meets.
pub fn max_compressed_size(page_size: usize) -> usize {
    page_size + page_size / 255 + 16
}

/// A broken page-order rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PageOrderError {
    /// A page numbered 0 (only the end-of-pages marker, with zero flags, may have it).
    #[error(
        "page number 0 with flags {flags:#06x}: only the all-zero end-of-pages marker has page number 0"
    )]
    ZeroPageNumber {
        /// The flags that made it not a marker.
        flags: u16,
    },
    /// A page beyond the database size in the header.
    #[error("page {pgno} is beyond the commit size of {commit} pages")]
    BeyondCommit {
        /// Page number.
        pgno: u32,
        /// Commit size from the header.
        commit: u32,
    },
    /// The lock-byte page, which SQLite never writes.
    #[error("page {pgno} is the lock-byte page, which never appears in an LTX file")]
    LockPage {
        /// Page number.
        pgno: u32,
    },
    /// Page numbers not strictly ascending.
    #[error("page {pgno} follows page {prev}: page numbers must strictly ascend")]
    OutOfOrder {
        /// Previous page number.
        prev: u32,
        /// This page number.
        pgno: u32,
    },
    /// A snapshot skipped a page.
    #[error("snapshot skips page {expected} (next page is {pgno}): snapshots hold every page")]
    SnapshotGap {
        /// The page that should come next.
        expected: u32,
        /// The page that came.
        pgno: u32,
    },
    /// A snapshot ended before its last page.
    #[error("snapshot ends before page {expected} of {commit}: snapshots hold every page")]
    SnapshotIncomplete {
        /// The first missing page.
        expected: u32,
        /// Commit size from the header.
        commit: u32,
    },
}

/// Checks the page numbers of one file as they come.
#[derive(Clone, Debug)]
pub(crate) struct PageSequence {
    snapshot: bool,
    commit: u32,
    lock_page: u32,
    prev: Option<u32>,
}

impl PageSequence {
    pub(crate) fn new(header: &crate::Header) -> Self {
        Self {
            snapshot: header.is_snapshot(),
            commit: header.commit,
            lock_page: header.lock_page(),
            prev: None,
        }
    }

    /// The page a snapshot must hold next, or `None` once it is complete.
    fn next_expected(&self) -> Option<u32> {
        let mut next = self.prev.map_or(Some(1), |p| p.checked_add(1))?;
        if next == self.lock_page {
            next = next.checked_add(1)?;
        }
        (next <= self.commit).then_some(next)
    }

    /// Accepts `pgno` as the next page, or says which rule it breaks.
    pub(crate) fn push(&mut self, pgno: u32) -> Result<(), PageOrderError> {
        if pgno == 0 {
            return Err(PageOrderError::ZeroPageNumber { flags: 0 });
        }
        if pgno > self.commit {
            return Err(PageOrderError::BeyondCommit {
                pgno,
                commit: self.commit,
            });
        }
        if pgno == self.lock_page {
            return Err(PageOrderError::LockPage { pgno });
        }
        if let Some(prev) = self.prev.filter(|&prev| prev >= pgno) {
            return Err(PageOrderError::OutOfOrder { prev, pgno });
        }
        if self.snapshot
            && let Some(expected) = self.next_expected().filter(|&e| e != pgno)
        {
            return Err(PageOrderError::SnapshotGap { expected, pgno });
        }
        self.prev = Some(pgno);
        Ok(())
    }

    /// Checks that nothing is missing once the pages end.
    pub(crate) fn finish(&self) -> Result<(), PageOrderError> {
        match self.next_expected() {
            Some(expected) if self.snapshot => Err(PageOrderError::SnapshotIncomplete {
                expected,
                commit: self.commit,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Header, TxId};
    use walcast_format::PageSize;

    fn header(min: u64, commit: u32, page_size: u32) -> Header {
        let txid = TxId::new(min).unwrap();
        Header::new(PageSize::new(page_size).unwrap(), commit, txid, txid, 0)
    }

    #[test]
    fn incremental_files_ascend_within_commit() {
        let mut seq = PageSequence::new(&header(2, 10, 4096));
        seq.push(3).unwrap();
        seq.push(7).unwrap();
        assert_eq!(
            seq.push(7),
            Err(PageOrderError::OutOfOrder { prev: 7, pgno: 7 })
        );
        assert_eq!(
            seq.push(11),
            Err(PageOrderError::BeyondCommit {
                pgno: 11,
                commit: 10
            })
        );
        seq.finish().unwrap();
    }

    #[test]
    fn snapshots_hold_every_page_but_the_lock_page() {
        // 65536-byte pages put the lock byte in page 16385.
        let lock = 16385;
        let mut seq = PageSequence::new(&header(1, lock + 1, 65536));
        for pgno in 1..lock {
            seq.push(pgno).unwrap();
        }
        assert_eq!(seq.push(lock), Err(PageOrderError::LockPage { pgno: lock }));
        assert_eq!(
            seq.finish(),
            Err(PageOrderError::SnapshotIncomplete {
                expected: lock + 1,
                commit: lock + 1
            })
        );
        seq.push(lock + 1).unwrap();
        seq.finish().unwrap();

        let mut seq = PageSequence::new(&header(1, 3, 4096));
        seq.push(1).unwrap();
        assert_eq!(
            seq.push(3),
            Err(PageOrderError::SnapshotGap {
                expected: 2,
                pgno: 3
            })
        );
    }

    #[test]
    fn empty_snapshot_of_an_empty_database_is_complete() {
        PageSequence::new(&header(1, 0, 4096)).finish().unwrap();
        assert_eq!(
            PageSequence::new(&header(1, 1, 4096)).finish(),
            Err(PageOrderError::SnapshotIncomplete {
                expected: 1,
                commit: 1
            })
        );
    }
}
