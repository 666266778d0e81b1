//! Produce as Kafka validates it, against `odradek-broker --dev`: v3+ requests carry exactly one
//! record batch per partition (INVALID_RECORD otherwise, with nothing appended).

use bytes::{Bytes, BytesMut};
use odradek_client::{Client, ClientError};
use odradek_log::records::{encode_batch, Compression, NewRecord};

fn batch(values: &[&str]) -> Bytes {
    let records: Vec<NewRecord> = values
        .iter()
        .map(|v| NewRecord::value(Bytes::copy_from_slice(v.as_bytes()), 1_700_000_000_000))
        .collect();
    encode_batch(&records, Compression::None).expect("encode")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_carries_exactly_one_batch_per_partition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_node, bootstrap) = crate::harness::start_dev(dir.path());
    let mut client = Client::new(&bootstrap, "one-batch-test");
    client
        .create_topic("one-batch", 1, 1, &[])
        .await
        .expect("create");

    let two = {
        let mut b = BytesMut::new();
        b.extend_from_slice(&batch(&["a", "b"]));
        b.extend_from_slice(&batch(&["c"]));
        b.freeze()
    };
    for (what, records) in [("two batches", two), ("no batch", Bytes::new())] {
        match client.produce("one-batch", 0, records, 1).await {
            Err(ClientError::Kafka { code: 87, message }) => {
                assert!(
                    message
                        .as_deref()
                        .is_some_and(|m| m.contains("exactly one record batch")),
                    "{what}: {message:?}"
                );
            }
            other => panic!("{what}: expected INVALID_RECORD, got {other:?}"),
        }
    }
    // Nothing was appended: the next good batch lands at offset 0.
    let offset = client
        .produce("one-batch", 0, batch(&["x"]), 1)
        .await
        .expect("one batch is accepted");
    assert_eq!(offset, 0);
}
