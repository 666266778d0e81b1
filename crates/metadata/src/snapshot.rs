//! Snapshots and record batches on the wire.
//!
//! A snapshot is the list of records that rebuilds an image from empty, in a fixed order
//! (features, brokers, topics with their partitions, configs, producer ids); loading one replays
//! those records through [`MetadataDelta`], the same path as the log.

use std::sync::Arc;

use prost::Message;

use crate::delta::MetadataDelta;
use crate::error::MetadataError;
use crate::image::{ConfigResource, MetadataImage};
use crate::proto::{self, metadata_record::Record, MetadataRecord};

fn rec(record: Record) -> MetadataRecord {
    MetadataRecord {
        version: 0,
        record: Some(record),
    }
}

/// The records that rebuild `image` from the empty image.
pub fn image_records(image: &MetadataImage) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for (name, level) in &image.features.levels {
        out.push(rec(Record::FeatureLevel(proto::FeatureLevelRecord {
            name: name.clone(),
            feature_level: u32::from(*level),
        })));
    }
    for b in image.cluster.brokers.values() {
        out.push(rec(Record::RegisterBroker(proto::RegisterBrokerRecord {
            broker_id: b.id,
            incarnation_id: b.incarnation_id.as_bytes().to_vec(),
            broker_epoch: b.epoch,
            endpoints: b
                .endpoints
                .iter()
                .map(|e| proto::Endpoint {
                    listener: e.listener.clone(),
                    host: e.host.clone(),
                    port: u32::from(e.port),
                    security_protocol: e.security_protocol.clone(),
                })
                .collect(),
            rack: b.rack.clone(),
            fenced: b.fenced,
            in_controlled_shutdown: b.in_controlled_shutdown,
            log_dirs: b.log_dirs.iter().map(|d| d.as_bytes().to_vec()).collect(),
        })));
    }
    for t in image.topics.by_id.values() {
        out.push(rec(Record::Topic(proto::TopicRecord {
            name: t.name.clone(),
            topic_id: t.id.as_bytes().to_vec(),
        })));
        for (index, p) in &t.partitions {
            out.push(rec(Record::Partition(proto::PartitionRecord {
                partition_id: *index,
                topic_id: t.id.as_bytes().to_vec(),
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                removing_replicas: p.removing_replicas.clone(),
                adding_replicas: p.adding_replicas.clone(),
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
            })));
        }
    }
    for (resource, keys) in &image.configs.resources {
        let (resource_type, resource_name) = match resource {
            ConfigResource::Topic(n) => (proto::ConfigResourceType::ConfigResourceTopic, n),
            ConfigResource::Broker(n) => (proto::ConfigResourceType::ConfigResourceBroker, n),
            ConfigResource::Group(n) => (proto::ConfigResourceType::ConfigResourceGroup, n),
        };
        for (name, value) in keys {
            out.push(rec(Record::Config(proto::ConfigRecord {
                resource_type: resource_type as i32,
                resource_name: resource_name.clone(),
                name: name.clone(),
                value: Some(value.clone()),
            })));
        }
    }
    if image.producer_ids.next_producer_id > 0 {
        out.push(rec(Record::ProducerIds(proto::ProducerIdsRecord {
            broker_id: -1,
            broker_epoch: -1,
            next_producer_id: image.producer_ids.next_producer_id,
        })));
    }
    out.extend(
        image
            .scram
            .records()
            .into_iter()
            .map(|r| rec(Record::UserScramCredential(r))),
    );
    out.extend(
        image
            .acls
            .records()
            .into_iter()
            .map(|r| rec(Record::AccessControlEntry(r))),
    );
    out.extend(
        image
            .client_quotas
            .records()
            .into_iter()
            .map(|r| rec(Record::ClientQuota(r))),
    );
    out
}

/// Encodes `image` as a snapshot.
pub fn encode_snapshot(image: &MetadataImage) -> Vec<u8> {
    proto::MetadataSnapshot {
        last_offset: image.offset,
        records: image_records(image),
    }
    .encode_to_vec()
}

/// Decodes a snapshot into the image it describes.
pub fn decode_snapshot(bytes: &[u8]) -> Result<MetadataImage, MetadataError> {
    let snapshot =
        proto::MetadataSnapshot::decode(bytes).map_err(|e| MetadataError::Decode(e.to_string()))?;
    let mut delta = MetadataDelta::new(Arc::new(MetadataImage::empty()));
    for r in &snapshot.records {
        delta.replay(snapshot.last_offset, r)?;
    }
    let mut image = delta.apply();
    image.offset = snapshot.last_offset;
    Ok(image)
}

/// Encodes records committed together (one quorum entry).
pub fn encode_batch(records: &[MetadataRecord]) -> Vec<u8> {
    proto::RecordBatch {
        records: records.to_vec(),
    }
    .encode_to_vec()
}

/// Decodes a quorum entry's records.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<MetadataRecord>, MetadataError> {
    proto::RecordBatch::decode(bytes)
        .map(|b| b.records)
        .map_err(|e| MetadataError::Decode(e.to_string()))
}
