//! The consumer-group APIs over the wire, at every version the broker advertises: bad and
//! unknown requests get Kafka's error codes (never a closed connection), and a full
//! join/sync/commit/fetch/leave round runs at the lowest and highest versions.

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId,
    HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest,
    OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use odradek::client::{Client, Connection};

use crate::harness::{free_ports, start_dev, start_dev_on};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// The versions the broker advertises for `key`.
fn versions(conn: &Connection, key: ApiKey) -> std::ops::RangeInclusive<i16> {
    let max = conn.version(key, i16::MAX).expect("advertised");
    let mut min = max;
    while min > 0 && conn.version(key, min - 1).is_ok() {
        min -= 1;
    }
    min..=max
}

async fn join(conn: &mut Connection, v: i16, group: &str, member: &str) -> (i16, String, i32) {
    let req = JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"\x00\x00\x00\x00\x00\x00"))]);
    let r = conn.send(&req, v).await.expect("JoinGroup answered");
    (r.error_code, r.member_id.to_string(), r.generation_id)
}

#[test]
fn group_apis_at_every_advertised_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_node, bootstrap) = start_dev(dir.path());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let mut client = Client::new(&bootstrap, "groups-test");
        client
            .create_topic("gt", 2, 1, &[])
            .await
            .expect("create topic");
        let mut conn = Connection::connect(&bootstrap, "groups-test")
            .await
            .expect("connect");

        // FindCoordinator: every version finds this broker (v4+ in the batched form), for a
        // group and (from v1) for a transactional id.
        for v in versions(&conn, ApiKey::FindCoordinator) {
            let mut req = FindCoordinatorRequest::default();
            if v >= 4 {
                req.coordinator_keys = vec![s("g")];
            } else {
                req.key = s("g");
            }
            let r = conn.send(&req, v).await.expect("FindCoordinator answered");
            let (code, node) = match r.coordinators.first() {
                Some(c) => (c.error_code, c.node_id.0),
                None => (r.error_code, r.node_id.0),
            };
            assert_eq!((code, node), (0, 1), "v{v}");
            if v >= 1 {
                let mut txn = req.clone();
                txn.key_type = 1;
                // Key type 1: the transaction coordinator (`__transaction_state` is created
                // on first use), this node too.
                let r = conn.send(&txn, v).await.expect("answered");
                let (code, node) = match r.coordinators.first() {
                    Some(c) => (c.error_code, c.node_id.0),
                    None => (r.error_code, r.node_id.0),
                };
                assert_eq!((code, node), (0, 1), "the transaction coordinator, v{v}");
            }
        }

        // The offsets topic was just created: wait until its partitions are loaded
        // (COORDINATOR_LOAD_IN_PROGRESS meanwhile, which clients retry).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let req = HeartbeatRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_member_id(s("ghost"));
            let code = conn.send(&req, 0).await.expect("answered").error_code;
            if code != 14 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "still loading");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }

        // Errors at every version of each API.
        for v in versions(&conn, ApiKey::JoinGroup) {
            let req = JoinGroupRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_session_timeout_ms(1)
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![
                    JoinGroupRequestProtocol::default().with_name(s("range"))
                ]);
            let r = conn.send(&req, v).await.expect("answered");
            assert_eq!(r.error_code, 26, "INVALID_SESSION_TIMEOUT, v{v}");
            let (code, _, _) = join(&mut conn, v, "g", "ghost").await;
            assert_eq!(code, 25, "UNKNOWN_MEMBER_ID, v{v}");
        }
        for v in versions(&conn, ApiKey::SyncGroup) {
            let req = SyncGroupRequest::default()
                .with_group_id(GroupId(s("nobody-here")))
                .with_generation_id(1)
                .with_member_id(s("ghost"));
            let r = conn.send(&req, v).await.expect("answered");
            assert_eq!(r.error_code, 25, "UNKNOWN_MEMBER_ID, v{v}");
        }
        for v in versions(&conn, ApiKey::Heartbeat) {
            let req = HeartbeatRequest::default()
                .with_group_id(GroupId(s("nobody-here")))
                .with_member_id(s("ghost"));
            let r = conn.send(&req, v).await.expect("answered");
            assert_eq!(r.error_code, 25, "UNKNOWN_MEMBER_ID, v{v}");
        }
        for v in versions(&conn, ApiKey::LeaveGroup) {
            let mut req = LeaveGroupRequest::default().with_group_id(GroupId(s("nobody-here")));
            if v >= 3 {
                req.members = vec![MemberIdentity::default().with_member_id(s("ghost"))];
            } else {
                req.member_id = s("ghost");
            }
            let r = conn.send(&req, v).await.expect("answered");
            let code = r.members.first().map_or(r.error_code, |m| m.error_code);
            assert_eq!(code, 25, "UNKNOWN_MEMBER_ID, v{v}");
        }
        for v in versions(&conn, ApiKey::DeleteGroups) {
            let req =
                DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("nobody-here"))]);
            let r = conn.send(&req, v).await.expect("answered");
            assert_eq!(r.results[0].error_code, 69, "GROUP_ID_NOT_FOUND, v{v}");
        }
        for v in versions(&conn, ApiKey::DescribeGroups) {
            let req = DescribeGroupsRequest::default().with_groups(vec![GroupId(s("nobody-here"))]);
            let r = conn.send(&req, v).await.expect("answered");
            assert_eq!(r.groups[0].group_state.as_str(), "Dead", "v{v}");
        }

        // Simple (assign-mode) commits at every version, including a partition that does not
        // exist; fetched back at every OffsetFetch version.
        for v in versions(&conn, ApiKey::OffsetCommit) {
            let req = OffsetCommitRequest::default()
                .with_group_id(GroupId(s("simple")))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s("gt")))
                        .with_partitions(vec![OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(i64::from(v) * 10)]),
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s("missing")))
                        .with_partitions(vec![OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(1)]),
                ]);
            let r = conn.send(&req, v).await.expect("answered");
            assert_eq!(r.topics[0].partitions[0].error_code, 0, "v{v}");
            assert_eq!(
                r.topics[1].partitions[0].error_code, 3,
                "UNKNOWN_TOPIC_OR_PARTITION, v{v}"
            );
        }
        let last_commit = i64::from(*versions(&conn, ApiKey::OffsetCommit).end()) * 10;
        for v in versions(&conn, ApiKey::OffsetFetch) {
            let offset = if v >= 8 {
                let req = OffsetFetchRequest::default().with_groups(vec![
                    OffsetFetchRequestGroup::default()
                        .with_group_id(GroupId(s("simple")))
                        .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                            .with_name(TopicName(s("gt")))
                            .with_partition_indexes(vec![0, 1])])),
                ]);
                let r = conn.send(&req, v).await.expect("answered");
                let t = &r.groups[0].topics[0];
                assert_eq!(t.partitions[1].committed_offset, -1, "v{v}");
                t.partitions[0].committed_offset
            } else {
                let req = OffsetFetchRequest::default()
                    .with_group_id(GroupId(s("simple")))
                    .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                        .with_name(TopicName(s("gt")))
                        .with_partition_indexes(vec![0, 1])]));
                let r = conn.send(&req, v).await.expect("answered");
                assert_eq!(r.topics[0].partitions[1].committed_offset, -1, "v{v}");
                r.topics[0].partitions[0].committed_offset
            };
            assert_eq!(offset, last_commit, "v{v}");
        }

        // A whole membership round at the lowest and highest JoinGroup/SyncGroup versions.
        let join_versions = versions(&conn, ApiKey::JoinGroup);
        let sync_versions = versions(&conn, ApiKey::SyncGroup);
        for (jv, sv) in [
            (*join_versions.start(), *sync_versions.start()),
            (*join_versions.end(), *sync_versions.end()),
        ] {
            let group = format!("round-{jv}");
            let (mut code, mut member, mut generation) = join(&mut conn, jv, &group, "").await;
            if code == 79 {
                (code, member, generation) = join(&mut conn, jv, &group, &member).await;
            }
            assert_eq!((code, generation), (0, 1), "JoinGroup v{jv}");
            let mut sync = SyncGroupRequest::default()
                .with_group_id(GroupId(s(&group)))
                .with_generation_id(generation)
                .with_member_id(s(&member))
                .with_assignments(vec![SyncGroupRequestAssignment::default()
                    .with_member_id(s(&member))
                    .with_assignment(Bytes::from_static(b"plan"))]);
            if sv >= 5 {
                sync.protocol_type = Some(s("consumer"));
                sync.protocol_name = Some(s("range"));
            }
            let r = conn.send(&sync, sv).await.expect("SyncGroup answered");
            assert_eq!(
                (r.error_code, &r.assignment[..]),
                (0, &b"plan"[..]),
                "SyncGroup v{sv}"
            );
            let r = conn
                .send(&ListGroupsRequest::default(), 4)
                .await
                .expect("ListGroups answered");
            assert!(r
                .groups
                .iter()
                .any(|g| g.group_id.0.as_str() == group && g.group_state.as_str() == "Stable"));
        }
    });
}

/// Commits one group's offsets as fast as the broker acknowledges them, kills the broker with
/// SIGKILL in the middle, restarts it: every partition's committed offset is at least the last
/// one acknowledged (and no more than the last one sent).
#[test]
fn acknowledged_commits_survive_kill_9_under_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = free_ports(2);
    let (mut node, bootstrap) = start_dev_on(dir.path(), ports[0], ports[1]);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let partitions = 4;
    let (acked, sent) = runtime.block_on(async {
        let mut client = Client::new(&bootstrap, "durable-test");
        client
            .create_topic("dt", partitions, 1, &[])
            .await
            .expect("create topic");
        let mut member = Connection::connect(&bootstrap, "durable-test")
            .await
            .expect("connect");
        // Wait for the offsets topic (created on first use) to be loaded.
        loop {
            let req = FindCoordinatorRequest::default().with_key(s("durable"));
            let r = member.send(&req, 3).await.expect("answered");
            let probe = OffsetFetchRequest::default()
                .with_group_id(GroupId(s("durable")))
                .with_topics(None);
            if r.error_code == 0 && member.send(&probe, 7).await.expect("answered").error_code == 0
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let mut acked = vec![-1i64; partitions as usize];
        let mut sent = vec![-1i64; partitions as usize];
        let started = std::time::Instant::now();
        let mut killed = false;
        for round in 1i64.. {
            if !killed && started.elapsed() > std::time::Duration::from_millis(1500) {
                node.kill();
                killed = true;
            }
            let req = OffsetCommitRequest::default()
                .with_group_id(GroupId(s("durable")))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![OffsetCommitRequestTopic::default()
                    .with_name(TopicName(s("dt")))
                    .with_partitions(
                        (0..partitions)
                            .map(|p| {
                                OffsetCommitRequestPartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(round * 10 + i64::from(p))
                            })
                            .collect(),
                    )]);
            for p in &mut sent {
                *p = round * 10;
            }
            match member.send(&req, 8).await {
                Ok(r) => {
                    for part in &r.topics[0].partitions {
                        assert_eq!(part.error_code, 0);
                        acked[part.partition_index as usize] =
                            round * 10 + i64::from(part.partition_index);
                    }
                }
                Err(_) => break, // the broker is gone
            }
        }
        (acked, sent)
    });
    assert!(acked.iter().all(|a| *a > 100), "load ran: {acked:?}");
    let (_node, bootstrap) = start_dev_on(dir.path(), ports[0], ports[1]);
    let fetched = runtime.block_on(async {
        let mut conn = Connection::connect(&bootstrap, "durable-test")
            .await
            .expect("connect");
        loop {
            let req = OffsetFetchRequest::default()
                .with_group_id(GroupId(s("durable")))
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(TopicName(s("dt")))
                    .with_partition_indexes((0..partitions).collect())]));
            let r = conn.send(&req, 7).await.expect("answered");
            if r.error_code == 14 {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
            assert_eq!(r.error_code, 0);
            break r.topics[0]
                .partitions
                .iter()
                .map(|p| p.committed_offset)
                .collect::<Vec<i64>>();
        }
    });
    for p in 0..partitions as usize {
        assert!(
            fetched[p] >= acked[p] && fetched[p] <= sent[p] + p as i64,
            "partition {p}: acked {}, sent {}, after restart {}",
            acked[p],
            sent[p] + p as i64,
            fetched[p]
        );
    }
}
