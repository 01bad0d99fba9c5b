//! Restore planning: which LTX files, in which order, rebuild the database at a target
//! (the latest state, a TXID, or a moment), chosen as Litestream 0.5's `CalcRestorePlan`
//! chooses them.
//!
//! 1. Start from the newest level-9 snapshot at or before the target, if any.
//! 2. Repeatedly append the file, from any level, that starts at or before the current
//!    max TXID + 1 and reaches the highest max TXID. Ties go to the lower min TXID, then
//!    to the higher level (fewer, larger files).
//! 3. The chain must start at TXID 1 (only a file that starts there holds every page).
//!
//! Unlike Litestream, a plan never silently stops short: a hole in the TXIDs, a target
//! TXID that no file ends at, or a target beyond the newest file is an error that names
//! the missing TXID range or the files around it, because restoring anything but the
//! state asked for would hand back the wrong database.
//!
//! A file is "at or before" a target when its max TXID is at or before the target TXID,
//! or its timestamp is strictly before the target moment, as Litestream compares
//! (`CreatedAt.Before(timestamp)`), so that both restore the same state for a moment.
//! A moment after the newest file plans the latest state (Litestream 0.5.17 refuses it:
//! "timestamp does not exist"); the summary a restore prints names the TXID reached.
//!
//! This module only reasons about names and timestamps ([`Catalog`]); it never reads
//! pages and never trusts that a listed file is sound (restore verifies every file).

use std::fmt;

use walcast_ltx::{LtxFileName, TxId, rfc3339_millis};

use crate::error::ReplicaError;
use crate::layout::Level;
use crate::source::ReplicaSource;
use crate::store::ObjectLayout;

/// What state to restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreTarget {
    /// The newest state the replica holds.
    Latest,
    /// The state right after this transaction.
    TxId(TxId),
    /// The newest state whose file was made strictly before this moment (Unix ms), as
    /// Litestream's `-timestamp` chooses it.
    Timestamp(i64),
}

impl fmt::Display for RestoreTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Latest => write!(f, "the latest TXID"),
            Self::TxId(t) => write!(f, "TXID {t}"),
            Self::Timestamp(ms) => write!(f, "timestamp {}", rfc3339_millis(*ms)),
        }
    }
}

/// One LTX file of a replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaFile {
    /// Its level.
    pub level: Level,
    /// Its TXID range.
    pub name: LtxFileName,
    /// Its size in bytes, as listed.
    pub size: u64,
    /// Its header timestamp (Unix ms), when it was read.
    pub timestamp_ms: Option<i64>,
    /// How its replica names level directories (what [`ReplicaFile::path`] spells).
    pub layout: ObjectLayout,
}

impl ReplicaFile {
    /// Its path inside the replica as its backend spells it: `ltx/<level>/<min>-<max>.ltx`
    /// (directories, GCS, Azure) or `<level as 4 hex>/<min>-<max>.ltx` (S3).
    pub fn path(&self) -> String {
        self.layout.file_path(self.level, self.name)
    }
}

/// Everything a replica holds, by level then TXID.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    files: Vec<ReplicaFile>,
}

/// Whether [`Catalog::read`] reads each file's header timestamp (one small read per
/// file), which planning for a [`RestoreTarget::Timestamp`] needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timestamps {
    /// Read them.
    Read,
    /// Leave them out.
    Skip,
}

/// Why no plan reaches the target. Files are named by their path inside the replica.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// The replica holds no LTX file at all.
    #[error("the replica holds no LTX files (nothing was replicated there, or wrong path)")]
    Empty,
    /// No file is at or before the target.
    #[error("nothing to restore at {target}: the oldest file is {oldest} (use a later target)")]
    NothingAtTarget {
        /// The target.
        target: RestoreTarget,
        /// The oldest file of the replica.
        oldest: String,
    },
    /// No file at or before the target starts at TXID 1, so no page set is complete.
    #[error(
        "no snapshot: TXIDs {}-{} are missing (the oldest file at or before the target is {first}); \
         the replica cannot be restored at this target",
        TxId::FIRST,
        missing_to
    )]
    NoStart {
        /// Last missing TXID.
        missing_to: TxId,
        /// The file the chain would need to start before.
        first: String,
    },
    /// A hole in the TXIDs.
    #[error(
        "TXIDs {missing_from}-{missing_to} are missing: no file continues after TXID {after}, \
         the next file is {next} (deleted objects, or files from another database?)"
    )]
    Gap {
        /// The last TXID the chain reaches.
        after: TxId,
        /// First missing TXID.
        missing_from: TxId,
        /// Last missing TXID.
        missing_to: TxId,
        /// The file after the hole.
        next: String,
    },
    /// The target TXID lies inside a compacted file and no smaller file ends at it.
    #[error(
        "TXID {target} cannot be restored exactly: it lies inside {file}; the nearest \
         restorable TXIDs are {below} and {above}"
    )]
    InsideFile {
        /// The target TXID.
        target: TxId,
        /// The compacted file covering it.
        file: String,
        /// Restorable TXID below the target.
        below: TxId,
        /// Restorable TXID above the target (the covering file's max).
        above: TxId,
    },
    /// The target TXID is newer than anything the replica holds.
    #[error("TXID {target} is beyond the replica's newest TXID {newest}")]
    Beyond {
        /// The target TXID.
        target: TxId,
        /// The newest TXID the replica reaches.
        newest: TxId,
    },
    /// A file's timestamp is unknown, so it cannot be compared with a target moment.
    #[error("{file}: header timestamp not read; cannot plan a restore by timestamp")]
    NoTimestamp {
        /// The file.
        file: String,
    },
}

/// The files to merge, oldest first; the first starts at TXID 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestorePlan {
    files: Vec<ReplicaFile>,
}

impl RestorePlan {
    /// The files, in the order they apply.
    pub fn files(&self) -> &[ReplicaFile] {
        &self.files
    }

    /// The TXID the restored database will be at.
    pub fn txid(&self) -> TxId {
        self.files.last().map_or(TxId::FIRST, |f| f.name.max)
    }

    /// Total bytes of the planned files, as listed.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

impl Catalog {
    /// A catalog of these files (any order).
    pub fn new(mut files: Vec<ReplicaFile>) -> Self {
        files.sort_by_key(|f| (f.level, f.name));
        Self { files }
    }

    /// Lists every level of `source`, reading header timestamps if asked.
    pub fn read(source: &dyn ReplicaSource, timestamps: Timestamps) -> Result<Self, ReplicaError> {
        let mut files = Vec::new();
        for level in Level::all() {
            for info in source.list(level)? {
                let timestamp_ms = match timestamps {
                    Timestamps::Read => Some(source.header_timestamp(level, info.name)?),
                    Timestamps::Skip => None,
                };
                files.push(ReplicaFile {
                    level,
                    name: info.name,
                    size: info.size,
                    timestamp_ms,
                    layout: source.layout(),
                });
            }
        }
        Ok(Self::new(files))
    }

    /// Every file, by level then TXID.
    pub fn files(&self) -> &[ReplicaFile] {
        &self.files
    }

    /// True if the replica holds no LTX file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The plan that rebuilds the database at `target` (see the module docs).
    pub fn plan(&self, target: RestoreTarget) -> Result<RestorePlan, PlanError> {
        let oldest = self
            .files
            .iter()
            .min_by_key(|f| (f.name.min, f.name.max))
            .ok_or(PlanError::Empty)?;
        let mut eligible = Vec::new();
        for file in &self.files {
            if at_or_before(file, target)? {
                eligible.push(*file);
            }
        }
        let chain = chain(&eligible);
        let reached = chain.last().map(|f| f.name.max);
        check_unreachable(&eligible, reached, target, oldest)?;
        if let (RestoreTarget::TxId(t), Some(r)) = (target, reached)
            && r != t
        {
            return Err(self.short_of(t, r));
        }
        Ok(RestorePlan { files: chain })
    }

    /// Why the chain reached `reached` but not the target TXID `target`.
    fn short_of(&self, target: TxId, reached: TxId) -> PlanError {
        // A file that continues the chain but ends past the target covers it.
        let covering = self
            .files
            .iter()
            .filter(|f| f.name.max > reached && f.name.min.get() <= reached.get().saturating_add(1))
            .min_by_key(|f| (f.name.max, f.name.min));
        if let Some(f) = covering {
            return PlanError::InsideFile {
                target,
                file: f.path(),
                below: reached,
                above: f.name.max,
            };
        }
        match self
            .files
            .iter()
            .filter(|f| f.name.max > reached)
            .min_by_key(|f| (f.name.min, f.name.max))
        {
            Some(next) => gap(reached, next),
            None => PlanError::Beyond {
                target,
                newest: reached,
            },
        }
    }
}

fn at_or_before(file: &ReplicaFile, target: RestoreTarget) -> Result<bool, PlanError> {
    Ok(match target {
        RestoreTarget::Latest => true,
        RestoreTarget::TxId(t) => file.name.max <= t,
        RestoreTarget::Timestamp(ms) => {
            let ts = file
                .timestamp_ms
                .ok_or_else(|| PlanError::NoTimestamp { file: file.path() })?;
            ts < ms
        }
    })
}

/// Steps 1 and 2 of the module docs, over the files at or before the target.
fn chain(eligible: &[ReplicaFile]) -> Vec<ReplicaFile> {
    let mut chain: Vec<ReplicaFile> = eligible
        .iter()
        .filter(|f| f.level == Level::SNAPSHOT && f.name.min == TxId::FIRST)
        .max_by_key(|f| f.name.max)
        .copied()
        .into_iter()
        .collect();
    loop {
        let current = chain.last().map(|f| f.name.max);
        let continues = |f: &&ReplicaFile| match current {
            None => f.name.min == TxId::FIRST,
            Some(c) => f.name.min.get() <= c.get().saturating_add(1) && f.name.max > c,
        };
        let best = eligible.iter().filter(continues).max_by(|a, b| {
            (a.name.max.cmp(&b.name.max))
                .then(b.name.min.cmp(&a.name.min))
                .then(a.level.cmp(&b.level))
        });
        match best {
            Some(file) => chain.push(*file),
            None => return chain,
        }
    }
}

/// Files at or before the target that the chain could not reach mean a hole.
fn check_unreachable(
    eligible: &[ReplicaFile],
    reached: Option<TxId>,
    target: RestoreTarget,
    oldest: &ReplicaFile,
) -> Result<(), PlanError> {
    let next = eligible
        .iter()
        .filter(|f| reached.is_none_or(|r| f.name.max > r))
        .min_by_key(|f| (f.name.min, f.name.max));
    match (reached, next) {
        (_, None) if reached.is_some() => Ok(()),
        (_, None) => Err(PlanError::NothingAtTarget {
            target,
            oldest: oldest.path(),
        }),
        (None, Some(first)) => Err(PlanError::NoStart {
            missing_to: first.name.min.prev().unwrap_or(TxId::FIRST),
            first: first.path(),
        }),
        (Some(r), Some(next)) => Err(gap(r, next)),
    }
}

fn gap(after: TxId, next: &ReplicaFile) -> PlanError {
    PlanError::Gap {
        after,
        missing_from: after.next().unwrap_or(after),
        missing_to: next.name.min.prev().unwrap_or(next.name.min),
        next: next.path(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txid(n: u64) -> TxId {
        TxId::new(n).unwrap()
    }

    /// A file whose header timestamp is its max TXID in seconds.
    fn file(level: u8, min: u64, max: u64) -> ReplicaFile {
        ReplicaFile {
            level: Level::new(level).unwrap(),
            name: LtxFileName {
                min: txid(min),
                max: txid(max),
            },
            size: 100,
            timestamp_ms: Some(max as i64 * 1000),
            layout: ObjectLayout::LtxLevels,
        }
    }

    fn ranges(plan: &RestorePlan) -> Vec<(u8, u64, u64)> {
        plan.files()
            .iter()
            .map(|f| (f.level.get(), f.name.min.get(), f.name.max.get()))
            .collect()
    }

    /// L9 snapshot 1-10; L1 1-5 and 6-12; L0 every TXID 1..=15.
    fn typical() -> Catalog {
        let mut files = vec![file(9, 1, 10), file(1, 1, 5), file(1, 6, 12)];
        files.extend((1..=15).map(|t| file(0, t, t)));
        Catalog::new(files)
    }

    #[test]
    fn latest_starts_at_the_newest_snapshot_then_takes_the_longest_reach() {
        let plan = typical().plan(RestoreTarget::Latest).unwrap();
        assert_eq!(
            ranges(&plan),
            vec![
                (9, 1, 10),
                (1, 6, 12),
                (0, 13, 13),
                (0, 14, 14),
                (0, 15, 15)
            ]
        );
        assert_eq!(plan.txid(), txid(15));
        assert_eq!(plan.bytes(), 500);
    }

    #[test]
    fn a_txid_target_uses_only_files_ending_at_or_before_it() {
        let c = typical();
        let plan = c.plan(RestoreTarget::TxId(txid(11))).unwrap();
        assert_eq!(ranges(&plan), vec![(9, 1, 10), (0, 11, 11)]);
        let plan = c.plan(RestoreTarget::TxId(txid(7))).unwrap();
        assert_eq!(ranges(&plan), vec![(1, 1, 5), (0, 6, 6), (0, 7, 7)]);
        let plan = c.plan(RestoreTarget::TxId(txid(1))).unwrap();
        assert_eq!(ranges(&plan), vec![(0, 1, 1)]);
        let plan = c.plan(RestoreTarget::TxId(txid(10))).unwrap();
        assert_eq!(ranges(&plan), vec![(9, 1, 10)]);
    }

    #[test]
    fn a_timestamp_target_uses_files_made_strictly_before_it() {
        let c = typical();
        let plan = c.plan(RestoreTarget::Timestamp(12_001)).unwrap();
        assert_eq!(ranges(&plan), vec![(9, 1, 10), (1, 6, 12)]);
        let plan = c.plan(RestoreTarget::Timestamp(12_000)).unwrap();
        assert_eq!(ranges(&plan), vec![(9, 1, 10), (0, 11, 11)]);
        let err = c.plan(RestoreTarget::Timestamp(1000)).unwrap_err();
        assert!(
            matches!(&err, PlanError::NothingAtTarget { oldest, .. }
                if oldest == "ltx/0/0000000000000001-0000000000000001.ltx"),
            "{err}"
        );
        let mut unread = file(0, 1, 1);
        unread.timestamp_ms = None;
        let err = Catalog::new(vec![unread])
            .plan(RestoreTarget::Timestamp(5))
            .unwrap_err();
        assert!(matches!(err, PlanError::NoTimestamp { .. }), "{err}");
    }

    #[test]
    fn ties_go_to_the_lower_min_then_the_higher_level() {
        let c = Catalog::new(vec![file(0, 1, 3), file(1, 4, 12), file(2, 1, 12)]);
        assert_eq!(
            ranges(&c.plan(RestoreTarget::Latest).unwrap()),
            vec![(2, 1, 12)]
        );
        let c = Catalog::new(vec![
            file(9, 1, 5),
            file(1, 6, 12),
            file(3, 6, 12),
            file(0, 6, 6),
        ]);
        assert_eq!(
            ranges(&c.plan(RestoreTarget::Latest).unwrap()),
            vec![(9, 1, 5), (3, 6, 12)]
        );
        // Overlapping files are fine: the chain only needs to start at or before max + 1.
        let c = Catalog::new(vec![file(9, 1, 5), file(1, 3, 8)]);
        assert_eq!(
            ranges(&c.plan(RestoreTarget::Latest).unwrap()),
            vec![(9, 1, 5), (1, 3, 8)]
        );
    }

    #[test]
    fn a_hole_is_an_error_naming_the_missing_txids_and_the_next_file() {
        let c = Catalog::new(vec![file(9, 1, 5), file(0, 8, 8), file(0, 9, 9)]);
        let err = c.plan(RestoreTarget::Latest).unwrap_err();
        assert_eq!(
            err,
            PlanError::Gap {
                after: txid(5),
                missing_from: txid(6),
                missing_to: txid(7),
                next: "ltx/0/0000000000000008-0000000000000008.ltx".into(),
            }
        );
        assert!(
            err.to_string()
                .contains("TXIDs 0000000000000006-0000000000000007 are missing"),
            "{err}"
        );
        // Restoring before the hole still works; at or after it does not.
        assert_eq!(
            c.plan(RestoreTarget::TxId(txid(5))).unwrap().txid(),
            txid(5)
        );
        assert!(matches!(
            c.plan(RestoreTarget::TxId(txid(7))),
            Err(PlanError::Gap { .. })
        ));
    }

    #[test]
    fn a_chain_must_start_at_txid_1() {
        let c = Catalog::new(vec![file(0, 3, 3), file(0, 4, 4)]);
        let err = c.plan(RestoreTarget::Latest).unwrap_err();
        assert_eq!(
            err,
            PlanError::NoStart {
                missing_to: txid(2),
                first: "ltx/0/0000000000000003-0000000000000003.ltx".into(),
            }
        );
        assert!(
            err.to_string()
                .contains("0000000000000001-0000000000000002")
        );
    }

    #[test]
    fn a_txid_inside_a_compaction_or_beyond_the_replica_is_refused() {
        let c = Catalog::new(vec![file(9, 1, 5), file(1, 6, 10)]);
        assert_eq!(
            c.plan(RestoreTarget::TxId(txid(7))).unwrap_err(),
            PlanError::InsideFile {
                target: txid(7),
                file: "ltx/1/0000000000000006-000000000000000a.ltx".into(),
                below: txid(5),
                above: txid(10),
            }
        );
        assert_eq!(
            c.plan(RestoreTarget::TxId(txid(11))).unwrap_err(),
            PlanError::Beyond {
                target: txid(11),
                newest: txid(10),
            }
        );
        assert!(matches!(
            c.plan(RestoreTarget::TxId(txid(1))),
            Err(PlanError::NothingAtTarget { .. })
        ));
    }

    #[test]
    fn an_empty_replica_has_no_plan() {
        assert_eq!(
            Catalog::default().plan(RestoreTarget::Latest),
            Err(PlanError::Empty)
        );
    }
}
