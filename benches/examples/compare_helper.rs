//! The Rust side of `benches/compare.py` (the walcast vs Litestream comparison): owns the
//! two jobs the Python harness cannot do with the standard library alone.
//!
//! - `compare_helper s3-server`: runs the test suite's in-process S3 server
//!   (`walcast_testbed::s3::S3Server`, s3s-fs on 127.0.0.1, real SigV4) as a process of its
//!   own, prints one JSON line `{"endpoint", "root", "bucket", "access_key", "secret_key"}`
//!   and serves until its standard input closes.
//! - `compare_helper probe-lags DIR`: DIR holds LTX files named by the wall-clock time (ns)
//!   at which the harness first saw them in a replica. Decodes each (LZ4 pages included),
//!   finds probe rows `PROBE:<20-digit ns>` in the pages and prints, as one JSON object, the
//!   lag in ms of each probe's first sighting (`lags_ms`) and the files that did not decode.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use walcast_ltx::Decoder;
use walcast_testbed::s3::{ACCESS_KEY, BUCKET, S3Server, SECRET_KEY};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["s3-server"] => serve_s3(),
        ["probe-lags", dir] => print_probe_lags(Path::new(dir)),
        _ => Err("usage: compare_helper s3-server | compare_helper probe-lags DIR".into()),
    }
}

fn serve_s3() -> Res<()> {
    let server = S3Server::start()?;
    let ready = serde_json::json!({
        "endpoint": server.endpoint(),
        "root": server.root(),
        "bucket": BUCKET,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{ready}")?;
    stdout.flush()?;
    // Serve until the harness closes our standard input (or exits).
    let mut sink = Vec::new();
    std::io::stdin().read_to_end(&mut sink)?;
    drop(server);
    Ok(())
}

/// Probe stamps (wall-clock ns) written by the load generator, found in one page.
fn probe_stamps(page: &[u8], stamps: &mut Vec<u128>) {
    const TAG: &[u8] = b"PROBE:";
    const DIGITS: usize = 20;
    let mut from = 0;
    while let Some(found) = page[from..].windows(TAG.len()).position(|w| w == TAG) {
        let digits_at = from + found + TAG.len();
        if let Some(digits) = page.get(digits_at..digits_at + DIGITS)
            && let Some(ns) = std::str::from_utf8(digits)
                .ok()
                .and_then(|d| d.parse().ok())
        {
            stamps.push(ns);
        }
        from = digits_at;
    }
}

fn print_probe_lags(dir: &Path) -> Res<()> {
    let mut sightings: Vec<(u128, PathBuf)> = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let seen_ns: u128 = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("{name:?} is not named <seen ns>-<original name>"))?;
        sightings.push((seen_ns, entry.path()));
    }
    sightings.sort();
    let mut seen_probes = HashSet::new();
    let mut lags_ms = Vec::new();
    let mut undecodable = Vec::new();
    let mut stamps = Vec::new();
    for (seen_ns, path) in sightings {
        let decoded: Res<()> = (|| {
            let mut decoder = Decoder::new(File::open(&path)?)?;
            while let Some(page) = decoder.next_page()? {
                stamps.clear();
                probe_stamps(page.data, &mut stamps);
                for &stamp in &stamps {
                    if seen_probes.insert(stamp) {
                        lags_ms.push(seen_ns.saturating_sub(stamp) as f64 / 1e6);
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = decoded {
            undecodable.push(format!("{}: {e}", path.display()));
        }
    }
    let report = serde_json::json!({ "lags_ms": lags_ms, "undecodable": undecodable });
    println!("{report}");
    Ok(())
}
