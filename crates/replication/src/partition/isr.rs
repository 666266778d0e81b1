//! The leader's ISR changes: a follower that caught up is proposed for the ISR, members that
//! have not caught up for `replica.lag.time.max.ms` are proposed for removal, one proposal at a
//! time, until the metadata shows it committed or the controller refuses it.

use super::{IsrProposal, Partition, Role};

impl Partition {
    /// A follower not in the ISR that reached the high watermark (and this leader's epoch
    /// start) joins it, one proposal at a time.
    pub(super) fn maybe_expand_isr(
        &mut self,
        replica: i32,
        fetch_offset: i64,
    ) -> Option<IsrProposal> {
        if self.pending_isr.is_some() || self.state.isr.contains(&replica) {
            return None;
        }
        if fetch_offset < self.high_watermark || fetch_offset < self.leader_epoch_start_offset {
            return None;
        }
        let mut new_isr = self.state.isr.clone();
        new_isr.push(replica);
        self.propose(new_isr)
    }

    fn propose(&mut self, new_isr: Vec<i32>) -> Option<IsrProposal> {
        self.pending_isr = Some(new_isr.clone());
        Some(IsrProposal {
            leader_epoch: self.state.leader_epoch,
            partition_epoch: self.state.partition_epoch,
            new_isr,
        })
    }

    /// ISR members that have not caught up to the leader's log end for `replica_lag_time_max_ms`
    /// leave the ISR (one proposal at a time). Leader only.
    pub fn maybe_shrink_isr(
        &mut self,
        now_ms: i64,
        replica_lag_time_max_ms: i64,
    ) -> Option<IsrProposal> {
        if self.role != Role::Leader || self.pending_isr.is_some() {
            return None;
        }
        let log_end = self.log.log_end_offset();
        let lagging: Vec<i32> = self
            .state
            .isr
            .iter()
            .copied()
            .filter(|r| *r != self.broker_id)
            .filter(|r| {
                self.followers.get(r).is_none_or(|p| {
                    p.log_end_offset < log_end
                        && now_ms.saturating_sub(p.last_caught_up_ms) > replica_lag_time_max_ms
                })
            })
            .collect();
        if lagging.is_empty() {
            return None;
        }
        tracing::info!(topic = %self.topic, partition = self.index, ?lagging, "shrinking the ISR: replicas out of sync for replica.lag.time.max.ms");
        let new_isr = self
            .state
            .isr
            .iter()
            .copied()
            .filter(|r| !lagging.contains(r))
            .collect();
        self.propose(new_isr)
    }

    /// The controller refused `proposal`: if it is still the pending one under the same
    /// partition epoch, it is dropped and the next check may propose again. (A proposal whose
    /// outcome is unknown, a timeout, must stay pending: it may have been committed, and the
    /// high watermark must keep counting the members it adds.)
    pub fn isr_proposal_refused(&mut self, proposal: &IsrProposal) {
        if self.is_pending_under_current_epochs(proposal) {
            self.pending_isr = None;
        }
    }

    /// Whether `proposal` is still pending (its outcome not yet seen in metadata).
    pub fn isr_proposal_pending(&self, proposal: &IsrProposal) -> bool {
        self.role == Role::Leader && self.is_pending_under_current_epochs(proposal)
    }

    fn is_pending_under_current_epochs(&self, proposal: &IsrProposal) -> bool {
        self.pending_isr.as_ref() == Some(&proposal.new_isr)
            && self.state.partition_epoch == proposal.partition_epoch
            && self.state.leader_epoch == proposal.leader_epoch
    }
}
