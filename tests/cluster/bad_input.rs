//! Hostile frames against `odradek-broker --dev` itself: requests whose arrays claim billions of
//! elements (the decoder would reserve hundreds of GB before reading one) close their
//! connection, and the broker keeps serving everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use odradek_client::Client;

fn varint(mut v: u32, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A request: header v1 (non-flexible) or v2 (flexible, empty tagged fields), then `body`.
fn request(api_key: i16, version: i16, flexible: bool, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&api_key.to_be_bytes());
    f.extend_from_slice(&version.to_be_bytes());
    f.extend_from_slice(&7i32.to_be_bytes());
    f.extend_from_slice(&(-1i16).to_be_bytes()); // client id: null
    if flexible {
        f.push(0); // no tagged fields
    }
    f.extend_from_slice(body);
    let mut framed = (f.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&f);
    framed
}

fn hostile_frames() -> Vec<(&'static str, Vec<u8>)> {
    let huge = 0x7fff_ffffi32.to_be_bytes();
    let mut produce_v3 = Vec::new();
    produce_v3.extend_from_slice(&(-1i16).to_be_bytes()); // transactional id: null
    produce_v3.extend_from_slice(&1i16.to_be_bytes()); // acks
    produce_v3.extend_from_slice(&1000i32.to_be_bytes()); // timeout
    produce_v3.extend_from_slice(&huge); // topics
    let mut produce_v9 = vec![0u8]; // transactional id: null (compact)
    produce_v9.extend_from_slice(&1i16.to_be_bytes());
    produce_v9.extend_from_slice(&1000i32.to_be_bytes());
    varint(u32::MAX, &mut produce_v9); // topics: 2^32 - 2 of them
    let mut metadata_v12 = Vec::new();
    varint(u32::MAX, &mut metadata_v12); // topics
    let mut fetch_v4 = Vec::new();
    fetch_v4.extend_from_slice(&(-1i32).to_be_bytes()); // replica id
    fetch_v4.extend_from_slice(&500i32.to_be_bytes()); // max wait
    fetch_v4.extend_from_slice(&1i32.to_be_bytes()); // min bytes
    fetch_v4.extend_from_slice(&1_000_000i32.to_be_bytes()); // max bytes
    fetch_v4.push(0); // isolation level
    fetch_v4.extend_from_slice(&huge); // topics
    let mut list_offsets_v1 = (-1i32).to_be_bytes().to_vec(); // replica id
    list_offsets_v1.extend_from_slice(&huge); // topics
    vec![
        ("Produce v3", request(0, 3, false, &produce_v3)),
        ("Produce v9", request(0, 9, true, &produce_v9)),
        ("Metadata v12", request(3, 12, true, &metadata_v12)),
        ("Fetch v4", request(1, 4, false, &fetch_v4)),
        ("ListOffsets v1", request(2, 1, false, &list_offsets_v1)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrays_claiming_billions_of_elements_close_only_their_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut node, bootstrap) = crate::harness::start_dev(dir.path());
    for (what, frame) in hostile_frames() {
        let mut s = TcpStream::connect(&bootstrap).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(&frame).expect("write");
        let mut b = [0u8; 1];
        let closed = matches!(s.read(&mut b), Ok(0) | Err(_));
        assert!(closed, "{what}: connection closed");
        assert!(
            node.child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(None))),
            "{what}: the broker died\n{}",
            node.log_text()
        );
        // Everyone else is still served.
        let mut client = Client::new(&bootstrap, "after-hostile-frame");
        client
            .metadata(None, false)
            .await
            .unwrap_or_else(|e| panic!("{what}: broker no longer serves: {e}"));
    }
}
