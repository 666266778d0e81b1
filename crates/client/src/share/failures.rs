//! Acknowledgements that did not take, reported per partition as [`ShareFailure`]s (taken with
//! [`ShareMember::take_failures`]).

use std::collections::BTreeMap;

use kafka_protocol::messages::share_acknowledge_response::ShareAcknowledgeTopicResponse;

use super::acknowledgements::{AckBatch, SharePartition};
use super::{ShareFailure, ShareMember};
use crate::error::ClientError;

/// A copy of `e` for each partition it concerns (`ClientError` holds an `io::Error`, which
/// does not clone).
fn copy_error(e: &ClientError) -> ClientError {
    match e {
        ClientError::Kafka { code, message } => ClientError::Kafka {
            code: *code,
            message: message.clone(),
        },
        other => ClientError::Protocol(other.to_string()),
    }
}

impl ShareMember {
    pub(super) fn fail(&mut self, (topic_id, partition): SharePartition, error: &ClientError) {
        self.failures.push(ShareFailure {
            topic: self.topic_name(&topic_id),
            partition,
            error: copy_error(error),
        });
    }

    /// Acknowledgements that were sent and did not take.
    pub(super) fn lost(
        &mut self,
        sent: &BTreeMap<SharePartition, Vec<AckBatch>>,
        error: &ClientError,
    ) {
        for (tp, batches) in sent {
            if !batches.is_empty() {
                self.fail(*tp, error);
            }
        }
    }

    /// The partitions a ShareAcknowledge answered with an error, as failures.
    pub(super) fn fail_partitions(&mut self, responses: Vec<ShareAcknowledgeTopicResponse>) {
        for t in responses {
            for p in t.partitions.into_iter().filter(|p| p.error_code != 0) {
                let e = ClientError::Kafka {
                    code: p.error_code,
                    message: p.error_message.map(|m| m.to_string()),
                };
                self.fail((t.topic_id, p.partition_index), &e);
            }
        }
    }
}
