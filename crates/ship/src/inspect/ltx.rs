//! `walcast inspect` for an LTX file.

use std::path::Path;

use super::Report;

/// Reads an LTX file and reports what it holds.
pub fn inspect(path: &Path) -> anyhow::Result<Report> {
    let mut report = Report::default();
    report.field("kind", "ltx");
    anyhow::bail!(
        "{}: inspecting this kind of file is not implemented yet",
        path.display()
    )
}
