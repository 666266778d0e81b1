//! KIP-1222 over the wire, through `odradek-client`'s share-group member (no client installed
//! here renews locks: librdkafka 2.16 does not): a renewed acquisition lock keeps a record from
//! the group's other members past its first lock, the record goes to another member (second
//! delivery) once renewals stop, and its first holder can no longer renew it. A ShareFetch v2
//! that renews must not ask for records.

use std::time::{Duration, Instant};

use kafka_protocol::messages::{GroupId, ShareFetchRequest, ShareFetchResponse};
use kafka_protocol::protocol::StrBytes;
use odradek::client::{Client, ClientError, Connection, ShareMember, ShareRecord};
use odradek_common::{share_v2, ErrorCode};

use crate::harness::{producer_batch, start_dev_with};

/// Polls `member` until it is handed a record (or `within` passes).
async fn first_record(
    client: &mut Client,
    member: &mut ShareMember,
    within: Duration,
) -> Option<ShareRecord> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let got = member
            .poll(client, Duration::from_millis(200))
            .await
            .expect("poll");
        if let Some(r) = got.into_iter().next() {
            return Some(r);
        }
    }
    None
}

#[test]
fn a_renewed_lock_keeps_a_record_from_the_other_members() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Locks of 2 s: the renewals below span twice that.
    let (_node, bootstrap) = start_dev_with(
        dir.path(),
        &[
            "group.share.min.record.lock.duration.ms=1000",
            "group.share.record.lock.duration.ms=2000",
        ],
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let mut client = Client::new(&bootstrap, "renew-test");
        client
            .create_topic("sr", 1, 1, &[])
            .await
            .expect("create topic");
        let topics = vec!["sr".to_string()];
        let mut a = ShareMember::join(&mut client, "sg", &topics)
            .await
            .expect("a joins");
        // A share group starts at the log's end: a's first polls set it there.
        assert!(first_record(&mut client, &mut a, Duration::from_secs(2))
            .await
            .is_none());
        client
            .produce("sr", 0, producer_batch(-1, -1, -1, 1, false), -1)
            .await
            .expect("produce");
        let held = first_record(&mut client, &mut a, Duration::from_secs(20))
            .await
            .expect("a acquires the record");
        assert_eq!(held.delivery_count, 1);
        let mut b = ShareMember::join(&mut client, "sg", &topics)
            .await
            .expect("b joins");

        // a renews every 700 ms for 4 s (twice the lock): b never gets the record.
        let until = Instant::now() + Duration::from_secs(4);
        while Instant::now() < until {
            a.renew(std::slice::from_ref(&held)).await.expect("renew");
            let failures = a.take_failures();
            assert!(failures.is_empty(), "{failures:?}");
            let got = b
                .poll(&mut client, Duration::from_millis(700))
                .await
                .expect("b polls");
            assert!(got.is_empty(), "b got a record a renewed: {got:?}");
        }

        // a stops: after its lock the record goes to b, as its second delivery.
        let taken = first_record(&mut client, &mut b, Duration::from_secs(10))
            .await
            .expect("b acquires the record once a's lock ran out");
        assert_eq!(
            (taken.record.offset, taken.delivery_count),
            (held.record.offset, 2)
        );
        // a can no longer renew it.
        a.renew(std::slice::from_ref(&held)).await.expect("renew");
        let failures = a.take_failures();
        assert!(
            matches!(
                failures.as_slice(),
                [f] if matches!(f.error, ClientError::Kafka { code, .. } if code == ErrorCode::InvalidRecordState.code())
            ),
            "{failures:?}"
        );

        // A ShareFetch v2 that renews and asks for records (MaxWaitMs, MaxRecords...) is
        // refused as a whole.
        let mut conn = Connection::connect(&bootstrap, "renew-test")
            .await
            .expect("connect");
        let req = ShareFetchRequest::default()
            .with_group_id(Some(GroupId(StrBytes::from_static_str("sg"))))
            .with_member_id(Some(StrBytes::from_static_str("someone")))
            .with_share_session_epoch(0)
            .with_max_wait_ms(500)
            .with_max_records(10);
        let renewing = |v1: &[u8]| -> Result<Vec<u8>, String> {
            let at = share_v2::request_fields_at(true, v1).map_err(|e| e.to_string())?;
            Ok([&v1[..at], &[0, 1], &v1[at..]].concat())
        };
        let resp: ShareFetchResponse = conn
            .send_newer(&req, 2, 1, renewing, |b: &[u8]| Ok(b.to_vec()))
            .await
            .expect("answered");
        assert_eq!(resp.error_code, ErrorCode::InvalidRequest.code());
    });
}
