//! Helpers shared by walcast-restore's integration tests: running the binary as a user
//! does, and building directory replicas from database images written by real SQLite.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use walcast_format::PageSize;
use walcast_ltx::{Encoder, Header, LtxFileName, TxId};
use walcast_replica::{DirReplica, Level};
use walcast_testbed::sqlite;

/// The binary under test.
pub fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_walcast-restore"));
    cmd.stdin(std::process::Stdio::null());
    cmd
}

/// What one run printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, Some(0), "expected success: {self:#?}");
        self
    }

    pub fn fails_with(&self, code: i32, needles: &[&str]) -> &Self {
        assert_eq!(self.code, Some(code), "expected exit {code}: {self:#?}");
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "stderr lacks {needle:?}: {self:#?}"
            );
        }
        self
    }
}

/// Runs `walcast-restore ARGS` to completion.
pub fn run<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = binary().args(args).output().unwrap();
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// `walcast-restore restore -o OUT [EXTRA...] REPLICA`.
pub fn restore(out: &Path, replica: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<std::ffi::OsString> = vec!["restore".into(), "-o".into(), out.into()];
    args.extend(extra.iter().map(Into::into));
    args.push(replica.into());
    run(args)
}

/// `out` with `suffix` appended to its name.
pub fn sibling(out: &Path, suffix: &str) -> PathBuf {
    let mut name = out.file_name().unwrap().to_owned();
    name.push(suffix);
    out.with_file_name(name)
}

/// Asserts that neither OUT nor OUT.tmp exists.
pub fn assert_no_output(out: &Path) {
    assert!(!out.exists(), "{} exists", out.display());
    let tmp = sibling(out, ".tmp");
    assert!(!tmp.exists(), "{} exists", tmp.display());
}

/// Database images written by real SQLite: `phases` successive states of one database
/// (rollback-journal mode, so the file alone is the database), each 300 rows of random
/// blobs of about `blob` bytes more, with updates and deletes in between.
pub fn sqlite_images(dir: &Path, page_size: u32, phases: usize, blob: usize) -> Vec<Vec<u8>> {
    let db = dir.join(format!("images-{page_size}.db"));
    let _ = std::fs::remove_file(&db);
    sqlite::exec(
        &db,
        &format!("PRAGMA page_size={page_size}; CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);"),
    )
    .unwrap();
    let mut images = Vec::new();
    for phase in 0..phases {
        let sql = format!(
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<300)
             INSERT INTO t(v) SELECT randomblob({blob} + {phase}) FROM c;
             UPDATE t SET v = randomblob(150) WHERE id % 7 = {phase};
             DELETE FROM t WHERE id % 11 = {phase};"
        );
        sqlite::exec(&db, &sql).unwrap();
        images.push(std::fs::read(&db).unwrap());
    }
    images
}

fn txid(n: u64) -> TxId {
    TxId::new(n).unwrap()
}

/// The LTX bytes of TXID `n` of a history of images: every page of image 0 for TXID 1,
/// else the pages of image n-1 that differ from image n-2 or are new.
pub fn ltx_for(images: &[Vec<u8>], page_size: u32, min: u64, max: u64) -> Vec<u8> {
    let ps = PageSize::new(page_size).unwrap();
    let image = &images[max as usize - 1];
    let before = (min > 1).then(|| &images[min as usize - 2]);
    let commit = (image.len() / page_size as usize) as u32;
    let header = Header::new(
        ps,
        commit,
        txid(min),
        txid(max),
        1_700_000_000_000 + max as i64,
    );
    let mut enc = Encoder::new(Vec::new(), header).unwrap();
    for (i, page) in image.chunks(page_size as usize).enumerate() {
        let pgno = i as u32 + 1;
        if pgno == ps.lock_byte_page() {
            continue;
        }
        let unchanged = before.is_some_and(|b| b.chunks(page_size as usize).nth(i) == Some(page));
        if !unchanged {
            enc.write_page(pgno, page).unwrap();
        }
    }
    enc.finish(None).unwrap().writer
}

/// A directory replica holding one L0 file per image (TXID n = image n-1).
pub fn l0_replica(root: &Path, images: &[Vec<u8>], page_size: u32) -> DirReplica {
    let replica = DirReplica::new(root);
    for n in 1..=images.len() as u64 {
        let bytes = ltx_for(images, page_size, n, n);
        replica.put(Level::L0, name(n, n), &bytes[..]).unwrap();
    }
    replica
}

pub fn name(min: u64, max: u64) -> LtxFileName {
    LtxFileName {
        min: txid(min),
        max: txid(max),
    }
}
