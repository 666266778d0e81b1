//! The leader's ISR changes sent to the active controller as AlterPartition, as the server's
//! `isr.rs` sends them: under the broker epoch they were made with, retried while pending and
//! unanswered, dropped a moment after a refusal.

use odradek_controller::pb;
use odradek_replication::IsrProposal;

use super::{Out, SentProposal, SimBroker};
use crate::message::{Message, TopicPartition};

impl SimBroker {
    /// Sends an ISR change to the controller, under the current broker epoch.
    pub(super) fn propose(
        &mut self,
        tp: TopicPartition,
        proposal: IsrProposal,
        now: i64,
        out: &mut Out,
    ) {
        let broker_epoch = self.broker_epoch.unwrap_or(-1);
        self.send_proposal(
            SentProposal {
                partition: tp,
                proposal,
                broker_epoch,
                sent_ms: now,
            },
            out,
        );
    }

    pub(super) fn send_proposal(&mut self, sent: SentProposal, out: &mut Out) {
        out.push((
            self.controller(),
            Message::AlterPartition(pb::AlterPartitionRequest {
                broker_id: self.id,
                broker_epoch: sent.broker_epoch,
                topic_id: sent.partition.0.as_bytes().to_vec(),
                partition: sent.partition.1,
                leader_epoch: sent.proposal.leader_epoch,
                partition_epoch: sent.proposal.partition_epoch,
                new_isr: sent.proposal.new_isr.clone(),
            }),
        ));
        self.proposals.push(sent);
    }

    pub(super) fn on_alter_partition(
        &mut self,
        req: pb::AlterPartitionRequest,
        resp: pb::AlterPartitionResponse,
        now: i64,
    ) {
        let Some(i) = self.proposals.iter().position(|s| {
            s.partition.1 == req.partition
                && s.partition.0.as_bytes()[..] == req.topic_id[..]
                && s.proposal.new_isr == req.new_isr
                && s.proposal.partition_epoch == req.partition_epoch
        }) else {
            return;
        };
        let sent = self.proposals.remove(i);
        if resp.error_code != 0 {
            // Kept pending a moment, so a refused change is not proposed again at once.
            self.refused.push((now + 1000, sent));
        }
    }

    /// Refusals whose pause is over are dropped; unanswered proposals still pending are sent
    /// again (their outcome is unknown: they may have been committed).
    pub(super) fn retry_proposals(&mut self, now: i64, out: &mut Out) {
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.refused)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.refused = later;
        for (_, s) in due {
            if let Some(r) = self.replicas.get_mut(&s.partition) {
                r.partition.isr_proposal_refused(&s.proposal);
            }
        }
        let timeout = self.settings.request_timeout_ms;
        let (lost, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.proposals)
            .into_iter()
            .partition(|s| now - s.sent_ms > timeout);
        self.proposals = waiting;
        for s in lost {
            let pending = self
                .replicas
                .get(&s.partition)
                .is_some_and(|r| r.partition.isr_proposal_pending(&s.proposal));
            if pending {
                self.send_proposal(SentProposal { sent_ms: now, ..s }, out);
            }
        }
    }
}
