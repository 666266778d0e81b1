//! Classic members in consumer groups: the online upgrade, classic members reconciling through
//! JoinGroup / SyncGroup / Heartbeat, the downgrade, and the records reloading to the same
//! groups.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use odradek_common::{ErrorCode, Uuid};

use super::embedded::{decode_assignment, encode_assignment, encode_subscription, Subscription};
use super::*;
use crate::groups::{
    GroupConfig, GroupState, Groups, JoinRequest, JoinResponse, Output, Reply, SyncRequest,
    SyncResponse,
};

const T: Uuid = Uuid([5; 16]);

struct Run {
    groups: Groups,
    log: Vec<(Bytes, Option<Bytes>)>,
    topics: BTreeMap<String, (Uuid, i32)>,
    now: i64,
}

fn subscription(owned: &[i32]) -> Bytes {
    encode_subscription(
        1,
        &Subscription {
            topics: vec!["t".into()],
            owned: if owned.is_empty() {
                Vec::new()
            } else {
                vec![("t".into(), owned.to_vec())]
            },
            rack: None,
        },
    )
}

fn held(ps: &[i32]) -> Bytes {
    encode_assignment(1, &vec![("t".to_string(), ps.to_vec())])
}

fn a(ps: &[i32]) -> Assignment {
    if ps.is_empty() {
        return Assignment::new();
    }
    Assignment::from([(T, ps.iter().copied().collect::<BTreeSet<_>>())])
}

impl Run {
    fn new(config: GroupConfig) -> Self {
        Self {
            groups: Groups::new(
                GroupConfig {
                    initial_rebalance_delay_ms: 0,
                    ..config
                },
                "seed",
            ),
            log: Vec::new(),
            topics: BTreeMap::from([("t".to_string(), (T, 6))]),
            now: 0,
        }
    }

    fn apply(&mut self, out: Output) -> Vec<Reply> {
        for (i, (k, v)) in out.records.iter().enumerate() {
            let at = (self.log.len() + i) as i64;
            self.groups
                .replay_appended(self.now, k.clone(), v.clone(), at);
        }
        self.log.extend(out.records);
        out.replies
    }

    fn join_as(&mut self, token: u64, member: &str, owned: &[i32]) -> Vec<Reply> {
        let req = JoinRequest {
            group_id: "g".into(),
            member_id: member.into(),
            client_id: "c".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: vec![("cooperative-sticky".into(), subscription(owned))],
            require_known_member: true,
            ..JoinRequest::default()
        };
        let out = self.groups.join(self.now, token, req, &self.topics);
        self.apply(out)
    }

    /// A JoinGroup under token 1 that is answered in the same call.
    fn join(&mut self, member: &str, owned: &[i32]) -> JoinResponse {
        let replies = self.join_as(1, member, owned);
        replies
            .iter()
            .find_map(|r| match r {
                Reply::Join(1, j) => Some(j.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{replies:?}"))
    }

    fn sync(&mut self, member: &str, generation: i32, plan: &[(&str, &[i32])]) -> Vec<Reply> {
        let req = SyncRequest {
            group_id: "g".into(),
            generation,
            member_id: member.into(),
            protocol_type: Some("consumer".into()),
            protocol_name: Some("cooperative-sticky".into()),
            assignments: plan
                .iter()
                .map(|(m, ps)| (m.to_string(), held(ps)))
                .collect(),
            ..SyncRequest::default()
        };
        let out = self.groups.sync(self.now, 2, req, &self.topics);
        self.apply(out)
    }

    fn synced(&mut self, member: &str, generation: i32) -> SyncResponse {
        match self.sync(member, generation, &[]).as_slice() {
            [Reply::Sync(2, s)] => s.clone(),
            other => panic!("{other:?}"),
        }
    }

    fn beat(&mut self, req: ConsumerHeartbeat) -> ConsumerHeartbeatResponse {
        let (r, out) = self.groups.consumer_heartbeat(self.now, req, &self.topics);
        self.apply(out);
        r
    }

    fn consumer(&self) -> &ConsumerGroup {
        self.groups.groups["g"]
            .consumer
            .as_ref()
            .expect("a consumer group")
    }

    /// A classic group of c-seed-1 and c-seed-2, holding 0-2 and 3-5 at generation 2.
    fn classic_pair(config: GroupConfig) -> Self {
        let mut r = Run::new(config);
        let a_id = r.join("", &[]).member_id;
        assert_eq!(r.join(&a_id, &[]).generation, 1);
        r.now += 1;
        let b_id = match r.join_as(3, "", &[]).as_slice() {
            [Reply::Join(3, j)] => j.member_id.clone(),
            other => panic!("{other:?}"),
        };
        assert!(r.join_as(3, &b_id, &[]).is_empty());
        // a joins again: the rebalance completes for both.
        let ja = r.join(&a_id, &[]);
        assert_eq!((ja.error, ja.generation), (ErrorCode::None, 2));
        assert_eq!((a_id.as_str(), b_id.as_str()), ("c-seed-1", "c-seed-2"));
        r.sync(&a_id, 2, &[(&a_id, &[0, 1, 2]), (&b_id, &[3, 4, 5])]);
        assert_eq!(r.groups.groups["g"].state, GroupState::Stable);
        r
    }
}

fn consumer_join(id: &str) -> ConsumerHeartbeat {
    ConsumerHeartbeat {
        group_id: "g".into(),
        member_id: id.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["t".into()]),
        owned: Some(Assignment::new()),
        client_id: "c".into(),
        api_version: 1,
        ..ConsumerHeartbeat::default()
    }
}

fn consumer_beat(id: &str, epoch: i32) -> ConsumerHeartbeat {
    ConsumerHeartbeat {
        group_id: "g".into(),
        member_id: id.into(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        client_id: "c".into(),
        api_version: 1,
        ..ConsumerHeartbeat::default()
    }
}

#[test]
fn a_consumer_member_upgrades_a_classic_group_whose_members_move_over_by_rejoining() {
    let mut r = Run::classic_pair(GroupConfig::default());
    let (ca, cb) = ("c-seed-1", "c-seed-2");

    // The new member converts the group: the classic members keep their partitions at epoch 2
    // (the classic generation), and the join bumps the group to epoch 3.
    r.now += 10;
    let j = r.beat(consumer_join("m3"));
    assert_eq!(j.error, ErrorCode::None, "{:?}", j.error_message);
    assert_eq!(j.member_epoch, 3);
    assert_eq!(j.assignment, Some(Assignment::new()));
    let cg = r.consumer();
    assert_eq!((cg.group_epoch, cg.assignment_epoch), (3, 3));
    assert_eq!(cg.members[ca].assigned, a(&[0, 1, 2]));
    assert_eq!(cg.members[cb].assigned, a(&[3, 4, 5]));
    assert!(cg.members[ca].is_classic() && !cg.members["m3"].is_classic());
    assert!(r.groups.groups["g"].members.is_empty());
    assert_eq!(r.groups.list()[0].group_type, "consumer");

    // A classic member heartbeats at its generation: it must rejoin (the group moved on).
    assert_eq!(
        r.groups.heartbeat(r.now, "g", 2, ca, None),
        ErrorCode::RebalanceInProgress
    );
    assert_eq!(
        r.groups.heartbeat(r.now, "g", 1, ca, None),
        ErrorCode::IllegalGeneration
    );
    // Its commits still go at its generation; another generation is ILLEGAL_GENERATION.
    assert_eq!(Groups::check_consumer_commit(r.consumer(), ca, 2), Ok(()));
    assert_eq!(
        Groups::check_consumer_commit(r.consumer(), ca, 1),
        Err(ErrorCode::IllegalGeneration)
    );

    // It rejoins owning 0-2; its target keeps two of them: it revokes first, at epoch 2.
    let ja = r.join(ca, &[0, 1, 2]);
    assert_eq!((ja.error, ja.leader.as_str()), (ErrorCode::None, ""));
    assert_eq!(ja.protocol_name.as_deref(), Some("cooperative-sticky"));
    let kept = r.consumer().target[ca].clone();
    assert_eq!(kept[&T].len(), 2);
    assert_eq!(ja.generation, 2);
    assert_eq!(
        r.consumer().members[ca].state,
        MemberState::UnrevokedPartitions
    );
    // SyncGroup hands out what it keeps; the heartbeat sends it back to revoke.
    let s = r.synced(ca, 2);
    let got = decode_assignment(s.assignment).expect("an assignment");
    assert_eq!(got.partitions.len(), 1);
    assert_eq!(got.partitions[0].1.len(), 2);
    assert_eq!(
        r.groups.heartbeat(r.now, "g", 2, ca, None),
        ErrorCode::RebalanceInProgress
    );
    // Rejoining without the revoked partition moves it to the group's epoch.
    let k: Vec<i32> = kept[&T].iter().copied().collect();
    let ja = r.join(ca, &k);
    assert_eq!(ja.generation, 3);
    assert_eq!(r.consumer().members[ca].state, MemberState::Stable);
    assert_eq!(r.groups.heartbeat(r.now, "g", 3, ca, None), ErrorCode::None);
    // The consumer member takes what a released.
    let h = r.beat(consumer_beat("m3", 3));
    assert_eq!(h.assignment.expect("assigned")[&T].len(), 1);

    // The log reloads to the same group, classic members included.
    let mut reloaded = Groups::new(GroupConfig::default(), "seed2");
    for (k, v) in r.log.clone() {
        reloaded.replay(r.now, k, v);
    }
    let g = &reloaded.groups["g"];
    assert!(g.members.is_empty());
    let cg = g.consumer.as_ref().expect("a consumer group");
    assert_eq!(cg.members.len(), 3);
    assert_eq!(cg.members[ca], {
        let mut m = r.consumer().members[ca].clone();
        m.session_deadline = cg.members[ca].session_deadline;
        m.classic_deadline = None;
        m
    });
}

#[test]
fn the_last_consumer_member_leaving_turns_the_group_back_into_a_classic_group() {
    let mut r = Run::classic_pair(GroupConfig::default());
    r.beat(consumer_join("m3"));
    let epoch = r.consumer().group_epoch;
    let h = r.beat(consumer_beat("m3", -1));
    assert_eq!(h.error, ErrorCode::None);
    let g = &r.groups.groups["g"];
    assert!(g.consumer.is_none());
    assert_eq!(g.generation, epoch);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert_eq!(g.members.len(), 2);
    assert_eq!(g.protocol.as_deref(), Some("cooperative-sticky"));
    // Its members heartbeat at their generation: rejoin, then the classic group completes a
    // new generation.
    assert_eq!(
        r.groups.heartbeat(r.now, "g", epoch, "c-seed-1", None),
        ErrorCode::RebalanceInProgress
    );
    assert!(r.join_as(1, "c-seed-1", &[0, 1, 2]).is_empty());
    let replies = r.join_as(9, "c-seed-2", &[3, 4, 5]);
    assert_eq!(replies.len(), 2, "both joins answered: {replies:?}");
    assert_eq!(r.groups.groups["g"].generation, epoch + 1);
    // Reloaded, it is the same classic group (no consumer half left).
    let mut reloaded = Groups::new(GroupConfig::default(), "seed2");
    for (k, v) in r.log.clone() {
        reloaded.replay(r.now, k, v);
    }
    let g = &reloaded.groups["g"];
    assert!(g.consumer.is_none());
    assert_eq!((g.generation, g.members.len()), (epoch, 2));
}

#[test]
fn the_migration_policy_decides_which_groups_with_members_may_change() {
    let mut r = Run::classic_pair(GroupConfig {
        consumer_migration_policy: MigrationPolicy::Downgrade,
        ..GroupConfig::default()
    });
    let j = r.beat(consumer_join("m3"));
    assert_eq!(j.error, ErrorCode::GroupIdNotFound);
    assert!(j
        .error_message
        .as_deref()
        .is_some_and(|m| m.contains("online upgrade is disabled")));
    assert!(r.groups.groups["g"].consumer.is_none());

    // Upgrade only: the group never goes back; the classic members stay in the consumer group.
    let mut r = Run::classic_pair(GroupConfig {
        consumer_migration_policy: MigrationPolicy::Upgrade,
        ..GroupConfig::default()
    });
    r.beat(consumer_join("m3"));
    r.beat(consumer_beat("m3", -1));
    let cg = r.consumer();
    assert_eq!(cg.members.len(), 2);
    assert!(cg.members.values().all(ConsumerMember::is_classic));
}

#[test]
fn classic_members_join_a_consumer_group_and_expire_on_their_own_session() {
    let mut r = Run::new(GroupConfig::default());
    let j = r.beat(consumer_join("m1"));
    assert_eq!(j.assignment, Some(a(&[0, 1, 2, 3, 4, 5])));
    // A classic member asks for an id first, then joins as a follower at the member's epoch.
    let first = r.join("", &[]);
    assert_eq!(first.error, ErrorCode::MemberIdRequired);
    let mut req_join = r.join(&first.member_id, &[]);
    assert_eq!(req_join.error, ErrorCode::None);
    assert_eq!(req_join.members, Vec::new());
    // It waits for m1 to give back half the partitions.
    assert_eq!(
        r.consumer().members[&first.member_id].state,
        MemberState::UnreleasedPartitions
    );
    let s = r.synced(&first.member_id, req_join.generation);
    assert!(decode_assignment(s.assignment)
        .expect("an assignment")
        .partitions
        .is_empty());
    // m1 lets go; the classic member is told to rejoin and takes them.
    let h = r.beat(consumer_beat("m1", 1));
    let kept = h.assignment.expect("revoked");
    let owned: Vec<i32> = kept[&T].iter().copied().collect();
    r.beat(ConsumerHeartbeat {
        owned: Some(a(&owned)),
        ..consumer_beat("m1", 1)
    });
    assert_eq!(
        r.groups
            .heartbeat(r.now, "g", req_join.generation, &first.member_id, None),
        ErrorCode::RebalanceInProgress
    );
    req_join = r.join(&first.member_id, &[]);
    assert_eq!(r.consumer().members[&first.member_id].assigned[&T].len(), 3);
    // A protocol the classic members do not all speak is refused.
    let out = r.groups.join(
        r.now,
        7,
        JoinRequest {
            group_id: "g".into(),
            member_id: "x".into(),
            client_id: "c".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), subscription(&[]))],
            ..JoinRequest::default()
        },
        &r.topics,
    );
    assert!(matches!(
        r.apply(out).as_slice(),
        [Reply::Join(7, j)] if j.error == ErrorCode::InconsistentGroupProtocol
    ));
    // Synced, then silent past its own 10 s session (the group's is 45 s): it is removed.
    r.synced(&first.member_id, req_join.generation);
    r.beat(consumer_beat("m1", r.consumer().members["m1"].member_epoch));
    r.now += 11_000;
    r.beat(consumer_beat("m1", r.consumer().members["m1"].member_epoch));
    r.now += 100;
    let out = r.groups.tick(r.now);
    r.apply(out);
    assert!(!r.consumer().members.contains_key(&first.member_id));
    // A classic leave of the consumer member empties the group.
    let (errors, out) = r.groups.leave(r.now, "g", &[("m1".into(), None)]);
    r.apply(out);
    assert_eq!(errors, vec![ErrorCode::None]);
    assert!(r.consumer().members.is_empty());
}

#[test]
fn a_consumer_member_takes_a_stopped_classic_static_members_place() {
    // A rolling upgrade: the classic static member stopped without leaving; its new process
    // speaks the consumer protocol under the same group.instance.id.
    let mut r = Run::new(GroupConfig::default());
    let out = r.groups.join(
        r.now,
        1,
        JoinRequest {
            group_id: "g".into(),
            group_instance_id: Some("i1".into()),
            client_id: "c".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: vec![("cooperative-sticky".into(), subscription(&[]))],
            require_known_member: true,
            ..JoinRequest::default()
        },
        &r.topics,
    );
    let old = match r.apply(out).as_slice() {
        [Reply::Join(1, j)] => j.member_id.clone(),
        other => panic!("{other:?}"),
    };
    r.sync(&old, 1, &[(&old, &[0, 1, 2, 3, 4, 5])]);
    let j = r.beat(ConsumerHeartbeat {
        instance_id: Some("i1".into()),
        ..consumer_join("new")
    });
    assert_eq!(j.error, ErrorCode::None, "{:?}", j.error_message);
    let cg = r.consumer();
    assert!(!cg.members.contains_key(&old));
    assert_eq!(
        cg.members["new"].metadata.instance_id.as_deref(),
        Some("i1")
    );
    assert_eq!(j.assignment, Some(a(&[0, 1, 2, 3, 4, 5])));
}

#[test]
fn a_refused_joining_heartbeat_leaves_the_classic_group_as_it_was() {
    // Two classic members fill group.consumer.max.size: the group could convert, but the new
    // member does not fit; nothing changes and nothing is written.
    let mut r = Run::classic_pair(GroupConfig {
        consumer_max_size: 2,
        ..GroupConfig::default()
    });
    let logged = r.log.len();
    let j = r.beat(consumer_join("m3"));
    assert_eq!(j.error, ErrorCode::GroupMaxSizeReached);
    let g = &r.groups.groups["g"];
    assert!(g.consumer.is_none());
    assert_eq!((g.members.len(), g.generation), (2, 2));
    assert_eq!(r.log.len(), logged);
    // The classic members go on as before.
    assert_eq!(
        r.groups.heartbeat(r.now, "g", 2, "c-seed-1", None),
        ErrorCode::None
    );
}
