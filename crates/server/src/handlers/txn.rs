//! The transaction APIs (KIP-98, transaction version 1): InitProducerId with a transactional
//! id, AddPartitionsToTxn, AddOffsetsToTxn, EndTxn (served by the transactional id's
//! coordinator, see `transactions.rs`), TxnOffsetCommit (by the group's coordinator: the offsets
//! wait for the transaction's marker), and WriteTxnMarkers (by partition leaders, from
//! coordinators).

use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_transactions_response::{
    TopicData, TransactionState as DescribedTransaction,
};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedTransaction;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, DescribeTransactionsRequest, DescribeTransactionsResponse,
    EndTxnRequest, EndTxnResponse, InitProducerIdRequest, InitProducerIdResponse,
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TopicName, TransactionalId,
    TxnOffsetCommitRequest, TxnOffsetCommitResponse, WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
};
use kafka_protocol::protocol::StrBytes;
use odradek_common::{ErrorCode, ToErrorCode};
use odradek_coordinator::txn::InitResult;
use odradek_coordinator::{partition_for, CommitOffset, OFFSETS_TOPIC};
use odradek_log::ControlRecord;

use super::Broker;
use crate::replicas::Need;

/// Kafka's OPERATION_NOT_ATTEMPTED: the other partitions of a refused AddPartitionsToTxn.
const OPERATION_NOT_ATTEMPTED: i16 = 55;

/// InitProducerId with a transactional id: a new producer session (epoch bumped, an open
/// transaction of the previous session aborted), answered once its record is committed.
pub(super) async fn init_producer_id(
    broker: &Broker,
    req: &InitProducerIdRequest,
    transactional_id: &str,
) -> InitProducerIdResponse {
    let fail = |code: ErrorCode| {
        InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    // Its record stores the id as a Kafka string (i16 length).
    if transactional_id.len() > i16::MAX as usize {
        return fail(ErrorCode::InvalidRequest);
    }
    let image = broker.image();
    let needs = match broker.txns.exec(&image, transactional_id, |t, _| {
        (t.needs_new_producer_id(transactional_id), None)
    }) {
        Ok((needs, _)) => needs,
        Err(e) => return fail(e),
    };
    let fresh = if needs {
        match broker.producer_ids.next().await {
            Ok(id) => Some(id),
            Err((code, _)) => return fail(code),
        }
    } else {
        None
    };
    let expected = (req.producer_id.0, req.producer_epoch);
    let (result, write) = match broker.txns.exec(&image, transactional_id, |t, now| {
        t.init_producer_id(
            now,
            transactional_id,
            req.transaction_timeout_ms,
            expected,
            fresh,
        )
    }) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if let Some(w) = write {
        if let Err(e) = broker.txns.finish(w).await {
            return fail(e);
        }
    }
    match result {
        InitResult::Write(pid, epoch) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch),
        InitResult::Error(e) => fail(e),
    }
}

/// Adds partitions to the open transaction (opening it), answered once committed.
async fn add_partitions(
    broker: &Broker,
    transactional_id: &str,
    producer_id: i64,
    epoch: i16,
    partitions: &[(String, i32)],
) -> ErrorCode {
    let image = broker.image();
    let result = broker.txns.exec(&image, transactional_id, |t, now| {
        match t.add_partitions(now, transactional_id, producer_id, epoch, partitions) {
            Ok(transition) => (ErrorCode::None, transition),
            Err(e) => (e, None),
        }
    });
    match result {
        Ok((ErrorCode::None, Some(w))) => match broker.txns.finish(w).await {
            Ok(()) => ErrorCode::None,
            Err(e) => e,
        },
        Ok((code, _)) => code,
        Err(e) => e,
    }
}

/// AddPartitionsToTxn v0-3 (the client's form). Partitions that do not exist are
/// UNKNOWN_TOPIC_OR_PARTITION and the rest OPERATION_NOT_ATTEMPTED, as Kafka answers.
pub(super) async fn add_partitions_to_txn(
    broker: &Broker,
    req: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let image = broker.image();
    let wanted: Vec<(String, i32)> = req
        .v3_and_below_topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect();
    let unknown = |t: &str, p: i32| {
        image
            .topics
            .get_by_name(t)
            .is_none_or(|x| !x.partitions.contains_key(&p))
    };
    let any_unknown = wanted.iter().any(|(t, p)| unknown(t, *p));
    let code = if any_unknown {
        None
    } else {
        Some(
            add_partitions(
                broker,
                req.v3_and_below_transactional_id.0.as_str(),
                req.v3_and_below_producer_id.0,
                req.v3_and_below_producer_epoch,
                &wanted,
            )
            .await,
        )
    };
    let results = req
        .v3_and_below_topics
        .iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let c = match code {
                                Some(c) => c.code(),
                                None if unknown(t.name.0.as_str(), *p) => {
                                    ErrorCode::UnknownTopicOrPartition.code()
                                }
                                None => OPERATION_NOT_ATTEMPTED,
                            };
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(*p)
                                .with_partition_error_code(c)
                        })
                        .collect(),
                )
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
}

/// AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction.
pub(super) async fn add_offsets_to_txn(
    broker: &Broker,
    req: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let image = super::groups::ensure_offsets_topic(broker).await;
    let Some(count) = image
        .topics
        .get_by_name(OFFSETS_TOPIC)
        .map(|t| t.partitions.len() as i32)
    else {
        return AddOffsetsToTxnResponse::default()
            .with_error_code(ErrorCode::CoordinatorNotAvailable.code());
    };
    let p = partition_for(req.group_id.0.as_str(), count);
    let code = add_partitions(
        broker,
        req.transactional_id.0.as_str(),
        req.producer_id.0,
        req.producer_epoch,
        &[(OFFSETS_TOPIC.to_string(), p)],
    )
    .await;
    AddOffsetsToTxnResponse::default().with_error_code(code.code())
}

/// EndTxn: PrepareCommit/PrepareAbort is committed, then answered; the markers follow.
pub(super) async fn end_txn(broker: &Broker, req: EndTxnRequest) -> EndTxnResponse {
    let image = broker.image();
    let id = req.transactional_id.0.to_string();
    let result = broker.txns.exec(&image, &id, |t, now| {
        match t.end_txn(
            now,
            &id,
            req.producer_id.0,
            req.producer_epoch,
            req.committed,
        ) {
            Ok(transition) => (ErrorCode::None, transition),
            Err(e) => (e, None),
        }
    });
    let code = match result {
        Ok((ErrorCode::None, Some(w))) => match broker.txns.finish(w).await {
            Ok(()) => ErrorCode::None,
            Err(e) => e,
        },
        Ok((code, _)) => code,
        Err(e) => e,
    };
    EndTxnResponse::default()
        .with_error_code(code.code())
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}

/// TxnOffsetCommit: the offsets are appended in the producer's transaction and take effect
/// with its commit marker; answered once appended to the group partition's ISR.
pub(super) async fn txn_offset_commit(
    broker: &Broker,
    req: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let image = broker.image();
    let group = req.group_id.0.to_string();
    let (codes, offsets) = super::groups::split_known(
        &image,
        req.topics.iter().flat_map(|t| {
            t.partitions.iter().map(|p| CommitOffset {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        }),
    );
    let member = req.member_id.to_string();
    let result = broker.groups.exec_transactional(
        &image,
        &group,
        (req.producer_id.0, req.producer_epoch),
        |groups, _, now| {
            groups.txn_commit(
                now,
                &group,
                req.generation_id,
                &member,
                req.group_instance_id.as_deref(),
                &offsets,
            )
        },
    );
    let result = super::groups::committed(broker, &image, result).await;
    let mut codes = super::groups::answer_codes(codes, result);
    let topics = req
        .topics
        .iter()
        .map(|t| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let code = codes.next().unwrap_or(ErrorCode::UnknownServerError);
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code.code())
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// WriteTxnMarkers: each marker is written by this broker as the partition's leader, with
/// acks=all semantics; a marker committed in `__consumer_offsets` completes the group
/// coordinator's transactional offsets.
pub(crate) async fn write_txn_markers_local(
    broker: &Broker,
    req: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let image = broker.image();
    let now = broker.clock.now_ms();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut markers = Vec::new();
    for m in &req.markers {
        let marker = ControlRecord {
            commit: m.transaction_result,
            coordinator_epoch: m.coordinator_epoch,
        };
        let mut topics = Vec::new();
        for t in &m.topics {
            let name = t.name.0.to_string();
            let topic = image.topics.get_by_name(&name);
            let mut results = Vec::new();
            for &index in &t.partition_indexes {
                let code = match topic.filter(|x| x.partitions.contains_key(&index)) {
                    None => ErrorCode::UnknownTopicOrPartition,
                    Some(x) => {
                        write_one(
                            broker,
                            &image,
                            x.id,
                            &name,
                            index,
                            m.producer_id.0,
                            m.producer_epoch,
                            marker,
                            now,
                            deadline,
                        )
                        .await
                    }
                };
                results.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(code.code()),
                );
            }
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(t.name.clone())
                    .with_partitions(results),
            );
        }
        markers.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(markers)
}

#[allow(clippy::too_many_arguments)]
async fn write_one(
    broker: &Broker,
    image: &odradek_metadata::MetadataImage,
    topic_id: odradek_common::Uuid,
    topic: &str,
    index: i32,
    producer_id: i64,
    producer_epoch: i16,
    marker: ControlRecord,
    now: i64,
    deadline: std::time::Instant,
) -> ErrorCode {
    let hosted = match broker.replicas.partition(topic_id, index, -1, Need::Leader) {
        Ok(h) => h,
        Err(r) => return r.code,
    };
    let min_isr = broker.min_insync_replicas(image, topic);
    let appended = if topic == OFFSETS_TOPIC {
        // Through the group coordinator, which must have the partition loaded.
        broker
            .groups
            .append_marker(index, producer_id, producer_epoch, marker, min_isr)
    } else {
        match hosted.lock() {
            Ok(mut p) => p
                .append_marker_as_leader(producer_id, producer_epoch, marker, min_isr, now)
                .map_err(|e| e.error_code()),
            Err(c) => Err(c),
        }
    };
    let appended = match appended {
        Ok(a) => a,
        Err(code) => return code,
    };
    // log.flush.before.ack: the marker is synced before it is answered.
    let sync = hosted.sync_tail();
    hosted.leo_waiters.wake_all();
    if appended.high_watermark_advanced {
        hosted.hw_waiters.wake_all();
    }
    if let Some(rx) = sync {
        if let Err(e) = crate::group_sync::synced(rx).await {
            hosted.report_storage_error(&e);
            return ErrorCode::KafkaStorageError;
        }
    }
    if let Err((code, _)) = super::acks::wait_committed(
        &hosted,
        appended.leader_epoch,
        appended.info.last_offset,
        min_isr,
        deadline,
    )
    .await
    {
        return code;
    }
    if topic == OFFSETS_TOPIC {
        broker
            .groups
            .complete_transaction(index, producer_id, marker.commit);
    }
    ErrorCode::None
}

/// WriteTxnMarkers as served to other brokers' coordinators.
pub(super) async fn write_txn_markers(
    broker: &Broker,
    req: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    write_txn_markers_local(broker, req).await
}

/// ListTransactions (v0-1): the transactions of the `__transaction_state` partitions this
/// broker coordinates, filtered by state name, producer id and (v1) running time.
pub(super) fn list_transactions(
    broker: &Broker,
    req: ListTransactionsRequest,
) -> ListTransactionsResponse {
    use odradek_coordinator::txn::TxnState;
    const STATES: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];
    let unknown: Vec<_> = req
        .state_filters
        .iter()
        .filter(|f| !STATES.iter().any(|s| s.name() == f.as_str()))
        .cloned()
        .collect();
    let now = broker.clock.now_ms();
    let states = broker
        .txns
        .list()
        .into_iter()
        .filter(|t| {
            req.state_filters.is_empty()
                || req
                    .state_filters
                    .iter()
                    .any(|f| f.as_str() == t.state.name())
        })
        .filter(|t| {
            req.producer_id_filters.is_empty()
                || req.producer_id_filters.iter().any(|p| p.0 == t.producer_id)
        })
        .filter(|t| {
            req.duration_filter < 0
                || (t.state == TxnState::Ongoing
                    && t.start_ms >= 0
                    && now.saturating_sub(t.start_ms) >= req.duration_filter)
        })
        .map(|t| {
            ListedTransaction::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(t.transactional_id)))
                .with_producer_id(ProducerId(t.producer_id))
                .with_transaction_state(StrBytes::from_static_str(t.state.name()))
        })
        .collect();
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(states)
}

/// DescribeTransactions (v0): each id's state from its coordinator (NOT_COORDINATOR on
/// another broker, TRANSACTIONAL_ID_NOT_FOUND for an unknown id).
pub(super) fn describe_transactions(
    broker: &Broker,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
    let image = broker.image();
    let states = req
        .transactional_ids
        .iter()
        .map(|id| {
            let r = DescribedTransaction::default()
                .with_transactional_id(id.clone())
                .with_transaction_state(StrBytes::from_static_str(""))
                .with_transaction_start_time_ms(-1)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            let found = broker.txns.exec(&image, id.0.as_str(), |t, _| {
                (t.get(id.0.as_str()).cloned(), None)
            });
            match found {
                Err(e) => r.with_error_code(e.code()),
                Ok((None, _)) => r.with_error_code(TRANSACTIONAL_ID_NOT_FOUND),
                Ok((Some(t), _)) => {
                    let mut by_topic: std::collections::BTreeMap<String, Vec<i32>> =
                        std::collections::BTreeMap::new();
                    for (topic, p) in &t.partitions {
                        by_topic.entry(topic.clone()).or_default().push(*p);
                    }
                    r.with_transaction_state(StrBytes::from_static_str(t.state.name()))
                        .with_transaction_timeout_ms(t.timeout_ms)
                        .with_transaction_start_time_ms(t.start_ms)
                        .with_producer_id(ProducerId(t.producer_id))
                        .with_producer_epoch(t.producer_epoch)
                        .with_topics(
                            by_topic
                                .into_iter()
                                .map(|(topic, partitions)| {
                                    TopicData::default()
                                        .with_topic(TopicName(StrBytes::from_string(topic)))
                                        .with_partitions(partitions)
                                })
                                .collect(),
                        )
                }
            }
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
