//! The one place a partition's registration changes: a target ISR, replica set and
//! reassignment state go in, a leader is elected when the current one no longer qualifies, a
//! reassignment completes once its ISR allows, and out comes the `PartitionChangeRecord` (or
//! nothing, when nothing changes). Kafka's `PartitionChangeBuilder`, without eligible leader
//! replicas (KIP-966) and directory assignment.

use odradek_common::Uuid;
use odradek_metadata::proto::{self, metadata_record::Record, MetadataRecord};
use odradek_metadata::{PartitionRegistration, NO_LEADER};

use super::rec;

/// How a leader may be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Election {
    /// Keep the partition online from the ISR; move leadership only when the leader no longer
    /// qualifies.
    Online,
    /// Like `Online`, but the first replica leads when it qualifies.
    Preferred,
    /// Like `Online`, then any live replica outside the ISR, which becomes the only ISR member
    /// (data the ISR had may be lost).
    Unclean,
}

/// A change being built for one partition.
pub struct PartitionChange<'a> {
    partition: &'a PartitionRegistration,
    topic_id: Uuid,
    partition_id: i32,
    /// Whether a broker may lead (registered, unfenced, not shutting down).
    acceptable: &'a dyn Fn(i32) -> bool,
    election: Election,
    isr: Vec<i32>,
    replicas: Vec<i32>,
    removing: Vec<i32>,
    adding: Vec<i32>,
}

impl std::fmt::Debug for PartitionChange<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionChange")
            .field("topic_id", &self.topic_id)
            .field("partition_id", &self.partition_id)
            .field("election", &self.election)
            .field("isr", &self.isr)
            .field("replicas", &self.replicas)
            .field("removing", &self.removing)
            .field("adding", &self.adding)
            .finish_non_exhaustive()
    }
}

/// What [`PartitionChange::build`] decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// The record, `None` when nothing changes.
    pub record: Option<MetadataRecord>,
    /// The leader after the change.
    pub leader: i32,
    /// The ISR after the change.
    pub isr: Vec<i32>,
    /// A replica outside the ISR was made leader.
    pub unclean: bool,
}

impl<'a> PartitionChange<'a> {
    /// A change starting from the partition as it is.
    pub fn new(
        partition: &'a PartitionRegistration,
        topic_id: Uuid,
        partition_id: i32,
        acceptable: &'a dyn Fn(i32) -> bool,
    ) -> Self {
        Self {
            partition,
            topic_id,
            partition_id,
            acceptable,
            election: Election::Online,
            isr: partition.isr.clone(),
            replicas: partition.replicas.clone(),
            removing: partition.removing_replicas.clone(),
            adding: partition.adding_replicas.clone(),
        }
    }

    /// How the leader is chosen (default [`Election::Online`]).
    pub fn election(mut self, election: Election) -> Self {
        self.election = election;
        self
    }

    /// The ISR wanted. An empty ISR is never written: the last member stays, leaderless, so it
    /// can lead again when it returns (Kafka without eligible leader replicas).
    pub fn isr(mut self, isr: Vec<i32>) -> Self {
        self.isr = isr;
        self
    }

    /// The replica set wanted.
    pub fn replicas(mut self, replicas: Vec<i32>) -> Self {
        self.replicas = replicas;
        self
    }

    /// The replicas a reassignment removes.
    pub fn removing(mut self, removing: Vec<i32>) -> Self {
        self.removing = removing;
        self
    }

    /// The replicas a reassignment adds.
    pub fn adding(mut self, adding: Vec<i32>) -> Self {
        self.adding = adding;
        self
    }

    /// A reassignment completes when the ISR, without the replicas being removed, holds every
    /// remaining replica: the removed ones leave the replica set and the ISR.
    fn complete_reassignment_if_ready(&mut self) {
        if self.removing.is_empty() && self.adding.is_empty() {
            return;
        }
        let isr: Vec<i32> = self
            .isr
            .iter()
            .copied()
            .filter(|r| !self.removing.contains(r))
            .collect();
        let replicas: Vec<i32> = self
            .replicas
            .iter()
            .copied()
            .filter(|r| !self.removing.contains(r))
            .collect();
        if isr.is_empty() || replicas.is_empty() || !replicas.iter().all(|r| isr.contains(r)) {
            return;
        }
        self.isr = isr;
        self.replicas = replicas;
        self.removing.clear();
        self.adding.clear();
    }

    fn valid_leader(&self, r: i32) -> bool {
        self.isr.contains(&r) && (self.acceptable)(r)
    }

    /// (leader, unclean).
    fn elect(&self) -> (i32, bool) {
        if self.election == Election::Preferred {
            if let Some(&first) = self.replicas.first() {
                if self.valid_leader(first) {
                    return (first, false);
                }
            }
        }
        if self.partition.leader != NO_LEADER && self.valid_leader(self.partition.leader) {
            return (self.partition.leader, false);
        }
        if let Some(&r) = self.replicas.iter().find(|r| self.valid_leader(**r)) {
            return (r, false);
        }
        if self.election == Election::Unclean {
            if let Some(&r) = self.replicas.iter().find(|r| (self.acceptable)(**r)) {
                return (r, true);
            }
        }
        (NO_LEADER, false)
    }

    /// The record (if anything changes) and the outcome.
    pub fn build(mut self) -> Built {
        let _span = tracing::debug_span!("election", topic_id = %self.topic_id, partition = self.partition_id, election = ?self.election).entered();
        self.complete_reassignment_if_ready();
        let (leader, unclean) = self.elect();
        let p = self.partition;
        if leader != p.leader && p.leader != NO_LEADER {
            tracing::info!(topic_id = %self.topic_id, partition = self.partition_id, old_leader = p.leader, new_leader = leader, leader_epoch = p.leader_epoch + 1, "partition leader changes");
        }
        if unclean {
            tracing::warn!(topic_id = %self.topic_id, partition = self.partition_id, new_leader = leader,
                "unclean leader election: a replica outside the ISR leads; records it lacks are lost");
            self.isr = vec![leader];
        }
        // A changed ISR is written in replica order.
        let isr: Vec<i32> = if self.isr.is_empty() {
            p.isr.clone()
        } else {
            let mut ordered: Vec<i32> = self
                .replicas
                .iter()
                .copied()
                .filter(|r| self.isr.contains(r))
                .collect();
            ordered.extend(
                self.isr
                    .iter()
                    .copied()
                    .filter(|r| !self.replicas.contains(r)),
            );
            let (mut a, mut b) = (ordered.clone(), p.isr.clone());
            a.sort_unstable();
            b.sort_unstable();
            // The same members in another order are no change.
            if a == b {
                p.isr.clone()
            } else {
                ordered
            }
        };
        let change = proto::PartitionChangeRecord {
            partition_id: self.partition_id,
            topic_id: self.topic_id.as_bytes().to_vec(),
            isr: (isr != p.isr).then(|| proto::BrokerIds { ids: isr.clone() }),
            leader: (leader != p.leader).then_some(leader),
            replicas: (!self.replicas.is_empty() && self.replicas != p.replicas).then(|| {
                proto::BrokerIds {
                    ids: self.replicas.clone(),
                }
            }),
            removing_replicas: (self.removing != p.removing_replicas).then(|| proto::BrokerIds {
                ids: self.removing.clone(),
            }),
            adding_replicas: (self.adding != p.adding_replicas).then(|| proto::BrokerIds {
                ids: self.adding.clone(),
            }),
        };
        let no_op = change.isr.is_none()
            && change.leader.is_none()
            && change.replicas.is_none()
            && change.removing_replicas.is_none()
            && change.adding_replicas.is_none();
        Built {
            record: (!no_op).then(|| rec(Record::PartitionChange(change))),
            leader,
            isr,
            unclean,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionRegistration {
        PartitionRegistration {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            removing_replicas: vec![],
            adding_replicas: vec![],
            leader,
            leader_epoch: 3,
            partition_epoch: 7,
        }
    }

    fn change_of(b: &Built) -> proto::PartitionChangeRecord {
        match b.record.as_ref().and_then(|r| r.record.clone()) {
            Some(Record::PartitionChange(c)) => c,
            other => panic!("expected a partition change, got {other:?}"),
        }
    }

    const ALL: &dyn Fn(i32) -> bool = &|_| true;

    fn ids(set: &Option<proto::BrokerIds>) -> Vec<i32> {
        set.as_ref()
            .map(|s| s.ids.clone())
            .expect("the set changes")
    }

    #[test]
    fn nothing_changes_without_targets() {
        let p = part(&[1, 2, 3], &[1, 2, 3], 1);
        let b = PartitionChange::new(&p, Uuid::ZERO, 0, ALL).build();
        assert_eq!(b.record, None);
        assert_eq!(b.leader, 1);
    }

    #[test]
    fn leader_out_of_the_isr_is_replaced_in_replica_order() {
        let p = part(&[1, 2, 3], &[1, 2, 3], 1);
        let b = PartitionChange::new(&p, Uuid::ZERO, 0, ALL)
            .isr(vec![3, 2])
            .build();
        let c = change_of(&b);
        assert_eq!(c.leader, Some(2));
        assert_eq!(ids(&c.isr), vec![2, 3]);
    }

    #[test]
    fn isr_is_never_emptied() {
        let p = part(&[1, 2], &[1], 1);
        let fenced = |b: i32| b != 1;
        let b = PartitionChange::new(&p, Uuid::ZERO, 0, &fenced)
            .isr(vec![])
            .build();
        let c = change_of(&b);
        assert_eq!(c.leader, Some(NO_LEADER));
        assert_eq!(c.isr, None, "the last ISR member stays");
    }

    #[test]
    fn preferred_election_moves_to_the_first_replica_only_when_in_the_isr() {
        let p = part(&[1, 2, 3], &[1, 2, 3], 2);
        let b = PartitionChange::new(&p, Uuid::ZERO, 0, ALL)
            .election(Election::Preferred)
            .build();
        assert_eq!(change_of(&b).leader, Some(1));
        let p = part(&[1, 2, 3], &[2, 3], 2);
        let b = PartitionChange::new(&p, Uuid::ZERO, 0, ALL)
            .election(Election::Preferred)
            .build();
        assert_eq!(b.record, None);
    }

    #[test]
    fn unclean_election_takes_a_live_replica_outside_the_isr() {
        let p = part(&[1, 2, 3], &[1], NO_LEADER);
        let live = |b: i32| b == 3;
        let online = PartitionChange::new(&p, Uuid::ZERO, 0, &live).build();
        assert_eq!(online.record, None, "no clean leader, nothing changes");
        let b = PartitionChange::new(&p, Uuid::ZERO, 0, &live)
            .election(Election::Unclean)
            .build();
        assert!(b.unclean);
        let c = change_of(&b);
        assert_eq!(c.leader, Some(3));
        assert_eq!(ids(&c.isr), vec![3]);
    }

    #[test]
    fn reassignment_completes_once_the_isr_holds_every_target_replica() {
        // Moving {1,2,3} to {2,3,4}: replicas [2,3,4,1], adding [4], removing [1].
        let mut p = part(&[2, 3, 4, 1], &[1, 2, 3], 1);
        p.adding_replicas = vec![4];
        p.removing_replicas = vec![1];
        let waiting = PartitionChange::new(&p, Uuid::ZERO, 0, ALL)
            .isr(vec![1, 2, 3])
            .build();
        assert_eq!(waiting.record, None);
        let done = PartitionChange::new(&p, Uuid::ZERO, 0, ALL)
            .isr(vec![1, 2, 3, 4])
            .build();
        let c = change_of(&done);
        assert_eq!(ids(&c.replicas), vec![2, 3, 4]);
        assert_eq!(ids(&c.isr), vec![2, 3, 4]);
        assert_eq!(ids(&c.removing_replicas), Vec::<i32>::new());
        assert_eq!(ids(&c.adding_replicas), Vec::<i32>::new());
        assert_eq!(c.leader, Some(2), "the removed leader hands over");
    }
}
