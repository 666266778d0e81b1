//! Replica placement: rack-aware round robin over the unfenced brokers.
//!
//! Brokers are ordered so racks alternate (a1, b1, c1, a2, b2, ...); partition `p` takes
//! `rf` consecutive brokers of that list starting at `start + p`. So leaders (the first replica)
//! rotate over all brokers, no broker holds two replicas of a partition, and with several racks
//! consecutive replicas sit on different racks.

use std::collections::BTreeMap;

/// Why placement is impossible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementError {
    /// Replication factor below 1.
    InvalidReplicationFactor(i16),
    /// More replicas asked for than usable brokers.
    NotEnoughBrokers {
        /// The replication factor.
        replication_factor: i16,
        /// Usable brokers.
        brokers: usize,
    },
}

/// Orders `brokers` (id, rack) so racks alternate.
pub fn rack_alternated(brokers: &[(i32, Option<String>)]) -> Vec<i32> {
    let mut by_rack: BTreeMap<Option<&str>, Vec<i32>> = BTreeMap::new();
    for (id, rack) in brokers {
        by_rack.entry(rack.as_deref()).or_default().push(*id);
    }
    for ids in by_rack.values_mut() {
        ids.sort_unstable();
    }
    let mut out = Vec::with_capacity(brokers.len());
    let mut i = 0;
    while out.len() < brokers.len() {
        for ids in by_rack.values() {
            if let Some(id) = ids.get(i) {
                out.push(*id);
            }
        }
        i += 1;
    }
    out
}

/// Replica lists for `partitions` new partitions.
pub fn place(
    brokers: &[(i32, Option<String>)],
    partitions: i32,
    replication_factor: i16,
    start: usize,
) -> Result<Vec<Vec<i32>>, PlacementError> {
    if replication_factor < 1 {
        return Err(PlacementError::InvalidReplicationFactor(replication_factor));
    }
    if replication_factor as usize > brokers.len() {
        return Err(PlacementError::NotEnoughBrokers {
            replication_factor,
            brokers: brokers.len(),
        });
    }
    let order = rack_alternated(brokers);
    let n = order.len();
    Ok((0..partitions.max(0) as usize)
        .map(|p| {
            (0..replication_factor as usize)
                .map(|j| order[(start + p + j) % n])
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn brokers(n: i32, racks: usize) -> Vec<(i32, Option<String>)> {
        (0..n)
            .map(|i| (i, (racks > 0).then(|| format!("r{}", i as usize % racks))))
            .collect()
    }

    #[test]
    fn refuses_more_replicas_than_brokers() {
        assert_eq!(
            place(&brokers(2, 0), 3, 3, 0),
            Err(PlacementError::NotEnoughBrokers {
                replication_factor: 3,
                brokers: 2
            })
        );
        assert_eq!(
            place(&brokers(2, 0), 3, 0, 0),
            Err(PlacementError::InvalidReplicationFactor(0))
        );
    }

    #[test]
    fn replicas_alternate_racks() {
        let placed = place(&brokers(4, 2), 8, 2, 0).expect("placement");
        for replicas in placed {
            assert_ne!(replicas[0] % 2, replicas[1] % 2, "{replicas:?} on one rack");
        }
    }

    proptest! {
        #[test]
        fn placement_invariants(n in 1i32..8, racks in 0usize..4, partitions in 1i32..50, rf in 1i16..4, start in 0usize..20) {
            prop_assume!(rf as i32 <= n);
            let placed = place(&brokers(n, racks), partitions, rf, start).expect("placement");
            prop_assert_eq!(placed.len(), partitions as usize);
            let mut leaders = vec![0usize; n as usize];
            for replicas in &placed {
                prop_assert_eq!(replicas.len(), rf as usize);
                let mut sorted = replicas.clone();
                sorted.sort_unstable();
                sorted.dedup();
                prop_assert_eq!(sorted.len(), replicas.len(), "two replicas on one broker: {:?}", replicas);
                leaders[replicas[0] as usize] += 1;
            }
            // Leaders are spread: no broker leads more than one partition above another.
            let (min, max) = (leaders.iter().min().copied().unwrap_or(0), leaders.iter().max().copied().unwrap_or(0));
            prop_assert!(max - min <= 1, "leaders {:?}", leaders);
        }
    }
}
