//! Where LTX files live inside a replica, spelled as Litestream 0.5 spells it, so that a
//! replica written by one tool is read by the other.
//!
//! ```text
//! <replica root>/ltx/<level>/<min txid>-<max txid>.ltx
//!   level 0      one file per sync (L0)
//!   levels 1..8  compactions of the level below
//!   level 9      snapshots (every page of the database)
//! ```
//!
//! Levels are plain decimal directory names (`ltx/0`, `ltx/9`); file names are
//! [`LtxFileName`]s. Anything else in a level directory (temporary files, other tools'
//! files) is not part of the replica and is ignored by listings.
//!
//! This module only computes names; it never touches storage.

use std::fmt;

use walcast_ltx::LtxFileName;

/// A replica level, 0..=9.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Level(u8);

impl Level {
    /// L0: one file per sync.
    pub const L0: Level = Level(0);
    /// L9: snapshots.
    pub const SNAPSHOT: Level = Level(9);
    /// Highest level Litestream uses.
    pub const MAX: u8 = 9;

    /// `Some` for 0..=9.
    pub const fn new(n: u8) -> Option<Self> {
        if n <= Self::MAX { Some(Self(n)) } else { None }
    }

    /// The level number.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// Every level, lowest first.
    pub fn all() -> impl DoubleEndedIterator<Item = Level> {
        (0..=Self::MAX).map(Level)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The object layout of one replica: paths relative to the replica root.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaLayout;

impl ReplicaLayout {
    /// Directory (prefix) of every LTX file.
    pub const LTX_DIR: &'static str = "ltx";

    /// Directory of one level: `ltx/<level>`.
    pub fn level_dir(level: Level) -> String {
        format!("{}/{level}", Self::LTX_DIR)
    }

    /// Path of one file: `ltx/<level>/<min>-<max>.ltx`.
    pub fn file_path(level: Level, name: LtxFileName) -> String {
        format!("{}/{level}/{name}", Self::LTX_DIR)
    }

    /// The file name of a listed entry, or `None` for anything that is not an LTX file
    /// of the replica (temporary files, other spellings).
    pub fn parse_entry(entry: &str) -> Option<LtxFileName> {
        entry.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use walcast_ltx::TxId;

    #[test]
    fn paths_are_litestreams() {
        let name = LtxFileName {
            min: TxId::FIRST,
            max: TxId::new(0x2a).unwrap(),
        };
        assert_eq!(
            ReplicaLayout::file_path(Level::SNAPSHOT, name),
            "ltx/9/0000000000000001-000000000000002a.ltx"
        );
        assert_eq!(ReplicaLayout::level_dir(Level::L0), "ltx/0");
        assert_eq!(Level::new(10), None);
        assert_eq!(ReplicaLayout::parse_entry("x.ltx.tmp"), None);
    }
}
