//! `walcast inspect` for a SQLite database file: every field of the 100-byte header and
//! the page count SQLite would use. Reads only the header and the file length.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::Context;
use walcast_format::db_header::{DB_HEADER_SIZE, DatabaseHeader, JournalVersion, PageCountSource};

use super::Report;

/// Reads a SQLite database file and reports what it holds.
pub fn inspect(path: &Path) -> anyhow::Result<Report> {
    let mut file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let file_size = file.metadata()?.len();
    let mut head = Vec::with_capacity(DB_HEADER_SIZE);
    file.by_ref()
        .take(DB_HEADER_SIZE as u64)
        .read_to_end(&mut head)
        .with_context(|| format!("{}: cannot read the header at offset 0", path.display()))?;
    let h = DatabaseHeader::parse(&head).map_err(|e| {
        anyhow::anyhow!("{}: not a database SQLite would open: {e}", path.display())
    })?;
    let count = h.page_count(file_size);
    let mut report = Report::default();
    report
        .field("kind", "db")
        .field("file_size", file_size)
        .field("page_size", h.page_size.get())
        .field("page_count", count.pages)
        .field(
            "page_count_source",
            match count.source {
                PageCountSource::Header => "header",
                PageCountSource::FileSize => "file_size",
            },
        )
        .field("write_version", h.write_version.number())
        .field("read_version", h.read_version.number())
        .field(
            "journal",
            if h.is_wal() {
                "wal"
            } else if h.write_version == JournalVersion::Rollback
                && h.read_version == JournalVersion::Rollback
            {
                "rollback"
            } else {
                "mixed"
            },
        )
        .field("text_encoding", h.text_encoding.name())
        .field("reserved_bytes", h.reserved_bytes)
        .field("change_counter", h.change_counter)
        .field("header_page_count", h.header_page_count)
        .field("version_valid_for", h.version_valid_for)
        .field("sqlite_version", h.sqlite_version)
        .field("freelist_trunk_page", h.freelist_trunk_page)
        .field("freelist_pages", h.freelist_pages)
        .field("schema_cookie", h.schema_cookie)
        .field("schema_format", h.schema_format)
        .field("default_cache_size", h.default_cache_size)
        .field("largest_root_page", h.largest_root_page)
        .field("user_version", h.user_version)
        .field("incremental_vacuum", h.incremental_vacuum)
        .field("application_id", h.application_id)
        .field("lock_byte_page", h.lock_byte_page());
    Ok(report)
}
