//! `walcast inspect` for a SQLite WAL: the header, and the valid end of the log exactly as
//! SQLite's recovery decides it. Streams the file through one frame of memory, so a WAL of
//! any size inspects in constant memory.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;
use walcast_format::wal::{WalReadError, WalReader, frames_in_len};

use super::Report;

/// Read-ahead for small-page WALs: one syscall per frame would dominate at 512-byte pages.
const READ_BUFFER: usize = 256 * 1024;

/// Reads a SQLite WAL file and reports what it holds.
pub fn inspect(path: &Path) -> anyhow::Result<Report> {
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let file_size = file.metadata()?.len();
    if file_size == 0 {
        return Ok(empty_wal());
    }
    let reader = WalReader::open(BufReader::with_capacity(READ_BUFFER, file))
        .map_err(|e| read_error(path, e))?;
    let header = *reader.header();
    let r = reader.recover().map_err(|e| read_error(path, e))?;
    let commit = r.last_commit;
    let mut report = Report::default();
    report
        .field("kind", "wal")
        .field("file_size", file_size)
        .field("page_size", header.page_size.get())
        .field("byte_order", header.word_order.name())
        .field("checkpoint_seq", header.checkpoint_seq)
        .field("salt1", header.salts.salt1)
        .field("salt2", header.salts.salt2)
        .field("frames_total", frames_in_len(header.page_size, file_size))
        .field("frames_valid", r.frames_valid)
        .field("frames_committed", r.mx_frame())
        .field("frames_uncommitted", r.uncommitted_frames())
        .field("transactions", r.transactions)
        .field("db_size_pages", commit.map(|c| c.db_size_pages))
        .field(
            "committed_checksum",
            commit.map(|c| vec![c.checksum.s1, c.checksum.s2]),
        )
        .field("stop_reason", r.stop.reason.name())
        .field("stop_frame", r.stop.frame)
        .field("stop_offset", r.stop.offset);
    Ok(report)
}

/// A 0-byte WAL: what SQLite leaves after `wal_checkpoint(TRUNCATE)`; it holds nothing.
fn empty_wal() -> Report {
    let mut report = Report::default();
    report
        .field("kind", "wal")
        .field("file_size", 0)
        .field(
            "state",
            "empty: no frames (SQLite truncates the WAL to 0 bytes on TRUNCATE checkpoints)",
        )
        .field("page_size", Value::Null)
        .field("byte_order", Value::Null)
        .field("checkpoint_seq", Value::Null)
        .field("salt1", Value::Null)
        .field("salt2", Value::Null)
        .field("frames_total", 0)
        .field("frames_valid", 0)
        .field("frames_committed", 0)
        .field("frames_uncommitted", 0)
        .field("transactions", 0)
        .field("db_size_pages", Value::Null)
        .field("stop_reason", "end_of_file");
    report
}

fn read_error(path: &Path, err: WalReadError) -> anyhow::Error {
    match err {
        WalReadError::Header(e) => {
            anyhow::anyhow!("{}: not a WAL SQLite would use: {e}", path.display())
        }
        other => anyhow::anyhow!("{}: {other}", path.display()),
    }
}
