//! `walcast inspect` for a SQLite database file.

use std::path::Path;

use super::Report;

/// Reads a SQLite database file and reports what it holds.
pub fn inspect(path: &Path) -> anyhow::Result<Report> {
    let mut report = Report::default();
    report.field("kind", "db");
    anyhow::bail!(
        "{}: inspecting this kind of file is not implemented yet",
        path.display()
    )
}
