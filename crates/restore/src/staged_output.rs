//! The restored database on its way to its final name: written to `<OUT>.tmp`, fsynced,
//! then published as `<OUT>` (link or rename), and the directory fsynced.
//!
//! Invariants:
//! - `<OUT>` only ever appears complete and durable.
//! - An existing `<OUT>` is never replaced unless the caller asked for [`Publish::Replace`]
//!   (`-force`); then its `-wal` and `-shm` files are removed first, since SQLite would
//!   otherwise apply a stale WAL to the restored file.
//! - If the restore fails or is abandoned (dropped before [`StagedOutput::publish`]), the
//!   `.tmp` file is removed. Only a killed process can leave it behind; the next restore
//!   to the same `<OUT>` overwrites it.
//! - `<OUT>.tmp` is locked while it is written, so a second restore to the same `<OUT>`
//!   fails instead of writing into the first one's file.

use std::ffi::OsString;
use std::fs::TryLockError;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Write buffer: large sequential writes.
const BUFFER: usize = 1 << 20;

/// How an output is published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Publish {
    /// Fail if `<OUT>` exists by then.
    CreateNew,
    /// Replace `<OUT>` and remove its `-wal` and `-shm` files.
    Replace,
}

/// `<OUT>.tmp` being written.
pub struct StagedOutput {
    target: PathBuf,
    tmp: PathBuf,
    writer: Option<BufWriter<File>>,
    published: bool,
}

/// `path` with `suffix` appended to its file name (`app.db` -> `app.db-wal`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name: OsString = path.file_name().unwrap_or_default().to_owned();
    name.push(suffix);
    path.with_file_name(name)
}

impl StagedOutput {
    /// Creates `<target>.tmp`, or takes over one a killed restore left behind.
    ///
    /// The file is locked (`flock`) for as long as this value lives, so two restores to
    /// the same target cannot write the same file: the second one fails here, before
    /// touching it.
    pub fn create(target: &Path) -> anyhow::Result<Self> {
        if target.file_name().is_none() {
            bail!("{}: not a file name", target.display());
        }
        let tmp = with_suffix(target, ".tmp");
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let busy = || {
            anyhow::anyhow!(
                "{} is in use: another restore to {} is running",
                tmp.display(),
                target.display()
            )
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(busy()),
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", tmp.display()));
            }
        }
        // The restore that held the lock may have published the file between our open
        // and our lock: then the file we hold is its output, not a leftover.
        let still_tmp = fs::symlink_metadata(&tmp)
            .ok()
            .zip(file.metadata().ok())
            .is_some_and(|(at_path, held)| {
                (at_path.dev(), at_path.ino()) == (held.dev(), held.ino())
            });
        if !still_tmp {
            return Err(busy());
        }
        file.set_len(0)
            .with_context(|| format!("cannot truncate {}", tmp.display()))?;
        Ok(Self {
            target: target.to_owned(),
            tmp,
            writer: Some(BufWriter::with_capacity(BUFFER, file)),
            published: false,
        })
    }

    /// Appends bytes.
    pub fn write(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let writer = self.writer.as_mut().context("output already closed")?;
        writer
            .write_all(bytes)
            .with_context(|| format!("cannot write {}", self.tmp.display()))
    }

    /// Flushes and fsyncs the file, publishes it under the target name, fsyncs the directory.
    pub fn publish(mut self, how: Publish) -> anyhow::Result<()> {
        let writer = self.writer.take().context("output already closed")?;
        let file = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {}", self.tmp.display()))?;
        file.sync_all()
            .with_context(|| format!("cannot fsync {}", self.tmp.display()))?;
        drop(file);
        match how {
            Publish::Replace => {
                for sidecar in ["-wal", "-shm"] {
                    remove_if_present(&with_suffix(&self.target, sidecar))?;
                }
                fs::rename(&self.tmp, &self.target).with_context(|| {
                    format!(
                        "cannot rename {} to {}",
                        self.tmp.display(),
                        self.target.display()
                    )
                })?;
            }
            Publish::CreateNew => {
                match fs::hard_link(&self.tmp, &self.target) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => bail!(
                        "{} appeared while restoring; left it untouched (use -force to replace it)",
                        self.target.display()
                    ),
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("cannot create {}", self.target.display()));
                    }
                }
                remove_if_present(&self.tmp)?;
            }
        }
        self.published = true;
        let dir = match self.target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot fsync directory {}", dir.display()))
    }
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

impl Drop for StagedOutput {
    fn drop(&mut self) {
        if !self.published {
            self.writer.take();
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_once_and_cleans_up_when_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a.db");
        let mut staged = StagedOutput::create(&out).unwrap();
        staged.write(b"first").unwrap();
        assert!(staged.tmp.exists());
        drop(staged);
        assert!(!with_suffix(&out, ".tmp").exists() && !out.exists());

        let mut staged = StagedOutput::create(&out).unwrap();
        staged.write(b"first").unwrap();
        staged.publish(Publish::CreateNew).unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"first");
        assert!(!with_suffix(&out, ".tmp").exists());

        let mut staged = StagedOutput::create(&out).unwrap();
        staged.write(b"second").unwrap();
        let err = staged.publish(Publish::CreateNew).unwrap_err();
        assert!(format!("{err:#}").contains("-force"), "{err:#}");
        assert_eq!(fs::read(&out).unwrap(), b"first");
        assert!(!with_suffix(&out, ".tmp").exists());

        // A second restore to the same target while the first one writes is refused and
        // leaves the first one's file alone.
        let mut first = StagedOutput::create(&out).unwrap();
        first.write(b"mine").unwrap();
        let err = StagedOutput::create(&out).err().unwrap();
        assert!(format!("{err:#}").contains("another restore"), "{err:#}");
        first.publish(Publish::Replace).unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"mine");

        fs::write(with_suffix(&out, "-wal"), b"stale").unwrap();
        let mut staged = StagedOutput::create(&out).unwrap();
        staged.write(b"third").unwrap();
        staged.publish(Publish::Replace).unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"third");
        assert!(!with_suffix(&out, "-wal").exists());
    }
}
