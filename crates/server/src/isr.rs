//! ISR changes this broker's leaders propose: sent to the active controller as AlterPartition
//! (with the broker epoch, leader epoch and partition epoch they were made under). The new ISR
//! takes effect when it comes back in the metadata log; a refusal or a failed call clears the
//! pending proposal so the leader proposes again.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use odradek_controller::pb;
use odradek_replication::IsrProposal;

use crate::controller_client::ControllerClient;
use crate::replicas::HostedPartition;

/// Sends `proposal` for `partition` in the background.
pub fn propose(
    client: &ControllerClient,
    broker_id: i32,
    broker_epoch: &Arc<AtomicI64>,
    partition: Arc<HostedPartition>,
    proposal: IsrProposal,
) {
    let client = client.clone();
    let broker_epoch = broker_epoch.load(Ordering::Acquire);
    tokio::spawn(async move {
        let req = pb::AlterPartitionRequest {
            broker_id,
            broker_epoch,
            topic_id: partition.topic_id.as_bytes().to_vec(),
            partition: partition.index,
            leader_epoch: proposal.leader_epoch,
            partition_epoch: proposal.partition_epoch,
            new_isr: proposal.new_isr.clone(),
        };
        loop {
            let result = client
                .call(Duration::from_secs(5), |mut c| {
                    let r = req.clone();
                    async move { c.alter_partition(r).await }
                })
                .await;
            match result {
                Ok(r) if r.error_code == 0 => {
                    tracing::info!(topic = %partition.topic, partition = partition.index, isr = ?r.isr, partition_epoch = r.partition_epoch, "ISR change committed");
                    return;
                }
                Ok(r) => {
                    tracing::info!(topic = %partition.topic, partition = partition.index, new_isr = ?proposal.new_isr, code = r.error_code, message = %r.error_message, "ISR change refused");
                    // Kept pending a moment, so a refused change is not proposed again at once.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if let Ok(mut p) = partition.lock() {
                        p.isr_proposal_refused(&proposal);
                    }
                    return;
                }
                Err(e) => {
                    // The outcome is unknown (it may have been committed): the proposal stays
                    // pending, and is sent again while metadata has not settled it.
                    tracing::warn!(topic = %partition.topic, partition = partition.index, error = %e, "ISR change not answered; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    let still = partition
                        .lock()
                        .map(|p| p.isr_proposal_pending(&proposal))
                        .unwrap_or(false);
                    if !still {
                        return;
                    }
                }
            }
        }
    });
}
