//! `walcast replicate`: replicate live databases (one given as `DB URL`, or every
//! database of a config file) until SIGINT or SIGTERM, then finish the last sync and
//! upload of each, and release every lock.
//!
//! Threads, per database: a sync loop ([`job`]) copies frames into the staging
//! directory; one uploader per replica moves staged files there and compacts it; a watcher
//! wakes the loop on WAL writes. The boundary between producing LTX files (`sync`,
//! `encode`, `staging`) and storing them (`upload`, `fanout`) is the staging directory.
//!
//! Nothing is created or locked before the configuration and every replica have been
//! checked (a quick reachability check of each, seconds at most, then a listing), and before each database has been checked: a refused
//! database (missing, rollback journal, exclusive locking mode, unknown WAL version)
//! leaves no trace.

mod encode;
mod exec;
mod fanout;
mod frames;
mod job;
mod metrics;
pub(crate) mod staging;
mod start;
mod sync;
mod upload;
mod wake;

use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use tracing::info;
use walcast_config::Config;
use walcast_replica::compact::LevelSchedule;
use walcast_replica::{ClientSettings, ReplicaClient};

use self::exec::ExecChild;
use self::job::{DatabaseJob, ReplicaJob};

#[derive(Args, Debug)]
pub struct ReplicateArgs {
    /// The SQLite database to replicate (in WAL mode, opened by the application). Without
    /// DB and URL, every database of the config file is replicated.
    pub db: Option<PathBuf>,
    /// Where to replicate: a directory, file:///path, s3://bucket/path?endpoint=…&region=…,
    /// gs://bucket/path or abs://account@container/path. S3 credentials come from
    /// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or LITESTREAM_ACCESS_KEY_ID/…).
    pub url: Option<String>,
    /// The YAML config (Litestream's keys); default $WALCAST_CONFIG, /etc/walcast.yml,
    /// else /etc/litestream.yml.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics (`host:port`, or `:port` for every
    /// interface); the config's `addr` otherwise.
    #[arg(long, value_name = "ADDR")]
    pub addr: Option<String>,
    /// Sync and upload once, then exit (for cron jobs and tests).
    #[arg(long)]
    pub once: bool,
    /// Run this command (through `sh -c`) as the application: signals are forwarded to it,
    /// and when it exits walcast finishes its last upload and exits with its code.
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// How often staged changes go up to the replica, as one object per interval (the
    /// config's `sync-interval` per replica otherwise).
    #[arg(long = "sync-interval", value_name = "DURATION", value_parser = walcast_config::parse_go_duration)]
    pub sync_interval: Option<Duration>,
}

/// Litestream's default `sync-interval`.
const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// A replica client for a URL (`file:///dir`, `s3://…`, `gs://…`, `abs://…`) or a
/// directory path. Builds the client and sends no request.
pub(crate) fn replica_from_url(url: &str) -> anyhow::Result<ReplicaClient> {
    let url = if url.contains("://") {
        url.to_owned()
    } else {
        let path = std::path::absolute(url).with_context(|| format!("replica path {url:?}"))?;
        path.to_str()
            .with_context(|| format!("replica path {url:?} is not UTF-8"))?
            .to_owned()
    };
    ReplicaClient::from_url(&url).with_context(|| format!("replica URL {url:?}"))
}

/// SIGINT and SIGTERM set the returned flag; a second one exits at once (code 1).
fn shutdown_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&flag))?;
        signal_hook::flag::register(signal, Arc::clone(&flag))?;
    }
    Ok(flag)
}

/// When to stop: on SIGINT/SIGTERM, or, with `-exec`, when the application exits (a
/// signal is forwarded to it first, and replication goes on until it has exited).
struct Lifetime {
    shutdown: Arc<AtomicBool>,
    child: Option<ExecChild>,
    child_status: Option<ExitStatus>,
}

impl Lifetime {
    fn should_stop(&mut self) -> anyhow::Result<bool> {
        let Some(child) = self.child.as_mut() else {
            return Ok(self.shutdown.load(Ordering::Relaxed));
        };
        if let Some(status) = child.exited()? {
            info!("the application exited ({status})");
            self.child_status = Some(status);
            return Ok(true);
        }
        if self.shutdown.load(Ordering::Relaxed) {
            child.forward_shutdown();
        }
        Ok(false)
    }
}

/// What to run: the databases (from the command line or the config, each replica checked
/// so a bad bucket or endpoint fails before any database is touched), the `-exec`
/// command, the metrics address.
struct Plan {
    jobs: Vec<DatabaseJob>,
    exec: Option<String>,
    addr: Option<String>,
}

fn plan_jobs(args: &ReplicateArgs) -> anyhow::Result<Plan> {
    match (&args.config, &args.db, &args.url) {
        (None, Some(db), Some(url)) => {
            let db = std::path::absolute(db)
                .with_context(|| format!("database path {}", db.display()))?;
            let replica = ReplicaJob::new(
                &db,
                "replica".into(),
                replica_from_url(url)?,
                args.sync_interval.unwrap_or(DEFAULT_SYNC_INTERVAL),
            )?;
            Ok(Plan {
                jobs: vec![DatabaseJob::new(
                    db,
                    vec![replica],
                    LevelSchedule::default(),
                    None,
                )],
                exec: args.exec.clone(),
                addr: args.addr.clone(),
            })
        }
        (config, None, None) => {
            let path = config.clone().unwrap_or_else(Config::default_path);
            let config = Config::load(&path)?;
            let jobs = config
                .dbs
                .iter()
                .map(|db| database_job(&config, db, args.sync_interval))
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(Plan {
                jobs,
                exec: args.exec.clone().or(config.exec.clone()),
                addr: args.addr.clone().or(config.addr.clone()),
            })
        }
        (_, Some(_), None) => bail!("a replica URL must follow the database path (or use -config)"),
        (Some(_), _, _) | (None, None, Some(_)) => {
            bail!("give either a database and a replica URL, or -config, not both")
        }
    }
}

fn database_job(
    config: &Config,
    db: &walcast_config::DbConfig,
    sync_interval: Option<Duration>,
) -> anyhow::Result<DatabaseJob> {
    let schedule = LevelSchedule::new(
        config.levels.clone(),
        db.snapshot.interval,
        db.snapshot.retention,
        config.l0_retention,
    )
    .with_context(|| format!("{}: levels and snapshot settings", config.file.display()))?;
    let replicas = db
        .replicas
        .iter()
        .map(|spec| {
            let client = spec
                .open_client(ClientSettings::from_process())
                .with_context(|| {
                    format!(
                        "{}: replica {:?} of {}",
                        config.file.display(),
                        spec.name,
                        db.path.display()
                    )
                })?;
            ReplicaJob::new(
                &db.path,
                spec.name.clone(),
                client,
                sync_interval.unwrap_or(spec.sync_interval),
            )
            .with_context(|| config.file.display().to_string())
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(DatabaseJob::new(
        db.path.clone(),
        replicas,
        schedule,
        db.monitor_interval,
    ))
}

/// The config's `logging` when replicating from a config (the defaults otherwise, or if
/// the config cannot be read: the error is reported when the config is loaded again).
pub fn logging(args: &ReplicateArgs) -> walcast_config::Logging {
    if args.db.is_some() {
        return walcast_config::Logging::default();
    }
    let path = args.config.clone().unwrap_or_else(Config::default_path);
    Config::load(&path).map(|c| c.logging).unwrap_or_default()
}

pub fn run(args: &ReplicateArgs) -> anyhow::Result<()> {
    let Plan { jobs, exec, addr } = plan_jobs(args)?;
    let registry = Arc::new(metrics::Registry::default());
    if let Some(addr) = &addr {
        metrics::serve(addr, Arc::clone(&registry))?;
    }
    let mut life = Lifetime {
        shutdown: shutdown_flag()?,
        child: None,
        child_status: None,
    };
    if let Some(command) = &exec {
        life.child = Some(ExecChild::spawn(command)?);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let wait_for_missing = life.child.is_some();
    let threads: Vec<_> = jobs
        .into_iter()
        .map(|job| {
            let stop = Arc::clone(&stop);
            let registry = Arc::clone(&registry);
            let once = args.once;
            std::thread::Builder::new()
                .name(format!("sync {}", job.db().display()))
                .spawn(move || job.run(&stop, once, wait_for_missing, &registry))
        })
        .collect::<Result<_, _>>()?;
    // Stop every database when asked, when the application exits, or when one fails.
    while !threads.iter().all(|t| t.is_finished()) {
        if life.should_stop()? || threads.iter().any(|t| t.is_finished()) && !args.once {
            stop.store(true, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut failure = None;
    for thread in threads {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(_) => failure = failure.or(Some(anyhow::anyhow!("a sync thread panicked"))),
        }
    }
    if let Some(child) = life.child.take()
        && life.child_status.is_none()
    {
        child.forward_shutdown_and_wait(&mut life.child_status)?;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    if let Some(status) = life.child_status {
        let code = exec::exit_code(status);
        if code != 0 {
            std::process::exit(code);
        }
    }
    Ok(())
}
