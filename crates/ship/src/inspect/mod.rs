//! `walcast inspect FILE [--json]`: tell a database, WAL, wal-index or LTX file apart by
//! content and report what it holds. One submodule per kind; each builds a [`Report`],
//! which prints as aligned text or as one JSON object whose keys scripts rely on.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Map, Value};

mod db;
mod ltx;
mod shm;
mod wal;

/// Arguments of `walcast inspect`.
#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// The file to inspect: a database, a WAL, a wal-index (-shm) or an LTX file.
    pub file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// What a file is, decided from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A SQLite database (`SQLite format 3\0`).
    Database,
    /// A SQLite WAL (magic 0x377f0682 or 0x377f0683, big-endian).
    Wal,
    /// A SQLite wal-index (`-shm`).
    WalIndex,
    /// An LTX file (`LTX1`).
    Ltx,
}

/// The findings about one file, in the order they print.
#[derive(Debug, Default)]
pub struct Report {
    fields: Vec<(&'static str, Value)>,
    /// Set when the file is damaged: the findings still print, then the command fails.
    failure: Option<anyhow::Error>,
}

impl Report {
    /// Appends one finding.
    pub fn field(&mut self, key: &'static str, value: impl Into<Value>) -> &mut Self {
        self.fields.push((key, value.into()));
        self
    }

    /// Marks the file as damaged: what was read still prints, then `walcast inspect`
    /// exits 1 with `error`, which names the file and the byte offset.
    pub fn fail(&mut self, error: anyhow::Error) -> &mut Self {
        self.failure = Some(error);
        self
    }

    fn to_json(&self) -> Value {
        let map: Map<String, Value> = self
            .fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        Value::Object(map)
    }

    fn to_text(&self) -> String {
        let width = self.fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        self.fields
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k:<width$}  {s}\n"),
                other => format!("{k:<width$}  {other}\n"),
            })
            .collect()
    }
}

/// Runs `walcast inspect`.
pub fn run(args: &InspectArgs) -> anyhow::Result<()> {
    let path = &args.file;
    let kind = detect(path)?;
    let mut report = match kind {
        FileKind::Database => db::inspect(path)?,
        FileKind::Wal => wal::inspect(path)?,
        FileKind::WalIndex => shm::inspect(path)?,
        FileKind::Ltx => ltx::inspect(path)?,
    };
    print(&report, args.json)?;
    report.failure.take().map_or(Ok(()), Err)
}

fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}

/// Reads the first bytes of `path` and decides its kind from its content. Only an empty
/// file, which has no content to go by, is named by its `-wal` / `-shm` suffix.
pub fn detect(path: &Path) -> anyhow::Result<FileKind> {
    let mut head = Vec::with_capacity(136);
    let mut file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let len = file.metadata()?.len();
    file.by_ref()
        .take(136)
        .read_to_end(&mut head)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if let Some(kind) = kind_of(&head, len) {
        return Ok(kind);
    }
    if len == 0 {
        let name = path.to_string_lossy();
        if name.ends_with("-wal") {
            return Ok(FileKind::Wal);
        }
        if name.ends_with("-shm") {
            return Ok(FileKind::WalIndex);
        }
        anyhow::bail!(
            "{}: the file is empty (0 bytes), so its kind cannot be told from its content \
             (an empty file named *-wal or *-shm is inspected as a WAL or wal-index)",
            path.display()
        );
    }
    anyhow::bail!(
        "{}: not a SQLite database, WAL, wal-index or LTX file (first bytes at offset 0: {})",
        path.display(),
        hex_prefix(&head)
    )
}

fn kind_of(head: &[u8], len: u64) -> Option<FileKind> {
    if head.starts_with(b"SQLite format 3\0") {
        return Some(FileKind::Database);
    }
    if head.starts_with(b"LTX1") {
        return Some(FileKind::Ltx);
    }
    if let Some(first_word) = head.get(..4).and_then(|w| <[u8; 4]>::try_from(w).ok()) {
        if matches!(u32::from_be_bytes(first_word), 0x377f_0682 | 0x377f_0683) {
            return Some(FileKind::Wal);
        }
        if wal_index_version(first_word) == 3_007_000 {
            return Some(FileKind::WalIndex);
        }
    }
    is_fresh_wal_index(head, len).then_some(FileKind::WalIndex)
}

/// A wal-index before recovery wrote its header: 3 bytes (a first opener truncated it,
/// keeping the old first bytes or zeros), or whole 32 KiB regions starting with zeros.
fn is_fresh_wal_index(head: &[u8], len: u64) -> bool {
    let version = wal_index_version_bytes();
    match len {
        3 => head.iter().all(|&b| b == 0) || version.starts_with(head),
        _ => len > 0 && len.is_multiple_of(32768) && head.iter().all(|&b| b == 0),
    }
}

/// The wal-index header starts with iVersion in host byte order: the file is host-local
/// shared memory, which is why walcast refuses network filesystems.
#[allow(clippy::host_endian_bytes)]
fn wal_index_version(first_word: [u8; 4]) -> u32 {
    u32::from_ne_bytes(first_word)
}

/// The first word of an initialised wal-index, in host order.
#[allow(clippy::host_endian_bytes)]
fn wal_index_version_bytes() -> [u8; 4] {
    3_007_000u32.to_ne_bytes()
}

fn hex_prefix(head: &[u8]) -> String {
    if head.is_empty() {
        return "none, the file is empty".to_owned();
    }
    head.iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
