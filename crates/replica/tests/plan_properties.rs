//! Properties of restore planning over arbitrary catalogs (any levels, overlapping,
//! duplicated and missing TXID ranges), against a brute-force reference: a plan exists
//! for a TXID exactly when some chain of files from TXID 1 ends there, and every plan
//! returned is such a chain.

use std::collections::BTreeSet;

use proptest::prelude::*;
use walcast_ltx::merge::is_contiguous;
use walcast_ltx::{LtxFileName, TxId};
use walcast_replica::{Catalog, Level, ObjectLayout, ReplicaFile, RestoreTarget};

fn txid(n: u64) -> TxId {
    TxId::new(n).unwrap()
}

fn catalog() -> impl Strategy<Value = Catalog> {
    prop::collection::vec((0u8..=9, 1u64..=24, 0u64..=6), 0..14).prop_map(|specs| {
        let mut seen = BTreeSet::new();
        let files = specs
            .into_iter()
            .filter_map(|(level, min, len)| {
                let name = LtxFileName {
                    min: txid(min),
                    max: txid(min + len),
                };
                seen.insert((level, name)).then_some(ReplicaFile {
                    level: Level::new(level).unwrap(),
                    name,
                    size: len + 1,
                    timestamp_ms: Some((min + len) as i64),
                    layout: ObjectLayout::LtxLevels,
                })
            })
            .collect();
        Catalog::new(files)
    })
}

/// Every TXID some chain of files ending at or before `limit` can end at.
fn reachable(catalog: &Catalog, limit: u64) -> BTreeSet<u64> {
    let files: Vec<_> = catalog
        .files()
        .iter()
        .filter(|f| f.name.max.get() <= limit)
        .collect();
    let mut ends: BTreeSet<u64> = files
        .iter()
        .filter(|f| f.name.min == TxId::FIRST)
        .map(|f| f.name.max.get())
        .collect();
    loop {
        let more: BTreeSet<u64> = files
            .iter()
            .filter(|f| {
                ends.iter()
                    .any(|&e| f.name.min.get() <= e + 1 && f.name.max.get() > e)
            })
            .map(|f| f.name.max.get())
            .collect();
        if more.is_subset(&ends) {
            return ends;
        }
        ends.extend(more);
    }
}

proptest! {
    #[test]
    fn plans_exist_exactly_for_reachable_txids_and_are_chains(catalog in catalog()) {
        let newest = catalog.files().iter().map(|f| f.name.max.get()).max().unwrap_or(0);
        for t in 1..=newest + 1 {
            let planned = catalog.plan(RestoreTarget::TxId(txid(t)));
            prop_assert_eq!(planned.is_ok(), reachable(&catalog, t).contains(&t), "TXID {}: {:?}", t, planned);
            if let Ok(plan) = planned {
                prop_assert_eq!(plan.txid(), txid(t));
                let files = plan.files();
                prop_assert_eq!(files[0].name.min, TxId::FIRST);
                for pair in files.windows(2) {
                    prop_assert!(is_contiguous(pair[0].name.max, pair[1].name.min, pair[1].name.max));
                }
                for f in files {
                    prop_assert!(catalog.files().contains(f));
                }
            }
        }
        match catalog.plan(RestoreTarget::Latest) {
            Ok(plan) => prop_assert_eq!(plan.txid().get(), newest),
            Err(_) => prop_assert!(newest == 0 || !reachable(&catalog, newest).contains(&newest)),
        }
        // Timestamps here equal max TXIDs, so a moment plans before the TXID it names.
        for t in 1..=newest {
            if let Ok(plan) = catalog.plan(RestoreTarget::Timestamp(t as i64)) {
                prop_assert!(plan.txid().get() < t);
            }
        }
    }
}
