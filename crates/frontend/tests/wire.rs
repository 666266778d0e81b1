//! The frontend over real sockets: ApiVersions traps, ordered pipelining, and bad input that
//! closes one connection while the server keeps serving others.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    ProduceRequest, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes, VersionRange};
use odradek_frontend::{
    serve, FrontendConfig, RequestContext, RequestHandler, RequestKind, ResponseKind,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Answers Metadata after a delay named in the client id (ms), so later requests can finish
/// first; Produce with acks=0 gets no response.
struct Slow;

impl RequestHandler for Slow {
    fn supported_apis(&self) -> Vec<(ApiKey, VersionRange)> {
        vec![
            (ApiKey::Metadata, VersionRange { min: 0, max: 12 }),
            (ApiKey::Produce, VersionRange { min: 3, max: 11 }),
        ]
    }

    async fn handle(&self, ctx: RequestContext, request: RequestKind) -> Option<ResponseKind> {
        match request {
            RequestKind::Metadata(_) => {
                let ms: u64 = ctx
                    .client_id
                    .as_deref()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Some(ResponseKind::Metadata(MetadataResponse::default()))
            }
            RequestKind::Produce(p) if p.acks == 0 => None,
            _ => Some(ResponseKind::Metadata(MetadataResponse::default())),
        }
    }
}

async fn start(config: FrontendConfig) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve(
        listener,
        config,
        Arc::new(Slow),
        std::future::pending(),
    ));
    addr
}

fn frame(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    body: impl FnOnce(&mut BytesMut),
) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.into())));
    let hv = api_key.request_header_version(version.max(api_key.valid_versions().min));
    header.encode(&mut buf, hv).expect("header");
    body(&mut buf);
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf.freeze()
}

async fn read_response(s: &mut TcpStream) -> Option<Bytes> {
    let mut size = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut size))
        .await
        .ok()?
        .ok()?;
    let mut buf = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut buf).await.ok()?;
    Some(Bytes::from(buf))
}

/// True if the server closed the connection (EOF, reset, or silence ended by a close).
async fn closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn api_versions_handles_kafkas_traps() {
    let addr = start(FrontendConfig::default()).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    for (version, correlation) in [(0i16, 1), (3, 2)] {
        let req = frame(ApiKey::ApiVersions, version, correlation, "t", |b| {
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("test"))
                .with_client_software_version(StrBytes::from_static_str("1"))
                .encode(b, version)
                .expect("encode")
        });
        s.write_all(&req).await.expect("write");
        let mut resp = read_response(&mut s).await.expect("response");
        // Header v0 even for v3: the correlation id and nothing else.
        let header = ResponseHeader::decode(&mut resp, 0).expect("header");
        assert_eq!(header.correlation_id, correlation);
        let body = ApiVersionsResponse::decode(&mut resp, version).expect("body");
        assert_eq!(body.error_code, 0);
        let produce = body
            .api_keys
            .iter()
            .find(|k| k.api_key == ApiKey::Produce as i16)
            .expect("produce advertised");
        assert_eq!(
            produce.min_version, 0,
            "Produce advertised from v0 for librdkafka"
        );
        assert!(body
            .api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::ApiVersions as i16 && k.max_version == 4));
        assert!(!resp.has_remaining(), "no trailing bytes");
    }

    // A version from the future: UNSUPPORTED_VERSION, with our ranges, in the v0 layout.
    let req = frame(ApiKey::ApiVersions, 99, 7, "t", |_| {});
    s.write_all(&req).await.expect("write");
    let mut resp = read_response(&mut s).await.expect("response");
    assert_eq!(
        ResponseHeader::decode(&mut resp, 0)
            .expect("header")
            .correlation_id,
        7
    );
    let body = ApiVersionsResponse::decode(&mut resp, 0).expect("v0 body");
    assert_eq!(body.error_code, 35);
    assert!(!body.api_keys.is_empty());
}

#[tokio::test]
async fn pipelined_responses_come_back_in_request_order() {
    let addr = start(FrontendConfig::default()).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut all = BytesMut::new();
    for i in 0..20 {
        // Earlier requests take longer.
        let delay = (20 - i) * 5;
        all.extend_from_slice(&frame(ApiKey::Metadata, 9, i, &delay.to_string(), |b| {
            MetadataRequest::default().encode(b, 9).expect("encode")
        }));
    }
    s.write_all(&all).await.expect("write");
    for i in 0..20 {
        let mut resp = read_response(&mut s).await.expect("response");
        let header = ResponseHeader::decode(&mut resp, ApiKey::Metadata.response_header_version(9))
            .expect("header");
        assert_eq!(header.correlation_id, i, "responses in request order");
        MetadataResponse::decode(&mut resp, 9).expect("body");
    }
}

#[tokio::test]
async fn bad_input_closes_only_that_connection() {
    let addr = start(FrontendConfig {
        socket_request_max_bytes: 1024,
        ..FrontendConfig::default()
    })
    .await;
    let good = || {
        frame(ApiKey::Metadata, 9, 1, "0", |b| {
            MetadataRequest::default().encode(b, 9).expect("encode")
        })
    };
    let bad_inputs: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"\x00\x00\x00\x0cthis is junk".to_vec()),
        ("oversize frame", 5000i32.to_be_bytes().to_vec()),
        ("negative size", (-1i32).to_be_bytes().to_vec()),
        ("zero size", 0i32.to_be_bytes().to_vec()),
        (
            "unknown api key",
            frame(ApiKey::Metadata, 9, 1, "x", |_| {})
                .iter()
                .enumerate()
                .map(|(i, b)| if i == 5 { 0x7f } else { *b })
                .collect(),
        ),
        (
            "unsupported version",
            frame(ApiKey::Metadata, 13, 1, "x", |_| {}).to_vec(),
        ),
        ("produce v2", {
            let mut f = frame(ApiKey::Produce, 3, 1, "x", |b| {
                ProduceRequest::default().encode(b, 3).expect("encode")
            })
            .to_vec();
            f[7] = 2; // version field low byte
            f
        }),
        ("truncated body", {
            let f = good();
            let mut v = f[..f.len() - 3].to_vec();
            v[..4].copy_from_slice(&((f.len() - 4 + 10) as i32).to_be_bytes());
            v.truncate(v.len());
            v
        }),
    ];
    for (what, bytes) in bad_inputs {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(&bytes).await.expect("write");
        if what == "truncated body" {
            s.shutdown().await.expect("half close");
        }
        assert!(closed(&mut s).await, "{what}: connection should be closed");
        // The server still serves a fresh connection.
        let mut ok = TcpStream::connect(addr).await.expect("connect");
        ok.write_all(&good()).await.expect("write");
        assert!(
            read_response(&mut ok).await.is_some(),
            "after {what}: server still serves"
        );
    }
}

#[tokio::test]
async fn acks_zero_produce_gets_no_response() {
    let addr = start(FrontendConfig::default()).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let produce = frame(ApiKey::Produce, 9, 1, "p", |b| {
        ProduceRequest::default()
            .with_acks(0)
            .encode(b, 9)
            .expect("encode")
    });
    let meta = frame(ApiKey::Metadata, 9, 2, "0", |b| {
        MetadataRequest::default().encode(b, 9).expect("encode")
    });
    s.write_all(&produce).await.expect("write");
    s.write_all(&meta).await.expect("write");
    let mut resp = read_response(&mut s).await.expect("response");
    let header = ResponseHeader::decode(&mut resp, ApiKey::Metadata.response_header_version(9))
        .expect("header");
    assert_eq!(
        header.correlation_id, 2,
        "the acks=0 produce was not answered"
    );
}
