//! Share group membership driven through `Groups`.

use std::collections::{BTreeMap, BTreeSet};

use odradek_common::{ErrorCode, Uuid};

use super::*;
use crate::groups::{GroupConfig, Groups};

const T: Uuid = Uuid([9; 16]);

fn topics(partitions: i32) -> BTreeMap<String, (Uuid, i32)> {
    BTreeMap::from([("t".to_string(), (T, partitions))])
}

fn join(id: &str) -> ShareHeartbeat {
    ShareHeartbeat {
        group_id: "s".into(),
        member_id: id.into(),
        member_epoch: 0,
        subscribed_topic_names: Some(vec!["t".into()]),
        client_id: "c".into(),
        ..ShareHeartbeat::default()
    }
}

fn beat(id: &str, epoch: i32) -> ShareHeartbeat {
    ShareHeartbeat {
        member_epoch: epoch,
        subscribed_topic_names: None,
        ..join(id)
    }
}

fn count(a: &Option<Assignment>) -> usize {
    a.as_ref()
        .map_or(0, |a| a.values().map(BTreeSet::len).sum())
}

#[test]
fn members_share_partitions_without_revoking() {
    let mut g = Groups::new(GroupConfig::default(), "seed");
    let t = topics(2);
    let (a, _) = g.share_heartbeat(0, join("a"), &t);
    assert_eq!(
        (a.error, a.member_epoch, count(&a.assignment)),
        (ErrorCode::None, 1, 2)
    );
    // b joins: the two members split the two partitions; a learns on its next heartbeat,
    // straight at the new epoch (no revocation step).
    let (b, _) = g.share_heartbeat(1, join("b"), &t);
    assert_eq!((b.member_epoch, count(&b.assignment)), (2, 1));
    let (a, _) = g.share_heartbeat(2, beat("a", 1), &t);
    assert_eq!((a.member_epoch, count(&a.assignment)), (2, 1));
    // c joins with more members than partitions: it shares one.
    let (c, _) = g.share_heartbeat(3, join("c"), &t);
    assert_eq!((c.member_epoch, count(&c.assignment)), (3, 1));
    assert_eq!(g.list()[0].group_type, "share");
    assert_eq!(g.list()[0].state, "Stable");
    // Epochs are checked; a leave moves the group on.
    assert_eq!(
        g.share_heartbeat(4, beat("a", 9), &t).0.error,
        ErrorCode::FencedMemberEpoch
    );
    assert_eq!(
        g.share_heartbeat(4, beat("zz", 1), &t).0.error,
        ErrorCode::UnknownMemberId
    );
    let (l, _) = g.share_heartbeat(5, beat("c", -1), &t);
    assert_eq!((l.error, l.member_epoch), (ErrorCode::None, -1));
    // A silent member goes at the end of its session.
    g.tick(60_000);
    assert_eq!(
        g.describe_share("s").expect("a share group").members.len(),
        0
    );
}

#[test]
fn bad_heartbeats_and_other_kinds_of_group_are_refused() {
    let mut g = Groups::new(GroupConfig::default(), "seed");
    let t = topics(1);
    assert_eq!(
        g.share_heartbeat(0, join(""), &t).0.error,
        ErrorCode::InvalidRequest
    );
    let mut empty = join("a");
    empty.subscribed_topic_names = Some(vec![]);
    assert_eq!(
        g.share_heartbeat(0, empty, &t).0.error,
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        g.share_heartbeat(0, beat("a", 1), &t).0.error,
        ErrorCode::GroupIdNotFound
    );
    // A consumer group's id is not a share group's.
    let cg = crate::ConsumerHeartbeat {
        group_id: "s".into(),
        member_id: "m".into(),
        rebalance_timeout_ms: 1000,
        subscribed_topic_names: Some(vec!["t".into()]),
        owned: Some(Default::default()),
        api_version: 1,
        ..Default::default()
    };
    assert_eq!(g.consumer_heartbeat(0, cg, &t).0.error, ErrorCode::None);
    assert_eq!(
        g.share_heartbeat(0, join("a"), &t).0.error,
        ErrorCode::GroupIdNotFound
    );
}

#[test]
fn the_log_rebuilds_a_share_group() {
    let mut g = Groups::new(GroupConfig::default(), "seed");
    let t = topics(3);
    let mut log = Vec::new();
    for (now, req) in [
        (0, join("a")),
        (1, join("b")),
        (2, beat("a", 1)),
        (3, join("c")),
        (4, beat("c", -1)),
    ] {
        let (_, out) = g.share_heartbeat(now, req, &t);
        log.extend(out.records);
    }
    let mut loaded = Groups::new(GroupConfig::default(), "other");
    for (k, v) in log {
        loaded.replay(10, k, v);
    }
    let (before, after) = (
        g.describe_share("s").expect("share"),
        loaded.describe_share("s").expect("share"),
    );
    assert_eq!(
        (after.group_epoch, after.assignment_epoch),
        (before.group_epoch, before.assignment_epoch)
    );
    assert_eq!(after.target, before.target);
    assert_eq!(after.members.len(), 2);
    for (id, m) in &before.members {
        let l = &after.members[id];
        assert_eq!(
            (l.member_epoch, &l.assigned, &l.metadata),
            (m.member_epoch, &m.assigned, &m.metadata)
        );
    }
}
