//! `walcast inspect` for a SQLite WAL file.

use std::path::Path;

use super::Report;

/// Reads a SQLite WAL file and reports what it holds.
pub fn inspect(path: &Path) -> anyhow::Result<Report> {
    let mut report = Report::default();
    report.field("kind", "wal");
    anyhow::bail!(
        "{}: inspecting this kind of file is not implemented yet",
        path.display()
    )
}
