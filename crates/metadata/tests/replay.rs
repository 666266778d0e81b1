//! Replay properties: determinism, snapshot round trips, and batch-size independence, over random
//! record sequences drawn from a small universe so that records often refer to one another (and
//! sometimes do not fit, which must fail the same way every time).

use std::sync::Arc;

use odradek_metadata::proto::{self, metadata_record::Record, MetadataRecord};
use odradek_metadata::{
    decode_snapshot, encode_snapshot, ConfigResource, MetadataChanges, MetadataDelta,
    MetadataError, MetadataImage,
};
use proptest::prelude::*;

fn topic_id(i: u8) -> Vec<u8> {
    let mut id = vec![0u8; 16];
    id[0] = 1;
    id[15] = i;
    id
}

fn ids() -> impl Strategy<Value = Vec<i32>> {
    proptest::collection::vec(0i32..4, 0..4)
}

fn record() -> impl Strategy<Value = MetadataRecord> {
    let r = prop_oneof![
        (
            0i32..4,
            0i64..3,
            any::<bool>(),
            proptest::option::of("[a-c]")
        )
            .prop_map(|(broker_id, broker_epoch, fenced, rack)| {
                Record::RegisterBroker(proto::RegisterBrokerRecord {
                    broker_id,
                    incarnation_id: vec![broker_id as u8; 16],
                    broker_epoch,
                    endpoints: vec![proto::Endpoint {
                        listener: "PLAINTEXT".into(),
                        host: "127.0.0.1".into(),
                        port: 9092 + broker_id as u32,
                        security_protocol: "PLAINTEXT".into(),
                    }],
                    rack,
                    fenced,
                    in_controlled_shutdown: false,
                    log_dirs: vec![vec![7; 16]],
                })
            }),
        (0i32..4, 0i64..3).prop_map(|(broker_id, broker_epoch)| {
            Record::UnregisterBroker(proto::UnregisterBrokerRecord {
                broker_id,
                broker_epoch,
            })
        }),
        (
            0i32..4,
            0i64..3,
            0i32..3,
            proptest::option::of(any::<bool>())
        )
            .prop_map(|(broker_id, broker_epoch, fence, cs)| {
                Record::BrokerRegistrationChange(proto::BrokerRegistrationChangeRecord {
                    broker_id,
                    broker_epoch,
                    fence,
                    in_controlled_shutdown: cs,
                })
            }),
        (0u8..4, 0u8..4).prop_map(|(n, i)| Record::Topic(proto::TopicRecord {
            name: format!("t{n}"),
            topic_id: topic_id(i)
        })),
        (0u8..4, 0i32..3, ids(), ids(), -1i32..4).prop_map(|(t, p, replicas, isr, leader)| {
            Record::Partition(proto::PartitionRecord {
                partition_id: p,
                topic_id: topic_id(t),
                replicas,
                isr,
                removing_replicas: vec![],
                adding_replicas: vec![],
                leader,
                leader_epoch: 0,
                partition_epoch: 0,
            })
        }),
        (
            0u8..4,
            0i32..3,
            proptest::option::of(ids()),
            proptest::option::of(-1i32..4)
        )
            .prop_map(|(t, p, isr, leader)| {
                Record::PartitionChange(proto::PartitionChangeRecord {
                    partition_id: p,
                    topic_id: topic_id(t),
                    isr: isr.map(|ids| proto::BrokerIds { ids }),
                    leader,
                    replicas: None,
                    removing_replicas: None,
                    adding_replicas: None,
                })
            }),
        (0u8..4).prop_map(|t| Record::RemoveTopic(proto::RemoveTopicRecord {
            topic_id: topic_id(t)
        })),
        (
            0i32..5,
            0u8..4,
            "[a-c]\\.[a-c]",
            proptest::option::of("[0-9]{1,3}")
        )
            .prop_map(|(kind, n, name, value)| {
                Record::Config(proto::ConfigRecord {
                    resource_type: [0, 2, 4, 2, 4][kind as usize],
                    resource_name: format!("t{n}"),
                    name,
                    value,
                })
            }),
        ("[a-b]", 0u32..3).prop_map(|(name, feature_level)| Record::FeatureLevel(
            proto::FeatureLevelRecord {
                name,
                feature_level
            }
        )),
        (0i64..3000).prop_map(
            |next_producer_id| Record::ProducerIds(proto::ProducerIdsRecord {
                broker_id: 0,
                broker_epoch: 0,
                next_producer_id,
            })
        ),
        Just(Record::NoOp(proto::NoOpRecord {})),
    ];
    r.prop_map(|record| MetadataRecord {
        version: 0,
        record: Some(record),
    })
}

/// Replays records one delta per chunk of `chunk` records; returns the image and which offsets
/// failed.
fn replay_chunked(
    records: &[MetadataRecord],
    chunk: usize,
) -> (MetadataImage, Vec<(i64, MetadataError)>) {
    let mut image = Arc::new(MetadataImage::empty());
    let mut errors = Vec::new();
    for (c, part) in records.chunks(chunk.max(1)).enumerate() {
        let mut delta = MetadataDelta::new(Arc::clone(&image));
        for (i, r) in part.iter().enumerate() {
            let offset = (c * chunk.max(1) + i) as i64;
            if let Err(e) = delta.replay(offset, r) {
                errors.push((offset, e));
            }
        }
        image = Arc::new(delta.apply());
    }
    (
        Arc::try_unwrap(image).unwrap_or_else(|a| (*a).clone()),
        errors,
    )
}

proptest! {
    #[test]
    fn replay_is_deterministic(records in proptest::collection::vec(record(), 0..80)) {
        let a = replay_chunked(&records, records.len());
        let b = replay_chunked(&records, records.len());
        prop_assert_eq!(a, b);
    }

    #[test]
    fn one_by_one_equals_batched(records in proptest::collection::vec(record(), 0..80), chunk in 1usize..10) {
        let (one, e1) = replay_chunked(&records, 1);
        let (chunked, e2) = replay_chunked(&records, chunk);
        let (all, e3) = replay_chunked(&records, records.len());
        prop_assert_eq!(&e1, &e2);
        prop_assert_eq!(&e1, &e3);
        // The offset of an image is that of the last record replayed successfully into it, so
        // compare the content.
        let content = |i: &MetadataImage| (i.cluster.clone(), i.topics.clone(), i.configs.clone(), i.features.clone(), i.producer_ids);
        prop_assert_eq!(content(&one), content(&chunked));
        prop_assert_eq!(content(&one), content(&all));
    }

    /// A publisher that acts only on the merged changes of many deltas (the broker's replica
    /// manager) misses nothing: every topic, broker and config that differs between the first
    /// and the last image is named, and no deleted topic is named as changed.
    #[test]
    fn merged_changes_name_every_difference(records in proptest::collection::vec(record(), 0..80), chunk in 1usize..10) {
        let mut image = Arc::new(MetadataImage::empty());
        let first = Arc::clone(&image);
        let mut merged = MetadataChanges::default();
        for (c, part) in records.chunks(chunk).enumerate() {
            let mut delta = MetadataDelta::new(Arc::clone(&image));
            for (i, r) in part.iter().enumerate() {
                let _ = delta.replay((c * chunk + i) as i64, r);
            }
            merged.merge(delta.changes());
            image = Arc::new(delta.apply());
        }
        let ids: std::collections::BTreeSet<_> = first.topics.by_id.keys().chain(image.topics.by_id.keys()).copied().collect();
        for id in ids {
            if first.topics.by_id.get(&id) != image.topics.by_id.get(&id) {
                prop_assert!(merged.topics.contains(&id) || merged.deleted_topics.contains_key(&id), "topic {} changed unnamed", id);
            }
            if !image.topics.by_id.contains_key(&id) {
                prop_assert!(!merged.topics.contains(&id), "deleted topic {} named as changed", id);
            }
        }
        for b in first.cluster.brokers.keys().chain(image.cluster.brokers.keys()) {
            if first.cluster.brokers.get(b) != image.cluster.brokers.get(b) {
                prop_assert!(merged.brokers.contains(b), "broker {} changed unnamed", b);
            }
        }
        let resources: std::collections::BTreeSet<&ConfigResource> = first.configs.resources.keys().chain(image.configs.resources.keys()).collect();
        for r in resources {
            if first.configs.resources.get(r) != image.configs.resources.get(r) {
                prop_assert!(merged.configs.contains(r), "configs of {:?} changed unnamed", r);
            }
        }
    }

    #[test]
    fn snapshot_round_trip_is_identity(records in proptest::collection::vec(record(), 0..80)) {
        let (image, _) = replay_chunked(&records, 7);
        let bytes = encode_snapshot(&image);
        let loaded = decode_snapshot(&bytes).expect("a snapshot of a valid image loads");
        prop_assert_eq!(&loaded, &image);
        // And the snapshot of the loaded image is byte-identical.
        prop_assert_eq!(encode_snapshot(&loaded), bytes);
    }
}

#[test]
fn partition_change_bumps_epochs_and_delete_removes_configs() {
    let rec = |r| MetadataRecord {
        version: 0,
        record: Some(r),
    };
    let id = topic_id(1);
    let records = vec![
        rec(Record::Topic(proto::TopicRecord {
            name: "orders".into(),
            topic_id: id.clone(),
        })),
        rec(Record::Partition(proto::PartitionRecord {
            partition_id: 0,
            topic_id: id.clone(),
            replicas: vec![1, 2],
            isr: vec![1, 2],
            removing_replicas: vec![],
            adding_replicas: vec![],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
        })),
        rec(Record::PartitionChange(proto::PartitionChangeRecord {
            partition_id: 0,
            topic_id: id.clone(),
            isr: Some(proto::BrokerIds { ids: vec![2] }),
            leader: Some(2),
            replicas: None,
            removing_replicas: None,
            adding_replicas: None,
        })),
        rec(Record::Config(proto::ConfigRecord {
            resource_type: proto::ConfigResourceType::ConfigResourceTopic as i32,
            resource_name: "orders".into(),
            name: "retention.ms".into(),
            value: Some("1000".into()),
        })),
    ];
    let (image, errors) = replay_chunked(&records, 10);
    assert!(errors.is_empty(), "{errors:?}");
    let t = image.topics.get_by_name("orders").expect("topic");
    let p = &t.partitions[&0];
    assert_eq!(
        (p.leader, p.leader_epoch, p.partition_epoch, p.isr.clone()),
        (2, 1, 1, vec![2])
    );
    assert_eq!(image.configs.resources.len(), 1);

    let mut delta = MetadataDelta::new(Arc::new(image));
    delta
        .replay(
            10,
            &rec(Record::RemoveTopic(proto::RemoveTopicRecord {
                topic_id: id.clone(),
            })),
        )
        .expect("remove");
    assert_eq!(
        delta.deleted_topics().values().collect::<Vec<_>>(),
        vec!["orders"]
    );
    let base_cluster = Arc::clone(&delta.base().cluster);
    let image = delta.apply();
    assert!(image.topics.by_id.is_empty() && image.configs.resources.is_empty());
    assert!(
        Arc::ptr_eq(&image.cluster, &base_cluster),
        "untouched sub-images are shared"
    );

    let mut delta = MetadataDelta::new(Arc::new(image));
    let err = delta
        .replay(
            11,
            &rec(Record::PartitionChange(proto::PartitionChangeRecord {
                partition_id: 0,
                topic_id: id,
                ..Default::default()
            })),
        )
        .expect_err("unknown topic");
    assert!(matches!(
        err,
        MetadataError::UnknownTopic { offset: 11, .. }
    ));
    assert!(matches!(
        delta.replay(12, &MetadataRecord::default()),
        Err(MetadataError::EmptyRecord { .. })
    ));
}
