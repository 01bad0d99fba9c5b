//! When compaction, snapshots and retention are due: the intervals of levels L1..Ln, the
//! snapshot interval and retention, and L0 retention ([`LevelSchedule`]), and the
//! wall-clock boundaries they align to ([`boundary`]).
//!
//! The defaults follow Litestream 0.5.x: levels `[30s, 5m, 1h]`, `snapshot.interval`
//! 24h, `snapshot.retention` 24h, `l0-retention` 5m, as its source sets them
//! (`compaction_level.go`, `store.go` at 63225f1, just after v0.5.16; reference notes
//! litestream-and-ltx.md §1). The 0.5.17 binary was built from a later commit that is not
//! in our mirror and does not print its defaults, so they are not re-checked against it;
//! a user who relies on exact values sets them in the config. Litestream's `l0-retention-check-interval` (15s) is not kept:
//! L0 retention is checked on every [`crate::compact::Compactor::run_due`], which costs no
//! request unless something can be deleted.
//!
//! This module only computes times; it never touches a replica.

use std::time::{Duration, SystemTime};

use crate::compact::error::CompactError;
use crate::layout::Level;

/// Highest compaction level below the snapshots (L1..L8).
pub const MAX_COMPACTION_LEVELS: usize = 8;

/// The compaction schedule of one replica (see the module docs for the defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LevelSchedule {
    levels: Vec<Duration>,
    snapshot_interval: Duration,
    snapshot_retention: Duration,
    l0_retention: Duration,
}

impl Default for LevelSchedule {
    fn default() -> Self {
        Self {
            levels: vec![
                Duration::from_secs(30),
                Duration::from_secs(5 * 60),
                Duration::from_secs(60 * 60),
            ],
            snapshot_interval: Duration::from_secs(24 * 60 * 60),
            snapshot_retention: Duration::from_secs(24 * 60 * 60),
            l0_retention: Duration::from_secs(5 * 60),
        }
    }
}

impl LevelSchedule {
    /// A schedule: `levels[0]` is L1's interval, `levels[1]` L2's, and so on.
    ///
    /// Refused: more than 8 levels (L9 holds snapshots), and any interval or the snapshot
    /// interval under one millisecond (a boundary every instant is no schedule).
    pub fn new(
        levels: Vec<Duration>,
        snapshot_interval: Duration,
        snapshot_retention: Duration,
        l0_retention: Duration,
    ) -> Result<Self, CompactError> {
        if levels.len() > MAX_COMPACTION_LEVELS {
            return Err(CompactError::Schedule {
                detail: format!(
                    "{} compaction levels given, at most {MAX_COMPACTION_LEVELS} (L1..L8) are possible",
                    levels.len()
                ),
            });
        }
        let too_short = |d: &Duration| d.as_millis() == 0;
        if let Some(i) = levels.iter().position(too_short) {
            return Err(CompactError::Schedule {
                detail: format!(
                    "level {} has an interval under 1ms; give at least 1ms",
                    i + 1
                ),
            });
        }
        if too_short(&snapshot_interval) {
            return Err(CompactError::Schedule {
                detail: "snapshot interval under 1ms; give at least 1ms".into(),
            });
        }
        Ok(Self {
            levels,
            snapshot_interval,
            snapshot_retention,
            l0_retention,
        })
    }

    /// The compaction levels (L1..Ln) with their intervals, lowest first.
    pub fn levels(&self) -> impl Iterator<Item = (Level, Duration)> + '_ {
        self.levels.iter().enumerate().filter_map(|(i, d)| {
            let n = u8::try_from(i + 1).ok()?;
            Some((Level::new(n)?, *d))
        })
    }

    /// The intervals of L1..Ln, L1's first (what the `levels` config key lists).
    pub fn level_intervals(&self) -> &[Duration] {
        &self.levels
    }

    /// How often a level-9 snapshot is made (aligned to wall-clock multiples).
    pub fn snapshot_interval(&self) -> Duration {
        self.snapshot_interval
    }

    /// How long snapshots are kept (the newest is always kept).
    pub fn snapshot_retention(&self) -> Duration {
        self.snapshot_retention
    }

    /// How long L0 files are kept once L1 covers them (the newest is always kept).
    pub fn l0_retention(&self) -> Duration {
        self.l0_retention
    }
}

/// Milliseconds since the Unix epoch (0 before it, saturating far after it).
pub fn unix_ms(time: SystemTime) -> i64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The latest multiple of `interval` at or before `now_ms` (Go's `now.Truncate(interval)`),
/// in Unix ms.
pub fn boundary(now_ms: i64, interval: Duration) -> i64 {
    let step = i64::try_from(interval.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    now_ms - now_ms.rem_euclid(step)
}

/// True when the wall clock has crossed a multiple of `interval` since `last_ms` (the time
/// of the level's newest file or last run), or nothing is known of the level yet.
pub fn crossed_boundary(last_ms: Option<i64>, now_ms: i64, interval: Duration) -> bool {
    last_ms.is_none_or(|last| last < boundary(now_ms, interval))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_litestreams() {
        let s = LevelSchedule::default();
        let secs: Vec<u64> = s.levels().map(|(_, d)| d.as_secs()).collect();
        assert_eq!(secs, [30, 300, 3600]);
        assert_eq!(s.snapshot_interval().as_secs(), 86_400);
        assert_eq!(s.snapshot_retention().as_secs(), 86_400);
        assert_eq!(s.l0_retention().as_secs(), 300);
        assert_eq!(s.levels().last().map(|(l, _)| l.get()), Some(3));
    }

    #[test]
    fn boundaries_are_wall_clock_multiples() {
        let i = Duration::from_secs(30);
        assert_eq!(boundary(95_000, i), 90_000);
        assert_eq!(boundary(90_000, i), 90_000);
        assert!(crossed_boundary(None, 1, i));
        assert!(crossed_boundary(Some(89_999), 95_000, i));
        assert!(!crossed_boundary(Some(90_000), 95_000, i));
        assert!(!crossed_boundary(Some(119_999), 95_000, i));
    }

    #[test]
    fn bad_schedules_are_refused_with_the_reason() {
        let day = Duration::from_secs(86_400);
        let nine = vec![Duration::from_secs(1); 9];
        let err = LevelSchedule::new(nine, day, day, day).unwrap_err();
        assert!(err.to_string().contains("at most 8"), "{err}");
        let zero = vec![Duration::from_secs(1), Duration::ZERO];
        let err = LevelSchedule::new(zero, day, day, day).unwrap_err();
        assert!(err.to_string().contains("level 2"), "{err}");
    }
}
