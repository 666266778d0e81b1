//! Incremental reconciliation (KIP-848): how one member moves from what it holds towards its
//! target assignment. A member first gives back what its target no longer holds, staying at its
//! epoch; once the client says it has let go, it moves to the target's epoch and takes the new
//! partitions nobody else still holds; partitions another member has not released yet follow
//! on a later heartbeat.

use super::assignor::Assignment;
use super::{ConsumerMember, MemberState};
use odradek_common::Uuid;

/// What the member's client says it owns (`TopicPartitions` of the heartbeat; `None` when the
/// heartbeat left it out, meaning unchanged).
pub(crate) type Owned<'a> = Option<&'a Assignment>;

/// The member's next state, given its target (at `target_epoch`), what the client owns, and
/// `held_by_other`, which says whether another member still holds a partition (assigned or
/// pending revocation). Returns the member unchanged when nothing moves.
pub(crate) fn next_state(
    member: &ConsumerMember,
    target_epoch: i32,
    target: &Assignment,
    owned: Owned<'_>,
    held_by_other: impl Fn(&Uuid, i32) -> bool,
) -> ConsumerMember {
    match member.state {
        MemberState::Stable if member.member_epoch == target_epoch => member.clone(),
        MemberState::UnrevokedPartitions if !has_released(owned, &member.pending_revocation) => {
            member.clone()
        }
        _ => compute(member, target_epoch, target, owned, held_by_other),
    }
}

/// Whether the client no longer owns any of `revoking`. Without a list of owned partitions the
/// client has not said so yet.
fn has_released(owned: Owned<'_>, revoking: &Assignment) -> bool {
    let Some(owned) = owned else {
        return false;
    };
    revoking.iter().all(|(t, ps)| {
        owned
            .get(t)
            .is_none_or(|o| ps.iter().all(|p| !o.contains(p)))
    })
}

fn compute(
    member: &ConsumerMember,
    target_epoch: i32,
    target: &Assignment,
    owned: Owned<'_>,
    held_by_other: impl Fn(&Uuid, i32) -> bool,
) -> ConsumerMember {
    let mut kept = Assignment::new();
    let mut revoking = Assignment::new();
    let mut added = Assignment::new();
    let mut unreleased = false;
    let current = &member.assigned;
    for (t, ps) in current {
        for &p in ps {
            if target.get(t).is_some_and(|s| s.contains(&p)) {
                kept.entry(*t).or_default().insert(p);
            } else {
                revoking.entry(*t).or_default().insert(p);
            }
        }
    }
    for (t, ps) in target {
        for &p in ps {
            if current.get(t).is_some_and(|s| s.contains(&p)) {
                continue;
            }
            if held_by_other(t, p) {
                unreleased = true;
            } else {
                added.entry(*t).or_default().insert(p);
            }
        }
    }
    let mut next = member.clone();
    if !revoking.is_empty() && !has_released(owned, &revoking) {
        // Revoke first, at the current epoch; nothing new until the client lets go (a client
        // that already did skips this step).
        next.state = MemberState::UnrevokedPartitions;
        next.assigned = kept;
        next.pending_revocation = revoking;
        return next;
    }
    for (t, ps) in added {
        kept.entry(t).or_default().extend(ps);
    }
    next.previous_member_epoch = member.member_epoch;
    next.member_epoch = target_epoch;
    next.state = if unreleased {
        MemberState::UnreleasedPartitions
    } else {
        MemberState::Stable
    };
    next.assigned = kept;
    next.pending_revocation = Assignment::new();
    if next.member_epoch == member.member_epoch {
        // Same epoch: the previous epoch does not move either.
        next.previous_member_epoch = member.previous_member_epoch;
    }
    next
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn t() -> Uuid {
        Uuid([7; 16])
    }

    fn a(ps: &[i32]) -> Assignment {
        Assignment::from([(t(), ps.iter().copied().collect::<BTreeSet<_>>())])
    }

    fn member(epoch: i32, assigned: &[i32]) -> ConsumerMember {
        ConsumerMember {
            member_epoch: epoch,
            previous_member_epoch: epoch - 1,
            state: MemberState::Stable,
            assigned: a(assigned),
            ..ConsumerMember::default()
        }
    }

    #[test]
    fn revokes_before_taking_and_keeps_its_epoch_meanwhile() {
        let m = member(3, &[0, 1, 2]);
        let next = next_state(&m, 4, &a(&[0, 3]), None, |_, p| p == 3);
        assert_eq!(next.state, MemberState::UnrevokedPartitions);
        assert_eq!(next.member_epoch, 3);
        assert_eq!(next.assigned, a(&[0]));
        assert_eq!(next.pending_revocation, a(&[1, 2]));
        // Still owning 1: nothing moves.
        let same = next_state(&next, 4, &a(&[0, 3]), Some(&a(&[0, 1])), |_, _| false);
        assert_eq!(same, next);
        // Let go of 1 and 2; 3 is still held by another member.
        let after = next_state(&next, 4, &a(&[0, 3]), Some(&a(&[0])), |_, p| p == 3);
        assert_eq!(after.state, MemberState::UnreleasedPartitions);
        assert_eq!((after.member_epoch, after.previous_member_epoch), (4, 3));
        assert_eq!(after.assigned, a(&[0]));
        // Released by the other: the member takes it and is stable.
        let done = next_state(&after, 4, &a(&[0, 3]), None, |_, _| false);
        assert_eq!(done.state, MemberState::Stable);
        assert_eq!(done.assigned, a(&[0, 3]));
        assert_eq!((done.member_epoch, done.previous_member_epoch), (4, 3));
    }

    #[test]
    fn a_stable_member_at_the_target_epoch_does_not_move() {
        let m = member(4, &[0]);
        assert_eq!(next_state(&m, 4, &a(&[0, 1]), None, |_, _| false), m);
    }
}
