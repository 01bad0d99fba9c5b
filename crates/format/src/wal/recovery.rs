//! What SQLite's recovery concludes from a WAL: the committed end (`mxFrame`), the database
//! size after it (`nPage`), the checksum after it, and how the log is cut into transactions.
//!
//! [`RecoveryTally`] watches verified frames go by and keeps only counters, so it runs in
//! constant memory over a WAL of any size; [`Transaction`] holds one commit group's frames
//! when the WAL is already in memory ([`WalSlice::transactions`](crate::wal::WalSlice)).

use std::collections::BTreeSet;

use crate::checksum::WalChecksum;
use crate::wal::chain::{Stop, WalFrame};
use crate::wal::header::WalHeader;

/// The last valid commit frame: what recovery stores as `mxFrame`, `nPage` and
/// `aFrameCksum`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitPoint {
    /// Frame number (`mxFrame`).
    pub frame: u32,
    /// Database size in pages after it (`nPage`).
    pub db_size_pages: u32,
    /// Cumulative checksum after it.
    pub checksum: WalChecksum,
}

/// The valid end of a WAL as `walIndexRecover` decides it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalRecovery {
    /// The header.
    pub header: WalHeader,
    /// Frames that passed verification, committed or not.
    pub frames_valid: u32,
    /// Transactions committed (valid commit frames).
    pub transactions: u32,
    /// The last valid commit frame; `None` if the WAL holds no committed transaction.
    pub last_commit: Option<CommitPoint>,
    /// Where and why the scan ended.
    pub stop: Stop,
}

impl WalRecovery {
    /// `mxFrame`: the last committed frame, 0 when none.
    pub fn mx_frame(&self) -> u32 {
        self.last_commit.map_or(0, |c| c.frame)
    }

    /// Valid frames after the last commit, which no reader ever sees.
    pub fn uncommitted_frames(&self) -> u32 {
        self.frames_valid - self.mx_frame()
    }
}

/// Counts frames and commits as they are verified; see [`WalRecovery`].
#[derive(Clone, Debug)]
pub struct RecoveryTally {
    header: WalHeader,
    frames_valid: u32,
    transactions: u32,
    last_commit: Option<CommitPoint>,
}

impl RecoveryTally {
    /// Starts at frame 1 of the WAL with `header`.
    pub fn new(header: WalHeader) -> Self {
        Self {
            header,
            frames_valid: 0,
            transactions: 0,
            last_commit: None,
        }
    }

    /// Records one verified frame.
    pub fn observe(&mut self, frame: &WalFrame<'_>) {
        self.frames_valid = frame.number();
        if let Some(size) = frame.commit_size() {
            self.transactions += 1;
            self.last_commit = Some(CommitPoint {
                frame: frame.number(),
                db_size_pages: size.get(),
                checksum: frame.checksum(),
            });
        }
    }

    /// The conclusion, given where the scan stopped.
    pub fn finish(self, stop: Stop) -> WalRecovery {
        WalRecovery {
            header: self.header,
            frames_valid: self.frames_valid,
            transactions: self.transactions,
            last_commit: self.last_commit,
            stop,
        }
    }
}

/// One committed transaction: its frames in log order, the last of which commits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction<'a> {
    frames: Vec<WalFrame<'a>>,
}

impl<'a> Transaction<'a> {
    /// Groups `frames` into a transaction; `None` unless the last frame commits.
    pub fn new(frames: Vec<WalFrame<'a>>) -> Option<Self> {
        frames.last()?.is_commit().then_some(Self { frames })
    }

    /// The frames, in log order (a page may appear more than once; the last wins).
    pub fn frames(&self) -> &[WalFrame<'a>] {
        &self.frames
    }

    /// Database size in pages after this transaction.
    pub fn db_size_pages(&self) -> u32 {
        self.frames
            .last()
            .and_then(WalFrame::commit_size)
            .map_or(0, |n| n.get())
    }

    /// The distinct pages it writes, ascending. Pages beyond the new database size are
    /// left out, as SQLite drops them at commit.
    pub fn pages(&self) -> BTreeSet<u32> {
        let size = self.db_size_pages();
        self.frames
            .iter()
            .map(|f| f.pgno().get())
            .filter(|&p| p <= size)
            .collect()
    }

    /// The newest image of each page, ascending by page number.
    pub fn newest_pages(&self) -> Vec<(u32, &'a [u8])> {
        let mut newest = std::collections::BTreeMap::new();
        let size = self.db_size_pages();
        for f in self.frames.iter().filter(|f| f.pgno().get() <= size) {
            newest.insert(f.pgno().get(), f.page());
        }
        newest.into_iter().collect()
    }

    /// First and last frame numbers.
    pub fn frame_range(&self) -> (u32, u32) {
        let first = self.frames.first().map_or(0, WalFrame::number);
        let last = self.frames.last().map_or(0, WalFrame::number);
        (first, last)
    }
}
