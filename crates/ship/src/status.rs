//! `walcast status`: how far each database of the config is replicated, from what
//! `walcast replicate` records in its staging directories (the position of the last
//! staged file, the files waiting for upload, one status file per replica) and the WAL's
//! size. Read-only, and works whether or not replication is running.

use std::path::PathBuf;
use std::time::SystemTime;

use clap::Args;
use serde_json::{Value, json};
use walcast_config::Config;
use walcast_lock::DatabasePaths;

use crate::replicate::staging::StagingDir;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The YAML config; default $WALCAST_CONFIG, /etc/walcast.yml, else /etc/litestream.yml.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// One JSON object per database instead of text.
    #[arg(long)]
    pub json: bool,
}

fn seconds_since(time: SystemTime) -> Option<f64> {
    SystemTime::now()
        .duration_since(time)
        .ok()
        .map(|d| d.as_secs_f64())
}

/// The status of one database as JSON.
fn database_status(db: &walcast_config::DbConfig) -> anyhow::Result<Value> {
    let staging = StagingDir::for_database(&db.path)?;
    let position = staging.load_position().unwrap_or(None);
    let staged = staging.staged().unwrap_or_default();
    let wal_size = std::fs::metadata(DatabasePaths::new(&db.path).wal).map_or(0, |m| m.len());
    let last_sync = std::fs::metadata(staging.root().join("position"))
        .and_then(|m| m.modified())
        .ok()
        .and_then(seconds_since);
    let replicas: Vec<Value> = db
        .replicas
        .iter()
        .map(|r| {
            let recorded = std::fs::read(staging.replica_status_path(&r.name))
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .unwrap_or(Value::Null);
            json!({"name": r.name, "target": r.target.to_string(), "recorded": recorded})
        })
        .collect();
    Ok(json!({
        "path": db.path,
        "txid": position.map(|p| p.txid.to_string()),
        "wal_position": position.and_then(|p| p.wal).map(|t| t.to_string()),
        "seconds_since_last_sync": last_sync,
        "wal_size": wal_size,
        "files_waiting": staged.len(),
        "replicas": replicas,
    }))
}

pub fn run(args: &StatusArgs) -> anyhow::Result<()> {
    let path = args.config.clone().unwrap_or_else(Config::default_path);
    let config = Config::load(&path)?;
    for db in &config.dbs {
        let status = database_status(db)?;
        if args.json {
            println!("{status}");
            continue;
        }
        println!("{}", db.path.display());
        let field = |k: &str| status.get(k).cloned().unwrap_or(Value::Null);
        println!(
            "  txid {}  wal {} bytes  waiting {} files  last sync {}s ago",
            field("txid"),
            field("wal_size"),
            field("files_waiting"),
            field("seconds_since_last_sync")
                .as_f64()
                .map_or("-".into(), |s| format!("{s:.1}"))
        );
        for replica in status["replicas"].as_array().into_iter().flatten() {
            let rec = &replica["recorded"];
            println!(
                "  {} {}: txid {}  last upload {}  last error {}",
                replica["name"],
                replica["target"],
                rec["txid"],
                rec["last_upload"],
                rec["last_error"]
            );
        }
    }
    Ok(())
}
