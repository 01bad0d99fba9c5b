//! Writing the LTX files a sync produces into the staging directory: an L0 file of the
//! pages changed by the committed frames of one sync, or a snapshot of the whole database
//! as of `mxFrame` (reference `sqlite-wal-and-locks.md` §6 "Initial snapshot").
//!
//! Both run while PROTECTED and never advance the read mark: the frames they re-read cannot
//! change, and for a snapshot every page a checkpoint may copy into the database file during
//! the copy (frames up to the mark, which is at most the `mxFrame` read) is taken from the
//! WAL instead, so a page torn by a concurrent backfill is never used.

use std::fs::File;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use walcast_format::PageSize;
use walcast_format::db_header::DatabaseHeader;
use walcast_lock::Protected;
use walcast_ltx::{Encoder, Header, LtxFileName, TxId};

use super::frames::SyncFrames;
use super::staging::StagingDir;

/// WAL header and frame header sizes (SQLite's file format).
const WAL_HEADER_SIZE: u64 = 32;
const FRAME_HEADER_SIZE: u64 = 24;
const DB_HEADER_SIZE: usize = 100;

/// What was written.
#[derive(Clone, Copy, Debug)]
pub struct StagedFile {
    pub name: LtxFileName,
    pub pages: u64,
    pub bytes: u64,
    pub commit: u32,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn frame_size(page_size: PageSize) -> u64 {
    FRAME_HEADER_SIZE + u64::from(page_size.get())
}

/// Header for an L0 file (or snapshot) at `txid` covering the frames recorded, if any.
fn l0_header(frames: &SyncFrames, page_size: PageSize, commit: u32, txid: TxId) -> Header {
    let mut header = Header::new(page_size, commit, txid, txid, now_ms());
    if let (Some((first, last)), Some((_, salts))) = (frames.frame_range(), frames.generation()) {
        header.wal_offset = WAL_HEADER_SIZE + u64::from(first - 1) * frame_size(page_size);
        header.wal_size = u64::from(last - first + 1) * frame_size(page_size);
        (header.wal_salt1, header.wal_salt2) = salts;
    }
    header
}

/// Stages the pages changed by `frames` as the L0 file of `txid`. Pages without an
/// in-memory copy are read again from the WAL, which needs `wal` (still PROTECTED).
pub fn write_changes(
    frames: &SyncFrames,
    wal: Option<&Protected>,
    txid: TxId,
    staging: &StagingDir,
) -> anyhow::Result<StagedFile> {
    let (Some(commit), Some((page_size, _))) = (frames.commit(), frames.generation()) else {
        bail!("frames without a commit frame or page size");
    };
    if frames.ends_inside_transaction() {
        bail!("a sync ended inside a transaction (mxFrame is not a commit frame)");
    }
    let header = l0_header(frames, page_size, commit, txid);
    let name = header.file_name();
    let (tmp, file) = staging.create_l0(name)?;
    let mut encoder = Encoder::new(file, header).with_context(|| format!("{}", tmp.display()))?;
    let mut buf = Vec::new();
    for (pgno, frame, copy) in frames.pages_within_commit() {
        let page = match (copy, wal) {
            (Some(copy), _) => copy,
            (None, Some(wal)) => wal.reread_page(frame, pgno, &mut buf)?,
            (None, None) => {
                bail!("page {pgno} was not kept in memory and the WAL is not protected")
            }
        };
        encoder
            .write_page(pgno, page)
            .with_context(|| format!("{}: page {pgno}", tmp.display()))?;
    }
    finish(encoder, staging, &tmp, name, commit)
}

fn finish(
    encoder: Encoder<File>,
    staging: &StagingDir,
    tmp: &Path,
    name: LtxFileName,
    commit: u32,
) -> anyhow::Result<StagedFile> {
    let encoded = encoder
        .finish(None)
        .with_context(|| format!("{}", tmp.display()))?;
    staging.commit_l0(tmp, encoded.writer, name)?;
    Ok(StagedFile {
        name,
        pages: encoded.page_count,
        bytes: encoded.size,
        commit,
    })
}

/// Page size and size in pages of the database as of the frames read: from the WAL when it
/// has committed frames, else from the database file (fully checkpointed then).
fn snapshot_geometry(
    protected: &Protected,
    frames: &SyncFrames,
) -> anyhow::Result<(PageSize, u32)> {
    let db = &protected.paths().db;
    if let (Some(commit), Some(page_size)) =
        (frames.commit(), protected.wal_index().header.page_size)
    {
        return Ok((page_size, commit));
    }
    let mut bytes = [0u8; DB_HEADER_SIZE];
    let got = protected.read_db(0, &mut bytes)?;
    let header = DatabaseHeader::parse(&bytes[..got])
        .with_context(|| format!("{}: cannot read the database header", db.display()))?;
    let pages = header.page_count(protected.db_len()?).pages;
    let pages = u32::try_from(pages)
        .with_context(|| format!("{}: {pages} pages is more than SQLite allows", db.display()))?;
    Ok((header.page_size, pages))
}

/// Stages a snapshot of the whole database at `txid`: the database file with every frame
/// `1..=mxFrame` of `frames` applied, cut to the last commit's size, lock-byte page
/// omitted. At TXID 1 it is a snapshot in LTX terms; later it is an L0 file holding every
/// page (as Litestream writes after a discontinuity), which restores the same way.
pub fn write_snapshot(
    protected: &Protected,
    frames: &SyncFrames,
    txid: TxId,
    staging: &StagingDir,
) -> anyhow::Result<StagedFile> {
    let (page_size, commit) = snapshot_geometry(protected, frames)?;
    let header = l0_header(frames, page_size, commit, txid);
    let name = header.file_name();
    let (tmp, file) = staging.create_l0(name)?;
    let mut encoder = Encoder::new(file, header).with_context(|| format!("{}", tmp.display()))?;
    let lock_page = page_size.lock_byte_page();
    let mut frame_buf = Vec::new();
    let mut db_page = vec![0u8; page_size.as_usize()];
    for pgno in (1..=commit).filter(|&p| p != lock_page) {
        let page = match frames.newest(pgno) {
            Some((_, Some(copy))) => copy,
            Some((frame, None)) => protected.reread_page(frame, pgno, &mut frame_buf)?,
            None => {
                let got = protected.read_db(page_size.page_offset(pgno), &mut db_page)?;
                db_page[got..].fill(0);
                &db_page[..]
            }
        };
        encoder
            .write_page(pgno, page)
            .with_context(|| format!("{}: page {pgno}", tmp.display()))?;
    }
    finish(encoder, staging, &tmp, name, commit)
}
