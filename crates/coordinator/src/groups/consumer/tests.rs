//! The consumer group protocol driven through `Groups`, as a coordinator would.

use std::collections::{BTreeMap, BTreeSet};

use odradek_common::{ErrorCode, Uuid};

use super::*;
use crate::groups::{GroupConfig, Groups, Output};

const T: Uuid = Uuid([9; 16]);

fn topics(partitions: i32) -> BTreeMap<String, (Uuid, i32)> {
    BTreeMap::from([("t".to_string(), (T, partitions))])
}

fn a(ps: &[i32]) -> Assignment {
    if ps.is_empty() {
        return Assignment::new();
    }
    Assignment::from([(T, ps.iter().copied().collect::<BTreeSet<_>>())])
}

fn join(id: &str) -> ConsumerHeartbeat {
    ConsumerHeartbeat {
        group_id: "g".into(),
        member_id: id.into(),
        member_epoch: 0,
        rebalance_timeout_ms: 300_000,
        subscribed_topic_names: Some(vec!["t".into()]),
        owned: Some(Assignment::new()),
        client_id: "c".into(),
        ..ConsumerHeartbeat::default()
    }
}

fn beat(id: &str, epoch: i32, owned: Option<&[i32]>) -> ConsumerHeartbeat {
    ConsumerHeartbeat {
        group_id: "g".into(),
        member_id: id.into(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        owned: owned.map(a),
        client_id: "c".into(),
        ..ConsumerHeartbeat::default()
    }
}

struct Run {
    groups: Groups,
    log: Vec<(bytes::Bytes, Option<bytes::Bytes>)>,
    topics: BTreeMap<String, (Uuid, i32)>,
}

impl Run {
    fn new(partitions: i32) -> Self {
        Self {
            groups: Groups::new(GroupConfig::default(), "seed"),
            log: Vec::new(),
            topics: topics(partitions),
        }
    }

    fn hb(&mut self, now: i64, req: ConsumerHeartbeat) -> ConsumerHeartbeatResponse {
        let (r, out) = self.groups.consumer_heartbeat(now, req, &self.topics);
        self.log.extend(out.records);
        r
    }

    fn tick(&mut self, now: i64) -> Output {
        let out = self.groups.tick(now);
        self.log.extend(out.records.clone());
        out
    }

    fn member(&self, id: &str) -> ConsumerMember {
        self.groups.groups["g"]
            .consumer
            .as_ref()
            .expect("in the test setup")
            .members[id]
            .clone()
    }
}

#[test]
fn members_share_the_topic_revoking_before_anyone_is_assigned() {
    let mut r = Run::new(4);
    let j = r.hb(0, join("m1"));
    assert_eq!(j.error, ErrorCode::None);
    assert_eq!(
        (j.member_epoch, j.assignment.clone()),
        (1, Some(a(&[0, 1, 2, 3])))
    );
    let e1 = j.member_epoch;

    // m2 joins: its target holds two of m1's partitions, which m1 has not given back.
    let j2 = r.hb(10, join("m2"));
    assert_eq!(j2.member_epoch, 2);
    assert_eq!(j2.assignment, Some(Assignment::new()));
    assert_eq!(r.member("m2").state, MemberState::UnreleasedPartitions);

    // m1 is told to keep two: it stays at its epoch until it lets the others go.
    let h = r.hb(20, beat("m1", e1, None));
    assert_eq!(h.member_epoch, e1);
    let kept = h.assignment.clone().expect("in the test setup");
    assert_eq!(kept[&T].len(), 2);
    assert_eq!(r.member("m1").state, MemberState::UnrevokedPartitions);
    // m2 still gets nothing while m1 holds them.
    assert_eq!(r.hb(30, beat("m2", 2, None)).assignment, None);

    // m1 lets go: it moves to epoch 2; then m2 takes the two released partitions.
    let owned: Vec<i32> = kept[&T].iter().copied().collect();
    let h = r.hb(40, beat("m1", e1, Some(&owned)));
    assert_eq!((h.error, h.member_epoch), (ErrorCode::None, 2));
    let h2 = r.hb(50, beat("m2", 2, None));
    let got = h2.assignment.expect("in the test setup");
    assert_eq!(got[&T].len(), 2);
    assert!(got[&T].is_disjoint(&kept[&T]));
    assert_eq!(r.member("m2").state, MemberState::Stable);
    assert_eq!(
        r.groups.list()[0].state,
        ConsumerGroupState::Stable.name(),
        "every member at its target"
    );

    // m2 leaves: m1 gets everything back at a new epoch.
    let l = r.hb(
        61,
        ConsumerHeartbeat {
            member_epoch: LEAVE_GROUP_MEMBER_EPOCH,
            ..beat("m2", 0, None)
        },
    );
    assert_eq!((l.error, l.member_epoch), (ErrorCode::None, -1));
    let h = r.hb(70, beat("m1", 2, Some(&owned)));
    assert_eq!((h.member_epoch, h.assignment), (3, Some(a(&[0, 1, 2, 3]))));
}

#[test]
fn epochs_are_checked() {
    let mut r = Run::new(2);
    let j = r.hb(0, join("m1"));
    assert_eq!(
        r.hb(1, beat("m1", j.member_epoch + 1, None)).error,
        ErrorCode::FencedMemberEpoch
    );
    assert_eq!(
        r.hb(1, beat("nobody", 1, None)).error,
        ErrorCode::UnknownMemberId
    );
    assert_eq!(
        Groups::check_consumer_commit(
            r.groups.groups["g"]
                .consumer
                .as_ref()
                .expect("in the test setup"),
            "m1",
            0
        ),
        Err(ErrorCode::StaleMemberEpoch)
    );
    assert_eq!(
        Groups::check_consumer_commit(
            r.groups.groups["g"]
                .consumer
                .as_ref()
                .expect("in the test setup"),
            "m1",
            1
        ),
        Ok(())
    );
    let mut bad = join("m2");
    bad.rebalance_timeout_ms = -1;
    assert_eq!(r.hb(2, bad).error, ErrorCode::InvalidRequest);
    let mut bad = join("m2");
    bad.server_assignor = Some("sticky".into());
    assert_eq!(r.hb(2, bad).error, ErrorCode::UnsupportedAssignor);
}

#[test]
fn a_silent_member_is_removed_after_its_session() {
    let mut r = Run::new(2);
    r.hb(0, join("m1"));
    r.hb(0, join("m2"));
    r.tick(40_000);
    assert_eq!(
        r.groups.groups["g"]
            .consumer
            .as_ref()
            .expect("in the test setup")
            .members
            .len(),
        2
    );
    r.hb(40_000, beat("m1", 1, None));
    r.tick(46_000);
    let cg = r.groups.groups["g"]
        .consumer
        .as_ref()
        .expect("in the test setup");
    assert_eq!(cg.members.keys().collect::<Vec<_>>(), ["m1"]);
}

#[test]
fn the_log_rebuilds_the_group() {
    let mut r = Run::new(4);
    r.hb(0, join("m1"));
    r.hb(1, join("m2"));
    let h = r.hb(2, beat("m1", 1, None));
    let owned: Vec<i32> = h.assignment.expect("in the test setup")[&T]
        .iter()
        .copied()
        .collect();
    r.hb(3, beat("m1", 1, Some(&owned)));
    r.hb(4, beat("m2", 2, None));
    r.hb(5, join("m3"));
    r.hb(
        6,
        ConsumerHeartbeat {
            member_epoch: LEAVE_GROUP_MEMBER_EPOCH,
            ..beat("m3", 0, None)
        },
    );
    let mut loaded = Groups::new(GroupConfig::default(), "other");
    for (k, v) in r.log.clone() {
        loaded.replay(100, k, v);
    }
    let before = r.groups.groups["g"]
        .consumer
        .as_ref()
        .expect("in the test setup");
    let after = loaded.groups["g"]
        .consumer
        .as_ref()
        .expect("in the test setup");
    assert_eq!(after.group_epoch, before.group_epoch);
    assert_eq!(after.assignment_epoch, before.assignment_epoch);
    assert_eq!(after.target, before.target);
    assert_eq!(after.members.len(), 2);
    for (id, m) in &before.members {
        let l = &after.members[id];
        assert_eq!(
            (
                l.member_epoch,
                l.previous_member_epoch,
                l.state,
                &l.assigned,
                &l.metadata
            ),
            (
                m.member_epoch,
                m.previous_member_epoch,
                m.state,
                &m.assigned,
                &m.metadata
            ),
            "{id}"
        );
    }
}

#[test]
fn a_new_partition_bumps_the_group_epoch() {
    let mut r = Run::new(2);
    let j = r.hb(0, join("m1"));
    assert_eq!(j.assignment, Some(a(&[0, 1])));
    r.topics = topics(3);
    let h = r.hb(1, beat("m1", 1, None));
    assert_eq!((h.member_epoch, h.assignment), (2, Some(a(&[0, 1, 2]))));
}

#[test]
fn a_static_member_comes_back_to_its_partitions() {
    let mut r = Run::new(4);
    let mut s1 = join("s1");
    s1.instance_id = Some("i1".into());
    r.hb(0, s1);
    r.hb(0, join("m2"));
    let h = r.hb(1, beat("s1", 1, None));
    let owned: Vec<i32> = h.assignment.expect("in the test setup")[&T]
        .iter()
        .copied()
        .collect();
    r.hb(2, beat("s1", 1, Some(&owned)));
    let mut again = join("s1-new");
    again.instance_id = Some("i1".into());
    assert_eq!(
        r.hb(3, again.clone()).error,
        ErrorCode::UnreleasedInstanceId
    );
    let mut leave = beat("s1", LEAVE_GROUP_STATIC_MEMBER_EPOCH, None);
    leave.instance_id = Some("i1".into());
    assert_eq!(r.hb(4, leave).member_epoch, LEAVE_GROUP_STATIC_MEMBER_EPOCH);
    let epoch = r.groups.groups["g"]
        .consumer
        .as_ref()
        .expect("in the test setup")
        .group_epoch;
    let back = r.hb(5, again);
    assert_eq!(back.error, ErrorCode::None);
    assert_eq!(
        back.assignment.expect("in the test setup")[&T],
        owned.iter().copied().collect()
    );
    assert_eq!(
        r.groups.groups["g"]
            .consumer
            .as_ref()
            .expect("in the test setup")
            .group_epoch,
        epoch
    );
}

#[test]
fn a_regular_expression_subscribes_to_the_topics_it_matches() {
    let mut r = Run::new(2);
    let t2 = Uuid([8; 16]);
    r.topics.insert("t2".into(), (t2, 1));
    r.topics.insert("other".into(), (Uuid([6; 16]), 1));
    r.topics
        .insert("__consumer_offsets".into(), (Uuid([5; 16]), 1));
    let mut j = join("m1");
    j.subscribed_topic_names = Some(Vec::new());
    j.subscribed_topic_regex = Some("t.*".into());
    let h = r.hb(0, j);
    let got = h.assignment.expect("assigned");
    assert_eq!(got.keys().copied().collect::<Vec<_>>(), [t2, T]);
    // A new topic that matches moves the group to a new epoch with it.
    let t3 = Uuid([4; 16]);
    r.topics.insert("t3".into(), (t3, 1));
    let h = r.hb(1, beat("m1", 1, None));
    assert_eq!(h.member_epoch, 2);
    assert!(h.assignment.expect("assigned").contains_key(&t3));
    let mut bad = join("m2");
    bad.subscribed_topic_regex = Some("(".into());
    assert_eq!(r.hb(2, bad).error, ErrorCode::InvalidRegularExpression);
}

#[test]
fn a_group_config_sets_the_groups_session_and_heartbeat_interval() {
    let mut r = Run::new(2);
    r.groups.set_group_configs(BTreeMap::from([(
        "g".to_string(),
        BTreeMap::from([
            (
                "consumer.heartbeat.interval.ms".to_string(),
                "7000".to_string(),
            ),
            (
                "consumer.session.timeout.ms".to_string(),
                "50000".to_string(),
            ),
        ]),
    )]));
    let j = r.hb(0, join("m1"));
    assert_eq!(j.heartbeat_interval_ms, 7000);
    // Alive at 49 s (the broker's 45 s has passed), gone after 50 s.
    r.tick(49_000);
    assert!(r.groups.groups["g"]
        .consumer
        .as_ref()
        .is_some_and(|cg| cg.members.contains_key("m1")));
    r.tick(50_001);
    assert!(r.groups.groups["g"]
        .consumer
        .as_ref()
        .is_some_and(|cg| cg.members.is_empty()));
}
