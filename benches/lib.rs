//! Shared setup for walcast's criterion benches (inputs built the same way every run).
//! The benches themselves live in `benches/benches/*.rs`; figures in `benches/README.md`.

pub mod ltx_input;

use walcast_format::wal::{Salts, WalHeader, WalWriter};
use walcast_format::{PageSize, WordOrder};

/// A valid WAL of about `bytes` bytes written by walcast's writer: `page_size` pages with
/// varied contents, a commit every 16 frames and at the end.
pub fn synthetic_wal(order: WordOrder, page_size: u32, bytes: usize) -> Vec<u8> {
    let Ok(page_size) = PageSize::new(page_size) else {
        return Vec::new();
    };
    let header = WalHeader::new(
        order,
        page_size,
        0,
        Salts {
            salt1: 0x5eed,
            salt2: 0xcafe,
        },
    );
    let frames = (bytes / (page_size.as_usize() + 24)).max(1) as u32;
    let Ok(mut wal) = WalWriter::new(Vec::with_capacity(bytes + 4096), header) else {
        return Vec::new();
    };
    let mut page = vec![0u8; page_size.as_usize()];
    for n in 1..=frames {
        for (i, b) in page.iter_mut().enumerate() {
            *b = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(n) as u8;
        }
        let commit = if n % 16 == 0 || n == frames { n } else { 0 };
        if wal.write_frame(n, commit, &page).is_err() {
            return Vec::new();
        }
    }
    wal.into_inner()
}
