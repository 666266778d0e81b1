//! Metadata at scale: the cost of one change (a topic of 10 partitions created, one ISR changed)
//! replayed into a delta and applied, on top of images of growing size (up to 10,000 topics of
//! 10 partitions, replication factor 3). A change should cost what it changes, not the image.
//!
//! ```sh
//! cargo bench --bench metadata
//! ```
//! Figures: BENCHMARKS.md ("Metadata at scale").

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use odradek::common::Uuid;
use odradek::metadata::proto::{
    metadata_record::Record, BrokerIds, MetadataRecord, PartitionChangeRecord, PartitionRecord,
    TopicRecord,
};
use odradek::metadata::{MetadataDelta, MetadataImage};

const PARTITIONS: i32 = 10;

fn rec(record: Record) -> MetadataRecord {
    MetadataRecord {
        version: 0,
        record: Some(record),
    }
}

/// The records that create topic `index` with [`PARTITIONS`] partitions on brokers 1..=3.
fn topic_records(index: usize) -> (Uuid, Vec<MetadataRecord>) {
    let id = Uuid::random();
    let mut records = vec![rec(Record::Topic(TopicRecord {
        name: format!("topic-{index}"),
        topic_id: id.as_bytes().to_vec(),
    }))];
    for p in 0..PARTITIONS {
        let replicas: Vec<i32> = (0..3).map(|r| 1 + (p + r) % 3).collect();
        records.push(rec(Record::Partition(PartitionRecord {
            partition_id: p,
            topic_id: id.as_bytes().to_vec(),
            leader: replicas[0],
            isr: replicas.clone(),
            replicas,
            ..PartitionRecord::default()
        })));
    }
    (id, records)
}

/// An image of `topics` topics, and the id of its first topic.
fn image_of(topics: usize) -> (Arc<MetadataImage>, Uuid) {
    let mut delta = MetadataDelta::new(Arc::new(MetadataImage::empty()));
    let mut offset = 0;
    let mut first = None;
    for t in 0..topics {
        let (id, records) = topic_records(t);
        first.get_or_insert(id);
        for r in &records {
            delta.replay(offset, r).expect("replay bench record");
            offset += 1;
        }
    }
    (Arc::new(delta.apply()), first.expect("at least one topic"))
}

fn one_change(c: &mut Criterion) {
    let mut group = c.benchmark_group("metadata_delta");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(3));
    for topics in [100, 1_000, 10_000] {
        let (image, first) = image_of(topics);
        let (_, create) = topic_records(topics);
        group.bench_with_input(
            BenchmarkId::new("create_topic", topics),
            &image,
            |b, image| {
                b.iter(|| {
                    let mut delta = MetadataDelta::new(Arc::clone(image));
                    for (i, r) in create.iter().enumerate() {
                        delta
                            .replay(image.offset + 1 + i as i64, r)
                            .expect("replay create");
                    }
                    delta.apply()
                })
            },
        );
        let shrink = rec(Record::PartitionChange(PartitionChangeRecord {
            partition_id: 0,
            topic_id: first.as_bytes().to_vec(),
            isr: Some(BrokerIds { ids: vec![1, 2] }),
            ..PartitionChangeRecord::default()
        }));
        group.bench_with_input(
            BenchmarkId::new("isr_change", topics),
            &image,
            |b, image| {
                b.iter(|| {
                    let mut delta = MetadataDelta::new(Arc::clone(image));
                    delta
                        .replay(image.offset + 1, &shrink)
                        .expect("replay change");
                    delta.apply()
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, one_change);
criterion_main!(benches);
