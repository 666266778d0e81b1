//! KIP-848's ConsumerGroupHeartbeat and ConsumerGroupDescribe over the wire, at both advertised
//! versions, against `odradek-broker --dev`: bad requests get Kafka's error codes and
//! messages (never a closed connection), and a member joins, heartbeats, commits at its epoch,
//! is described and leaves.

use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, FindCoordinatorRequest, GroupId, OffsetCommitRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use odradek::client::{Client, Connection};

use crate::harness::start_dev;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn join(group: &str, member: &str) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(300_000)
        .with_subscribed_topic_names(Some(vec![TopicName(s("cg"))]))
        .with_topic_partitions(Some(Vec::new()))
}

async fn beat(
    conn: &mut Connection,
    v: i16,
    req: &ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    conn.send(req, v)
        .await
        .expect("ConsumerGroupHeartbeat answered")
}

#[test]
fn consumer_group_heartbeat_and_describe_on_the_wire() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_node, bootstrap) = start_dev(dir.path());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let mut client = Client::new(&bootstrap, "cg-test");
        client
            .create_topic("cg", 4, 1, &[])
            .await
            .expect("create topic");
        let mut conn = Connection::connect(&bootstrap, "cg-test")
            .await
            .expect("connect");
        // The offsets topic comes with the first FindCoordinator.
        let _ = conn
            .send(&FindCoordinatorRequest::default().with_key(s("g")), 1)
            .await
            .expect("FindCoordinator");
        assert_eq!(
            conn.version(ApiKey::ConsumerGroupHeartbeat, 9)
                .expect("served"),
            1
        );
        // Until the coordinator has loaded its partition: COORDINATOR_LOAD_IN_PROGRESS.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let r = beat(&mut conn, 1, &join("warm-up", "w")).await;
            if r.error_code == 0 {
                break;
            }
            assert!([14, 15].contains(&r.error_code), "{r:?}");
            assert!(
                std::time::Instant::now() < deadline,
                "coordinator never loaded"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(
            conn.version(ApiKey::ConsumerGroupDescribe, 9)
                .expect("served"),
            1
        );

        for v in 0..=1i16 {
            let group = format!("cg-{v}");
            // Kafka's request checks, each named in the message.
            let bad = [
                (
                    join(&group, "m").with_rebalance_timeout_ms(-1),
                    42,
                    "RebalanceTimeoutMs",
                ),
                (
                    join(&group, "m").with_topic_partitions(None),
                    42,
                    "TopicPartitions",
                ),
                (
                    join(&group, "m").with_subscribed_topic_names(None),
                    42,
                    "SubscribedTopicNames",
                ),
                (join(&group, "m").with_member_epoch(-3), 42, "MemberEpoch"),
                (join("", "m"), 42, "GroupId"),
                (
                    join(&group, "m").with_server_assignor(Some(s("sticky"))),
                    112,
                    "sticky",
                ),
                (join(&group, "m").with_member_epoch(5), 69, "not found"),
            ];
            for (req, code, words) in bad {
                let r = beat(&mut conn, v, &req).await;
                assert_eq!(r.error_code, code, "v{v} {req:?}: {r:?}");
                let message = r.error_message.map(|m| m.to_string()).unwrap_or_default();
                assert!(message.contains(words), "v{v}: {message}");
            }
            if v >= 1 {
                // From v1 the client names itself, even to join.
                let r = beat(&mut conn, v, &join(&group, "")).await;
                assert_eq!(r.error_code, 42, "{r:?}");
            }

            // A member joins (v0: the broker names it), gets all four partitions at epoch 1.
            let id = if v == 0 { "" } else { "client-named-member" };
            let r = beat(&mut conn, v, &join(&group, id)).await;
            assert_eq!(r.error_code, 0, "{r:?}");
            let member = r.member_id.expect("member id").to_string();
            assert!(!member.is_empty());
            if v >= 1 {
                assert_eq!(member, id);
            }
            assert_eq!((r.member_epoch, r.heartbeat_interval_ms), (1, 5000));
            let assigned = r.assignment.expect("assignment on a join");
            assert_eq!(assigned.topic_partitions.len(), 1);
            assert_eq!(assigned.topic_partitions[0].partitions.len(), 4);
            let topic_id = assigned.topic_partitions[0].topic_id;

            // Heartbeats: at its epoch, nothing new (no assignment); ahead of it, fenced;
            // an unknown member, unknown.
            let hb = ConsumerGroupHeartbeatRequest::default()
                .with_group_id(GroupId(s(&group)))
                .with_member_id(s(&member))
                .with_member_epoch(1)
                .with_rebalance_timeout_ms(-1);
            let r = beat(&mut conn, v, &hb).await;
            assert_eq!((r.error_code, r.member_epoch), (0, 1));
            assert!(r.assignment.is_none());
            let r = beat(&mut conn, v, &hb.clone().with_member_epoch(2)).await;
            assert_eq!(r.error_code, 110, "FENCED_MEMBER_EPOCH: {r:?}");
            let r = beat(&mut conn, v, &hb.clone().with_member_id(s("nobody"))).await;
            assert_eq!(r.error_code, 25, "UNKNOWN_MEMBER_ID: {r:?}");

            // Commits: at the member's epoch accepted, at another STALE_MEMBER_EPOCH.
            for (epoch, code) in [(1, 0), (0, 113)] {
                let req = OffsetCommitRequest::default()
                    .with_group_id(GroupId(s(&group)))
                    .with_generation_id_or_member_epoch(epoch)
                    .with_member_id(s(&member))
                    .with_topics(vec![OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s("cg")))
                        .with_partitions(vec![OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(7)])]);
                let r = conn.send(&req, 9).await.expect("OffsetCommit answered");
                assert_eq!(r.topics[0].partitions[0].error_code, code, "epoch {epoch}");
            }

            // Described: one member at epoch 1 holding the four partitions, by name.
            let d = conn
                .send(
                    &ConsumerGroupDescribeRequest::default()
                        .with_group_ids(vec![GroupId(s(&group)), GroupId(s("nope"))]),
                    v,
                )
                .await
                .expect("ConsumerGroupDescribe answered");
            let g = &d.groups[0];
            assert_eq!((g.error_code, g.group_state.as_str()), (0, "Stable"));
            assert_eq!(
                (g.group_epoch, g.assignment_epoch, g.assignor_name.as_str()),
                (1, 1, "uniform")
            );
            assert_eq!(g.members.len(), 1);
            let m = &g.members[0];
            assert_eq!((m.member_id.as_str(), m.member_epoch), (member.as_str(), 1));
            assert_eq!(m.assignment.topic_partitions[0].topic_name.0.as_str(), "cg");
            assert_eq!(m.assignment.topic_partitions[0].topic_id, topic_id);
            assert_eq!(d.groups[1].error_code, 69, "GROUP_ID_NOT_FOUND");

            // The client restates what it owns: the full assignment comes back.
            let full = hb
                .clone()
                .with_rebalance_timeout_ms(300_000)
                .with_subscribed_topic_names(Some(vec![TopicName(s("cg"))]))
                .with_topic_partitions(Some(vec![TopicPartitions::default()
                    .with_topic_id(topic_id)
                    .with_partitions(vec![0, 1, 2, 3])]));
            let r = beat(&mut conn, v, &full).await;
            assert_eq!(r.error_code, 0, "{r:?}");
            assert!(r.assignment.is_some());

            // It leaves: epoch -1 back, and the group is empty.
            let r = beat(&mut conn, v, &hb.clone().with_member_epoch(-1)).await;
            assert_eq!((r.error_code, r.member_epoch), (0, -1), "{r:?}");
            let d = conn
                .send(
                    &ConsumerGroupDescribeRequest::default()
                        .with_group_ids(vec![GroupId(s(&group))]),
                    v,
                )
                .await
                .expect("ConsumerGroupDescribe answered");
            assert_eq!(d.groups[0].group_state.as_str(), "Empty");
            assert_eq!(d.groups[0].group_epoch, 2);
        }
    });
}
