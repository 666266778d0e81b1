//! The `simple` share group assignor (KIP-932): balance first, stickiness second. Every
//! subscribed partition goes to at least one of its subscribers, balanced as the `uniform`
//! assignor balances a consumer group (and as sticky); a member left with nothing, because
//! there are more members than partitions, then shares the partition with the fewest members
//! among those it subscribes to.

use std::collections::{BTreeMap, BTreeSet};

use odradek_common::Uuid;

use crate::groups::consumer::{Assignment, AssignorMember, ServerAssignor};

/// Targets for `members` (id, subscribed topic ids), keeping `previous` where balance allows.
pub(super) fn simple(
    members: &[(String, Vec<Uuid>)],
    partitions: &BTreeMap<Uuid, i32>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let empty = Assignment::new();
    let view: Vec<AssignorMember<'_>> = members
        .iter()
        .map(|(id, topics)| AssignorMember {
            id,
            topics: topics.iter().copied().collect(),
            current: previous.get(id).unwrap_or(&empty),
        })
        .collect();
    let mut out = ServerAssignor::Uniform.assign(&view, partitions);
    // How many members hold each partition.
    let mut holders: BTreeMap<(Uuid, i32), usize> = BTreeMap::new();
    for a in out.values() {
        for (t, ps) in a {
            for p in ps {
                *holders.entry((*t, *p)).or_default() += 1;
            }
        }
    }
    for (id, topics) in members {
        if out.get(id).is_some_and(|a| !a.is_empty()) {
            continue;
        }
        let subscribed: BTreeSet<Uuid> = topics.iter().copied().collect();
        let best = holders
            .iter()
            .filter(|((t, _), _)| subscribed.contains(t))
            .min_by_key(|(tp, n)| (**n, **tp))
            .map(|(tp, _)| *tp);
        if let Some((t, p)) = best {
            *holders.entry((t, p)).or_default() += 1;
            out.entry(id.clone())
                .or_default()
                .entry(t)
                .or_default()
                .insert(p);
        }
    }
    out
}
