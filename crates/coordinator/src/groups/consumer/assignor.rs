//! The broker-side assignors of KIP-848 (`group.consumer.assignors`): `uniform` (the default)
//! and `range`. Each turns the members' subscriptions and the subscribed topics' partition
//! counts into a target assignment; the coordinator then reconciles members towards it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use odradek_common::Uuid;

/// Partitions by topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// A member as an assignor sees it.
#[derive(Debug, Clone)]
pub struct AssignorMember<'a> {
    /// Member id.
    pub id: &'a str,
    /// The topics it subscribes to that exist.
    pub topics: BTreeSet<Uuid>,
    /// Its current target assignment, kept where balance allows (stickiness).
    pub current: &'a Assignment,
}

/// A broker-side assignor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerAssignor {
    /// Balanced and sticky: every member gets as many partitions as the others, give or take
    /// one, among the topics it subscribes to, and keeps what it had where that allows.
    Uniform,
    /// Per topic, contiguous ranges of partitions over the topic's subscribers in member-id
    /// order (the first `partitions % members` get one more), as the classic range assignor.
    Range,
}

impl ServerAssignor {
    /// Its name in `group.consumer.assignors` and in ConsumerGroupHeartbeat's `ServerAssignor`.
    pub fn name(self) -> &'static str {
        match self {
            ServerAssignor::Uniform => "uniform",
            ServerAssignor::Range => "range",
        }
    }

    /// The assignor named `name` (Kafka also accepts the class names of its two assignors).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "uniform" | "org.apache.kafka.coordinator.group.assignor.UniformAssignor" => {
                Some(ServerAssignor::Uniform)
            }
            "range" | "org.apache.kafka.coordinator.group.assignor.RangeAssignor" => {
                Some(ServerAssignor::Range)
            }
            _ => None,
        }
    }

    /// The target assignment of every member (members with nothing get an empty one).
    /// `partitions` gives each existing topic's partition count.
    pub fn assign(
        self,
        members: &[AssignorMember<'_>],
        partitions: &BTreeMap<Uuid, i32>,
    ) -> BTreeMap<String, Assignment> {
        let owned = match self {
            ServerAssignor::Uniform => uniform(members, partitions),
            ServerAssignor::Range => range(members, partitions),
        };
        let mut out: BTreeMap<String, Assignment> = members
            .iter()
            .map(|m| (m.id.to_string(), Assignment::new()))
            .collect();
        for ((topic, p), member) in owned {
            if let Some(a) = out.get_mut(members[member].id) {
                a.entry(topic).or_default().insert(p);
            }
        }
        out
    }
}

/// Partition -> index of its member in `members`.
type Owners = BTreeMap<(Uuid, i32), usize>;

fn range(members: &[AssignorMember<'_>], partitions: &BTreeMap<Uuid, i32>) -> Owners {
    let mut owners = Owners::new();
    for (&topic, &count) in partitions {
        let mut subscribers: Vec<usize> = (0..members.len())
            .filter(|&i| members[i].topics.contains(&topic))
            .collect();
        subscribers.sort_by_key(|&i| members[i].id);
        if subscribers.is_empty() || count <= 0 {
            continue;
        }
        let n = subscribers.len() as i32;
        let (base, extra) = (count / n, count % n);
        let mut next = 0;
        for (k, &m) in subscribers.iter().enumerate() {
            let len = base + i32::from((k as i32) < extra);
            for p in next..next + len {
                owners.insert((topic, p), m);
            }
            next += len;
        }
    }
    owners
}

fn uniform(members: &[AssignorMember<'_>], partitions: &BTreeMap<Uuid, i32>) -> Owners {
    let exists = |t: &Uuid, p: i32| partitions.get(t).is_some_and(|&n| (0..n).contains(&p));
    let mut owners = Owners::new();
    let mut owned: Vec<Vec<(Uuid, i32)>> = vec![Vec::new(); members.len()];
    // Members in id order, so the outcome does not depend on the order they are given in.
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by_key(|&i| members[i].id);
    // 1. Everyone keeps what it had that still exists and that it still subscribes to.
    for &m in &order {
        for (t, ps) in members[m].current {
            if !members[m].topics.contains(t) {
                continue;
            }
            for &p in ps {
                if exists(t, p) && !owners.contains_key(&(*t, p)) {
                    owners.insert((*t, p), m);
                    owned[m].push((*t, p));
                }
            }
        }
    }
    // Subscribers per topic, in id order.
    let subscribers: HashMap<Uuid, Vec<usize>> = partitions
        .keys()
        .map(|t| {
            let s = order
                .iter()
                .copied()
                .filter(|&i| members[i].topics.contains(t))
                .collect();
            (*t, s)
        })
        .collect();
    let least_loaded = |owned: &[Vec<(Uuid, i32)>], t: &Uuid| -> Option<usize> {
        subscribers
            .get(t)?
            .iter()
            .copied()
            .min_by_key(|&i| owned[i].len())
    };
    // 2. Each partition nobody has goes to its least loaded subscriber.
    for (&t, &n) in partitions {
        for p in 0..n {
            if owners.contains_key(&(t, p)) {
                continue;
            }
            if let Some(m) = least_loaded(&owned, &t) {
                owners.insert((t, p), m);
                owned[m].push((t, p));
            }
        }
    }
    // 3. Balance: move a partition from the most loaded member to a subscriber holding at
    // least two fewer, newest first, until no such move is left. Each move lowers the sum of
    // squared loads, so this ends, after at most as many moves as there are partitions.
    let mut stuck = vec![false; members.len()];
    while let Some(a) = order
        .iter()
        .copied()
        .filter(|&i| !stuck[i])
        .max_by_key(|&i| (owned[i].len(), std::cmp::Reverse(i)))
    {
        // No move helps once the most loaded holds at most one more than the least loaded
        // (the common case, ended here without trying every member).
        let fewest = order.iter().map(|&i| owned[i].len()).min().unwrap_or(0);
        if owned[a].len() <= fewest + 1 {
            break;
        }
        let moved = (0..owned[a].len()).rev().find_map(|k| {
            let (t, _) = owned[a][k];
            let b = least_loaded(&owned, &t)?;
            (owned[b].len() + 1 < owned[a].len()).then_some((k, b))
        });
        match moved {
            Some((k, b)) => {
                let tp = owned[a].remove(k);
                owners.insert(tp, b);
                owned[b].push(tp);
                stuck.iter_mut().for_each(|s| *s = false);
            }
            None => stuck[a] = true,
        }
    }
    owners
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u8) -> Uuid {
        Uuid([n; 16])
    }

    fn count(a: &Assignment) -> usize {
        a.values().map(BTreeSet::len).sum()
    }

    fn run(
        assignor: ServerAssignor,
        subs: &[(&str, Vec<u8>)],
        current: &BTreeMap<String, Assignment>,
        topics: &[(u8, i32)],
    ) -> BTreeMap<String, Assignment> {
        let empty = Assignment::new();
        let members: Vec<AssignorMember<'_>> = subs
            .iter()
            .map(|(m, ts)| AssignorMember {
                id: m,
                topics: ts.iter().map(|&t| id(t)).collect(),
                current: current.get(*m).unwrap_or(&empty),
            })
            .collect();
        let partitions = topics.iter().map(|&(t, n)| (id(t), n)).collect();
        assignor.assign(&members, &partitions)
    }

    #[test]
    fn range_gives_contiguous_ranges_per_topic() {
        let out = run(
            ServerAssignor::Range,
            &[("b", vec![1]), ("a", vec![1])],
            &BTreeMap::new(),
            &[(1, 5)],
        );
        assert_eq!(out["a"][&id(1)], BTreeSet::from([0, 1, 2]));
        assert_eq!(out["b"][&id(1)], BTreeSet::from([3, 4]));
    }

    #[test]
    fn uniform_keeps_what_it_can_when_a_member_joins() {
        let first = run(
            ServerAssignor::Uniform,
            &[("a", vec![1])],
            &BTreeMap::new(),
            &[(1, 6)],
        );
        assert_eq!(count(&first["a"]), 6);
        let second = run(
            ServerAssignor::Uniform,
            &[("a", vec![1]), ("b", vec![1])],
            &first,
            &[(1, 6)],
        );
        assert_eq!((count(&second["a"]), count(&second["b"])), (3, 3));
        // a only gave up partitions; it kept three of its own.
        assert!(second["a"][&id(1)].is_subset(&first["a"][&id(1)]));
    }

    proptest! {
        /// Every partition of a subscribed topic goes to exactly one of its subscribers; with
        /// one subscription for all, loads differ by at most one; a second run on its own
        /// output changes nothing (stable).
        #[test]
        fn uniform_is_complete_exclusive_balanced_and_stable(
            members in 1usize..8,
            topics in proptest::collection::vec(0i32..9, 1..5),
            subs in proptest::collection::vec(proptest::collection::vec(0u8..4, 0..4), 8),
            homogeneous in any::<bool>(),
        ) {
            let names: Vec<String> = (0..members).map(|i| format!("m{i}")).collect();
            let all: Vec<u8> = (0..topics.len() as u8).collect();
            let subs: Vec<(&str, Vec<u8>)> = names.iter().enumerate().map(|(i, n)| {
                let s = if homogeneous { all.clone() } else {
                    subs[i].iter().copied().filter(|t| (*t as usize) < topics.len()).collect()
                };
                (n.as_str(), s)
            }).collect();
            let topics: Vec<(u8, i32)> =
                topics.iter().enumerate().map(|(i, n)| (i as u8, *n)).collect();
            let out = run(ServerAssignor::Uniform, &subs, &BTreeMap::new(), &topics);
            for &(t, n) in &topics {
                for p in 0..n {
                    let holders: Vec<&str> = subs.iter()
                        .filter(|(m, _)| out[*m].get(&id(t)).is_some_and(|s| s.contains(&p)))
                        .map(|(m, _)| *m).collect();
                    let subscribed = subs.iter().any(|(_, s)| s.contains(&t));
                    prop_assert_eq!(holders.len(), usize::from(subscribed));
                    for h in holders {
                        let s = &subs.iter().find(|(m, _)| *m == h).expect("a member").1;
                        prop_assert!(s.contains(&t));
                    }
                }
            }
            if homogeneous {
                let loads: Vec<usize> = out.values().map(count).collect();
                let (lo, hi) = (loads.iter().min().expect("members"), loads.iter().max().expect("members"));
                prop_assert!(hi - lo <= 1, "loads {loads:?}");
            }
            let again = run(ServerAssignor::Uniform, &subs, &out, &topics);
            prop_assert_eq!(again, out);
        }
    }
}
