//! InitProducerId for idempotent producers, and DescribeProducers (kafka-transactions.sh
//! describe-producers): the producer state a partition leader holds.

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProducerId,
};
use kafka_protocol::protocol::StrBytes;
use odradek_common::ErrorCode;

use super::{find_topic, Broker};
use crate::replicas::Need;

/// InitProducerId without a transactional id: a fresh producer id at epoch 0. A producer that
/// sends its current id and epoch (KIP-360, after an OUT_OF_ORDER_SEQUENCE_NUMBER or an
/// expired id) also gets a new id, as Kafka answers idempotent producers. With a
/// transactional id the transaction coordinator answers (`txn.rs`).
pub(super) async fn init_producer_id(
    broker: &Broker,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let fail = |code: ErrorCode| {
        InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    // Kafka: an empty transactional id, or only one of producer id and epoch given, is
    // INVALID_REQUEST.
    if req
        .transactional_id
        .as_ref()
        .is_some_and(|t| t.0.is_empty())
        || ((req.producer_id.0 == -1) != (req.producer_epoch == -1))
    {
        return fail(ErrorCode::InvalidRequest);
    }
    if let Some(id) = req.transactional_id.as_ref() {
        return super::txn::init_producer_id(broker, &req, id.0.as_str()).await;
    }
    match broker.producer_ids.next().await {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err((code, message)) => {
            tracing::warn!(%message, "InitProducerId failed");
            fail(code)
        }
    }
}

/// DescribeProducers: per partition, the producers this replica knows (NOT_LEADER_OR_FOLLOWER
/// where it holds no replica, UNKNOWN_TOPIC_OR_PARTITION for what does not exist).
pub(super) fn describe_producers(
    broker: &Broker,
    req: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let image = broker.image();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let topic = find_topic(&image, &name, &uuid::Uuid::nil());
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&index| {
                    let r = PartitionResponse::default().with_partition_index(index);
                    let fail = |code: ErrorCode, message: String| {
                        r.clone()
                            .with_error_code(code.code())
                            .with_error_message(Some(StrBytes::from_string(message)))
                    };
                    let Some(topic) = topic.as_ref().filter(|t| t.partitions.contains_key(&index))
                    else {
                        return fail(
                            ErrorCode::UnknownTopicOrPartition,
                            format!("{name}-{index} does not exist"),
                        );
                    };
                    // Any replica with the log answers, as Kafka's (the admin client may ask a
                    // follower by broker id).
                    let hosted = match broker.replicas.partition(topic.id, index, -1, Need::Any) {
                        Ok(h) => h,
                        Err(e) => return fail(e.code, e.message),
                    };
                    let Ok(replica) = hosted.lock() else {
                        return fail(
                            ErrorCode::UnknownServerError,
                            "partition state poisoned".into(),
                        );
                    };
                    let mut active: Vec<ProducerState> = replica
                        .producer_states()
                        .producers()
                        .map(|(id, e)| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(id))
                                .with_producer_epoch(i32::from(e.epoch))
                                .with_last_sequence(e.last_sequence())
                                .with_last_timestamp(e.last_timestamp)
                                .with_coordinator_epoch(e.coordinator_epoch)
                                .with_current_txn_start_offset(
                                    e.current_txn_first_offset.unwrap_or(-1),
                                )
                        })
                        .collect();
                    active.sort_by_key(|p| p.producer_id.0);
                    r.with_active_producers(active)
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
