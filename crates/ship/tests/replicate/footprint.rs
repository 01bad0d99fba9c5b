//! walcast adds nothing to the user's database: the same workload with and without walcast
//! running beside it leaves the same schema, the same rows, the same page count and, after
//! a full checkpoint, the same bytes.

use walcast_testbed::sqlite::{self, CheckpointMode, Workload};

use crate::support::{Walcast, open_app};

fn deterministic_workload() -> Workload {
    Workload {
        seed: 42,
        transactions: 400,
        autocheckpoint: 50,
        ..Workload::default()
    }
}

fn page_count(db: &std::path::Path) -> serde_json::Value {
    sqlite::query(db, "PRAGMA page_count").unwrap()[0][0].clone()
}

#[test]
fn the_database_gains_no_table_row_or_page() {
    let dir = tempfile::tempdir().unwrap();
    let (with, without) = (dir.path().join("with.db"), dir.path().join("without.db"));

    let app = open_app(&with).unwrap();
    let replica = dir.path().join("replica");
    let mut walcast =
        Walcast::start(&with, &replica, &dir.path().join("walcast.log"), &[]).unwrap();
    walcast.wait_replicating().unwrap();
    deterministic_workload().run(&with).unwrap();
    walcast.stop().unwrap();
    app.close().unwrap();

    let app = open_app(&without).unwrap();
    deterministic_workload().run(&without).unwrap();
    app.close().unwrap();

    for db in [&with, &without] {
        sqlite::checkpoint(db, CheckpointMode::Truncate).unwrap();
    }
    let schema = |db| {
        sqlite::query(
            db,
            "SELECT type, name, sql FROM sqlite_schema ORDER BY name",
        )
        .unwrap()
    };
    assert_eq!(schema(&with), schema(&without));
    assert_eq!(
        sqlite::dump(&with).unwrap(),
        sqlite::dump(&without).unwrap()
    );
    assert_eq!(page_count(&with), page_count(&without));
    assert!(
        std::fs::read(&with).unwrap() == std::fs::read(&without).unwrap(),
        "database files differ"
    );
    // And walcast did replicate it.
    assert!(replica.join("ltx/0").read_dir().unwrap().count() > 0);
}
