//! acks=all: a produce waits until the high watermark passes its batch (Kafka's delayed
//! produce, keyed by partition), answering NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR fell
//! below `min.insync.replicas` meanwhile, NOT_LEADER_OR_FOLLOWER if leadership moved, and
//! REQUEST_TIMED_OUT at the request's timeout.

use std::sync::Arc;
use std::time::Instant;

use odradek_common::{ErrorCode, ToErrorCode};
use tokio::sync::Notify;

use crate::replicas::HostedPartition;

/// Waits for `last_offset`, appended under `leader_epoch`, to be committed.
pub(crate) async fn wait_committed(
    partition: &HostedPartition,
    leader_epoch: i32,
    last_offset: i64,
    min_insync_replicas: usize,
    deadline: Instant,
) -> Result<(), (ErrorCode, String)> {
    let waiter = Arc::new(Notify::new());
    loop {
        // Register before checking, so an advance in between is not missed.
        partition.hw_waiters.register(&waiter);
        let outcome = partition
            .lock()
            .map_err(|c| (c, "partition state poisoned".to_string()))?
            .acks_all_outcome(leader_epoch, last_offset, min_insync_replicas);
        match outcome {
            Some(Ok(())) => return Ok(()),
            Some(Err(e)) => return Err((e.error_code(), e.to_string())),
            None => {}
        }
        if tokio::time::timeout_at(deadline.into(), waiter.notified())
            .await
            .is_err()
        {
            return Err((
                ErrorCode::RequestTimedOut,
                format!(
                    "offset {last_offset} of {}-{} was not replicated to the ISR within the request timeout",
                    partition.topic, partition.index
                ),
            ));
        }
    }
}
