//! Idempotent producers against `odradek-broker --dev`, at the wire: InitProducerId at every
//! advertised version, Kafka's answers to retries (the original offset), gaps and new epochs
//! (OUT_OF_ORDER_SEQUENCE_NUMBER) and old epochs (INVALID_PRODUCER_EPOCH), DescribeProducers,
//! and the producer state surviving a clean restart (snapshot) and a kill -9 (log replay).

use bytes::Bytes;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::{
    ApiKey, DescribeProducersRequest, InitProducerIdRequest, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use odradek_client::{Client, ClientError};

fn batch(pid: i64, epoch: i16, seq: i32, n: usize) -> Bytes {
    crate::harness::producer_batch(pid, epoch, seq, n, false)
}

async fn init(client: &mut Client, version: i16) -> (i64, i16) {
    let r = client
        .send_any(
            &InitProducerIdRequest::default().with_transactional_id(None),
            ApiKey::InitProducerId,
            version,
        )
        .await
        .expect("InitProducerId");
    assert_eq!(r.error_code, 0, "v{version}");
    (r.producer_id.0, r.producer_epoch)
}

fn code(r: Result<i64, ClientError>) -> i16 {
    match r {
        Err(ClientError::Kafka { code, .. }) => code,
        other => panic!("expected a Kafka error, got {other:?}"),
    }
}

async fn log_end(client: &mut Client, topic: &str) -> i64 {
    client
        .list_offset(topic, 0, -1)
        .await
        .expect("list offsets")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producers_get_kafkas_answers_and_keep_them_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = crate::harness::free_ports(2);
    let (mut node, bootstrap) = crate::harness::start_dev_on(dir.path(), ports[0], ports[1]);
    let mut client = Client::new(&bootstrap, "idempotence-test");
    client
        .create_topic("idem", 1, 1, &[])
        .await
        .expect("create");

    // Every advertised version hands out a fresh id at epoch 0.
    let mut ids = Vec::new();
    for v in 0..=5 {
        let (id, epoch) = init(&mut client, v).await;
        assert_eq!(epoch, 0);
        assert!(id >= 0);
        ids.push(id);
    }
    let mut sorted = ids.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "distinct ids: {ids:?}");
    // Kafka's INVALID_REQUEST: an empty transactional id, or only one of id and epoch.
    for bad in [
        InitProducerIdRequest::default(),
        InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_producer_id(ProducerId(ids[0])),
    ] {
        let r = client
            .send_any(&bad, ApiKey::InitProducerId, 5)
            .await
            .expect("InitProducerId");
        assert_eq!(r.error_code, 42, "INVALID_REQUEST");
    }
    // A transactional id goes to its coordinator; before FindCoordinator created
    // __transaction_state no broker is one.
    let txn = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("t1"))))
        .with_transaction_timeout_ms(60_000);
    let r = client
        .send_any(&txn, ApiKey::InitProducerId, 5)
        .await
        .expect("InitProducerId");
    assert_eq!(r.error_code, 16, "NOT_COORDINATOR");

    let pid = ids[0];
    for acks in [1, -1] {
        assert_eq!(
            client
                .produce("idem", 0, batch(pid, 0, 0, 3), acks)
                .await
                .ok(),
            Some(0),
            "acks={acks}"
        );
    }
    // That second send was a retry: answered with the first offset, nothing appended.
    assert_eq!(log_end(&mut client, "idem").await, 3);
    assert_eq!(
        client
            .produce("idem", 0, batch(pid, 0, 3, 2), -1)
            .await
            .expect("next"),
        3
    );
    assert_eq!(
        code(client.produce("idem", 0, batch(pid, 0, 9, 1), -1).await),
        45,
        "a gap"
    );
    assert_eq!(
        code(client.produce("idem", 0, batch(pid, 0, 1, 2), -1).await),
        45,
        "an overlap"
    );
    assert_eq!(
        code(client.produce("idem", 0, batch(pid, 1, 5, 1), -1).await),
        45,
        "a new epoch not at 0"
    );
    assert_eq!(
        client
            .produce("idem", 0, batch(pid, 1, 0, 1), -1)
            .await
            .expect("epoch 1"),
        5
    );
    assert_eq!(
        code(client.produce("idem", 0, batch(pid, 0, 5, 1), -1).await),
        47,
        "a fenced epoch"
    );
    let other = ids[1];
    assert_eq!(
        client
            .produce("idem", 0, batch(other, 0, 0, 1), 1)
            .await
            .expect("other"),
        6
    );
    assert_eq!(log_end(&mut client, "idem").await, 7);

    // DescribeProducers, as kafka-transactions.sh describe-producers asks it.
    let describe = DescribeProducersRequest::default().with_topics(vec![
        TopicRequest::default()
            .with_name(TopicName(StrBytes::from_static_str("idem")))
            .with_partition_indexes(vec![0, 7]),
        TopicRequest::default()
            .with_name(TopicName(StrBytes::from_static_str("nope")))
            .with_partition_indexes(vec![0]),
    ]);
    let r = client
        .send_any(&describe, ApiKey::DescribeProducers, 0)
        .await
        .expect("DescribeProducers");
    let p0 = &r.topics[0].partitions[0];
    assert_eq!(p0.error_code, 0);
    let states: Vec<(i64, i32, i32, i64)> = p0
        .active_producers
        .iter()
        .map(|p| {
            (
                p.producer_id.0,
                p.producer_epoch,
                p.last_sequence,
                p.current_txn_start_offset,
            )
        })
        .collect();
    assert_eq!(states, vec![(pid, 1, 0, -1), (other, 0, 0, -1)]);
    assert_eq!(r.topics[0].partitions[1].error_code, 3, "no partition 7");
    assert_eq!(r.topics[1].partitions[0].error_code, 3, "no topic");

    // A clean restart (snapshot at close), then a kill -9 (replay of the log): the retry of
    // the last batch is still recognised, and the sequence goes on where it was.
    for clean in [true, false] {
        if clean {
            node.terminate(std::time::Duration::from_secs(30))
                .expect("stops");
        } else {
            node.kill();
        }
        let (n, _) = crate::harness::start_dev_on(dir.path(), ports[0], ports[1]);
        node = n;
        let mut client = Client::new(&bootstrap, "idempotence-test");
        assert_eq!(
            client
                .produce("idem", 0, batch(other, 0, 0, 1), -1)
                .await
                .expect("retry"),
            6,
            "clean={clean}"
        );
        assert_eq!(
            code(client.produce("idem", 0, batch(pid, 1, 3, 1), -1).await),
            45
        );
        assert_eq!(log_end(&mut client, "idem").await, 7, "clean={clean}");
    }
    let mut client = Client::new(&bootstrap, "idempotence-test");
    assert_eq!(
        client
            .produce("idem", 0, batch(pid, 1, 1, 1), -1)
            .await
            .expect("next"),
        7
    );
    // A new id after all that is still a new one: the controller's blocks are never reused.
    let (fresh, _) = init(&mut client, 5).await;
    assert!(!ids.contains(&fresh), "{fresh} in {ids:?}");
}
