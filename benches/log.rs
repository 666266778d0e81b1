//! Segment log throughput: append of 16 KiB and 1 MiB batches of 1 KiB records (page cache, no
//! fsync: Kafka's default durability), and sequential read from the page cache.
//!
//! ```sh
//! cargo bench --bench log
//! ```
//! Figures and the machine's raw disk rate: BENCHMARKS.md (`scripts/bench-log.sh`).

use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use odradek::log::records::{encode_batch, Compression, NewRecord};
use odradek::log::{Log, LogConfig};

const RECORD_BYTES: usize = 1024;

fn batch_of(records: usize) -> Bytes {
    // Incompressible-looking values are irrelevant here: the log never compresses.
    let value = Bytes::from(vec![b'x'; RECORD_BYTES]);
    let recs: Vec<NewRecord> = (0..records)
        .map(|_| NewRecord {
            value: Some(value.clone()),
            timestamp_ms: 1,
            ..NewRecord::default()
        })
        .collect();
    encode_batch(&recs, Compression::None).expect("encode bench batch")
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    // ~1 MiB: 1000 records stay under the default max.message.bytes (1048588).
    for (name, records) in [("16KiB", 16), ("1MiB", 1000)] {
        let batch = batch_of(records);
        group.throughput(Throughput::Bytes(batch.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &batch, |b, batch| {
            // A fresh log per sample keeps the disk footprint to one sample's worth.
            b.iter_custom(|iters| {
                let dir = tempfile::tempdir().expect("tempdir");
                let mut log = Log::open(dir.path(), LogConfig::default(), 0).expect("open");
                let start = Instant::now();
                for _ in 0..iters {
                    log.append_as_leader(batch, 0, 1).expect("append");
                }
                start.elapsed()
            });
        });
    }
    group.finish();
}

fn sequential_read(c: &mut Criterion) {
    let mut group = c.benchmark_group("read");
    group.sample_size(10);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::open(
        dir.path(),
        LogConfig {
            segment_bytes: 64 * 1024 * 1024,
            ..LogConfig::default()
        },
        0,
    )
    .expect("open");
    let batch = batch_of(16);
    let total_bytes = 256 * 1024 * 1024;
    while log.size_in_bytes() < total_bytes {
        log.append_as_leader(&batch, 0, 1).expect("append");
    }
    let end = log.log_end_offset();
    let reader = log.reader();
    group.throughput(Throughput::Bytes(log.size_in_bytes()));
    // Fetch-sized reads (1 MiB), copied into memory: the non-zero-copy path.
    group.bench_function("sequential_1MiB_fetches", |b| {
        b.iter(|| {
            let mut next = 0;
            let mut bytes = 0u64;
            while next < end {
                let slice = reader
                    .read(next, 1 << 20, end)
                    .expect("read")
                    .records
                    .expect("records");
                bytes += slice.read_to_bytes().expect("copy").len() as u64;
                next = slice.last_offset() + 1;
            }
            bytes
        });
    });
    group.finish();
}

criterion_group!(benches, append, sequential_read);
criterion_main!(benches);
