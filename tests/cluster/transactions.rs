//! The transaction APIs at the wire, against `odradek-broker --dev`, at every advertised
//! version: FindCoordinator key type 1, InitProducerId with a transactional id,
//! AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn, WriteTxnMarkers, with Kafka's
//! errors (INVALID_TRANSACTION_TIMEOUT, INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED,
//! INVALID_TXN_STATE, UNKNOWN_TOPIC_OR_PARTITION with OPERATION_NOT_ATTEMPTED), and what a
//! read_committed Fetch and ListOffsets answer around an open and an aborted transaction.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, ApiKey, BrokerId, EndTxnRequest,
    FetchRequest, FindCoordinatorRequest, GroupId, InitProducerIdRequest, ListOffsetsRequest,
    ProducerId, TopicName, TransactionalId, TxnOffsetCommitRequest, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;
use odradek_client::Client;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn txn_batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    crate::harness::producer_batch(pid, epoch, seq, n, true)
}

async fn init(client: &mut Client, id: &str, timeout_ms: i32, v: i16) -> (i16, i64, i16) {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(s(id))))
        .with_transaction_timeout_ms(timeout_ms);
    // The coordinator loads its partition right after FindCoordinator created the topic.
    for _ in 0..50 {
        let r = client
            .send_any(&req, ApiKey::InitProducerId, v)
            .await
            .expect("InitProducerId");
        if r.error_code != 14 && r.error_code != 51 {
            return (r.error_code, r.producer_id.0, r.producer_epoch);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("InitProducerId kept answering a retriable error");
}

async fn add(
    client: &mut Client,
    id: &str,
    pid: i64,
    epoch: i16,
    topic: &str,
    parts: &[i32],
    v: i16,
) -> Vec<i16> {
    let req = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(s(id)))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(parts.to_vec())]);
    let r = client
        .send_any(&req, ApiKey::AddPartitionsToTxn, v)
        .await
        .expect("AddPartitionsToTxn");
    r.results_by_topic_v3_and_below[0]
        .results_by_partition
        .iter()
        .map(|p| p.partition_error_code)
        .collect()
}

async fn end(client: &mut Client, id: &str, pid: i64, epoch: i16, commit: bool, v: i16) -> i16 {
    let req = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(s(id)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    client
        .send_any(&req, ApiKey::EndTxn, v)
        .await
        .expect("EndTxn")
        .error_code
}

/// read_committed Fetch of partition 0 from offset 0: (high watermark, last stable offset,
/// aborted transactions as (producer id, first offset)).
async fn fetch_committed(client: &mut Client, topic: &str) -> (i64, i64, Vec<(i64, i64)>) {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_isolation_level(1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(s(topic)))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let r = client
        .send_any(&req, ApiKey::Fetch, 12)
        .await
        .expect("Fetch");
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let aborted = p
        .aborted_transactions
        .as_ref()
        .expect("read_committed gets the list")
        .iter()
        .map(|a| (a.producer_id.0, a.first_offset))
        .collect();
    (p.high_watermark, p.last_stable_offset, aborted)
}

async fn latest(client: &mut Client, topic: &str, isolation: i8) -> i64 {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    let r = client
        .send_any(&req, ApiKey::ListOffsets, 5)
        .await
        .expect("ListOffsets");
    r.topics[0].partitions[0].offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_apis_answer_as_kafka_at_every_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_node, bootstrap) = crate::harness::start_dev(dir.path());
    let mut client = Client::new(&bootstrap, "txn-test");
    client.create_topic("tx", 1, 1, &[]).await.expect("create");

    // FindCoordinator for a transactional id (key types exist from v1) creates
    // __transaction_state and names this node.
    for v in 1..=4 {
        let req = if v >= 4 {
            FindCoordinatorRequest::default()
                .with_key_type(1)
                .with_coordinator_keys(vec![s("t")])
        } else {
            FindCoordinatorRequest::default()
                .with_key_type(1)
                .with_key(s("t"))
        };
        let mut code = -2;
        for _ in 0..50 {
            let r = client
                .send_any(&req, ApiKey::FindCoordinator, v)
                .await
                .expect("FindCoordinator");
            code = if v >= 4 {
                r.coordinators[0].error_code
            } else {
                r.error_code
            };
            if code == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(code, 0, "FindCoordinator v{v}");
    }

    // InitProducerId: a timeout over transaction.max.timeout.ms is refused; each version
    // starts a new session of the same id (epoch + 1).
    assert_eq!(
        init(&mut client, "t", 900_001, 0).await.0,
        50,
        "INVALID_TRANSACTION_TIMEOUT"
    );
    let mut last = None;
    for v in 0..=5 {
        let (code, pid, epoch) = init(&mut client, "t", 60_000, v).await;
        assert_eq!(code, 0, "v{v}");
        if let Some((lpid, lepoch)) = last {
            assert_eq!((pid, epoch), (lpid, lepoch + 1), "v{v}");
        }
        last = Some((pid, epoch));
    }
    let (pid, epoch) = last.expect("a session");

    for v in 0..=3i16 {
        // An unknown partition refuses the call: the others are OPERATION_NOT_ATTEMPTED.
        assert_eq!(
            add(&mut client, "t", pid, epoch, "tx", &[0, 9], v).await,
            vec![55, 3]
        );
        assert_eq!(
            add(&mut client, "t", pid + 1, epoch, "tx", &[0], v).await,
            vec![49],
            "INVALID_PRODUCER_ID_MAPPING"
        );
        assert_eq!(
            add(&mut client, "t", pid, epoch - 1, "tx", &[0], v).await,
            vec![90],
            "PRODUCER_FENCED"
        );
        if v == 0 {
            assert_eq!(
                end(&mut client, "t", pid, epoch, true, v).await,
                48,
                "nothing open: INVALID_TXN_STATE"
            );
        }
        assert_eq!(
            add(&mut client, "t", pid, epoch, "tx", &[0], v).await,
            vec![0]
        );
        assert_eq!(
            add(&mut client, "t", pid, epoch, "tx", &[0], v).await,
            vec![0],
            "already in"
        );
        let r = client
            .send_any(
                &AddOffsetsToTxnRequest::default()
                    .with_transactional_id(TransactionalId(s("t")))
                    .with_producer_id(ProducerId(pid))
                    .with_producer_epoch(epoch)
                    .with_group_id(GroupId(s("g"))),
                ApiKey::AddOffsetsToTxn,
                v,
            )
            .await
            .expect("AddOffsetsToTxn");
        assert_eq!(r.error_code, 0, "AddOffsetsToTxn v{v}");
        let commit = TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(s("t")))
            .with_group_id(GroupId(s("g")))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_generation_id(-1)
            .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(s("tx")))
                .with_partitions(vec![
                    TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(7),
                    TxnOffsetCommitRequestPartition::default()
                        .with_partition_index(5)
                        .with_committed_offset(7),
                ])]);
        // The offsets topic was created by AddOffsetsToTxn: its coordinator may be loading.
        let mut r = None;
        for _ in 0..50 {
            let resp = client
                .send_any(&commit, ApiKey::TxnOffsetCommit, v)
                .await
                .expect("TxnOffsetCommit");
            if resp.topics[0].partitions[0].error_code != 14 {
                r = Some(resp);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r = r.expect("the group coordinator loaded");
        let codes: Vec<i16> = r.topics[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect();
        assert_eq!(codes, vec![0, 3], "TxnOffsetCommit v{v}");
        assert_eq!(
            end(&mut client, "t", pid, epoch, v % 2 == 0, v).await,
            0,
            "EndTxn v{v}"
        );
        // A retry of the same end is answered NONE; the other end is INVALID_TXN_STATE (once
        // the markers are written: CONCURRENT_TRANSACTIONS until then).
        let mut code = 51;
        for _ in 0..50 {
            code = end(&mut client, "t", pid, epoch, v % 2 == 0, v).await;
            if code != 51 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(code, 0, "EndTxn retry v{v}");
        assert_eq!(end(&mut client, "t", pid, epoch, v % 2 != 0, v).await, 48);
    }

    // Data in a transaction: the LSO holds at its first offset until the marker is committed,
    // and an aborted transaction is listed for read_committed fetches.
    let base = latest(&mut client, "tx", 0).await;
    assert_eq!(
        add(&mut client, "t", pid, epoch, "tx", &[0], 3).await,
        vec![0]
    );
    client
        .produce_transactional("tx", 0, txn_batch(pid, epoch, 0, 3), -1, Some("t"))
        .await
        .expect("txn data");
    let (hw, lso, _) = fetch_committed(&mut client, "tx").await;
    assert_eq!(
        (hw, lso),
        (base + 3, base),
        "open: the LSO is the transaction's first offset"
    );
    assert_eq!(
        latest(&mut client, "tx", 1).await,
        base,
        "ListOffsets read_committed"
    );
    assert_eq!(latest(&mut client, "tx", 0).await, base + 3);
    assert_eq!(end(&mut client, "t", pid, epoch, false, 3).await, 0);
    let mut stable = (0, 0, Vec::new());
    for _ in 0..50 {
        stable = fetch_committed(&mut client, "tx").await;
        if stable.1 == base + 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        stable,
        (base + 4, base + 4, vec![(pid, base)]),
        "the abort marker at base + 3"
    );

    // WriteTxnMarkers (what coordinators send leaders): unknown partitions are refused, and an
    // older producer epoch than the partition knows is INVALID_PRODUCER_EPOCH.
    let markers = |epoch: i16, topic: &str| {
        WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_transaction_result(false)
            .with_coordinator_epoch(0)
            .with_topics(vec![WritableTxnMarkerTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partition_indexes(vec![0])])])
    };
    let code = |r: kafka_protocol::messages::WriteTxnMarkersResponse| {
        r.markers[0].topics[0].partitions[0].error_code
    };
    let r = client
        .send_any(&markers(epoch, "nope"), ApiKey::WriteTxnMarkers, 1)
        .await
        .expect("WriteTxnMarkers");
    assert_eq!(code(r), 3);
    let r = client
        .send_any(&markers(epoch - 1, "tx"), ApiKey::WriteTxnMarkers, 1)
        .await
        .expect("WriteTxnMarkers");
    assert_eq!(code(r), 47, "INVALID_PRODUCER_EPOCH");

    // A new session fences the old epoch.
    let (code, pid2, epoch2) = init(&mut client, "t", 60_000, 5).await;
    assert_eq!((code, pid2, epoch2), (0, pid, epoch + 1));
    assert_eq!(
        add(&mut client, "t", pid, epoch, "tx", &[0], 3).await,
        vec![90]
    );
}
