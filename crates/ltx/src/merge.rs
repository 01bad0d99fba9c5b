//! Streaming k-way merge of LTX files into one: what compaction (L0 -> L1 …, L9
//! snapshots) and restore (snapshot + later files -> one database image) both do.
//!
//! Inputs are given oldest first. For each page number the newest input's copy wins;
//! pages beyond the last input's commit are dropped (the database shrank). The output
//! header follows Litestream's compactor (superfly/ltx `Compactor.Compact`):
//!
//! | field | value |
//! |---|---|
//! | page size | the inputs' (all must agree) |
//! | commit | the last input's |
//! | min / max TXID | the first input's min / the last input's max |
//! | timestamp | the last input's |
//! | WAL offset, size, salts, node ID | 0 |
//! | flags, pre/post-apply checksums | [`MergeChecksums`] |
//!
//! Safety: every input's checksum is verified before the output's trailer is written, so
//! if any input is corrupt the merge fails and its output has no trailer, which no LTX
//! reader accepts. The caller still stages the output (tmp file, then rename) and
//! discards it on error.
//!
//! Memory: one decoder per input (a page and a compressed page each) plus the encoder.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{Read, Write};

use crate::checksum::Checksum;
use crate::decoder::{Decoder, VerifiedFile};
use crate::encoder::{EncodedFile, Encoder};
use crate::error::{DecodeError, EncodeError};
use crate::header::{Header, HeaderFlags};
use crate::txid::TxId;

/// What the merged file says about database checksums.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MergeChecksums {
    /// NoChecksum output with zero pre/post-apply checksums, whatever the inputs track:
    /// what Litestream's compaction and restore write.
    #[default]
    Drop,
    /// Every input must track checksums, each input's pre-apply checksum must equal the
    /// previous input's post-apply checksum where they meet, and the output carries the
    /// first input's pre-apply and the last input's post-apply checksum.
    Carry,
}

/// How to merge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MergeOptions {
    /// Checksum policy of the output.
    pub checksums: MergeChecksums,
    /// Accept inputs whose TXID ranges leave gaps (Litestream's
    /// `AllowNonContiguousTXIDs`, for rebuilding snapshots with missing files).
    pub allow_gaps: bool,
}

/// Why a merge failed. `index` is the input's position in the list given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MergeError {
    /// No input.
    #[error("nothing to merge: at least one LTX file is needed")]
    NoInputs,
    /// An input cannot be decoded or failed verification.
    #[error("input {index}: {source}")]
    Input {
        /// Input position.
        index: usize,
        /// The decode error, with its byte offset.
        source: DecodeError,
    },
    /// Inputs disagree on the page size.
    #[error("input {index} has page size {found}, input 0 has {expected}")]
    PageSizeMismatch {
        /// Input position.
        index: usize,
        /// Page size of input 0.
        expected: u32,
        /// This input's page size.
        found: u32,
    },
    /// An input does not continue the TXID range of the one before.
    #[error(
        "input {index} covers TXIDs {min}-{max}, which does not continue input {prev_index} ending at {prev_max}"
    )]
    NotContiguous {
        /// Input position.
        index: usize,
        /// Previous input position.
        prev_index: usize,
        /// Previous input's max TXID.
        prev_max: TxId,
        /// This input's min TXID.
        min: TxId,
        /// This input's max TXID.
        max: TxId,
    },
    /// [`MergeChecksums::Carry`] with an input that does not track checksums.
    #[error("input {index} has the NoChecksum flag; carrying checksums needs them on every input")]
    ChecksumsNotTracked {
        /// Input position.
        index: usize,
    },
    /// Consecutive inputs whose checksums do not chain.
    #[error(
        "input {index} expects database checksum {pre_apply} before it, but input {} leaves {post_apply}", index - 1
    )]
    ChecksumChain {
        /// Input position.
        index: usize,
        /// This input's pre-apply checksum.
        pre_apply: Checksum,
        /// The previous input's post-apply checksum.
        post_apply: Checksum,
    },
    /// Writing the output failed.
    #[error("output: {0}")]
    Output(#[from] EncodeError),
}

/// What a successful merge returns.
#[derive(Debug)]
pub struct Merged<W> {
    /// The output written.
    pub output: EncodedFile<W>,
    /// Each input's verification, in input order.
    pub inputs: Vec<VerifiedFile>,
}

/// Litestream's contiguity rule (`ltx.IsContiguous`): the next file may overlap the
/// previous one but must start no later than right after it and must end after it.
pub fn is_contiguous(prev_max: TxId, min: TxId, max: TxId) -> bool {
    min.get() <= prev_max.get().saturating_add(1) && max > prev_max
}

/// The header of the merged file, from the inputs' headers (oldest first).
pub fn merged_header(inputs: &[Header], options: &MergeOptions) -> Result<Header, MergeError> {
    let (first, last) = match (inputs.first(), inputs.last()) {
        (Some(first), Some(last)) => (first, last),
        _ => return Err(MergeError::NoInputs),
    };
    for (index, pair) in inputs.windows(2).enumerate() {
        let (prev, next) = (&pair[0], &pair[1]);
        if next.page_size != first.page_size {
            return Err(MergeError::PageSizeMismatch {
                index: index + 1,
                expected: first.page_size.get(),
                found: next.page_size.get(),
            });
        }
        if !options.allow_gaps && !is_contiguous(prev.max_txid, next.min_txid, next.max_txid) {
            return Err(MergeError::NotContiguous {
                index: index + 1,
                prev_index: index,
                prev_max: prev.max_txid,
                min: next.min_txid,
                max: next.max_txid,
            });
        }
    }
    let (flags, pre_apply_checksum) = match options.checksums {
        MergeChecksums::Drop => (HeaderFlags::NO_CHECKSUM, None),
        MergeChecksums::Carry => {
            if let Some(index) = inputs.iter().position(|h| !h.flags.tracks_checksums()) {
                return Err(MergeError::ChecksumsNotTracked { index });
            }
            (HeaderFlags::NONE, first.pre_apply_checksum)
        }
    };
    let mut header = Header::new(
        first.page_size,
        last.commit,
        first.min_txid,
        last.max_txid,
        last.timestamp_ms,
    );
    (header.flags, header.pre_apply_checksum) = (flags, pre_apply_checksum);
    header.validate().map_err(EncodeError::from)?;
    Ok(header)
}

/// Merges `inputs` (oldest first) into one LTX file written to `output`.
pub fn merge<R: Read, W: Write>(
    inputs: impl IntoIterator<Item = R>,
    output: W,
    options: &MergeOptions,
) -> Result<Merged<W>, MergeError> {
    let mut decoders = Vec::new();
    for (index, reader) in inputs.into_iter().enumerate() {
        let decoder = Decoder::new(reader).map_err(|source| MergeError::Input { index, source })?;
        decoders.push(decoder);
    }
    let headers: Vec<Header> = decoders.iter().map(|d| *d.header()).collect();
    let header = merged_header(&headers, options)?;
    let mut encoder = Encoder::new(output, header)?;
    copy_newest_pages(&mut decoders, &mut encoder, header.commit)?;

    let mut verified = Vec::with_capacity(decoders.len());
    for (index, decoder) in decoders.into_iter().enumerate() {
        verified.push(
            decoder
                .finish()
                .map_err(|source| MergeError::Input { index, source })?,
        );
    }
    let post_apply = match options.checksums {
        MergeChecksums::Drop => None,
        MergeChecksums::Carry => {
            check_checksum_chain(&verified)?;
            verified
                .last()
                .and_then(|v| v.trailer().post_apply_checksum)
        }
    };
    Ok(Merged {
        output: encoder.finish(post_apply)?,
        inputs: verified,
    })
}

/// Walks all inputs in page order; writes each page number once, from the newest input
/// that has it, unless it lies beyond `commit`.
fn copy_newest_pages<R: Read, W: Write>(
    decoders: &mut [Decoder<R>],
    encoder: &mut Encoder<W>,
    commit: u32,
) -> Result<(), MergeError> {
    // Min-heap on page number; for equal page numbers the newest input (highest index)
    // pops first, so the first pop of a page number is the copy that wins.
    let mut heap = BinaryHeap::with_capacity(decoders.len());
    for index in 0..decoders.len() {
        advance(decoders, index, &mut heap)?;
    }
    let mut last_written = 0u32;
    while let Some(Reverse((pgno, Reverse(index)))) = heap.pop() {
        if pgno != last_written && pgno <= commit {
            let page = decoders[index]
                .current_page()
                .map(|p| p.data)
                .unwrap_or_default();
            encoder.write_page(pgno, page)?;
            last_written = pgno;
        }
        advance(decoders, index, &mut heap)?;
    }
    Ok(())
}

type PageHeap = BinaryHeap<Reverse<(u32, Reverse<usize>)>>;

fn advance<R: Read>(
    decoders: &mut [Decoder<R>],
    index: usize,
    heap: &mut PageHeap,
) -> Result<(), MergeError> {
    let next = decoders[index]
        .advance()
        .map_err(|source| MergeError::Input { index, source })?;
    if let Some(pgno) = next {
        heap.push(Reverse((pgno, Reverse(index))));
    }
    Ok(())
}

/// Where consecutive inputs meet exactly (next min = previous max + 1), the next one's
/// pre-apply checksum must be the previous one's post-apply checksum.
fn check_checksum_chain(verified: &[VerifiedFile]) -> Result<(), MergeError> {
    for (index, pair) in verified.windows(2).enumerate() {
        let (prev, next) = (&pair[0], &pair[1]);
        let meets = prev.header().max_txid.next() == Some(next.header().min_txid);
        let post = prev.trailer().post_apply_checksum;
        let pre = next.header().pre_apply_checksum;
        if let (true, Some(post_apply), Some(pre_apply)) = (meets, post, pre)
            && pre_apply != post_apply
        {
            return Err(MergeError::ChecksumChain {
                index: index + 1,
                pre_apply,
                post_apply,
            });
        }
    }
    Ok(())
}
