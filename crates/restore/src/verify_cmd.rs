//! `walcast-restore verify DB URL [-txid TXID]`: is a local database file, page for page,
//! the replica's state at a TXID?
//!
//! Both sides get the LTX page-set checksum ([`DatabaseChecksum`]). The replica side is
//! computed by streaming the planned files' merged pages, without writing anything; the
//! local file is read alongside in the same page order, so the first page that differs
//! is named too. Equal checksums over the same page count mean every page is equal (up
//! to CRC-64 collisions); a single flipped byte in any page changes its page checksum.
//!
//! This module must never write to the local file or the replica.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{Context, bail};
use walcast_format::PageSize;
use walcast_ltx::{DatabaseChecksum, TxId};
use walcast_replica::{Catalog, RestoreTarget, Timestamps};

use crate::merged_pages::{MergedPages, walk_database};

/// The local file read page by page alongside the replica's pages.
struct LocalSide {
    reader: BufReader<File>,
    page: Vec<u8>,
    sum: DatabaseChecksum,
    pages: u64,
    first_difference: Option<u64>,
    /// Bytes of a final partial page (a file that is not a whole number of pages).
    partial_tail: usize,
}

impl LocalSide {
    fn open(db: &Path, page_size: PageSize) -> anyhow::Result<Self> {
        let file = File::open(db).with_context(|| format!("cannot open {}", db.display()))?;
        Ok(Self {
            reader: BufReader::with_capacity(1 << 20, file),
            page: vec![0u8; page_size.as_usize()],
            sum: DatabaseChecksum::empty(page_size),
            pages: 0,
            first_difference: None,
            partial_tail: 0,
        })
    }

    /// Reads the next local page; false at the end of the file.
    fn next_page(&mut self) -> std::io::Result<bool> {
        if self.partial_tail > 0 {
            return Ok(false);
        }
        let n = read_full(&mut self.reader, &mut self.page)?;
        if n == self.page.len() {
            self.pages += 1;
            // Beyond u32::MAX pages no page number exists; such a file differs anyway.
            self.sum
                .add_page(u32::try_from(self.pages).unwrap_or(u32::MAX), &self.page);
            return Ok(true);
        }
        self.partial_tail = n;
        Ok(false)
    }

    /// Compares the local page `pgno` with the replica's copy.
    fn compare(&mut self, pgno: u32, replica_page: &[u8], lock_page: u32) -> std::io::Result<()> {
        let missing = !self.next_page()?;
        if missing || (self.page[..] != *replica_page && pgno != lock_page) {
            self.first_difference.get_or_insert(u64::from(pgno));
        }
        Ok(())
    }
}

/// Compares; prints both checksums and the TXID on stdout; fails when they differ.
pub fn run(
    db: &Path,
    replica: &crate::replica_choice::ReplicaChoice,
    txid: Option<TxId>,
    parallelism: usize,
) -> anyhow::Result<()> {
    let source = replica.open()?;
    let replica = source.describe();
    let target = txid.map_or(RestoreTarget::Latest, RestoreTarget::TxId);
    let catalog = Catalog::read(source.as_ref(), Timestamps::Skip)
        .with_context(|| format!("cannot list replica {replica}"))?;
    let plan = catalog
        .plan(target)
        .with_context(|| format!("cannot compute {target} of replica {replica}"))?;
    let local_page_size = local_page_size(db)?;
    let merged = MergedPages::open(source.as_ref(), &plan, parallelism)
        .with_context(|| format!("cannot read replica {replica}"))?;
    let page_size = merged.page_size();
    let lock_page = page_size.lock_byte_page();
    let same_page_size = local_page_size == page_size;

    let mut local = LocalSide::open(db, local_page_size)?;
    let mut replica_sum = DatabaseChecksum::empty(page_size);
    let walked = walk_database(merged, |pgno, page| {
        replica_sum.add_page(pgno, page);
        if same_page_size {
            local
                .compare(pgno, page, lock_page)
                .with_context(|| format!("cannot read {}", db.display()))?;
        }
        Ok(())
    })
    .with_context(|| format!("cannot read replica {replica}"))?;
    // Whatever the local file holds beyond the replica's pages.
    while local
        .next_page()
        .with_context(|| format!("cannot read {}", db.display()))?
    {
        if same_page_size {
            local.first_difference.get_or_insert(local.pages);
        }
    }

    println!(
        "replica {replica} at TXID {}: checksum {}, {} pages of {} bytes",
        walked.txid,
        replica_sum.value(),
        walked.commit,
        page_size.get()
    );
    let tail = match local.partial_tail {
        0 => String::new(),
        n => format!(" and a partial page of {n} bytes"),
    };
    println!(
        "local   {}: checksum {}, {} pages of {} bytes{tail}",
        db.display(),
        local.sum.value(),
        local.pages,
        local_page_size.get(),
    );
    if !same_page_size {
        bail!(
            "{} differs from the replica at TXID {}: page size {} instead of {}",
            db.display(),
            walked.txid,
            local_page_size.get(),
            page_size.get()
        );
    }
    let same = local.sum.value() == replica_sum.value()
        && local.pages == u64::from(walked.commit)
        && local.partial_tail == 0
        && local.first_difference.is_none();
    if !same {
        let first = local
            .first_difference
            .map_or_else(String::new, |p| format!("; first different page: {p}"));
        let wal = crate::staged_output::with_suffix(db, "-wal");
        let hint = match std::fs::metadata(&wal) {
            Ok(meta) if meta.len() > 0 => format!(
                "; {} is not empty and its pages are not compared: checkpoint the database \
                 (PRAGMA wal_checkpoint(TRUNCATE)) and verify again",
                wal.display()
            ),
            _ => String::new(),
        };
        bail!(
            "{} differs from the replica at TXID {}{first}{hint}",
            db.display(),
            walked.txid
        );
    }
    println!("equal");
    Ok(())
}

/// The page size in the local database's header (bytes 16-17).
fn local_page_size(db: &Path) -> anyhow::Result<PageSize> {
    let mut header = [0u8; 18];
    File::open(db)
        .and_then(|mut f| f.read_exact(&mut header))
        .with_context(|| format!("cannot read the header of {}", db.display()))?;
    PageSize::from_db_header_field(u16::from_be_bytes([header[16], header[17]]))
        .with_context(|| format!("{}: not a SQLite database", db.display()))
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
