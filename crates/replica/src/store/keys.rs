//! Object keys of LTX files in each kind of object store, exactly as Litestream 0.5.17
//! writes them (checked against the real binary in `tests/store_litestream.rs`):
//!
//! ```text
//! s3            <path>/<level as 4 hex digits>/<min>-<max>.ltx   e.g. app/0009/0000000000000001-000000000000002a.ltx
//! gs, abs       <path>/ltx/<level>/<min>-<max>.ltx               (as the file layout, crate::layout)
//! ```
//!
//! (Litestream's shared `LTXFilePath` helper spells `ltx/<level>`, but its S3 client in
//! 0.5.17 uses the hex level directories above; the GCS and ABS spelling follows its source,
//! since no such server runs here to check it against.)
//!
//! This module only computes names; it never touches storage.

use walcast_ltx::LtxFileName;

use crate::layout::{Level, ReplicaLayout};

/// How one backend names level directories.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectLayout {
    /// `<level as %04x>/` (S3 and S3-compatible stores).
    HexLevels,
    /// `ltx/<level>/` (GCS, Azure Blob; also the directory layout).
    LtxLevels,
}

impl ObjectLayout {
    /// The level's directory, relative to the replica path (no trailing `/`).
    pub fn level_dir(self, level: Level) -> String {
        match self {
            ObjectLayout::HexLevels => format!("{:04x}", level.get()),
            ObjectLayout::LtxLevels => ReplicaLayout::level_dir(level),
        }
    }

    /// One file's key, relative to the replica path.
    pub fn file_path(self, level: Level, name: LtxFileName) -> String {
        format!("{}/{name}", self.level_dir(level))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use walcast_ltx::TxId;

    #[test]
    fn spellings() {
        let name = LtxFileName {
            min: TxId::FIRST,
            max: TxId::new(0x2a).unwrap(),
        };
        assert_eq!(
            ObjectLayout::HexLevels.file_path(Level::SNAPSHOT, name),
            "0009/0000000000000001-000000000000002a.ltx"
        );
        assert_eq!(
            ObjectLayout::LtxLevels.file_path(Level::SNAPSHOT, name),
            "ltx/9/0000000000000001-000000000000002a.ltx"
        );
    }
}
