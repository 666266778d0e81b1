//! Reassignments, elections, manual assignments and unregistration against images built by
//! replaying the managers' own records.

use std::sync::Arc;

use odradek_common::ErrorCode;
use odradek_controller::managers::{cluster, elections, reassignment, replication};
use odradek_controller::pb;
use odradek_metadata::{MetadataImage, PartitionRegistration, NO_LEADER};

mod common;
use common::*;

fn part(image: &MetadataImage, topic: &str, p: i32) -> PartitionRegistration {
    image.topics.get_by_name(topic).expect("topic").partitions[&p].clone()
}

fn reassign(
    image: &mut Arc<MetadataImage>,
    topic: &str,
    p: i32,
    target: Option<&[i32]>,
) -> pb::ReassignmentResult {
    let req = pb::AlterPartitionReassignmentsRequest {
        topics: vec![pb::ReassignableTopic {
            name: topic.into(),
            partitions: vec![pb::ReassignablePartition {
                partition: p,
                replicas: target.map(|t| pb::ReplicaAssignment { ids: t.to_vec() }),
            }],
        }],
        allow_replication_factor_change: true,
    };
    let r = reassignment::alter_partition_reassignments(image, &req, &settings());
    commit(image, &r);
    r.response.results[0].clone()
}

/// The leader of `topic`-`p` proposes `isr` (as its ISR expansion would).
fn leader_proposes(
    image: &mut Arc<MetadataImage>,
    epochs: &[i64],
    topic: &str,
    p: i32,
    isr: &[i32],
) -> pb::AlterPartitionResponse {
    let t = image.topics.get_by_name(topic).expect("topic").clone();
    let reg = &t.partitions[&p];
    let req = pb::AlterPartitionRequest {
        broker_id: reg.leader,
        broker_epoch: epochs[reg.leader as usize],
        topic_id: t.id.as_bytes().to_vec(),
        partition: p,
        leader_epoch: reg.leader_epoch,
        partition_epoch: reg.partition_epoch,
        new_isr: isr.to_vec(),
    };
    let r = replication::alter_partition(image, &req);
    commit(image, &r);
    r.response
}

fn listed(image: &MetadataImage) -> Vec<pb::OngoingReassignment> {
    reassignment::list_partition_reassignments(
        image,
        &pb::ListPartitionReassignmentsRequest {
            all: true,
            topics: vec![],
        },
    )
    .reassignments
}

/// A topic with one partition on `replicas`, led by the first, all in sync.
fn topic_on(image: &mut Arc<MetadataImage>, name: &str, replicas: &[i32]) {
    let req = pb::CreateTopicsRequest {
        topics: vec![pb::CreatableTopic {
            name: name.into(),
            num_partitions: -1,
            replication_factor: -1,
            configs: vec![],
            assignments: vec![pb::ReplicaAssignment {
                ids: replicas.to_vec(),
            }],
        }],
        validate_only: false,
    };
    let r = replication::create_topics(image, &req, &settings(), &mut odradek_common::Uuid::random);
    assert_eq!(
        r.response.topics[0].error_code, 0,
        "{}",
        r.response.topics[0].error_message
    );
    commit(image, &r);
}

#[test]
fn a_partition_moves_to_new_brokers_once_they_are_in_sync() {
    let (mut image, epochs) = cluster_of(4);
    topic_on(&mut image, "t", &[0, 1, 2]);
    let r = reassign(&mut image, "t", 0, Some(&[1, 2, 3]));
    assert_eq!(r.error_code, 0, "{}", r.error_message);
    let p = part(&image, "t", 0);
    assert_eq!(
        p.replicas,
        vec![1, 2, 3, 0],
        "target first, then the replicas leaving"
    );
    assert_eq!(p.adding_replicas, vec![3]);
    assert_eq!(p.removing_replicas, vec![0]);
    assert_eq!(p.isr, vec![0, 1, 2]);
    assert_eq!(
        p.leader, 0,
        "the leader stays until the new replicas are in sync"
    );
    let l = listed(&image);
    assert_eq!(l.len(), 1);
    assert_eq!(
        (l[0].adding_replicas.clone(), l[0].removing_replicas.clone()),
        (vec![3], vec![0])
    );

    // Broker 3 caught up: the leader adds it, which completes the reassignment.
    let resp = leader_proposes(&mut image, &epochs, "t", 0, &[0, 1, 2, 3]);
    assert_eq!(resp.error_code, 0, "{}", resp.error_message);
    let p = part(&image, "t", 0);
    assert_eq!(p.replicas, vec![1, 2, 3]);
    assert_eq!(p.isr, vec![1, 2, 3]);
    assert!(p.adding_replicas.is_empty() && p.removing_replicas.is_empty());
    assert_eq!(
        p.leader, 1,
        "the removed leader handed over to the first target replica in sync"
    );
    assert_eq!(resp.leader, 1);
    assert!(listed(&image).is_empty());
}

#[test]
fn cancelling_restores_the_original_replicas() {
    let (mut image, _) = cluster_of(4);
    topic_on(&mut image, "t", &[0, 1, 2]);
    let r = reassign(&mut image, "t", 0, None);
    assert_eq!(r.error_code, code(ErrorCode::NoReassignmentInProgress));
    reassign(&mut image, "t", 0, Some(&[3, 1, 2]));
    let r = reassign(&mut image, "t", 0, None);
    assert_eq!(r.error_code, 0, "{}", r.error_message);
    let p = part(&image, "t", 0);
    // The original set, in the order the metadata keeps (the target's, then the removed
    // ones), as in Kafka.
    assert_eq!(p.replicas, vec![1, 2, 0]);
    assert_eq!(p.isr, vec![0, 1, 2]);
    assert!(p.adding_replicas.is_empty() && p.removing_replicas.is_empty());
    assert_eq!(p.leader, 0);
}

#[test]
fn a_new_target_replaces_a_reassignment_under_way() {
    let (mut image, _) = cluster_of(5);
    topic_on(&mut image, "t", &[0, 1, 2]);
    reassign(&mut image, "t", 0, Some(&[1, 2, 3]));
    reassign(&mut image, "t", 0, Some(&[1, 2, 4]));
    let p = part(&image, "t", 0);
    // As Kafka: broker 3 (being added) is now being removed, with broker 0.
    assert_eq!(p.replicas, vec![1, 2, 4, 0, 3]);
    assert_eq!(p.adding_replicas, vec![4]);
    assert_eq!(p.removing_replicas, vec![0, 3]);
}

#[test]
fn cancelling_a_replaced_target_keeps_the_in_sync_replicas() {
    // The reviewer's case: {1,2,3} -> [4,5,6]; 4 and 5 join and 4 leads; then [4,1,2]; then
    // cancel. The ISR [4,5] must survive (no unclean fallback).
    let (mut image, epochs) = cluster_of(7);
    topic_on(&mut image, "t", &[1, 2, 3]);
    reassign(&mut image, "t", 0, Some(&[4, 5, 6]));
    leader_proposes(&mut image, &epochs, "t", 0, &[1, 2, 3, 4]);
    leader_proposes(&mut image, &epochs, "t", 0, &[1, 2, 3, 4, 5]);
    fence(&mut image, 1);
    fence(&mut image, 2);
    fence(&mut image, 3);
    let p = part(&image, "t", 0);
    assert_eq!((p.leader, p.isr.clone()), (4, vec![4, 5]));
    reassign(&mut image, "t", 0, Some(&[4, 1, 2]));
    let p = part(&image, "t", 0);
    assert!(
        p.adding_replicas.is_empty(),
        "4 is already a replica: {p:?}"
    );
    let r = reassign(&mut image, "t", 0, None);
    assert_eq!(r.error_code, 0, "{}", r.error_message);
    let p = part(&image, "t", 0);
    assert_eq!((p.leader, p.isr.clone()), (4, vec![4, 5]));
}

#[test]
fn reordering_or_dropping_in_sync_replicas_completes_at_once() {
    let (mut image, _) = cluster_of(3);
    topic_on(&mut image, "t", &[0, 1, 2]);
    reassign(&mut image, "t", 0, Some(&[2, 1]));
    let p = part(&image, "t", 0);
    assert_eq!(p.replicas, vec![2, 1]);
    assert_eq!(p.isr, vec![2, 1]);
    assert_eq!(p.leader, 2, "the dropped leader hands over");
    assert!(listed(&image).is_empty());
}

#[test]
fn bad_targets_are_refused_with_kafkas_codes() {
    let (mut image, _) = cluster_of(3);
    topic_on(&mut image, "t", &[0, 1, 2]);
    let before = Arc::clone(&image);
    for (target, expected) in [
        (vec![0, 1, 7], ErrorCode::InvalidReplicaAssignment),
        (vec![0, 1, 1], ErrorCode::InvalidReplicaAssignment),
        (vec![], ErrorCode::InvalidReplicaAssignment),
    ] {
        let r = reassign(&mut image, "t", 0, Some(&target));
        assert_eq!(
            r.error_code,
            code(expected),
            "{target:?}: {}",
            r.error_message
        );
    }
    assert_eq!(
        reassign(&mut image, "t", 5, Some(&[0])).error_code,
        code(ErrorCode::UnknownTopicOrPartition)
    );
    assert_eq!(
        reassign(&mut image, "nope", 0, Some(&[0])).error_code,
        code(ErrorCode::UnknownTopicOrPartition)
    );
    let req = pb::AlterPartitionReassignmentsRequest {
        topics: vec![pb::ReassignableTopic {
            name: "t".into(),
            partitions: vec![pb::ReassignablePartition {
                partition: 0,
                replicas: Some(pb::ReplicaAssignment { ids: vec![0, 1] }),
            }],
        }],
        allow_replication_factor_change: false,
    };
    let r = reassignment::alter_partition_reassignments(&image, &req, &settings());
    assert_eq!(
        r.response.results[0].error_code,
        code(ErrorCode::InvalidReplicationFactor)
    );
    assert!(r.records.is_empty());
    assert_eq!(image.topics, before.topics, "refusals write nothing");
}

fn elect(image: &MetadataImage, election_type: i32, parts: &[(&str, i32)]) -> (Vec<i32>, usize) {
    let req = pb::ElectLeadersRequest {
        election_type,
        all: false,
        partitions: parts
            .iter()
            .map(|(t, p)| pb::TopicPartition {
                topic: t.to_string(),
                partition: *p,
            })
            .collect(),
    };
    let r = elections::elect_leaders(image, &req);
    (
        r.response.results.iter().map(|e| e.error_code).collect(),
        r.records.len(),
    )
}

fn fence(image: &mut Arc<MetadataImage>, broker: i32) {
    let records = cluster::fence(image, broker, &settings());
    commit(
        image,
        &odradek_controller::managers::ControllerResult {
            records,
            response: (),
        },
    );
}

#[test]
fn preferred_and_unclean_elections_answer_per_partition() {
    let (mut image, epochs) = cluster_of(3);
    topic_on(&mut image, "t", &[0, 1, 2]);
    assert_eq!(
        elect(&image, elections::PREFERRED, &[("t", 0)]),
        (vec![code(ErrorCode::ElectionNotNeeded)], 0)
    );
    fence(&mut image, 0);
    assert_eq!(part(&image, "t", 0).leader, 1);
    assert_eq!(
        elect(
            &image,
            elections::PREFERRED,
            &[("t", 0), ("t", 3), ("x", 0)]
        ),
        (
            vec![
                code(ErrorCode::PreferredLeaderNotAvailable),
                code(ErrorCode::UnknownTopicOrPartition),
                code(ErrorCode::UnknownTopicOrPartition)
            ],
            0
        )
    );
    // Broker 0 comes back and catches up: the preferred election returns leadership to it.
    unfence(&mut image, &epochs, 0);
    leader_proposes(&mut image, &epochs, "t", 0, &[0, 1, 2]);
    assert_eq!(
        elections::balance_leaders(&image, 10).len(),
        1,
        "one of one preferred partitions is imbalanced"
    );
    let (codes, n) = elect(&image, elections::PREFERRED, &[("t", 0)]);
    assert_eq!((codes, n), (vec![0], 1));

    // Unclean: only for a leaderless partition, and only with a live replica.
    assert_eq!(
        elect(&image, elections::UNCLEAN, &[("t", 0)]).0,
        vec![code(ErrorCode::ElectionNotNeeded)]
    );
    topic_on(&mut image, "u", &[1, 2]);
    leader_proposes(&mut image, &epochs, "u", 0, &[1]);
    fence(&mut image, 1);
    let p = part(&image, "u", 0);
    assert_eq!(
        (p.leader, p.isr.clone()),
        (NO_LEADER, vec![1]),
        "no clean leader"
    );
    let (codes, n) = elect(&image, elections::UNCLEAN, &[("u", 0)]);
    assert_eq!(
        (codes, n),
        (vec![0], 1),
        "broker 2, out of sync, may lead when asked"
    );
    fence(&mut image, 2);
    assert_eq!(
        elect(&image, elections::UNCLEAN, &[("u", 0)]).0,
        vec![code(ErrorCode::EligibleLeadersNotAvailable)]
    );
}

fn unfence(image: &mut Arc<MetadataImage>, epochs: &[i64], broker: i32) {
    let r = cluster::heartbeat(
        image,
        &pb::BrokerHeartbeatRequest {
            broker_id: broker,
            broker_epoch: epochs[broker as usize],
            current_metadata_offset: image.offset,
            ..Default::default()
        },
        &settings(),
    );
    commit(image, &r);
}

#[test]
fn rebalance_waits_for_the_imbalance_percentage() {
    let (mut image, epochs) = cluster_of(2);
    let topics: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
    for t in &topics {
        topic_on(&mut image, t, &[0, 1]);
    }
    fence(&mut image, 0);
    unfence(&mut image, &epochs, 0);
    for t in &topics {
        leader_proposes(&mut image, &epochs, t, 0, &[1, 0]);
    }
    assert_eq!(
        elections::balance_leaders(&image, 10).len(),
        10,
        "broker 0 leads none of its 10"
    );
    // Nine go back by request; one of ten (10%) is not above the allowed 10%.
    let nine: Vec<(&str, i32)> = topics[1..].iter().map(|t| (t.as_str(), 0)).collect();
    let req = pb::ElectLeadersRequest {
        election_type: elections::PREFERRED,
        all: false,
        partitions: nine
            .iter()
            .map(|(t, p)| pb::TopicPartition {
                topic: t.to_string(),
                partition: *p,
            })
            .collect(),
    };
    let r = elections::elect_leaders(&image, &req);
    commit(&mut image, &r);
    assert_eq!(part(&image, "t1", 0).leader, 0);
    assert!(elections::balance_leaders(&image, 10).is_empty());
    let records = elections::balance_leaders(&image, 9);
    assert_eq!(records.len(), 1);
    commit(
        &mut image,
        &odradek_controller::managers::ControllerResult {
            records,
            response: (),
        },
    );
    assert_eq!(part(&image, "t0", 0).leader, 0);
}

#[test]
fn manual_assignments_in_create_topics_and_create_partitions() {
    let (mut image, _) = cluster_of(3);
    let req = |assignments: Vec<Vec<i32>>, partitions: i32| pb::CreateTopicsRequest {
        topics: vec![pb::CreatableTopic {
            name: "m".into(),
            num_partitions: partitions,
            replication_factor: -1,
            configs: vec![],
            assignments: assignments
                .into_iter()
                .map(|ids| pb::ReplicaAssignment { ids })
                .collect(),
        }],
        validate_only: false,
    };
    for (a, n, expected) in [
        (
            vec![vec![0, 1], vec![1]],
            -1,
            ErrorCode::InvalidReplicaAssignment,
        ),
        (vec![vec![0, 9]], -1, ErrorCode::InvalidReplicaAssignment),
        (vec![vec![0, 1]], 2, ErrorCode::InvalidRequest),
    ] {
        let r = replication::create_topics(
            &image,
            &req(a, n),
            &settings(),
            &mut odradek_common::Uuid::random,
        );
        assert_eq!(
            r.response.topics[0].error_code,
            code(expected),
            "{}",
            r.response.topics[0].error_message
        );
        assert!(r.records.is_empty());
    }
    let r = replication::create_topics(
        &image,
        &req(vec![vec![2, 0], vec![1, 2]], -1),
        &settings(),
        &mut odradek_common::Uuid::random,
    );
    assert_eq!(r.response.topics[0].error_code, 0);
    assert_eq!(
        (
            r.response.topics[0].num_partitions,
            r.response.topics[0].replication_factor
        ),
        (2, 2)
    );
    commit(&mut image, &r);
    assert_eq!(part(&image, "m", 0).replicas, vec![2, 0]);
    assert_eq!(part(&image, "m", 0).leader, 2);
    assert_eq!(part(&image, "m", 1).replicas, vec![1, 2]);

    let grow = |assignments: Vec<Vec<i32>>, count: i32| pb::CreatePartitionsRequest {
        topics: vec![pb::CreatePartitionsTopic {
            name: "m".into(),
            count,
            assignments: assignments
                .into_iter()
                .map(|ids| pb::ReplicaAssignment { ids })
                .collect(),
        }],
        validate_only: false,
    };
    for (a, count) in [
        (vec![vec![0, 1]], 4),
        (vec![vec![0]], 3),
        (vec![vec![0, 0]], 3),
    ] {
        let r = replication::create_partitions(&image, &grow(a, count));
        assert_eq!(
            r.response.topics[0].error_code,
            code(ErrorCode::InvalidReplicaAssignment)
        );
    }
    let r = replication::create_partitions(&image, &grow(vec![vec![0, 1]], 3));
    assert_eq!(
        r.response.topics[0].error_code, 0,
        "{}",
        r.response.topics[0].error_message
    );
    commit(&mut image, &r);
    assert_eq!(part(&image, "m", 2).replicas, vec![0, 1]);
}

#[test]
fn unregistering_a_broker_moves_its_leaderships_away() {
    let (mut image, _) = cluster_of(3);
    topic_on(&mut image, "t", &[0, 1, 2]);
    let r = cluster::unregister_broker(
        &image,
        &pb::UnregisterBrokerRequest { broker_id: 7 },
        &settings(),
    );
    assert_eq!(
        r.response.error_code,
        code(ErrorCode::BrokerIdNotRegistered)
    );
    let r = cluster::unregister_broker(
        &image,
        &pb::UnregisterBrokerRequest { broker_id: 0 },
        &settings(),
    );
    assert_eq!(r.response.error_code, 0);
    commit(&mut image, &r);
    assert!(!image.cluster.brokers.contains_key(&0));
    let p = part(&image, "t", 0);
    assert_eq!((p.leader, p.isr.clone()), (1, vec![1, 2]));
}

#[test]
fn brokers_fenced_together_all_leave_the_isr() {
    let (mut image, _) = cluster_of(3);
    topic_on(&mut image, "t", &[0, 1, 2]);
    let mut sessions = cluster::BrokerSessions::default();
    sessions.touch(0, 0);
    sessions.touch(1, 0);
    sessions.touch(2, 60_000);
    let records = cluster::fence_expired(&image, &sessions, &settings(), 60_000);
    commit(
        &mut image,
        &odradek_controller::managers::ControllerResult {
            records,
            response: (),
        },
    );
    let p = part(&image, "t", 0);
    assert_eq!(
        (p.leader, p.isr.clone()),
        (2, vec![2]),
        "neither fenced broker is left in the ISR"
    );
}
