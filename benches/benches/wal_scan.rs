//! WAL checksum verification and full WAL scans over a 64 MiB WAL, in bytes per second.
//! Run: cargo bench -p walcast-benches --bench wal_scan

use std::hint::black_box;
use std::io::{BufReader, Write};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use walcast_benches::synthetic_wal;
use walcast_format::WalChecksum;
use walcast_format::WordOrder;
use walcast_format::wal::{WalReader, WalSlice};

const WAL_BYTES: usize = 64 << 20;

fn checksum(c: &mut Criterion) {
    let data: Vec<u8> = (0..WAL_BYTES as u32)
        .map(|i| (i.wrapping_mul(31) >> 3) as u8)
        .collect();
    let mut group = c.benchmark_group("wal_checksum");
    group
        .throughput(Throughput::Bytes(data.len() as u64))
        .sample_size(10);
    for order in [WordOrder::Little, WordOrder::Big] {
        group.bench_function(order.name(), |b| {
            b.iter(|| WalChecksum::ZERO.extend(order, black_box(&data)))
        });
    }
    group.finish();
}

fn scan(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal_scan_64MiB");
    group.sample_size(10);
    for (order, page_size) in [
        (WordOrder::Little, 4096),
        (WordOrder::Big, 4096),
        (WordOrder::Little, 65536),
        (WordOrder::Little, 512),
    ] {
        let wal = synthetic_wal(order, page_size, WAL_BYTES);
        group.throughput(Throughput::Bytes(wal.len() as u64));
        let name = format!("slice_{}_{page_size}", order.name());
        group.bench_function(&name, |b| {
            b.iter(|| WalSlice::parse(black_box(&wal)).map(|w| w.recover()))
        });
        // Streaming from a file in the page cache: read syscalls + verification.
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(&wal).expect("write WAL");
        let path = file.path().to_owned();
        let name = format!("file_{}_{page_size}", order.name());
        group.bench_function(&name, |b| {
            b.iter(|| {
                let f = std::fs::File::open(&path).expect("open");
                WalReader::open(BufReader::with_capacity(256 << 10, f))
                    .and_then(WalReader::recover)
                    .map(|r| r.mx_frame())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, checksum, scan);
criterion_main!(benches);
