//! `walcast inspect` for a SQLite wal-index (`-shm`): the header as SQLite validates it
//! (both copies equal, checksum, version) and the checkpoint info. A wal-index that is
//! empty, 3 bytes long (reset by a first opener) or not yet initialised is a normal state,
//! reported as such rather than as an unreadable file.

use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;

use anyhow::Context;
use serde_json::Value;
use walcast_format::wal_index::{WAL_INDEX_HEADER_SIZE, WalIndex, WalIndexError};

use super::Report;

/// Times to re-read a header whose two copies differ: a live writer may be mid-update.
const READ_ATTEMPTS: usize = 3;

/// Reads a SQLite wal-index (-shm) file and reports what it holds.
pub fn inspect(path: &Path) -> anyhow::Result<Report> {
    let mut file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let file_size = file.metadata()?.len();
    let mut head = read_head(&mut file, path)?;
    let mut parsed = WalIndex::parse(&head);
    for _ in 1..READ_ATTEMPTS {
        if !matches!(parsed, Err(WalIndexError::CopiesDiffer { .. })) {
            break;
        }
        head = read_head(&mut file, path)?;
        parsed = WalIndex::parse(&head);
    }
    let mut report = Report::default();
    report.field("kind", "shm").field("file_size", file_size);
    match parsed {
        Ok(index) => valid(&mut report, &index),
        Err(problem) => invalid(&mut report, &head, &problem),
    }
    Ok(report)
}

fn read_head(file: &mut File, path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(WAL_INDEX_HEADER_SIZE);
    file.rewind()?;
    file.by_ref()
        .take(WAL_INDEX_HEADER_SIZE as u64)
        .read_to_end(&mut head)
        .with_context(|| format!("{}: cannot read the header at offset 0", path.display()))?;
    Ok(head)
}

fn valid(report: &mut Report, index: &WalIndex) {
    let h = &index.header;
    let c = &index.checkpoint;
    report
        .field("state", "initialised")
        .field("header_valid", true)
        .field("page_size", h.page_size.map(|p| p.get()))
        .field("byte_order", h.word_order.name())
        .field("change", h.change)
        .field("mx_frame", h.mx_frame)
        .field("n_page", h.n_page)
        .field("salt1", h.salt1)
        .field("salt2", h.salt2)
        .field(
            "frame_checksum",
            vec![h.frame_checksum.s1, h.frame_checksum.s2],
        )
        .field("n_backfill", c.n_backfill)
        .field("n_backfill_attempted", c.n_backfill_attempted)
        .field("read_marks", c.read_marks.to_vec());
}

fn invalid(report: &mut Report, head: &[u8], problem: &WalIndexError) {
    let state = match (head.len(), problem) {
        (0, _) => "empty: no connection has opened the database since the file was created",
        (3, _) => "reset to 3 bytes by a first opener; SQLite rebuilds it by recovery",
        (_, WalIndexError::Truncated { .. }) => "truncated: shorter than the 136-byte header",
        (_, WalIndexError::NotInitialised) => "uninitialised: no connection has run recovery yet",
        (_, WalIndexError::CopiesDiffer { .. }) => {
            "header copies differ: a write was in progress or the file is damaged"
        }
        _ => "header invalid: SQLite would rebuild it by recovery",
    };
    report
        .field("state", state)
        .field("header_valid", false)
        .field("header_problem", problem.to_string());
    for key in [
        "page_size",
        "byte_order",
        "change",
        "mx_frame",
        "n_page",
        "salt1",
        "salt2",
    ] {
        report.field(key, Value::Null);
    }
    match WalIndex::parse_checkpoint_info(head) {
        Ok(c) => report
            .field("n_backfill", c.n_backfill)
            .field("n_backfill_attempted", c.n_backfill_attempted)
            .field("read_marks", c.read_marks.to_vec()),
        Err(_) => report
            .field("n_backfill", Value::Null)
            .field("n_backfill_attempted", Value::Null)
            .field("read_marks", Value::Null),
    };
}
