//! The database a restore plan describes, produced page by page in page-number order: a
//! streaming k-way merge of the planned LTX files in which the newest file's copy of a
//! page wins and pages beyond the final commit are dropped, then every page 1..commit
//! handed to a sink (the lock-byte page as zeros, as SQLite and Litestream leave it).
//!
//! Memory: one decoder per planned file, plus the read-ahead batches of those decoded on
//! threads (see `decode_thread`), whatever the database size.
//!
//! Safety: the pages handed to the sink are provisional. [`walk_database`] returns the
//! inputs' verifications only after every planned file decoded and its checksum matched;
//! a caller must not publish what the sink received before that. This module never
//! writes anything itself.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use anyhow::bail;
use walcast_format::PageSize;
use walcast_ltx::merge::is_contiguous;
use walcast_ltx::{DecodeError, Decoder, TxId, VerifiedFile};
use walcast_replica::{ReplicaSource, RestorePlan};

use crate::decode_thread::InputDecoder;

/// Names the planned file an error came from, and says whether its bytes are damaged
/// (and what the user can do) or reading it failed.
fn in_file(object: &str, err: anyhow::Error) -> anyhow::Error {
    let unreadable = err
        .downcast_ref::<DecodeError>()
        .is_some_and(|e| !e.is_malformed());
    if unreadable {
        err.context(format!("{object}: cannot read"))
    } else {
        err.context(format!(
            "{object}: damaged LTX file (an earlier -txid may still restore without it)"
        ))
    }
}

/// One planned file being decoded, with its name for error messages.
struct Input {
    object: String,
    decoder: InputDecoder,
}

/// The merged pages of a plan, in page-number order.
pub struct MergedPages {
    inputs: Vec<Input>,
    /// Min-heap on page number; for equal numbers the newest input pops first.
    heap: BinaryHeap<Reverse<(u32, Reverse<usize>)>>,
    /// The input whose current page was handed out last; it advances on the next call.
    pending: Option<usize>,
    page_size: PageSize,
    commit: u32,
    txid: TxId,
}

/// What a finished walk proved.
#[derive(Debug)]
pub struct WalkedDatabase {
    /// The TXID the database is at.
    pub txid: TxId,
    /// Its page size.
    pub page_size: PageSize,
    /// Its size in pages.
    pub commit: u32,
    /// Every planned file's verification, in plan order.
    pub verified: Vec<VerifiedFile>,
}

impl MergedPages {
    /// Opens every planned file and reads its header; the `parallelism` largest files
    /// are decoded on threads of their own, the rest on the caller's thread.
    pub fn open(
        source: &dyn ReplicaSource,
        plan: &RestorePlan,
        parallelism: usize,
    ) -> anyhow::Result<Self> {
        let mut by_size: Vec<usize> = (0..plan.files().len()).collect();
        by_size.sort_by_key(|&i| Reverse(plan.files()[i].size));
        let mut threaded = vec![false; plan.files().len()];
        for &i in by_size.iter().take(parallelism) {
            threaded[i] = true;
        }
        let mut inputs: Vec<Input> = Vec::with_capacity(plan.files().len());
        for (file, threaded) in plan.files().iter().zip(threaded) {
            let object = source.describe_object(file.level, file.name);
            let reader = source.open(file.level, file.name)?;
            let decoder = Decoder::new(reader).map_err(|e| in_file(&object, e.into()))?;
            let header = decoder.header();
            if (header.min_txid, header.max_txid) != (file.name.min, file.name.max) {
                bail!(
                    "{object}: its header covers TXIDs {}-{}, not what its name says; \
                     the object was renamed or copied from another replica",
                    header.min_txid,
                    header.max_txid
                );
            }
            if let Some(prev) = inputs.last() {
                let prev_header = prev.decoder.header();
                if header.page_size != prev_header.page_size {
                    bail!(
                        "{object}: page size {} differs from {} in {}; the files come from different databases",
                        header.page_size.get(),
                        prev_header.page_size.get(),
                        prev.object
                    );
                }
                if !is_contiguous(prev_header.max_txid, header.min_txid, header.max_txid) {
                    bail!(
                        "{object}: TXIDs {}-{} do not continue {} ending at {}",
                        header.min_txid,
                        header.max_txid,
                        prev.object,
                        prev_header.max_txid
                    );
                }
            } else if !header.is_snapshot() {
                bail!("{object}: the first planned file does not start at TXID 1");
            }
            inputs.push(Input {
                object,
                decoder: InputDecoder::new(decoder, threaded)?,
            });
        }
        let Some(last) = inputs.last() else {
            bail!("the restore plan is empty");
        };
        let (page_size, commit, txid) = {
            let h = last.decoder.header();
            (h.page_size, h.commit, h.max_txid)
        };
        let mut merged = Self {
            heap: BinaryHeap::with_capacity(inputs.len()),
            inputs,
            pending: None,
            page_size,
            commit,
            txid,
        };
        for index in 0..merged.inputs.len() {
            merged.advance(index)?;
        }
        Ok(merged)
    }

    /// The page size every planned file shares.
    pub fn page_size(&self) -> PageSize {
        self.page_size
    }

    fn advance(&mut self, index: usize) -> anyhow::Result<()> {
        let input = &mut self.inputs[index];
        let next = input
            .decoder
            .advance()
            .map_err(|e| in_file(&input.object, e))?;
        if let Some(pgno) = next {
            self.heap.push(Reverse((pgno, Reverse(index))));
        }
        Ok(())
    }

    /// The next page of the merged database: each page number once, newest copy,
    /// none beyond the final commit. Provisional until [`MergedPages::finish`].
    pub fn next_page(&mut self) -> anyhow::Result<Option<(u32, &[u8])>> {
        if let Some(index) = self.pending.take() {
            self.advance(index)?;
        }
        loop {
            let Some(Reverse((pgno, Reverse(index)))) = self.heap.pop() else {
                return Ok(None);
            };
            while let Some(&Reverse((older_pgno, Reverse(older)))) = self.heap.peek() {
                if older_pgno != pgno {
                    break;
                }
                self.heap.pop();
                self.advance(older)?;
            }
            if pgno > self.commit {
                self.advance(index)?;
                continue;
            }
            self.pending = Some(index);
            return Ok(Some((pgno, self.inputs[index].decoder.current())));
        }
    }

    /// Reads what is left of every input and verifies each file's checksum.
    pub fn finish(self) -> anyhow::Result<Vec<VerifiedFile>> {
        let mut verified = Vec::with_capacity(self.inputs.len());
        for input in self.inputs {
            let object = input.object;
            verified.push(input.decoder.finish().map_err(|e| in_file(&object, e))?);
        }
        Ok(verified)
    }
}

/// Hands every page 1..commit of the merged database to `sink`, in order, then verifies
/// every planned file. An error from a damaged file is reported in preference to the
/// missing page it may have caused.
pub fn walk_database(
    mut merged: MergedPages,
    mut sink: impl FnMut(u32, &[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<WalkedDatabase> {
    let (page_size, commit, txid) = (merged.page_size, merged.commit, merged.txid);
    let lock_page = page_size.lock_byte_page();
    let zeros = vec![0u8; page_size.as_usize()];
    // u64: the page after page u32::MAX must not overflow.
    let (lock, commit_pages) = (u64::from(lock_page), u64::from(commit));
    let mut expected = 1u64;
    let mut missing = None;
    while let Some((pgno, page)) = merged.next_page()? {
        if expected == lock && u64::from(pgno) > lock {
            sink(lock_page, &zeros)?;
            expected += 1;
        }
        if u64::from(pgno) != expected {
            missing = Some(expected);
            break;
        }
        sink(pgno, page)?;
        expected += 1;
    }
    if missing.is_none() && expected == lock && lock <= commit_pages {
        sink(lock_page, &zeros)?;
        expected += 1;
    }
    if missing.is_none() && expected <= commit_pages {
        missing = Some(expected);
    }
    let verified = merged.finish()?;
    if let Some(pgno) = missing {
        bail!(
            "page {pgno} of the database (size {commit} pages at TXID {txid}) is in none of the planned files; \
             the replica is inconsistent"
        );
    }
    Ok(WalkedDatabase {
        txid,
        page_size,
        commit,
        verified,
    })
}
