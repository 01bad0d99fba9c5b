//! An in-memory copy of the database built only from what the lock API hands out: the
//! database file read while PROTECTED, then every committed frame applied in order.
//! Comparing it with the real database proves no committed frame was missed.

use std::collections::BTreeMap;
use std::path::Path;

use walcast_format::PageSize;
use walcast_lock::{FrameBatch, LockError, Protected};

/// Pages by number, plus the database size in pages after the last commit applied.
pub struct Image {
    page_size: PageSize,
    pages: BTreeMap<u32, Vec<u8>>,
    n_page: u32,
    /// Pages of the transaction being read (a batch may end inside one).
    pending: Vec<(u32, Vec<u8>)>,
    /// Commit frames applied.
    pub commits: u64,
}

impl Image {
    /// Copies the database file (the first step of the snapshot of reference §6).
    pub fn from_database(state: &Protected) -> Result<Self, String> {
        let mut header = [0u8; 100];
        state.read_db(0, &mut header).map_err(|e| e.to_string())?;
        let field = u16::from_be_bytes([header[16], header[17]]);
        let page_size = PageSize::from_db_header_field(field).map_err(|e| e.to_string())?;
        let len = state.db_len().map_err(|e: LockError| e.to_string())?;
        let n_page = u32::try_from(len / u64::from(page_size.get())).map_err(|e| e.to_string())?;
        let mut pages = BTreeMap::new();
        for pgno in 1..=n_page {
            let mut page = vec![0u8; page_size.as_usize()];
            state
                .read_db(page_size.page_offset(pgno), &mut page)
                .map_err(|e| e.to_string())?;
            pages.insert(pgno, page);
        }
        Ok(Self {
            page_size,
            pages,
            n_page,
            pending: Vec::new(),
            commits: 0,
        })
    }

    /// Applies the frames of a batch; pages become visible at their commit frame.
    pub fn apply(&mut self, batch: &FrameBatch<'_>) -> Result<(), String> {
        if let Some(size) = batch.page_size().filter(|s| *s != self.page_size) {
            return Err(format!(
                "WAL page size {} differs from the database's {}",
                size.get(),
                self.page_size.get()
            ));
        }
        for frame in batch.frames() {
            self.pending.push((frame.page_number, frame.page.to_vec()));
            if let Some(n_page) = frame.commit_size {
                for (pgno, page) in self.pending.drain(..) {
                    self.pages.insert(pgno, page);
                }
                self.n_page = n_page;
                self.commits += 1;
            }
        }
        Ok(())
    }

    /// Writes pages 1..=nPage (zeros where no page is known) to `path`.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let zeros = vec![0u8; self.page_size.as_usize()];
        let mut out = Vec::with_capacity(self.n_page as usize * zeros.len());
        for pgno in 1..=self.n_page {
            out.extend_from_slice(self.pages.get(&pgno).unwrap_or(&zeros));
        }
        std::fs::write(path, out)
    }
}
