//! Builds one compaction output (an Ln file or an L9 snapshot) from replica objects: a
//! streaming merge into a staging file, then one
//! [`ReplicaClient::put_file`], then the staging file is removed.
//!
//! Memory: the merge ([`walcast_ltx::merge()`]) holds, per input, one page, one compressed
//! page and the decoder's 64 KiB read buffer, plus the encoder's 64 KiB write buffer and
//! its page index (three varints per page written, about 10 bytes: some 2.5 MB per GiB of
//! 4 KiB pages, the one part that grows with the database, as in Litestream's encoder);
//! nothing holds a whole input or output. The upload is served from a map of the staging
//! file (file-backed pages the kernel can drop, not heap).
//! At most [`MAX_OPEN_INPUTS`] inputs are open at once: more are merged in groups into
//! staging files first, and those are merged in turn, so a large backlog neither holds
//! hundreds of object streams open nor grows memory with their number.
//!
//! Outputs are deterministic: the same inputs give the same bytes (merge and encoder are
//! pure functions of the pages, and the header timestamp is the last input's), so a retry
//! after a crash finds its earlier upload [`PutOutcome::AlreadyPresent`]. An object of the
//! output's name with other bytes (built from other files covering the same TXID range,
//! e.g. by an earlier run with another schedule) is accepted when it verifies as a
//! complete LTX file of exactly that range: it is an equally valid compaction. Otherwise
//! the step fails and nothing is deleted.
//!
//! This module must never delete a replica object, and never leave a staging file behind
//! once it returns.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use walcast_ltx::{LtxFileName, MergeOptions, merge, verify};

use crate::compact::error::CompactError;
use crate::compact::local_l0::LocalL0;
use crate::dir::PutOutcome;
use crate::layout::Level;
use crate::store::{ReplicaClient, StoreError};

/// At most this many inputs are read at once.
pub const MAX_OPEN_INPUTS: usize = 32;

/// Prefix of every staging file, so that leftovers of a crashed run can be removed.
pub(crate) const STAGING_PREFIX: &str = ".walcast-compact-";

/// What happened to the output object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputOutcome {
    /// Uploaded now.
    Written,
    /// Already there with the same bytes (a retry after a crash or a lost answer).
    AlreadyPresent,
    /// Already there with other bytes that verify as a complete LTX file of the same
    /// TXID range; kept as the output.
    Adopted,
}

/// One output built and stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuiltFile {
    /// Its level.
    pub level: Level,
    /// Its TXID range.
    pub name: LtxFileName,
    /// Its size in bytes.
    pub size: u64,
    /// Its header timestamp (Unix ms): the last input's.
    pub timestamp_ms: i64,
    /// What happened to the object.
    pub outcome: OutputOutcome,
}

/// The inputs' header timestamps, learned while merging them, oldest input first.
pub(crate) type InputTimestamps = Vec<(Level, LtxFileName, i64)>;

/// A staging file removed when dropped.
struct Staged(PathBuf);

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Merges `inputs` (oldest first, contiguous) into one file stored at `level`.
pub(crate) fn build(
    client: &ReplicaClient,
    staging: &Path,
    local_l0: Option<&LocalL0>,
    level: Level,
    inputs: &[(Level, LtxFileName)],
) -> Result<(BuiltFile, InputTimestamps), CompactError> {
    let (Some(first), Some(last)) = (inputs.first(), inputs.last()) else {
        return Err(CompactError::Bug {
            detail: format!("a level {level} compaction was started with no input"),
        });
    };
    let name = LtxFileName {
        min: first.1.min,
        max: last.1.max,
    };
    let job = Job {
        client,
        staging,
        local_l0,
        level,
        name,
    };
    let (groups, timestamps) = job.merge_objects(inputs)?;
    let output = job.merge_rounds(groups)?;
    let size = std::fs::metadata(&output.0)
        .map_err(|e| CompactError::staging(&output.0, "read the size of the merged file", e))?
        .len();
    let outcome = store(client, level, name, &output.0)?;
    let timestamp_ms = timestamps.last().map_or(0, |t| t.2);
    let built = BuiltFile {
        level,
        name,
        size,
        timestamp_ms,
        outcome,
    };
    Ok((built, timestamps))
}

/// One output being built.
struct Job<'a> {
    client: &'a ReplicaClient,
    staging: &'a Path,
    local_l0: Option<&'a LocalL0>,
    level: Level,
    name: LtxFileName,
}

impl Job<'_> {
    /// A staging file of this output, `tag` telling the partial merges apart.
    fn staged(&self, tag: &str) -> Staged {
        let (level, name) = (self.level, self.name);
        Staged(
            self.staging
                .join(format!("{STAGING_PREFIX}{level}-{name}.{tag}")),
        )
    }

    fn merge_error(&self, inputs: String, source: walcast_ltx::MergeError) -> CompactError {
        CompactError::Merge {
            inputs,
            output: self.client.location(self.level, self.name),
            source,
        }
    }

    /// Merges the objects in groups of at most [`MAX_OPEN_INPUTS`], one staging file each;
    /// returns them with every input's header timestamp.
    fn merge_objects(
        &self,
        inputs: &[(Level, LtxFileName)],
    ) -> Result<(Vec<Staged>, InputTimestamps), CompactError> {
        let mut timestamps = Vec::with_capacity(inputs.len());
        let mut groups = Vec::new();
        for (g, group) in inputs.chunks(MAX_OPEN_INPUTS).enumerate() {
            let staged = self.staged(&g.to_string());
            let (readers, names): (Vec<Input>, Vec<String>) =
                self.open_objects(group)?.into_iter().unzip();
            let verified = merge_to_file(readers, &staged.0)
                .map_err(|source| self.merge_error(names.join(", "), source))?;
            for ((l, n), file) in group.iter().zip(&verified) {
                timestamps.push((*l, *n, file.header().timestamp_ms));
            }
            groups.push(staged);
        }
        Ok((groups, timestamps))
    }

    /// Opens each input, with what an error should name: the local copy of an L0 file when
    /// there is one (its checksum is verified by the merge like any input's), else the
    /// object.
    fn open_objects(
        &self,
        group: &[(Level, LtxFileName)],
    ) -> Result<Vec<(Input, String)>, CompactError> {
        let mut inputs = Vec::with_capacity(group.len());
        for (level, name) in group {
            let local = (*level == Level::L0)
                .then(|| self.local_l0.map(|l| l.path(*name)))
                .flatten()
                .and_then(|path| File::open(&path).ok().map(|file| (file, path)));
            inputs.push(match local {
                Some((file, path)) => (
                    Box::new(file) as Input,
                    format!("{} (local copy)", path.display()),
                ),
                None => (
                    Box::new(self.client.get(*level, *name)?) as Input,
                    self.client.location(*level, *name),
                ),
            });
        }
        Ok(inputs)
    }

    /// Merges staging files in groups of at most [`MAX_OPEN_INPUTS`] until one is left.
    fn merge_rounds(&self, mut groups: Vec<Staged>) -> Result<Staged, CompactError> {
        let mut round = 0;
        while groups.len() > 1 {
            round += 1;
            let mut next = Vec::new();
            for (g, group) in groups.chunks(MAX_OPEN_INPUTS).enumerate() {
                let staged = self.staged(&format!("r{round}.{g}"));
                let readers = open_staged(group)?;
                merge_to_file(readers, &staged.0).map_err(|source| {
                    let names: Vec<String> =
                        group.iter().map(|s| s.0.display().to_string()).collect();
                    self.merge_error(names.join(", "), source)
                })?;
                next.push(staged);
            }
            groups = next;
        }
        groups.pop().ok_or_else(|| CompactError::Bug {
            detail: format!("the merge of {} produced no file", self.name),
        })
    }
}

/// One input stream (the decoder buffers its reads).
type Input = Box<dyn Read + Send>;

fn open_staged(group: &[Staged]) -> Result<Vec<Input>, CompactError> {
    let mut readers = Vec::with_capacity(group.len());
    for staged in group {
        let file = File::open(&staged.0)
            .map_err(|e| CompactError::staging(&staged.0, "open a partial merge", e))?;
        readers.push(Box::new(file) as Input);
    }
    Ok(readers)
}

/// Merges `readers` into the file `path`; returns each input's verification.
fn merge_to_file(
    readers: Vec<Input>,
    path: &Path,
) -> Result<Vec<walcast_ltx::VerifiedFile>, walcast_ltx::MergeError> {
    let file = File::create(path).map_err(|source| {
        walcast_ltx::MergeError::Output(walcast_ltx::EncodeError::Io { offset: 0, source })
    })?;
    let merged = merge(readers, file, &MergeOptions::default())?;
    Ok(merged.inputs)
}

/// Uploads the merged file; on a conflict, accepts the object there if it verifies as a
/// complete LTX file of the same TXID range.
fn store(
    client: &ReplicaClient,
    level: Level,
    name: LtxFileName,
    path: &Path,
) -> Result<OutputOutcome, CompactError> {
    match client.put_file(level, name, path) {
        Ok(PutOutcome::Written) => Ok(OutputOutcome::Written),
        Ok(PutOutcome::AlreadyPresent) => Ok(OutputOutcome::AlreadyPresent),
        Err(
            StoreError::Conflict { .. } | StoreError::Dir(crate::ReplicaError::Conflict { .. }),
        ) => {
            let location = client.location(level, name);
            match verify(client.get(level, name)?) {
                Ok(file) if file.header().file_name() == name => Ok(OutputOutcome::Adopted),
                Ok(file) => Err(CompactError::ConflictingOutput {
                    object: location,
                    detail: format!("its header says TXIDs {}", file.header().file_name()),
                }),
                Err(e) => Err(CompactError::conflicting(location, &e)),
            }
        }
        Err(e) => Err(e.into()),
    }
}
