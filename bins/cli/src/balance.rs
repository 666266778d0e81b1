//! `odradek reassign balance`'s plan: replicas leave brokers outside the list, replica counts
//! per broker even out (each move taking the partition that best evens out bytes between the
//! two brokers), then each partition's preferred leader is the replica with the fewest
//! preferred leaderships so far. Pure: current assignment and sizes in, proposal out.

use std::collections::BTreeMap;

type Assignment = BTreeMap<(String, i32), Vec<i32>>;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Load {
    replicas: usize,
    leaders: usize,
    bytes: i64,
}

fn loads(
    a: &Assignment,
    sizes: &BTreeMap<(String, i32), i64>,
    brokers: &[i32],
) -> BTreeMap<i32, Load> {
    let mut out: BTreeMap<i32, Load> = brokers.iter().map(|b| (*b, Load::default())).collect();
    for (k, replicas) in a {
        let size = sizes.get(k).copied().unwrap_or(0);
        for (i, b) in replicas.iter().enumerate() {
            let l = out.entry(*b).or_default();
            l.replicas += 1;
            l.bytes += size;
            if i == 0 {
                l.leaders += 1;
            }
        }
    }
    out
}

/// The proposed assignment over `brokers`.
pub fn propose(
    now: &Assignment,
    sizes: &BTreeMap<(String, i32), i64>,
    brokers: &[i32],
) -> Assignment {
    let mut plan = now.clone();
    if brokers.is_empty() {
        return plan;
    }
    let size = |k: &(String, i32)| sizes.get(k).copied().unwrap_or(0);
    // 1. Drain brokers outside the list, largest partitions first.
    let mut keys: Vec<(String, i32)> = plan.keys().cloned().collect();
    keys.sort_by_key(|k| std::cmp::Reverse(size(k)));
    for k in &keys {
        let mut replicas = plan[k].clone();
        for i in 0..replicas.len() {
            if brokers.contains(&replicas[i]) {
                continue;
            }
            let l = loads(&plan, sizes, brokers);
            if let Some(to) = brokers
                .iter()
                .filter(|b| !replicas.contains(b))
                .min_by_key(|b| (l[b].replicas, l[b].bytes, **b))
            {
                replicas[i] = *to;
                plan.insert(k.clone(), replicas.clone());
            }
        }
    }
    // 2. Even out replica counts; bounded by the number of replicas.
    let total: usize = plan.values().map(Vec::len).sum();
    for _ in 0..total {
        let l = loads(&plan, sizes, brokers);
        let Some((&from, from_load)) = l
            .iter()
            .filter(|(b, _)| brokers.contains(b))
            .max_by_key(|(b, l)| (l.replicas, l.bytes, -**b))
        else {
            break;
        };
        let Some((&to, to_load)) = l
            .iter()
            .filter(|(b, _)| brokers.contains(b))
            .min_by_key(|(b, l)| (l.replicas, l.bytes, **b))
        else {
            break;
        };
        if from_load.replicas <= to_load.replicas + 1 {
            break;
        }
        let half_gap = (from_load.bytes - to_load.bytes) / 2;
        let candidate = plan
            .iter()
            .filter(|(_, r)| r.contains(&from) && !r.contains(&to))
            .min_by_key(|(k, _)| ((size(k) - half_gap).abs(), (*k).clone()))
            .map(|(k, _)| k.clone());
        let Some(k) = candidate else { break };
        let replicas: Vec<i32> = plan[&k]
            .iter()
            .map(|b| if *b == from { to } else { *b })
            .collect();
        plan.insert(k, replicas);
    }
    // 3. Preferred leaders: the replica with the fewest preferred leaderships so far, keeping
    // the current first replica on a tie.
    let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
    for replicas in plan.values_mut() {
        let Some(best) = replicas
            .iter()
            .enumerate()
            .min_by_key(|(i, b)| (leaders.get(b).copied().unwrap_or(0), *i))
            .map(|(i, _)| i)
        else {
            continue;
        };
        let leader = replicas.remove(best);
        replicas.insert(0, leader);
        *leaders.entry(leader).or_default() += 1;
    }
    plan
}

/// Per broker: replicas, preferred leaderships and bytes, now and after the plan.
pub fn print_summary(
    now: &Assignment,
    plan: &Assignment,
    sizes: &BTreeMap<(String, i32), i64>,
    brokers: &[i32],
) {
    let before = loads(now, sizes, brokers);
    let after = loads(plan, sizes, brokers);
    println!("Broker\tReplicas\tLeaders\tBytes");
    for (b, a) in &after {
        let n = before.get(b).copied().unwrap_or_default();
        println!(
            "{b}\t{} -> {}\t{} -> {}\t{} -> {}",
            n.replicas, a.replicas, n.leaders, a.leaders, n.bytes, a.bytes
        );
    }
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(parts: &[&[i32]]) -> Assignment {
        parts
            .iter()
            .enumerate()
            .map(|(i, r)| (("t".to_string(), i as i32), r.to_vec()))
            .collect()
    }

    #[test]
    fn a_new_broker_gets_its_share_and_a_drained_one_none() {
        // Six partitions of RF 3 on {1,2,3}; broker 4 is new and 1 is to be drained.
        let now = assignment(&[
            &[1, 2, 3],
            &[2, 3, 1],
            &[3, 1, 2],
            &[1, 2, 3],
            &[2, 3, 1],
            &[3, 1, 2],
        ]);
        let sizes = now.keys().map(|k| (k.clone(), 100)).collect();
        let plan = propose(&now, &sizes, &[2, 3, 4]);
        let l = loads(&plan, &sizes, &[2, 3, 4]);
        assert!(!l.contains_key(&1), "broker 1 keeps nothing: {plan:?}");
        assert_eq!(
            l.values().map(|l| l.replicas).collect::<Vec<_>>(),
            vec![6, 6, 6]
        );
        assert_eq!(
            l.values().map(|l| l.leaders).collect::<Vec<_>>(),
            vec![2, 2, 2]
        );
        for r in plan.values() {
            let mut s = r.clone();
            s.sort_unstable();
            s.dedup();
            assert_eq!(s.len(), 3, "no broker twice in {r:?}");
        }
        let plan = propose(&now, &sizes, &[1, 2, 3, 4]);
        let l = loads(&plan, &sizes, &[1, 2, 3, 4]);
        let counts: Vec<usize> = l.values().map(|l| l.replicas).collect();
        let (max, min) = (counts.iter().max(), counts.iter().min());
        assert!(
            max.zip(min).is_some_and(|(max, min)| max - min <= 1),
            "{counts:?}"
        );
    }

    #[test]
    fn a_balanced_cluster_stays_as_it_is() {
        let now = assignment(&[&[1, 2], &[2, 1]]);
        let sizes = BTreeMap::new();
        assert_eq!(propose(&now, &sizes, &[1, 2]), now);
    }
}
