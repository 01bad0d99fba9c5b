//! `walcast inspect` for an LTX file: the header, the number of pages, and whether the
//! file checksum verifies. The whole file is decoded (streaming, bounded memory); a
//! damaged file still reports its header and the pages read before the damage, then
//! fails naming the byte offset.

use std::fs::File;
use std::path::Path;

use anyhow::Context;
use walcast_ltx::Decoder;

use super::Report;

/// Reads an LTX file and reports what it holds.
pub fn inspect(path: &Path) -> anyhow::Result<Report> {
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut decoder =
        Decoder::new(file).with_context(|| format!("{}: not a valid LTX file", path.display()))?;
    let header = *decoder.header();
    let mut report = Report::default();
    report
        .field("kind", "ltx")
        .field("min_txid", header.min_txid.to_string())
        .field("max_txid", header.max_txid.to_string())
        .field("page_size", header.page_size.get())
        .field("commit", header.commit)
        .field("timestamp", header.timestamp_rfc3339())
        .field("flags", header.flags.bits());
    if let Some(pre) = header.pre_apply_checksum {
        report.field("pre_apply_checksum", pre.to_string());
    }
    report
        .field("wal_offset", header.wal_offset)
        .field("wal_size", header.wal_size)
        .field("wal_salt1", header.wal_salt1)
        .field("wal_salt2", header.wal_salt2);

    let mut pages = 0u64;
    let verified = loop {
        match decoder.advance() {
            Ok(Some(_)) => pages += 1,
            Ok(None) => break decoder.finish(),
            Err(e) => break Err(e),
        }
    };
    match verified {
        Ok(verified) => {
            report
                .field("page_count", verified.page_count())
                .field("checksum_ok", true);
            if let Some(post) = verified.trailer().post_apply_checksum {
                report.field("post_apply_checksum", post.to_string());
            }
            report.field(
                "file_checksum",
                verified.trailer().file_checksum.to_string(),
            );
        }
        Err(e) => {
            report
                .field("page_count", pages)
                .field("checksum_ok", false);
            report.fail(anyhow::Error::new(e).context(format!(
                "{}: damaged LTX file ({pages} pages read before the problem was found)",
                path.display()
            )));
        }
    }
    Ok(report)
}
