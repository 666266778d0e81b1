//! Helpers shared by the control-manager tests: images built by replaying the managers' own
//! records, as the quorum and state machine would.
#![allow(dead_code)]

use std::sync::Arc;

use odradek_common::{ErrorCode, Uuid};
use odradek_controller::managers::cluster::{self, BrokerSessions};
use odradek_controller::managers::{replication, ControllerResult, ControllerSettings};
use odradek_controller::pb;
use odradek_metadata::{MetadataDelta, MetadataImage};

pub const CLUSTER: &str = "q1Sh-9_ISia_zwGINzRvyQ";

pub fn settings() -> ControllerSettings {
    ControllerSettings {
        cluster_id: CLUSTER.into(),
        ..ControllerSettings::default()
    }
}

/// Commits a result's records onto the image, as the quorum and state machine would.
pub fn commit<T>(image: &mut Arc<MetadataImage>, result: &ControllerResult<T>) {
    let offset = image.offset + 1;
    let mut delta = MetadataDelta::new(Arc::clone(image));
    for r in &result.records {
        delta.replay(offset, r).expect("manager records replay");
    }
    let mut next = delta.apply();
    next.offset = offset;
    *image = Arc::new(next);
}

pub fn code(c: ErrorCode) -> i32 {
    i32::from(c.code())
}

/// Registers and unfences brokers 0..n (racks alternate a/b).
pub fn cluster_of(n: i32) -> (Arc<MetadataImage>, Vec<i64>) {
    // A formatted cluster starts from its bootstrap snapshot at offset 0.
    let mut image = Arc::new(odradek_controller::dirs::bootstrap_image(&[]).expect("bootstrap"));
    let sessions = BrokerSessions::default();
    let mut epochs = Vec::new();
    for id in 0..n {
        let req = pb::RegisterBrokerRequest {
            broker_id: id,
            cluster_id: CLUSTER.into(),
            incarnation_id: Uuid::random().as_bytes().to_vec(),
            listeners: vec![pb::Listener {
                name: "PLAINTEXT".into(),
                host: "127.0.0.1".into(),
                port: 9092 + id as u32,
                security_protocol: "PLAINTEXT".into(),
            }],
            rack: Some(if id % 2 == 0 { "a" } else { "b" }.into()),
            log_dirs: vec![],
        };
        let r = cluster::register_broker(&image, &req, &settings(), &sessions, 0);
        assert_eq!(r.response.error_code, 0, "{}", r.response.error_message);
        commit(&mut image, &r);
        let epoch = r.response.broker_epoch;
        epochs.push(epoch);
        assert!(
            image.cluster.brokers[&id].fenced,
            "a broker registers fenced"
        );
        let hb = pb::BrokerHeartbeatRequest {
            broker_id: id,
            broker_epoch: epoch,
            current_metadata_offset: image.offset,
            ..Default::default()
        };
        let r = cluster::heartbeat(&image, &hb, &settings());
        assert!(r.response.is_caught_up && !r.response.is_fenced);
        commit(&mut image, &r);
        assert!(
            !image.cluster.brokers[&id].fenced,
            "a caught-up broker is unfenced"
        );
    }
    (image, epochs)
}

pub fn create(
    image: &mut Arc<MetadataImage>,
    name: &str,
    partitions: i32,
    rf: i32,
) -> pb::CreateTopicResult {
    let req = pb::CreateTopicsRequest {
        topics: vec![pb::CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: rf,
            configs: vec![],
            assignments: vec![],
        }],
        validate_only: false,
    };
    let r = replication::create_topics(image, &req, &settings(), &mut Uuid::random);
    commit(image, &r);
    r.response.topics[0].clone()
}
