//! Inputs for the LTX benches: pages shaped like SQLite table-leaf pages (a small header,
//! records of words and numbers filling most of the page, zeros after), which LZ4
//! compresses about as well as real application data. Deterministic: the same bytes on
//! every run.

/// `count` pages of `page_size` bytes.
pub fn sqlite_like_pages(count: usize, page_size: usize) -> Vec<Vec<u8>> {
    const WORDS: [&[u8]; 12] = [
        b"alpha",
        b"order",
        b"customer",
        b"shipped",
        b"pending",
        b"invoice",
        b"2026-11-23",
        b"berlin",
        b"total",
        b"note",
        b"paid",
        b"express",
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let mut page = vec![0u8; page_size];
            let used = page_size * 85 / 100;
            let mut at = 16;
            while at + 24 < used {
                let r = next();
                let record: &[u8] = if r % 3 == 0 {
                    &r.to_be_bytes()
                } else {
                    WORDS[(r % 12) as usize]
                };
                page[at..at + record.len()].copy_from_slice(record);
                at += record.len() + 1;
            }
            page
        })
        .collect()
}
