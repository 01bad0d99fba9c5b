//! LTX throughput, in bytes of page data per second: encode, decode + verify (the file
//! checksum and every invariant), and the CRC-64/GO-ISO alone (with a byte-at-a-time
//! table CRC beside it for scale). Run: `cargo bench -p walcast-benches --bench ltx`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use walcast_benches::ltx_input::sqlite_like_pages;
use walcast_format::PageSize;
use walcast_ltx::{Crc64, Decoder, Encoder, Header, TxId};

/// Page data per iteration.
const DATA: usize = 16 << 20;

fn header(page_size: usize, pages: usize) -> Header {
    let page_size = PageSize::new(page_size as u32).unwrap();
    Header::new(page_size, pages as u32, TxId::FIRST, TxId::FIRST, 0)
}

fn encode(pages: &[Vec<u8>], page_size: usize) -> Vec<u8> {
    let out = Vec::with_capacity(DATA);
    let mut enc = Encoder::new(out, header(page_size, pages.len())).unwrap();
    for (i, page) in pages.iter().enumerate() {
        enc.write_page(i as u32 + 1, page).unwrap();
    }
    enc.finish(None).unwrap().writer
}

fn codec(c: &mut Criterion) {
    for page_size in [4096usize, 65536] {
        let pages = sqlite_like_pages(DATA / page_size, page_size);
        let file = encode(&pages, page_size);
        let mut group = c.benchmark_group("ltx");
        group.throughput(Throughput::Bytes(DATA as u64));
        group.bench_function(format!("encode/{page_size}"), |b| {
            b.iter(|| black_box(encode(&pages, page_size)))
        });
        group.bench_function(format!("decode_verify/{page_size}"), |b| {
            b.iter(|| {
                let mut dec = Decoder::new(&file[..]).unwrap();
                while let Some(page) = dec.next_page().unwrap() {
                    black_box(page.data);
                }
                black_box(dec.finish().unwrap())
            })
        });
        group.finish();
        eprintln!(
            "ltx {page_size}-byte pages: {} MiB of pages -> {} MiB file",
            DATA >> 20,
            file.len() >> 20
        );
    }
}

/// CRC-64/GO-ISO one byte at a time from a 256-entry table (what Go's hash/crc64 does
/// for short inputs), for scale.
fn crc64_bytewise(table: &[u64; 256], data: &[u8]) -> u64 {
    let mut crc = !0u64;
    for &b in data {
        crc = table[((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

fn crc64_table() -> [u64; 256] {
    let mut table = [0u64; 256];
    for (i, entry) in table.iter_mut().enumerate() {
        let mut crc = i as u64;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xD800_0000_0000_0000
            } else {
                crc >> 1
            };
        }
        *entry = crc;
    }
    table
}

fn crc(c: &mut Criterion) {
    let data: Vec<u8> = sqlite_like_pages(DATA / 4096, 4096).concat();
    let table = crc64_table();
    assert_eq!(
        crc64_bytewise(&table, b"123456789"),
        Crc64::of(b"123456789")
    );
    let mut group = c.benchmark_group("crc64");
    group.throughput(Throughput::Bytes(DATA as u64));
    group.bench_function("crc-fast/16MiB", |b| b.iter(|| black_box(Crc64::of(&data))));
    group.bench_function("crc-fast/per-4KiB-page", |b| {
        b.iter(|| {
            let mut crc = Crc64::new();
            for page in data.chunks(4096) {
                crc.update(&[0, 0, 0, 1, 0, 1, 0, 0, 3, 0]);
                crc.update(page);
            }
            black_box(crc.value())
        })
    });
    group.bench_function("table-bytewise/16MiB", |b| {
        b.iter(|| black_box(crc64_bytewise(&table, &data)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = codec, crc
}
criterion_main!(benches);
