//! The local staging directory next to a database, `.<db file name>-walcast/`:
//!
//! ```text
//! .<db>-walcast/
//!   ltx/0/<min>-<max>.ltx   L0 files written by syncs, waiting for upload
//!   ltx/0/<name>.snapshot   marks a staged file that holds every page
//!   position                JSON {"txid": "<16 hex>", "wal": "<position token>"|null}
//! ```
//!
//! Invariants:
//! - An L0 file appears under its final name only complete and durable (tmp file, fsync,
//!   rename, directory fsync), so an uploader never reads a partial file.
//! - The position is written after its L0 file and is trusted only if that TXID is still
//!   accounted for (staged here or present in the replica): a position whose file was
//!   lost in a crash is dropped and the next sync takes a snapshot. That is why the
//!   position file itself needs no fsync: a stale or torn one only costs a snapshot.
//! - Stale temporary files from a crash are removed on open.
//!
//! It never touches the database, the WAL or the replica.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use walcast_lock::PositionToken;
use walcast_ltx::{LtxFileName, TxId};
use walcast_replica::dir::sync_dir;

const TMP_SUFFIX: &str = ".tmp";
/// Marker next to a staged file that holds every page.
const SNAPSHOT_SUFFIX: &str = ".snapshot";
const POSITION_FILE: &str = "position";
/// Staged L0 files live at the same relative path as in a replica.
const L0_DIR: &str = "ltx/0";

/// What the last sync stored: its TXID, and where in the WAL it ended (`None` when the
/// last file was a snapshot of a WAL without committed frames).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StagedPosition {
    pub txid: TxId,
    pub wal: Option<PositionToken>,
}

#[derive(Serialize, Deserialize)]
struct PositionJson {
    txid: String,
    wal: Option<String>,
}

/// Removes the temporary files (`*.tmp`) a crash left in `dir`.
fn remove_temporaries(dir: &Path) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.ends_with(TMP_SUFFIX))
        {
            fs::remove_file(&path)
                .with_context(|| format!("{}: cannot remove stale file", path.display()))?;
        }
    }
    Ok(())
}

/// The staging directory of one database.
#[derive(Clone, Debug)]
pub struct StagingDir {
    root: PathBuf,
}

impl StagingDir {
    /// The staging directory for `db`: `.<file name>-walcast` in the same directory.
    pub fn for_database(db: &Path) -> anyhow::Result<Self> {
        let name = db
            .file_name()
            .with_context(|| format!("{}: database path has no file name", db.display()))?;
        let mut dir_name = std::ffi::OsString::from(".");
        dir_name.push(name);
        dir_name.push("-walcast");
        Ok(Self {
            root: db.with_file_name(dir_name),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn l0_dir(&self) -> PathBuf {
        self.root.join(L0_DIR)
    }

    /// Path of a staged L0 file.
    pub fn l0_path(&self, name: LtxFileName) -> PathBuf {
        self.l0_dir().join(name.to_string())
    }

    /// Creates the directories and removes temporary files a crash left behind.
    pub fn open(&self) -> anyhow::Result<()> {
        let dir = self.l0_dir();
        fs::create_dir_all(&dir)
            .with_context(|| format!("{}: cannot create the staging directory", dir.display()))?;
        remove_temporaries(&dir)?;
        remove_temporaries(&self.root)
    }

    /// Staged L0 files in TXID order.
    pub fn staged(&self) -> anyhow::Result<Vec<LtxFileName>> {
        let dir = self.l0_dir();
        let mut names = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(names),
            Err(e) => return Err(e).with_context(|| format!("{}: cannot list", dir.display())),
        };
        for entry in entries {
            let entry = entry.with_context(|| format!("{}: cannot list", dir.display()))?;
            if let Some(name) = entry.file_name().to_str().and_then(|n| n.parse().ok()) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// A new temporary file for the L0 file `name`; finish it with [`StagingDir::commit_l0`].
    pub fn create_l0(&self, name: LtxFileName) -> anyhow::Result<(PathBuf, File)> {
        let tmp = self.l0_dir().join(format!("{name}{TMP_SUFFIX}"));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .with_context(|| format!("{}: cannot create staged file", tmp.display()))?;
        Ok((tmp, file))
    }

    /// fsync, rename into place, fsync the directory.
    pub fn commit_l0(&self, tmp: &Path, file: File, name: LtxFileName) -> anyhow::Result<()> {
        file.sync_all()
            .with_context(|| format!("{}: cannot fsync staged file", tmp.display()))?;
        drop(file);
        let target = self.l0_path(name);
        fs::rename(tmp, &target)
            .with_context(|| format!("{}: cannot rename into place", target.display()))?;
        sync_dir(&self.l0_dir())?;
        Ok(())
    }

    fn snapshot_marker(&self, name: LtxFileName) -> PathBuf {
        self.l0_dir().join(format!("{name}{SNAPSHOT_SUFFIX}"))
    }

    /// Records that the staged file `name` holds every page (a snapshot). A lost marker
    /// only means a replica that needs a snapshot asks for another one.
    pub fn mark_snapshot(&self, name: LtxFileName) -> anyhow::Result<()> {
        let path = self.snapshot_marker(name);
        File::create(&path).with_context(|| format!("{}: cannot create", path.display()))?;
        Ok(())
    }

    /// True if the staged file `name` is a snapshot (see [`StagingDir::mark_snapshot`]).
    pub fn is_snapshot(&self, name: LtxFileName) -> bool {
        self.snapshot_marker(name).exists()
    }

    /// Removes a staged file once every replica has it.
    pub fn remove(&self, name: LtxFileName) -> anyhow::Result<()> {
        let _ = fs::remove_file(self.snapshot_marker(name));
        let path = self.l0_path(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("{}: cannot remove uploaded file", path.display()))
            }
            _ => Ok(()),
        }
    }

    /// Path of the status file of replica `name` (written by its uploader).
    pub fn replica_status_path(&self, name: &str) -> PathBuf {
        self.root.join(format!("replica-{name}.json"))
    }

    /// Replaces a small file atomically (tmp, rename; no fsync: status only).
    pub fn write_small(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        let tmp = path.with_extension(format!("json{TMP_SUFFIX}"));
        fs::write(&tmp, bytes).with_context(|| format!("{}: cannot write", tmp.display()))?;
        fs::rename(&tmp, path).with_context(|| format!("{}: cannot write", path.display()))?;
        Ok(())
    }

    /// Records the position after the L0 file of `position.txid` is committed.
    pub fn save_position(&self, position: &StagedPosition) -> anyhow::Result<()> {
        let json = PositionJson {
            txid: position.txid.to_string(),
            wal: position.wal.map(|t| t.to_string()),
        };
        let path = self.root.join(POSITION_FILE);
        let tmp = self.root.join(format!("{POSITION_FILE}{TMP_SUFFIX}"));
        let mut file = File::create(&tmp)
            .with_context(|| format!("{}: cannot write the position", tmp.display()))?;
        serde_json::to_writer(&mut file, &json)?;
        file.write_all(b"\n")?;
        drop(file);
        fs::rename(&tmp, &path)
            .with_context(|| format!("{}: cannot write the position", path.display()))?;
        Ok(())
    }

    /// The recorded position; `None` if there is none. An unreadable file is reported
    /// so the caller can log it and take a snapshot.
    pub fn load_position(&self) -> anyhow::Result<Option<StagedPosition>> {
        let path = self.root.join(POSITION_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("{}: cannot read", path.display())),
        };
        let parse = || -> anyhow::Result<StagedPosition> {
            let json: PositionJson = serde_json::from_slice(&bytes)?;
            let txid = json.txid.parse()?;
            let wal = match json.wal {
                Some(text) => Some(text.parse::<PositionToken>()?),
                None => None,
            };
            Ok(StagedPosition { txid, wal })
        };
        match parse() {
            Ok(position) => Ok(Some(position)),
            Err(e) => bail!(
                "{}: unreadable position ({e}); a new snapshot will be taken",
                path.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use walcast_format::WalChecksum;

    #[test]
    fn position_round_trips_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let staging = StagingDir::for_database(&dir.path().join("app.db")).unwrap();
        assert!(staging.root().ends_with(".app.db-walcast"));
        staging.open().unwrap();
        assert_eq!(staging.load_position().unwrap(), None);
        let token = PositionToken::new((7, 9), 12, WalChecksum { s1: 1, s2: 2 }).unwrap();
        for position in [
            StagedPosition {
                txid: TxId::new(5).unwrap(),
                wal: Some(token),
            },
            StagedPosition {
                txid: TxId::FIRST,
                wal: None,
            },
        ] {
            staging.save_position(&position).unwrap();
            assert_eq!(staging.load_position().unwrap(), Some(position));
        }
        fs::write(staging.root().join(POSITION_FILE), b"{\"txid\":").unwrap();
        let err = staging.load_position().unwrap_err().to_string();
        assert!(
            err.contains("position") && err.contains("snapshot"),
            "{err}"
        );
    }

    #[test]
    fn staged_files_list_in_order_and_temporaries_are_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let staging = StagingDir::for_database(&dir.path().join("app.db")).unwrap();
        staging.open().unwrap();
        let name = |n| LtxFileName {
            min: TxId::new(n).unwrap(),
            max: TxId::new(n).unwrap(),
        };
        for n in [3, 1, 2] {
            let (tmp, mut file) = staging.create_l0(name(n)).unwrap();
            file.write_all(b"x").unwrap();
            staging.commit_l0(&tmp, file, name(n)).unwrap();
        }
        let (_stale, _) = staging.create_l0(name(4)).unwrap();
        staging.open().unwrap();
        assert_eq!(staging.staged().unwrap(), vec![name(1), name(2), name(3)]);
        assert_eq!(fs::read_dir(staging.l0_dir()).unwrap().count(), 3);
        staging.remove(name(2)).unwrap();
        assert_eq!(staging.staged().unwrap(), vec![name(1), name(3)]);
    }
}
