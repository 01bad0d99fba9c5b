//! `walcast-restore ltx URL [--json]`: what a replica holds, for a user choosing a point
//! in time: every LTX file by level, with its TXID range, header timestamp and size.
//!
//! Columns and JSON keys follow `litestream ltx` (`level`, `min_txid`, `max_txid`,
//! `size`, `timestamp`). This module only reads file headers; it never decodes pages.

use anyhow::Context;
use walcast_ltx::rfc3339_millis;
use walcast_replica::{Catalog, Timestamps};

/// Prints the listing on stdout.
pub fn run(replica: &crate::replica_choice::ReplicaChoice, json: bool) -> anyhow::Result<()> {
    let source = replica.open()?;
    let catalog = Catalog::read(source.as_ref(), Timestamps::Read)
        .with_context(|| format!("cannot list replica {}", source.describe()))?;
    let timestamp = |ms: Option<i64>| ms.map_or_else(|| "-".to_owned(), rfc3339_millis);
    if json {
        let rows: Vec<serde_json::Value> = catalog
            .files()
            .iter()
            .map(|f| {
                serde_json::json!({
                    "level": f.level.get(),
                    "min_txid": f.name.min.to_string(),
                    "max_txid": f.name.max.to_string(),
                    "size": f.size,
                    "timestamp": timestamp(f.timestamp_ms),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(());
    }
    println!(
        "{:<5}  {:<16}  {:<16}  {:>12}  TIMESTAMP",
        "LEVEL", "MIN_TXID", "MAX_TXID", "SIZE"
    );
    for f in catalog.files() {
        println!(
            "{:<5}  {}  {}  {:>12}  {}",
            f.level.get(),
            f.name.min,
            f.name.max,
            f.size,
            timestamp(f.timestamp_ms)
        );
    }
    Ok(())
}
