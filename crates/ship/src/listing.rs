//! `walcast databases` and `walcast ltx`: what the config replicates, and what a replica
//! holds (levels, TXID ranges, sizes, times) for a user choosing a point in time.
//! Read-only: they never touch a database and never write to a replica.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;
use walcast_config::Config;
use walcast_replica::{ClientSettings, Level, ReplicaClient};

#[derive(Args, Debug)]
pub struct DatabasesArgs {
    /// The YAML config; default $WALCAST_CONFIG, /etc/walcast.yml, else /etc/litestream.yml.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct LtxArgs {
    /// A replica URL or directory, or (with the config) a database path.
    pub target: String,
    /// The YAML config, to name a database instead of a replica.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Which replica of the database (its name in the config); default the first.
    #[arg(long, value_name = "NAME")]
    pub replica: Option<String>,
    /// A level 0..9, or `all`.
    #[arg(long, default_value = "all")]
    pub level: String,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn load(config: &Option<PathBuf>) -> anyhow::Result<Config> {
    let path = config.clone().unwrap_or_else(Config::default_path);
    Ok(Config::load(&path)?)
}

pub fn databases(args: &DatabasesArgs) -> anyhow::Result<()> {
    let config = load(&args.config)?;
    if !args.json {
        println!("{:<40} {:<10} REPLICA", "PATH", "NAME");
    }
    for db in &config.dbs {
        for replica in &db.replicas {
            if args.json {
                let line = json!({"path": db.path, "replica": replica.name, "target": replica.target.to_string()});
                println!("{line}");
            } else {
                println!(
                    "{:<40} {:<10} {}",
                    db.path.display(),
                    replica.name,
                    replica.target
                );
            }
        }
    }
    Ok(())
}

/// The client for `target`: a URL or directory, or a database of the config.
fn client_for(args: &LtxArgs) -> anyhow::Result<ReplicaClient> {
    let is_database = args.config.is_some() && !args.target.contains("://");
    if !is_database {
        return crate::replicate::replica_from_url(&args.target);
    }
    let config = load(&args.config)?;
    let db = config.db(args.target.as_ref()).with_context(|| {
        format!(
            "{}: not a database of {}",
            args.target,
            config.file.display()
        )
    })?;
    let spec = match &args.replica {
        None => db.replicas.first(),
        Some(name) => db.replicas.iter().find(|r| &r.name == name),
    }
    .with_context(|| format!("{}: no replica {:?}", args.target, args.replica))?;
    Ok(spec.open_client(ClientSettings::from_process())?)
}

pub fn ltx(args: &LtxArgs) -> anyhow::Result<()> {
    let levels: Vec<Level> = match args.level.as_str() {
        "all" => Level::all().collect(),
        n => match n.parse().ok().and_then(Level::new) {
            Some(level) => vec![level],
            None => bail!("--level {n:?}: expected 0..9 or all"),
        },
    };
    let client = client_for(args)?;
    if !args.json {
        println!(
            "{:<5} {:<16} {:<16} {:>12}  CREATED",
            "LEVEL", "MIN_TXID", "MAX_TXID", "SIZE"
        );
    }
    for level in levels {
        let files = client
            .list(level)
            .with_context(|| format!("cannot list level {level} of {}", client.target()))?;
        for file in files {
            let created = client.timestamp(level, file.name)?.unwrap_or_default();
            let (min, max) = (file.name.min.to_string(), file.name.max.to_string());
            if args.json {
                let line = json!({"level": level.get(), "min_txid": min, "max_txid": max, "size": file.size, "created": created});
                println!("{line}");
            } else {
                println!(
                    "{:<5} {min:<16} {max:<16} {:>12}  {created}",
                    level.get(),
                    file.size
                );
            }
        }
    }
    Ok(())
}
