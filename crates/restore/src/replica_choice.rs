//! Which replica a command reads: the replica argument itself (a URL or directory), or,
//! with `-config FILE`, the replica the config file gives the database the argument names
//! (its first replica, or the one `-replica NAME` names).
//!
//! This module owns the lookup in the config file and the messages when it fails; it must
//! never touch the database, and sends the replica one request only: the reachability
//! check of [`ReplicaChoice::open`].

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use walcast_config::{Config, DbConfig, ReplicaSpec};
use walcast_replica::{ClientSettings, ReplicaSource};

/// The replica argument and the flags that change what it means.
#[derive(Clone, Debug, Default)]
pub struct ReplicaChoice {
    /// `DB|URL` as given: a replica URL or directory, or with `config` the database path.
    pub arg: String,
    /// `-config FILE`.
    pub config: Option<PathBuf>,
    /// `-replica NAME` (with `-config` only).
    pub name: Option<String>,
}

impl ReplicaChoice {
    /// Opens the chosen replica and checks that it answers (one quick request, see
    /// [`ReplicaSource::check_reachable`]): an unreachable endpoint or a missing bucket
    /// fails here in seconds, before anything is written.
    pub fn open(&self) -> anyhow::Result<Box<dyn ReplicaSource>> {
        let Some(config_path) = &self.config else {
            if let Some(name) = &self.name {
                anyhow::bail!(
                    "-replica {name} needs -config FILE (it names one of a database's replicas there)"
                );
            }
            let source = crate::replica_url::open(&self.arg)?;
            source.check_reachable()?;
            return Ok(source);
        };
        let config = Config::load(config_path)?;
        let db = find_db(&config, Path::new(&self.arg))?;
        let spec = find_replica(&config, db, self.name.as_deref())?;
        let context = || {
            format!(
                "replica {:?} of {} in {}",
                spec.name,
                db.path.display(),
                config.file.display()
            )
        };
        let client = spec
            .open_client(ClientSettings::from_process())
            .with_context(context)?;
        ReplicaSource::check_reachable(&client).with_context(context)?;
        Ok(Box::new(client))
    }

    /// The database path the config file names, when the argument is one.
    pub fn config_db(&self) -> Option<PathBuf> {
        self.config
            .as_ref()
            .map(|_| std::path::absolute(&self.arg).unwrap_or_else(|_| PathBuf::from(&self.arg)))
    }
}

fn find_db<'a>(config: &'a Config, path: &Path) -> anyhow::Result<&'a DbConfig> {
    config.db(path).ok_or_else(|| {
        let known: Vec<String> = config
            .dbs
            .iter()
            .map(|db| db.path.display().to_string())
            .collect();
        anyhow!(
            "{} has no database {}; it lists: {}",
            config.file.display(),
            path.display(),
            known.join(", ")
        )
    })
}

fn find_replica<'a>(
    config: &Config,
    db: &'a DbConfig,
    name: Option<&str>,
) -> anyhow::Result<&'a ReplicaSpec> {
    let names = || {
        db.replicas
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        None => db.replicas.first().ok_or_else(|| {
            anyhow!(
                "{}: {} has no replica",
                config.file.display(),
                db.path.display()
            )
        }),
        Some(name) => db.replicas.iter().find(|r| r.name == name).ok_or_else(|| {
            anyhow!(
                "{}: {} has no replica named {name:?}; its replicas: {}",
                config.file.display(),
                db.path.display(),
                names()
            )
        }),
    }
}
