//! What one sync copies out of the WAL: the newest committed frame of every page read,
//! with a copy of the page while they fit in a memory budget.
//!
//! Why copies: while walcast holds its read slot the application cannot restart the WAL,
//! and every commit past the autocheckpoint threshold then pays a checkpoint (two fsyncs).
//! With the pages in memory walcast can hand off the moment it has read them, before the
//! slow part (compressing, writing and fsyncing the L0 file). Beyond the budget only frame
//! numbers are kept (4 bytes per page) and the pages are read again from the WAL, in page
//! order, while still protected: memory stays bounded whatever the transaction size.
//!
//! Invariant: frames are recorded in WAL order from one generation, and a sync ends only
//! on a commit frame, so a file never holds half a transaction.

use std::collections::BTreeMap;

use walcast_format::PageSize;
use walcast_lock::WalFrame;

/// Pages kept in memory per sync before falling back to re-reading the WAL.
pub const MEMORY_BUDGET: usize = 32 << 20;

#[derive(Debug)]
struct Newest {
    frame: u32,
    page: Option<Box<[u8]>>,
}

/// Newest committed frame per page for one sync.
#[derive(Debug, Default)]
pub struct SyncFrames {
    newest: BTreeMap<u32, Newest>,
    first_frame: Option<u32>,
    last_frame: u32,
    /// Database size in pages after the last commit frame seen.
    commit: Option<u32>,
    /// True while the last frame seen was not a commit frame.
    open_transaction: bool,
    page_size: Option<PageSize>,
    salts: (u32, u32),
    memory: usize,
    /// Pages whose copy was not kept (over budget).
    missing: usize,
}

impl SyncFrames {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one verified frame of the generation `salts`, in WAL order.
    pub fn record(&mut self, frame: &WalFrame<'_>, page_size: PageSize, salts: (u32, u32)) {
        self.first_frame.get_or_insert(frame.number);
        self.last_frame = frame.number;
        self.page_size = Some(page_size);
        self.salts = salts;
        let fits = self.memory + frame.page.len() <= MEMORY_BUDGET;
        match self.newest.get_mut(&frame.page_number) {
            Some(entry) => {
                entry.frame = frame.number;
                // A page without a copy keeps none; one with a copy is updated in place.
                if let Some(copy) = entry.page.as_mut() {
                    if copy.len() == frame.page.len() {
                        copy.copy_from_slice(frame.page);
                    } else {
                        *copy = frame.page.into();
                    }
                }
            }
            None => {
                let page = fits.then(|| Box::<[u8]>::from(frame.page));
                match page {
                    Some(_) => self.memory += frame.page.len(),
                    None => self.missing += 1,
                }
                let newest = Newest {
                    frame: frame.number,
                    page,
                };
                self.newest.insert(frame.page_number, newest);
            }
        }
        self.open_transaction = frame.commit_size.is_none();
        if let Some(size) = frame.commit_size {
            self.commit = Some(size);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.first_frame.is_none()
    }

    /// True if every page has its copy: the file can be written without the WAL.
    pub fn all_in_memory(&self) -> bool {
        self.missing == 0
    }

    /// Frames recorded (first..=last), for the LTX header's WAL range.
    pub fn frame_range(&self) -> Option<(u32, u32)> {
        self.first_frame.map(|first| (first, self.last_frame))
    }

    /// Page size and salts of the frames' generation.
    pub fn generation(&self) -> Option<(PageSize, (u32, u32))> {
        self.page_size.map(|p| (p, self.salts))
    }

    /// The database size after the last commit, if any frame was a commit frame.
    pub fn commit(&self) -> Option<u32> {
        self.commit
    }

    /// True if the frames end in the middle of a transaction.
    pub fn ends_inside_transaction(&self) -> bool {
        self.open_transaction
    }

    /// The newest frame of `pgno` and its copy if kept.
    pub fn newest(&self, pgno: u32) -> Option<(u32, Option<&[u8]>)> {
        self.newest.get(&pgno).map(|n| (n.frame, n.page.as_deref()))
    }

    /// (page, newest frame, copy if kept) for every page within the final database size,
    /// in page order. Pages beyond it were truncated away by the last commit (VACUUM).
    pub fn pages_within_commit(&self) -> impl Iterator<Item = (u32, u32, Option<&[u8]>)> + '_ {
        let commit = self.commit.unwrap_or(0);
        self.newest
            .range(..=commit)
            .map(|(&p, n)| (p, n.frame, n.page.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(number: u32, page_number: u32, commit_size: Option<u32>, page: &[u8]) -> WalFrame<'_> {
        WalFrame {
            number,
            page_number,
            commit_size,
            page,
        }
    }

    #[test]
    fn newest_frame_wins_and_truncated_pages_drop() {
        let ps = PageSize::new(512).unwrap();
        let (a, b) = (vec![1u8; 512], vec![2u8; 512]);
        let mut frames = SyncFrames::new();
        assert!(frames.is_empty());
        for f in [
            frame(4, 3, None, &a),
            frame(5, 1, Some(3), &a),
            frame(6, 3, None, &b),
        ] {
            frames.record(&f, ps, (7, 8));
        }
        assert!(frames.ends_inside_transaction());
        frames.record(&frame(7, 2, Some(2), &b), ps, (7, 8));
        assert!(!frames.ends_inside_transaction());
        assert!(frames.all_in_memory());
        assert_eq!(frames.frame_range(), Some((4, 7)));
        assert_eq!(frames.commit(), Some(2));
        assert_eq!(frames.newest(3), Some((6, Some(&b[..]))));
        let pages: Vec<_> = frames
            .pages_within_commit()
            .map(|(p, f, c)| (p, f, c.map(|c| c[0])))
            .collect();
        assert_eq!(pages, vec![(1, 5, Some(1)), (2, 7, Some(2))]);
    }

    #[test]
    fn over_budget_keeps_frame_numbers_only() {
        let ps = PageSize::new(65536).unwrap();
        let page = vec![0u8; 65536];
        let mut frames = SyncFrames::new();
        let count = (MEMORY_BUDGET / page.len() + 3) as u32;
        for n in 1..=count {
            frames.record(&frame(n, n, Some(n), &page), ps, (1, 1));
        }
        assert!(!frames.all_in_memory());
        assert_eq!(
            frames.newest(count).map(|(f, c)| (f, c.is_some())),
            Some((count, false))
        );
        assert_eq!(
            frames.newest(1).map(|(f, c)| (f, c.is_some())),
            Some((1, true))
        );
        assert!(frames.memory <= MEMORY_BUDGET);
    }
}
