//! What one sync copies out of the WAL: the newest frame of every page among the
//! committed frames read, and where those frames sit in the WAL.
//!
//! Only frame numbers are kept, never pages: the pages are read again, in page order, when
//! the LTX file is written (`Protected::reread_page`), so memory grows with the number of
//! distinct pages in a sync (4 bytes each), not with their size.
//!
//! Invariant: a sync ends only on a commit frame, so a file never holds half a
//! transaction, and a restore at any TXID yields a state the database really had.

use std::collections::BTreeMap;

use walcast_lock::WalFrame;

/// Newest committed frame per page for one sync.
#[derive(Debug, Default)]
pub struct SyncFrames {
    newest: BTreeMap<u32, u32>,
    first_frame: Option<u32>,
    last_frame: u32,
    /// Database size in pages after the last commit frame seen.
    commit: Option<u32>,
    /// True while the last frame seen was not a commit frame.
    open_transaction: bool,
}

impl SyncFrames {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one verified frame, in WAL order.
    pub fn record(&mut self, frame: &WalFrame<'_>) {
        self.first_frame.get_or_insert(frame.number);
        self.last_frame = frame.number;
        self.newest.insert(frame.page_number, frame.number);
        self.open_transaction = frame.commit_size.is_none();
        if let Some(size) = frame.commit_size {
            self.commit = Some(size);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.first_frame.is_none()
    }

    /// Frames recorded (first..=last), for the LTX header's WAL range.
    pub fn frame_range(&self) -> Option<(u32, u32)> {
        self.first_frame.map(|first| (first, self.last_frame))
    }

    /// The database size after the last commit, if any frame was a commit frame.
    pub fn commit(&self) -> Option<u32> {
        self.commit
    }

    /// True if the frames end in the middle of a transaction.
    pub fn ends_inside_transaction(&self) -> bool {
        self.open_transaction
    }

    /// The newest frame of `pgno`, if it has one.
    pub fn frame_of(&self, pgno: u32) -> Option<u32> {
        self.newest.get(&pgno).copied()
    }

    /// (page, newest frame) for every page within the final database size, in page order.
    /// Pages beyond it were truncated away by the last commit (VACUUM, auto-vacuum).
    pub fn pages_within_commit(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        let commit = self.commit.unwrap_or(0);
        self.newest.range(..=commit).map(|(&p, &f)| (p, f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(number: u32, page_number: u32, commit_size: Option<u32>) -> WalFrame<'static> {
        WalFrame {
            number,
            page_number,
            commit_size,
            page: &[],
        }
    }

    #[test]
    fn newest_frame_wins_and_truncated_pages_drop() {
        let mut frames = SyncFrames::new();
        assert!(frames.is_empty());
        for f in [frame(4, 3, None), frame(5, 1, Some(3)), frame(6, 3, None)] {
            frames.record(&f);
        }
        assert!(frames.ends_inside_transaction());
        frames.record(&frame(7, 2, Some(2)));
        assert!(!frames.ends_inside_transaction());
        assert_eq!(frames.frame_range(), Some((4, 7)));
        assert_eq!(frames.commit(), Some(2));
        assert_eq!(frames.frame_of(3), Some(6));
        assert_eq!(
            frames.pages_within_commit().collect::<Vec<_>>(),
            vec![(1, 5), (2, 7)]
        );
    }
}
