//! Incremental fetch sessions (KIP-227) on the wire, against `odradek-broker --dev`: a session
//! opened with epoch 0 answers every partition; an incremental fetch names no partition and is
//! answered only the partitions with news; wrong epochs and unknown sessions get Kafka's error
//! codes; epoch -1 closes the session.

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use odradek_client::{Client, Connection};

const TOPIC: &str = "sessions";

/// One batch of one record.
fn batch(value: &str) -> bytes::Bytes {
    use odradek_log::records::{encode_batch, Compression, NewRecord};
    let record = NewRecord::value(bytes::Bytes::copy_from_slice(value.as_bytes()), 1);
    encode_batch(&[record], Compression::None).expect("encode")
}

async fn fetch(
    conn: &mut Connection,
    id: i32,
    epoch: i32,
    offsets: &[(i32, i64)],
) -> FetchResponse {
    let topics = if offsets.is_empty() {
        vec![]
    } else {
        vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partitions(
                offsets
                    .iter()
                    .map(|(p, o)| {
                        FetchPartition::default()
                            .with_partition(*p)
                            .with_fetch_offset(*o)
                            .with_partition_max_bytes(1 << 20)
                    })
                    .collect(),
            )]
    };
    let req = FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_id(id)
        .with_session_epoch(epoch)
        .with_topics(topics);
    conn.send(&req, 12).await.expect("fetch answered")
}

/// (partition, bytes of records) answered.
fn answered(r: &FetchResponse) -> Vec<(i32, usize)> {
    r.responses
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition_index, p.records.as_ref().map_or(0, |b| b.len())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_answers_only_partitions_with_news() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_node, bootstrap) = crate::harness::start_dev(dir.path());
    let mut client = Client::new(&bootstrap, "fetch-sessions-test");
    client.create_topic(TOPIC, 2, 1, &[]).await.expect("create");
    client
        .produce(TOPIC, 0, batch("a"), 1)
        .await
        .expect("produce");
    let mut conn = client.connect_to(&bootstrap).await.expect("connect");

    let opened = fetch(&mut conn, 0, 0, &[(0, 0), (1, 0)]).await;
    assert_eq!(opened.error_code, 0);
    let id = opened.session_id;
    assert!(id > 0, "a session was opened");
    let all = answered(&opened);
    assert_eq!(
        all.len(),
        2,
        "a new session's answer lists every partition: {all:?}"
    );
    assert!(all[0].1 > 0 && all[1].1 == 0, "{all:?}");

    // Partition 0 moves to offset 1; nothing is new anywhere.
    let quiet = fetch(&mut conn, id, 1, &[(0, 1)]).await;
    assert_eq!((quiet.error_code, quiet.session_id), (0, id));
    assert_eq!(answered(&quiet), vec![], "no news, no partitions");

    // A record on partition 1: only partition 1 is answered, though the request names none.
    client
        .produce(TOPIC, 1, batch("b"), 1)
        .await
        .expect("produce");
    let news = answered(&fetch(&mut conn, id, 2, &[]).await);
    assert_eq!(news.len(), 1, "{news:?}");
    assert_eq!(news[0].0, 1);
    assert!(news[0].1 > 0);

    assert_eq!(
        fetch(&mut conn, id, 7, &[]).await.error_code,
        71,
        "INVALID_FETCH_SESSION_EPOCH"
    );
    let other = if id == i32::MAX { 1 } else { id + 1 };
    assert_eq!(
        fetch(&mut conn, other, 1, &[]).await.error_code,
        70,
        "FETCH_SESSION_ID_NOT_FOUND"
    );

    // Epoch -1 closes the session; that fetch is served in full, without one.
    let closing = fetch(&mut conn, id, -1, &[(0, 0), (1, 0)]).await;
    assert_eq!((closing.error_code, closing.session_id), (0, 0));
    assert_eq!(answered(&closing).len(), 2);
    assert_eq!(fetch(&mut conn, id, 3, &[]).await.error_code, 70, "closed");
}
