//! The classic group protocol, driven as a broker drives it: requests in, replies and records
//! out, time passed in.

use std::collections::BTreeMap;

use bytes::Bytes;
use odradek_common::ErrorCode;
use odradek_coordinator::{
    CommitOffset, GroupConfig, GroupState, Groups, JoinRequest, JoinResponse, Output, Reply,
    SyncRequest, SyncResponse,
};
use proptest::prelude::*;

const SESSION: i32 = 10_000;
const REBALANCE: i32 = 30_000;

/// No topics: these classic groups assign nothing through the coordinator.
fn no_topics() -> BTreeMap<String, (odradek_common::Uuid, i32)> {
    BTreeMap::new()
}

/// Groups plus the log a broker would have written: every record, in order.
struct Harness {
    groups: Groups,
    log: Vec<(Bytes, Option<Bytes>)>,
    now: i64,
}

impl Harness {
    fn new(delay: i64) -> Self {
        let config = GroupConfig {
            initial_rebalance_delay_ms: delay,
            ..GroupConfig::default()
        };
        Self {
            groups: Groups::new(config, "s"),
            log: Vec::new(),
            now: 1_000,
        }
    }

    /// Appends then replays the records, as the broker does, and returns the replies; the
    /// records are committed at once (as on a partition with one replica).
    fn apply(&mut self, out: Output) -> Vec<Reply> {
        for (k, v) in out.records {
            let offset = self.log.len() as i64;
            self.log.push((k.clone(), v.clone()));
            self.groups.replay_appended(self.now, k, v, offset);
        }
        self.groups.commit_pending_offsets(self.log.len() as i64);
        out.replies
    }

    fn join(&mut self, token: u64, member: &str) -> Vec<Reply> {
        let out = self.groups.join(
            self.now,
            token,
            JoinRequest {
                group_id: "g".into(),
                member_id: member.into(),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                session_timeout_ms: SESSION,
                rebalance_timeout_ms: REBALANCE,
                protocol_type: "consumer".into(),
                protocols: vec![
                    ("range".into(), Bytes::from(format!("meta-{member}"))),
                    ("roundrobin".into(), Bytes::new()),
                ],
                require_known_member: true,
                ..JoinRequest::default()
            },
            &no_topics(),
        );
        self.apply(out)
    }

    /// A new member's id, through MEMBER_ID_REQUIRED.
    fn new_member(&mut self, token: u64) -> String {
        let replies = self.join(token, "");
        let [Reply::Join(t, r)] = replies.as_slice() else {
            panic!("{replies:?}")
        };
        assert_eq!((*t, r.error), (token, ErrorCode::MemberIdRequired));
        r.member_id.clone()
    }

    fn sync(
        &mut self,
        token: u64,
        member: &str,
        generation: i32,
        leader_plan: &[(&str, &str)],
    ) -> Vec<Reply> {
        let out = self.groups.sync(
            self.now,
            token,
            SyncRequest {
                group_id: "g".into(),
                generation,
                member_id: member.into(),
                group_instance_id: None,
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                assignments: leader_plan
                    .iter()
                    .map(|(m, a)| (m.to_string(), Bytes::from(a.to_string())))
                    .collect(),
            },
            &no_topics(),
        );
        self.apply(out)
    }

    fn tick(&mut self, advance: i64) -> Vec<Reply> {
        self.now += advance;
        let out = self.groups.tick(self.now);
        self.apply(out)
    }

    fn state(&self) -> GroupState {
        self.groups
            .describe("g")
            .map_or(GroupState::Dead, |d| d.state)
    }
}

fn joined(replies: &[Reply], token: u64) -> JoinResponse {
    replies
        .iter()
        .find_map(|r| match r {
            Reply::Join(t, j) if *t == token => Some(j.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no join reply for {token}: {replies:?}"))
}

fn synced(replies: &[Reply], token: u64) -> SyncResponse {
    replies
        .iter()
        .find_map(|r| match r {
            Reply::Sync(t, s) if *t == token => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no sync reply for {token}: {replies:?}"))
}

/// Two members: a (leader) and b, Stable at generation 1 with assignments "A" and "B".
fn stable_pair(h: &mut Harness) -> (String, String) {
    let a = h.new_member(1);
    let b = h.new_member(2);
    // Both wait: for the initial delay, or (without one) for the pending member b.
    assert!(h.join(3, &a).is_empty());
    let mut replies = h.join(4, &b);
    if replies.is_empty() {
        assert_eq!(h.state(), GroupState::PreparingRebalance);
        replies = h.tick(3_000);
    }
    let (ja, jb) = (joined(&replies, 3), joined(&replies, 4));
    assert_eq!((ja.generation, jb.generation), (1, 1));
    assert_eq!(ja.protocol_name.as_deref(), Some("range"));
    assert_eq!(ja.leader, a, "first member leads");
    assert_eq!(ja.members.len(), 2, "the leader learns every member");
    assert_eq!(
        ja.members
            .iter()
            .find(|m| m.member_id == b)
            .map(|m| m.metadata.clone()),
        Some(Bytes::from(format!("meta-{b}")))
    );
    assert!(jb.members.is_empty(), "followers do not");
    // The follower's sync waits for the leader's assignment.
    assert!(h.sync(5, &b, 1, &[]).is_empty());
    assert_eq!(h.state(), GroupState::CompletingRebalance);
    let replies = h.sync(6, &a, 1, &[(&a, "A"), (&b, "B")]);
    assert_eq!(synced(&replies, 5).assignment, "B");
    assert_eq!(synced(&replies, 6).assignment, "A");
    assert_eq!(h.state(), GroupState::Stable);
    (a, b)
}

#[test]
fn join_sync_and_heartbeat() {
    let mut h = Harness::new(3_000);
    let (a, b) = stable_pair(&mut h);
    assert_eq!(h.groups.heartbeat(h.now, "g", 1, &a, None), ErrorCode::None);
    assert_eq!(
        h.groups.heartbeat(h.now, "g", 0, &a, None),
        ErrorCode::IllegalGeneration
    );
    assert_eq!(
        h.groups.heartbeat(h.now, "g", 1, "nobody", None),
        ErrorCode::UnknownMemberId
    );
    assert_eq!(
        h.groups.heartbeat(h.now, "other", 1, &a, None),
        ErrorCode::UnknownMemberId
    );
    // A third member sets off a rebalance: heartbeats say so, and the new generation waits
    // for every known member to rejoin (no initial delay for a non-empty group).
    let c = h.new_member(7);
    assert!(h.join(8, &c).is_empty());
    assert_eq!(
        h.groups.heartbeat(h.now, "g", 1, &b, None),
        ErrorCode::RebalanceInProgress
    );
    assert!(h.join(9, &a).is_empty());
    let replies = h.join(10, &b);
    assert_eq!(replies.len(), 3);
    assert!([8, 9, 10]
        .iter()
        .all(|t| joined(&replies, *t).generation == 2));
    // A stale-generation sync is refused.
    let replies = h.sync(11, &b, 1, &[]);
    assert_eq!(synced(&replies, 11).error, ErrorCode::IllegalGeneration);
}

#[test]
fn a_silent_member_is_expired_and_the_rest_rebalance() {
    let mut h = Harness::new(0);
    let (a, b) = stable_pair(&mut h);
    // a keeps heartbeating, b goes quiet.
    for _ in 0..2 {
        h.tick(4_000);
        assert_eq!(h.groups.heartbeat(h.now, "g", 1, &a, None), ErrorCode::None);
    }
    assert_eq!(h.state(), GroupState::Stable);
    h.tick(4_000);
    assert_eq!(
        h.state(),
        GroupState::PreparingRebalance,
        "b's session expired"
    );
    assert_eq!(
        h.groups.heartbeat(h.now, "g", 1, &a, None),
        ErrorCode::RebalanceInProgress
    );
    assert_eq!(
        h.groups.heartbeat(h.now, "g", 1, &b, None),
        ErrorCode::UnknownMemberId
    );
    let replies = h.join(20, &a);
    let j = joined(&replies, 20);
    assert_eq!((j.generation, j.members.len()), (2, 1));
}

#[test]
fn the_last_member_leaving_empties_the_group_and_records_it() {
    let mut h = Harness::new(0);
    let (a, b) = stable_pair(&mut h);
    let (errors, out) = h
        .groups
        .leave(h.now, "g", &[(b.clone(), None), ("nobody".into(), None)]);
    assert_eq!(errors, vec![ErrorCode::None, ErrorCode::UnknownMemberId]);
    h.apply(out);
    assert_eq!(h.state(), GroupState::PreparingRebalance);
    let (errors, out) = h.groups.leave(h.now, "g", &[(a.clone(), None)]);
    assert_eq!(errors, vec![ErrorCode::None]);
    assert_eq!(out.records.len(), 1, "the empty group's record");
    h.apply(out);
    assert_eq!(h.state(), GroupState::Empty);
}

#[test]
fn a_leader_that_never_syncs_is_removed() {
    let mut h = Harness::new(0);
    let a = h.new_member(1);
    let b = h.new_member(2);
    h.join(3, &a);
    let replies = h.join(4, &b);
    assert_eq!(replies.len(), 2);
    assert!(h.sync(5, &b, 1, &[]).is_empty());
    // The leader (a) never sends its assignment: after the rebalance timeout it is dropped and
    // the follower's parked sync is told to rejoin.
    let replies = h.tick(i64::from(REBALANCE));
    assert_eq!(synced(&replies, 5).error, ErrorCode::RebalanceInProgress);
    let replies = h.join(6, &b);
    let j = joined(&replies, 6);
    assert_eq!(
        (j.generation, j.leader.as_str(), j.members.len()),
        (2, b.as_str(), 1)
    );
}

#[test]
fn offsets_commit_fetch_and_survive_a_reload() {
    let mut h = Harness::new(0);
    let offset = |topic: &str, partition, offset| CommitOffset {
        topic: topic.into(),
        partition,
        offset,
        leader_epoch: 0,
        metadata: Some("m".into()),
    };
    // A consumer that assigns partitions itself commits with generation -1 to an empty group.
    let (errors, out) = h.groups.commit(
        h.now,
        "g",
        -1,
        "",
        None,
        &[offset("t", 0, 5), offset("t", 1, 7)],
    );
    assert_eq!(errors, vec![ErrorCode::None; 2]);
    h.apply(out);
    let (a, _b) = stable_pair(&mut h);
    let (errors, _) = h
        .groups
        .commit(h.now, "g", 0, &a, None, &[offset("t", 0, 9)]);
    assert_eq!(errors, vec![ErrorCode::IllegalGeneration]);
    let (errors, _) = h
        .groups
        .commit(h.now, "g", -1, "", None, &[offset("t", 0, 9)]);
    assert_eq!(
        errors,
        vec![ErrorCode::UnknownMemberId],
        "not while the group has members"
    );
    let mut big = offset("t", 2, 1);
    big.metadata = Some("x".repeat(5000));
    let (errors, out) = h
        .groups
        .commit(h.now, "g", 1, &a, None, &[offset("t", 0, 9), big]);
    assert_eq!(
        errors,
        vec![ErrorCode::None, ErrorCode::OffsetMetadataTooLarge]
    );
    h.apply(out);
    let fetched: BTreeMap<(String, i32), i64> = h
        .groups
        .fetch("g", None)
        .into_iter()
        .map(|(t, p, v)| ((t, p), v.map_or(-1, |v| v.offset)))
        .collect();
    assert_eq!(
        fetched,
        BTreeMap::from([(("t".into(), 0), 9), (("t".into(), 1), 7)])
    );
    assert_eq!(
        h.groups.fetch("g", Some(&[("t".into(), vec![3])]))[0].2,
        None
    );
    assert_eq!(h.groups.delete("g"), Err(ErrorCode::NonEmptyGroup));

    // A new coordinator replays the log: same offsets, same generation and members.
    let mut reloaded = Groups::new(GroupConfig::default(), "s2");
    for (k, v) in h.log.clone() {
        reloaded.replay(h.now, k, v);
    }
    assert_eq!(reloaded.fetch("g", None), h.groups.fetch("g", None));
    let d = reloaded.describe("g").expect("group");
    assert_eq!((d.state, d.members.len()), (GroupState::Stable, 2));
    assert_eq!(reloaded.heartbeat(h.now, "g", 1, &a, None), ErrorCode::None);
}

#[test]
fn an_offset_commit_is_seen_only_once_the_high_watermark_passes_it() {
    let mut groups = Groups::new(GroupConfig::default(), "s");
    let commit = |groups: &mut Groups, offset| {
        let (errors, out) = groups.commit(
            0,
            "g",
            -1,
            "",
            None,
            &[CommitOffset {
                topic: "t".into(),
                partition: 0,
                offset,
                leader_epoch: 0,
                metadata: None,
            }],
        );
        assert_eq!(errors, vec![ErrorCode::None]);
        out.records
    };
    let fetched = |groups: &Groups| {
        groups.fetch("g", Some(&[("t".to_string(), vec![0])]))[0]
            .2
            .as_ref()
            .map(|v| v.offset)
    };
    // Appended at log offsets 10 and 11; the high watermark is at 10.
    for (i, (k, v)) in commit(&mut groups, 5).into_iter().enumerate() {
        groups.replay_appended(0, k, v, 10 + i as i64);
    }
    for (k, v) in commit(&mut groups, 8) {
        groups.replay_appended(0, k, v, 11);
    }
    groups.commit_pending_offsets(10);
    assert_eq!(fetched(&groups), None, "not committed yet: not seen");
    groups.commit_pending_offsets(11);
    assert_eq!(fetched(&groups), Some(5));
    groups.commit_pending_offsets(12);
    assert_eq!(fetched(&groups), Some(8));
    // Retention never expires a pending commit (nor drops its group).
    for (k, v) in commit(&mut groups, 9) {
        groups.replay_appended(0, k, v, 20);
    }
    let out = groups.expire_offsets(1_000_000_000, 1000);
    assert!(
        out.records.is_empty(),
        "a pending commit expired: {:?}",
        out.records
    );
    groups.commit_pending_offsets(21);
    assert_eq!(fetched(&groups), Some(9));
    assert!(!groups
        .expire_offsets(1_000_000_000, 1000)
        .records
        .is_empty());
    // Loading the partition (replay) sees every record as committed.
    let mut loaded = Groups::new(GroupConfig::default(), "s");
    for (k, v) in commit(&mut loaded, 3) {
        loaded.replay(0, k, v);
    }
    assert_eq!(fetched(&loaded), Some(3));
}

#[test]
fn delete_writes_tombstones() {
    let mut h = Harness::new(0);
    let (errors, out) = h.groups.commit(
        h.now,
        "g",
        -1,
        "",
        None,
        &[CommitOffset {
            topic: "t".into(),
            partition: 0,
            offset: 1,
            leader_epoch: -1,
            metadata: None,
        }],
    );
    assert_eq!(errors, vec![ErrorCode::None]);
    h.apply(out);
    let tombstones = h.groups.delete("g").expect("empty group");
    assert_eq!(tombstones.len(), 2);
    assert!(tombstones.iter().all(|(_, v)| v.is_none()));
    h.apply(Output {
        replies: vec![],
        records: tombstones,
        completed_rebalances: 0,
    });
    assert!(h.groups.describe("g").is_none());
    assert_eq!(h.groups.delete("g"), Err(ErrorCode::GroupIdNotFound));
}

#[test]
fn bad_joins_get_kafka_errors() {
    let mut h = Harness::new(0);
    let mut req = JoinRequest {
        group_id: "g".into(),
        session_timeout_ms: 1,
        rebalance_timeout_ms: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::new())],
        ..JoinRequest::default()
    };
    let error = |h: &mut Harness, req: &JoinRequest| match h
        .groups
        .join(h.now, 1, req.clone(), &no_topics())
        .replies
        .as_slice()
    {
        [Reply::Join(1, j)] => j.error,
        other => panic!("{other:?}"),
    };
    assert_eq!(error(&mut h, &req), ErrorCode::InvalidSessionTimeout);
    req.session_timeout_ms = SESSION;
    req.member_id = "ghost".into();
    assert_eq!(error(&mut h, &req), ErrorCode::UnknownMemberId);
    req.member_id.clear();
    req.group_id.clear();
    assert_eq!(error(&mut h, &req), ErrorCode::InvalidGroupId);
    req.group_id = "g".into();
    h.new_member(2);
    let a = h.new_member(3);
    h.join(4, &a);
    req.protocols = vec![("sticky".into(), Bytes::new())];
    assert_eq!(error(&mut h, &req), ErrorCode::InconsistentGroupProtocol);
}

#[derive(Debug, Clone)]
enum Op {
    Join(usize),
    Sync(usize),
    Heartbeat(usize),
    Leave(usize),
    Commit(usize, i64),
    Tick(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4usize).prop_map(Op::Join),
        (0..4usize).prop_map(Op::Sync),
        (0..4usize).prop_map(Op::Heartbeat),
        (0..4usize).prop_map(Op::Leave),
        (0..4usize, 0..1000i64).prop_map(|(m, o)| Op::Commit(m, o)),
        (0..15_000i64).prop_map(Op::Tick),
    ]
}

proptest! {
    /// Whatever members do: every parked request is answered at most once, the generation
    /// never goes back, and replaying the written records rebuilds the same offsets.
    #[test]
    fn any_sequence_keeps_the_invariants(ops in proptest::collection::vec(op(), 1..80)) {
        let mut h = Harness::new(500);
        let mut ids: Vec<String> = vec![String::new(); 4];
        let mut generation = 0;
        let mut answered = std::collections::BTreeSet::new();
        for (token, op) in (100u64..).zip(ops) {
            let replies = match op {
                Op::Join(m) => h.join(token, &ids[m].clone()),
                Op::Sync(m) => {
                    let all: Vec<(String, String)> = ids.iter().filter(|i| !i.is_empty()).map(|i| (i.clone(), format!("to-{i}"))).collect();
                    let plan: Vec<(&str, &str)> = all.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
                    h.sync(token, &ids[m].clone(), generation, &plan)
                }
                Op::Heartbeat(m) => { h.groups.heartbeat(h.now, "g", generation, &ids[m], None); vec![] }
                Op::Leave(m) => { let (_, out) = h.groups.leave(h.now, "g", &[(ids[m].clone(), None)]); h.apply(out) }
                Op::Commit(m, o) => {
                    let (_, out) = h.groups.commit(h.now, "g", generation, &ids[m], None, &[CommitOffset { topic: "t".into(), partition: 0, offset: o, leader_epoch: -1, metadata: None }]);
                    h.apply(out)
                }
                Op::Tick(t) => h.tick(t),
            };
            for r in replies {
                let t = match &r { Reply::Join(t, _) | Reply::Sync(t, _) => *t };
                prop_assert!(answered.insert(t), "token {} answered twice", t);
                if let Reply::Join(_, j) = &r {
                    if j.error == ErrorCode::None || j.error == ErrorCode::MemberIdRequired {
                        if let Some(slot) = ids.iter_mut().find(|i| i.is_empty() || **i == j.member_id) {
                            *slot = j.member_id.clone();
                        }
                    }
                    if j.error == ErrorCode::None {
                        prop_assert!(j.generation >= generation);
                        generation = j.generation;
                    }
                }
            }
        }
        let mut reloaded = Groups::new(GroupConfig::default(), "r");
        for (k, v) in h.log.clone() {
            reloaded.replay(h.now, k, v);
        }
        prop_assert_eq!(reloaded.fetch("g", None), h.groups.fetch("g", None));
    }
}

#[test]
fn offsets_expire_after_retention_only_for_groups_without_members() {
    const DAY: i64 = 86_400_000;
    let mut h = Harness::new(0);
    let commit = |h: &mut Harness, group: &str, generation, member: &str| {
        let (errors, out) = h.groups.commit(
            h.now,
            group,
            generation,
            member,
            None,
            &[CommitOffset {
                topic: "t".into(),
                partition: 0,
                offset: 3,
                leader_epoch: -1,
                metadata: None,
            }],
        );
        assert_eq!(errors, vec![ErrorCode::None]);
        h.apply(out);
    };
    // "simple" commits by assignment; "g" is a group with live members.
    commit(&mut h, "simple", -1, "");
    let (a, _b) = stable_pair(&mut h);
    commit(&mut h, "g", 1, &a);
    h.now += 8 * DAY;
    // (No tick: the members of "g" are still members.)
    let out = h.groups.expire_offsets(h.now, 7 * DAY);
    h.apply(out);
    assert!(
        h.groups.fetch("simple", None).is_empty(),
        "a week after its commit"
    );
    assert!(h.groups.describe("simple").is_none(), "nothing left of it");
    assert_eq!(
        h.groups.fetch("g", None).len(),
        1,
        "members keep their group's offsets"
    );
}

#[test]
fn an_emptied_group_keeps_offsets_for_the_retention_period() {
    const DAY: i64 = 86_400_000;
    let mut h = Harness::new(0);
    let (a, b) = stable_pair(&mut h);
    let (_, out) = h.groups.commit(
        h.now,
        "g",
        1,
        &a,
        None,
        &[CommitOffset {
            topic: "t".into(),
            partition: 0,
            offset: 3,
            leader_epoch: -1,
            metadata: None,
        }],
    );
    h.apply(out);
    let (_, out) = h.groups.leave(h.now, "g", &[(a, None), (b, None)]);
    h.apply(out);
    assert_eq!(h.state(), GroupState::Empty);
    h.now += 6 * DAY;
    let out = h.groups.expire_offsets(h.now, 7 * DAY);
    assert!(out.records.is_empty(), "empty for 6 days only");
    h.now += 2 * DAY;
    let out = h.groups.expire_offsets(h.now, 7 * DAY);
    assert_eq!(out.records.len(), 2, "the offset and the group");
    h.apply(out);
    assert!(h.groups.describe("g").is_none());
    // A reload of the log ends in the same place.
    let mut reloaded = Groups::new(GroupConfig::default(), "r");
    for (k, v) in h.log.clone() {
        reloaded.replay(h.now, k, v);
    }
    assert!(reloaded.describe("g").is_none());
    assert!(reloaded.fetch("g", None).is_empty());
}

#[test]
fn a_restarted_static_member_takes_its_place_without_a_rebalance() {
    let mut h = Harness::new(3_000);
    let static_join = |h: &mut Harness, token, member: &str, instance: &str| {
        let out = h.groups.join(
            h.now,
            token,
            JoinRequest {
                group_id: "g".into(),
                member_id: member.into(),
                group_instance_id: Some(instance.into()),
                client_id: "c".into(),
                session_timeout_ms: SESSION,
                rebalance_timeout_ms: REBALANCE,
                protocol_type: "consumer".into(),
                protocols: vec![("range".into(), Bytes::from_static(b"sub"))],
                require_known_member: true,
                ..JoinRequest::default()
            },
            &no_topics(),
        );
        h.apply(out)
    };
    // Two static members: no MEMBER_ID_REQUIRED round trip for them.
    assert!(
        static_join(&mut h, 1, "", "pod-0").is_empty(),
        "initial delay"
    );
    assert!(static_join(&mut h, 2, "", "pod-1").is_empty());
    let r = h.tick(3_000);
    let (j0, j1) = (joined(&r, 1), joined(&r, 2));
    assert_eq!((j0.generation, j1.generation), (1, 1));
    let (leader, follower) = (j0.member_id.clone(), j1.member_id.clone());
    h.sync(3, &follower, 1, &[]);
    let r = h.sync(4, &leader, 1, &[(&leader, "A"), (&follower, "B")]);
    assert_eq!(synced(&r, 3).assignment, "B");
    // pod-1 restarts: a new member id, the same assignment, the same generation.
    let r = static_join(&mut h, 5, "", "pod-1");
    let j = joined(&r, 5);
    assert_eq!(j.generation, 1, "no rebalance");
    assert_ne!(j.member_id, follower);
    assert_eq!(h.state(), GroupState::Stable);
    let r = h.sync(6, &j.member_id, 1, &[]);
    assert_eq!(synced(&r, 6).assignment, "B");
    // The old process is fenced wherever it turns up.
    assert_eq!(
        h.groups.heartbeat(h.now, "g", 1, &follower, Some("pod-1")),
        ErrorCode::FencedInstanceId
    );
    let r = static_join(&mut h, 7, &follower, "pod-1");
    assert_eq!(joined(&r, 7).error, ErrorCode::FencedInstanceId);
    let one = CommitOffset {
        topic: "t".into(),
        partition: 0,
        offset: 1,
        leader_epoch: -1,
        metadata: None,
    };
    let (errors, out) = h.groups.commit(
        h.now,
        "g",
        1,
        &follower,
        Some("pod-1"),
        std::slice::from_ref(&one),
    );
    assert_eq!(errors, vec![ErrorCode::FencedInstanceId]);
    assert!(
        out.records.is_empty(),
        "nothing written for a fenced member"
    );
    let (errors, _) = h
        .groups
        .commit(h.now, "g", 1, &j.member_id, Some("pod-1"), &[one]);
    assert_eq!(errors, vec![ErrorCode::None], "the current member commits");
    // Leaving by instance id alone.
    let (errors, out) = h
        .groups
        .leave(h.now, "g", &[(String::new(), Some("pod-1".into()))]);
    assert_eq!(errors, vec![ErrorCode::None]);
    h.apply(out);
    assert_eq!(h.state(), GroupState::PreparingRebalance);
}
