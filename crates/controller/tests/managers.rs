//! Control managers against images built by replaying their own records (the real path).

use std::sync::Arc;

use odradek_common::{ErrorCode, Uuid};
use odradek_controller::managers::cluster::{self, BrokerSessions};
use odradek_controller::managers::{
    configs, producer_ids, replication, ControllerResult, ControllerSettings,
};
use odradek_controller::pb;
use odradek_metadata::{MetadataImage, NO_LEADER};

mod common;
use common::*;

#[test]
fn create_topics_places_replicas_and_refuses_bad_requests() {
    let (mut image, _) = cluster_of(3);
    let t = create(&mut image, "orders", 6, 3);
    assert_eq!(t.error_code, 0, "{}", t.error_message);
    let topic = image.topics.get_by_name("orders").expect("created");
    assert_eq!(topic.partitions.len(), 6);
    let mut leaders = [0; 3];
    for p in topic.partitions.values() {
        let mut r = p.replicas.clone();
        r.sort_unstable();
        r.dedup();
        assert_eq!(r.len(), 3, "no broker twice");
        assert_eq!(p.isr, p.replicas);
        leaders[p.leader as usize] += 1;
    }
    assert_eq!(leaders, [2, 2, 2], "leaders spread evenly");

    for (name, partitions, rf, expected) in [
        ("orders", 1, 1, ErrorCode::TopicAlreadyExists),
        (
            "too-many-replicas",
            1,
            4,
            ErrorCode::InvalidReplicationFactor,
        ),
        ("no-partitions", 0, 1, ErrorCode::InvalidPartitions),
        ("bad/name", 1, 1, ErrorCode::InvalidTopicException),
    ] {
        let before = Arc::clone(&image);
        let r = create(&mut image, name, partitions, rf);
        assert_eq!(r.error_code, code(expected), "{name}: {}", r.error_message);
        assert_eq!(
            image.topics, before.topics,
            "a refused topic writes nothing"
        );
    }
    // Defaults: num.partitions and default.replication.factor.
    let r = create(&mut image, "defaults", -1, -1);
    assert_eq!(
        (r.error_code, r.num_partitions, r.replication_factor),
        (0, 1, 1)
    );
    // validate_only writes nothing.
    let req = pb::CreateTopicsRequest {
        topics: vec![pb::CreatableTopic {
            name: "dry".into(),
            num_partitions: 1,
            replication_factor: 1,
            configs: vec![],
            assignments: vec![],
        }],
        validate_only: true,
    };
    let r = replication::create_topics(&image, &req, &settings(), &mut Uuid::random);
    assert!(r.records.is_empty() && r.response.topics[0].error_code == 0);
    // Bad topic configs are INVALID_CONFIG, naming the key.
    let req = pb::CreateTopicsRequest {
        topics: vec![pb::CreatableTopic {
            name: "cfg".into(),
            num_partitions: 1,
            replication_factor: 1,
            configs: vec![pb::TopicConfig {
                name: "retention.ms".into(),
                value: "soon".into(),
            }],
            assignments: vec![],
        }],
        validate_only: false,
    };
    let r = replication::create_topics(&image, &req, &settings(), &mut Uuid::random);
    assert_eq!(
        r.response.topics[0].error_code,
        code(ErrorCode::InvalidConfig)
    );
    assert!(r.response.topics[0].error_message.contains("retention.ms"));
}

#[test]
fn stale_epochs_are_refused() {
    let (mut image, epochs) = cluster_of(3);
    create(&mut image, "t", 1, 3);
    let topic = image.topics.get_by_name("t").expect("topic").clone();
    let p = topic.partitions[&0].clone();
    let leader = p.leader;
    let base = pb::AlterPartitionRequest {
        broker_id: leader,
        broker_epoch: epochs[leader as usize],
        topic_id: topic.id.as_bytes().to_vec(),
        partition: 0,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        new_isr: vec![leader],
    };
    let stale_broker = pb::AlterPartitionRequest {
        broker_epoch: 0,
        ..base.clone()
    };
    assert_eq!(
        replication::alter_partition(&image, &stale_broker)
            .response
            .error_code,
        code(ErrorCode::StaleBrokerEpoch)
    );
    let stale_leader = pb::AlterPartitionRequest {
        leader_epoch: p.leader_epoch - 1,
        ..base.clone()
    };
    assert_eq!(
        replication::alter_partition(&image, &stale_leader)
            .response
            .error_code,
        code(ErrorCode::FencedLeaderEpoch)
    );
    let stale_partition = pb::AlterPartitionRequest {
        partition_epoch: p.partition_epoch + 7,
        ..base.clone()
    };
    assert_eq!(
        replication::alter_partition(&image, &stale_partition)
            .response
            .error_code,
        code(ErrorCode::InvalidUpdateVersion)
    );
    let outsider = pb::AlterPartitionRequest {
        new_isr: vec![leader, 99],
        ..base.clone()
    };
    assert_eq!(
        replication::alter_partition(&image, &outsider)
            .response
            .error_code,
        code(ErrorCode::InvalidRequest)
    );

    // A valid shrink commits and bumps the partition epoch; replaying the old request is stale.
    let r = replication::alter_partition(&image, &base);
    assert_eq!(r.response.error_code, 0, "{}", r.response.error_message);
    commit(&mut image, &r);
    let now = &image.topics.by_id[&topic.id].partitions[&0];
    assert_eq!(now.isr, vec![leader]);
    assert_eq!(now.partition_epoch, p.partition_epoch + 1);
    assert_eq!(
        now.leader_epoch, p.leader_epoch,
        "an ISR change keeps the leader epoch"
    );
    assert_eq!(
        replication::alter_partition(&image, &base)
            .response
            .error_code,
        code(ErrorCode::InvalidUpdateVersion)
    );

    // Heartbeats and producer ids with a stale broker epoch.
    let hb = pb::BrokerHeartbeatRequest {
        broker_id: 0,
        broker_epoch: epochs[0] - 1,
        ..Default::default()
    };
    assert_eq!(
        cluster::heartbeat(&image, &hb, &settings())
            .response
            .error_code,
        code(ErrorCode::StaleBrokerEpoch)
    );
    let hb = pb::BrokerHeartbeatRequest {
        broker_id: 42,
        broker_epoch: 1,
        ..Default::default()
    };
    assert_eq!(
        cluster::heartbeat(&image, &hb, &settings())
            .response
            .error_code,
        code(ErrorCode::BrokerIdNotRegistered)
    );
    let pid = pb::AllocateProducerIdsRequest {
        broker_id: 1,
        broker_epoch: 0,
    };
    assert_eq!(
        producer_ids::allocate_producer_ids(&image, &pid, &settings())
            .response
            .error_code,
        code(ErrorCode::StaleBrokerEpoch)
    );
}

#[test]
fn fencing_a_leader_elects_from_the_isr_only() {
    let (mut image, _) = cluster_of(3);
    create(&mut image, "t", 3, 2);
    let topic_id = image.topics.get_by_name("t").expect("topic").id;
    // Fence broker 0: every partition it led gets a new leader from its ISR.
    let before = image.topics.by_id[&topic_id].clone();
    let records = cluster::fence(&image, 0, &settings());
    commit(
        &mut image,
        &ControllerResult {
            records,
            response: (),
        },
    );
    assert!(image.cluster.brokers[&0].fenced);
    for (i, p) in &image.topics.by_id[&topic_id].partitions {
        let old = &before.partitions[i];
        assert!(
            !p.isr.contains(&0) || p.isr == vec![0],
            "fenced broker left the ISR of {i}"
        );
        if old.leader == 0 {
            assert!(
                old.isr.contains(&p.leader),
                "new leader {} of {i} came from the ISR {:?}",
                p.leader,
                old.isr
            );
            assert_eq!(p.leader_epoch, old.leader_epoch + 1);
        } else {
            assert_eq!(p.leader, old.leader);
        }
    }

    // A partition whose only ISR member is fenced gets no leader: never one from outside the ISR.
    let (mut image, epochs) = cluster_of(3);
    create(&mut image, "solo", 1, 3);
    let t = image.topics.get_by_name("solo").expect("topic").clone();
    let p = t.partitions[&0].clone();
    let shrink = pb::AlterPartitionRequest {
        broker_id: p.leader,
        broker_epoch: epochs[p.leader as usize],
        topic_id: t.id.as_bytes().to_vec(),
        partition: 0,
        leader_epoch: p.leader_epoch,
        partition_epoch: p.partition_epoch,
        new_isr: vec![p.leader],
    };
    let r = replication::alter_partition(&image, &shrink);
    commit(&mut image, &r);
    let records = cluster::fence(&image, p.leader, &settings());
    let unclean_image = Arc::clone(&image);
    commit(
        &mut image,
        &ControllerResult {
            records,
            response: (),
        },
    );
    let after = &image.topics.by_id[&t.id].partitions[&0];
    assert_eq!(after.leader, NO_LEADER, "no clean leader exists");
    assert_eq!(after.isr, vec![p.leader], "the last ISR member stays");

    // ...unless unclean.leader.election.enable is on: then an out-of-sync replica leads.
    let unclean = ControllerSettings {
        unclean_leader_election_enable: true,
        ..settings()
    };
    let mut image = unclean_image;
    let records = cluster::fence(&image, p.leader, &unclean);
    commit(
        &mut image,
        &ControllerResult {
            records,
            response: (),
        },
    );
    let after = &image.topics.by_id[&t.id].partitions[&0];
    assert_ne!(after.leader, NO_LEADER);
    assert_ne!(after.leader, p.leader);
    assert_eq!(after.isr, vec![after.leader]);

    // When the fenced broker returns and catches up, it leads its leaderless partitions again.
    let (mut image, epochs) = cluster_of(1);
    create(&mut image, "back", 1, 1);
    let records = cluster::fence(&image, 0, &settings());
    commit(
        &mut image,
        &ControllerResult {
            records,
            response: (),
        },
    );
    assert_eq!(
        image.topics.get_by_name("back").expect("t").partitions[&0].leader,
        NO_LEADER
    );
    let hb = pb::BrokerHeartbeatRequest {
        broker_id: 0,
        broker_epoch: epochs[0],
        current_metadata_offset: image.offset,
        ..Default::default()
    };
    let r = cluster::heartbeat(&image, &hb, &settings());
    commit(&mut image, &r);
    assert_eq!(
        image.topics.get_by_name("back").expect("t").partitions[&0].leader,
        0
    );
}

#[test]
fn expired_sessions_are_fenced_and_controlled_shutdown_moves_leaders() {
    let (mut image, epochs) = cluster_of(2);
    create(&mut image, "t", 2, 2);
    let mut sessions = BrokerSessions::default();
    sessions.reset(&image, 0);
    sessions.touch(1, 8_000);
    assert!(cluster::fence_expired(&image, &sessions, &settings(), 9_000).is_empty());
    let records = cluster::fence_expired(&image, &sessions, &settings(), 9_001);
    commit(
        &mut image,
        &ControllerResult {
            records,
            response: (),
        },
    );
    assert!(image.cluster.brokers[&0].fenced && !image.cluster.brokers[&1].fenced);
    assert!(image
        .topics
        .get_by_name("t")
        .expect("t")
        .partitions
        .values()
        .all(|p| p.leader == 1));

    let (mut image, _) = cluster_of(2);
    create(&mut image, "t", 2, 2);
    let hb = |image: &MetadataImage| pb::BrokerHeartbeatRequest {
        broker_id: 0,
        broker_epoch: epochs[0],
        current_metadata_offset: image.offset,
        want_shut_down: true,
        ..Default::default()
    };
    let r = cluster::heartbeat(&image, &hb(&image), &settings());
    assert!(
        !r.response.should_shut_down,
        "not before its leaderships moved"
    );
    commit(&mut image, &r);
    assert!(image
        .topics
        .get_by_name("t")
        .expect("t")
        .partitions
        .values()
        .all(|p| p.leader == 1));
    let r = cluster::heartbeat(&image, &hb(&image), &settings());
    assert!(r.response.should_shut_down && r.records.is_empty());
}

#[test]
fn registration_checks_cluster_id_and_duplicates() {
    let (image, _) = cluster_of(1);
    let mut sessions = BrokerSessions::default();
    sessions.touch(0, 1_000);
    let req = pb::RegisterBrokerRequest {
        broker_id: 0,
        cluster_id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        incarnation_id: Uuid::random().as_bytes().to_vec(),
        ..Default::default()
    };
    let r = cluster::register_broker(&image, &req, &settings(), &sessions, 1_000);
    assert_eq!(
        r.response.error_code,
        code(ErrorCode::InconsistentClusterId)
    );
    let req = pb::RegisterBrokerRequest {
        cluster_id: CLUSTER.into(),
        ..req
    };
    let r = cluster::register_broker(&image, &req, &settings(), &sessions, 1_000);
    assert_eq!(
        r.response.error_code,
        code(ErrorCode::DuplicateBrokerRegistration)
    );
    // After the session expired, the same id may register again, with a higher epoch.
    let r = cluster::register_broker(&image, &req, &settings(), &sessions, 100_000);
    assert_eq!(r.response.error_code, 0);
    assert!(r.response.broker_epoch > image.cluster.brokers[&0].epoch);
}

#[test]
fn configs_and_producer_ids() {
    let (mut image, epochs) = cluster_of(1);
    create(&mut image, "t", 1, 1);
    let alter = |ops: Vec<pb::AlterableConfig>| pb::IncrementalAlterConfigsRequest {
        resources: vec![pb::AlterConfigsResource {
            resource_type: 2,
            resource_name: "t".into(),
            configs: ops,
        }],
        validate_only: false,
    };
    let set = |k: &str, v: &str, op: i32| pb::AlterableConfig {
        name: k.into(),
        op,
        value: Some(v.into()),
    };
    let r = configs::incremental_alter_configs(
        &image,
        &alter(vec![
            set("retention.ms", "1000", 0),
            set("cleanup.policy", "compact", 2),
        ]),
    );
    assert_eq!(
        r.response.resources[0].error_code, 0,
        "{}",
        r.response.resources[0].error_message
    );
    commit(&mut image, &r);
    let r = configs::incremental_alter_configs(
        &image,
        &alter(vec![set("cleanup.policy", "delete", 2)]),
    );
    commit(&mut image, &r);
    let cfg = image
        .configs
        .get(&odradek_metadata::ConfigResource::Topic("t".into()));
    assert_eq!(cfg.get("retention.ms").map(String::as_str), Some("1000"));
    assert_eq!(
        cfg.get("cleanup.policy").map(String::as_str),
        Some("compact,delete")
    );
    let r = configs::incremental_alter_configs(
        &image,
        &alter(vec![pb::AlterableConfig {
            name: "retention.ms".into(),
            op: 1,
            value: None,
        }]),
    );
    commit(&mut image, &r);
    assert!(!image
        .configs
        .get(&odradek_metadata::ConfigResource::Topic("t".into()))
        .contains_key("retention.ms"));
    for bad in [
        set("retention.ms", "x", 0),
        set("no.such.key", "1", 0),
        set("min.insync.replicas", "0", 0),
    ] {
        let key = bad.name.clone();
        let r = configs::incremental_alter_configs(&image, &alter(vec![bad]));
        assert_eq!(
            r.response.resources[0].error_code,
            code(ErrorCode::InvalidConfig)
        );
        assert!(r.response.resources[0].error_message.contains(&key));
        assert!(r.records.is_empty());
    }
    let missing = pb::IncrementalAlterConfigsRequest {
        resources: vec![pb::AlterConfigsResource {
            resource_type: 2,
            resource_name: "nope".into(),
            configs: vec![],
        }],
        validate_only: false,
    };
    assert_eq!(
        configs::incremental_alter_configs(&image, &missing)
            .response
            .resources[0]
            .error_code,
        code(ErrorCode::UnknownTopicOrPartition)
    );

    let req = pb::AllocateProducerIdsRequest {
        broker_id: 0,
        broker_epoch: epochs[0],
    };
    let a = producer_ids::allocate_producer_ids(&image, &req, &settings());
    commit(&mut image, &a);
    let b = producer_ids::allocate_producer_ids(&image, &req, &settings());
    assert_eq!(
        (a.response.producer_id_start, a.response.producer_id_len),
        (0, 1000)
    );
    assert_eq!(b.response.producer_id_start, 1000);

    // Deleting a topic removes it and its configs; deleting it again is UNKNOWN_TOPIC_OR_PARTITION.
    let del = pb::DeleteTopicsRequest {
        names: vec!["t".into()],
    };
    let r = replication::delete_topics(&image, &del);
    commit(&mut image, &r);
    assert!(image.topics.by_name.is_empty() && image.configs.resources.is_empty());
    assert_eq!(
        replication::delete_topics(&image, &del).response.topics[0].error_code,
        code(ErrorCode::UnknownTopicOrPartition)
    );
}
