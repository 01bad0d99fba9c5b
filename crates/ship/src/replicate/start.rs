//! Where a sync loop starts after (re)starting: the next TXID, and whether the recorded
//! WAL position may be resumed or a snapshot is needed. A pure decision over what the
//! staging directory and the replica hold, so every case is unit-tested.
//!
//! The rules keep the replica restorable, which needs an unbroken TXID chain from 1:
//! - an empty replica starts over at TXID 1 with a snapshot (staged files that would not
//!   chain from 1 are discarded);
//! - staged files that do not continue the replica's newest TXID are discarded, and the
//!   next file is a snapshot right after the replica's newest TXID;
//! - the recorded position is resumed only if its TXID is the newest TXID anywhere (a
//!   position whose file was lost, or a replica someone else advanced, means a snapshot).

use walcast_lock::PositionToken;
use walcast_ltx::{LtxFileName, TxId};

use super::staging::StagedPosition;

/// The decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartPlan {
    /// TXID of the next file written.
    pub next_txid: TxId,
    /// Resume the WAL after this position; `None`: take a snapshot.
    pub resume: Option<PositionToken>,
    /// Staged files to delete before starting (they cannot join the replica's chain).
    pub discard: Vec<LtxFileName>,
    /// Why a snapshot is needed, for the log.
    pub snapshot_reason: Option<&'static str>,
}

/// Decides from the replica's newest TXID, the staged files (TXID order) and the recorded
/// position.
pub fn plan_start(
    replica_max: Option<TxId>,
    staged: &[LtxFileName],
    position: Option<StagedPosition>,
) -> StartPlan {
    let expected_min = replica_max.map_or(Some(TxId::FIRST), TxId::next);
    let pending: Vec<&LtxFileName> = staged
        .iter()
        .filter(|f| replica_max.is_none_or(|max| f.max > max))
        .collect();
    let chains = pending.first().is_none_or(|f| Some(f.min) == expected_min)
        && pending
            .windows(2)
            .all(|w| w[0].max.next() == Some(w[1].min));
    let (discard, newest) = if chains {
        (Vec::new(), pending.last().map(|f| f.max).or(replica_max))
    } else {
        (pending.iter().map(|f| **f).collect(), replica_max)
    };
    let next_txid = newest
        .map_or(Some(TxId::FIRST), TxId::next)
        .unwrap_or(TxId::FIRST);
    let (resume, snapshot_reason) = match (newest, position) {
        (None, _) => (
            None,
            Some("the replica is empty: starting it with a snapshot"),
        ),
        (_, _) if !chains => (
            None,
            Some("staged files did not continue the replica; discarded them"),
        ),
        (_, None) => (None, Some("no recorded position")),
        (Some(newest), Some(pos)) if pos.txid != newest => (
            None,
            Some("the recorded position is not the replica's newest transaction"),
        ),
        (_, Some(StagedPosition { wal: None, .. })) => {
            (None, Some("the last snapshot was of an empty WAL"))
        }
        (
            _,
            Some(StagedPosition {
                wal: Some(token), ..
            }),
        ) => (Some(token), None),
    };
    StartPlan {
        next_txid,
        resume,
        discard,
        snapshot_reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use walcast_format::WalChecksum;

    fn t(n: u64) -> TxId {
        TxId::new(n).unwrap()
    }
    fn f(min: u64, max: u64) -> LtxFileName {
        LtxFileName {
            min: t(min),
            max: t(max),
        }
    }
    fn token() -> PositionToken {
        PositionToken::new((1, 2), 3, WalChecksum { s1: 4, s2: 5 }).unwrap()
    }
    fn at(txid: u64) -> Option<StagedPosition> {
        Some(StagedPosition {
            txid: t(txid),
            wal: Some(token()),
        })
    }

    #[test]
    fn fresh_replica_starts_at_one_with_a_snapshot() {
        let plan = plan_start(None, &[], None);
        assert_eq!((plan.next_txid, plan.resume), (TxId::FIRST, None));
        // Staged files from an earlier replica cannot start a new chain.
        let plan = plan_start(None, &[f(5, 5), f(6, 6)], at(6));
        assert_eq!((plan.next_txid, plan.resume), (TxId::FIRST, None));
        assert_eq!(plan.discard, vec![f(5, 5), f(6, 6)]);
    }

    #[test]
    fn resumes_when_the_position_is_the_newest_txid() {
        // Pending uploads continue the replica.
        let plan = plan_start(Some(t(4)), &[f(3, 3), f(4, 4), f(5, 5), f(6, 7)], at(7));
        assert_eq!((plan.next_txid, plan.resume), (t(8), Some(token())));
        assert!(plan.discard.is_empty());
        // Everything uploaded.
        let plan = plan_start(Some(t(7)), &[], at(7));
        assert_eq!((plan.next_txid, plan.resume), (t(8), Some(token())));
        // Not yet uploaded anything, replica empty, chain from 1 staged.
        let plan = plan_start(None, &[f(1, 1), f(2, 2)], at(2));
        assert_eq!((plan.next_txid, plan.resume), (t(3), Some(token())));
    }

    #[test]
    fn snapshots_when_the_position_cannot_be_trusted() {
        // The position's file was lost (position written, rename of the file not durable).
        let plan = plan_start(Some(t(7)), &[], at(8));
        assert_eq!((plan.next_txid, plan.resume), (t(8), None));
        // Someone advanced the replica (a restore elsewhere, another replicator).
        let plan = plan_start(Some(t(9)), &[], at(7));
        assert_eq!((plan.next_txid, plan.resume), (t(10), None));
        // A gap between the replica and the staged files.
        let plan = plan_start(Some(t(3)), &[f(5, 5)], at(5));
        assert_eq!(
            (plan.next_txid, plan.resume, plan.discard),
            (t(4), None, vec![f(5, 5)])
        );
        // No position at all.
        let plan = plan_start(Some(t(3)), &[], None);
        assert_eq!((plan.next_txid, plan.resume), (t(4), None));
        // A snapshot of an empty WAL has no WAL position.
        let plan = plan_start(
            Some(t(3)),
            &[],
            Some(StagedPosition {
                txid: t(3),
                wal: None,
            }),
        );
        assert_eq!((plan.next_txid, plan.resume), (t(4), None));
    }
}
