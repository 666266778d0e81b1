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
    Frontend, FrontendConfig, Handled, ListenerInfo, RequestContext, RequestHandler, RequestKind,
    ResponseKind, SecurityProtocol,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The delay a test asks of a handler: the client id, in milliseconds.
fn delay_of(ctx: &RequestContext) -> Duration {
    Duration::from_millis(
        ctx.client_id
            .as_deref()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0),
    )
}

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

    async fn handle(&self, ctx: RequestContext, request: RequestKind) -> Handled {
        match request {
            RequestKind::Metadata(_) if ctx.client_id.as_deref() == Some("panic") => {
                panic!("a handler bug")
            }
            RequestKind::Metadata(_) => {
                tokio::time::sleep(delay_of(&ctx)).await;
                Some(ResponseKind::Metadata(MetadataResponse::default())).into()
            }
            RequestKind::Produce(p) if p.acks == 0 => None.into(),
            // acks=all: the response waits (as long as the client id says) after the effect.
            RequestKind::Produce(p) if p.acks == -1 => {
                let delay = delay_of(&ctx);
                Handled::Pending(Box::pin(async move {
                    tokio::time::sleep(delay).await;
                    Some(ResponseKind::Produce(Default::default()))
                }))
            }
            _ => Some(ResponseKind::Metadata(MetadataResponse::default())).into(),
        }
    }
}

async fn start(config: FrontendConfig) -> std::net::SocketAddr {
    start_with(config, Arc::new(Slow)).await.0
}

fn plaintext() -> ListenerInfo {
    ListenerInfo {
        name: "PLAINTEXT".into(),
        security_protocol: SecurityProtocol::Plaintext,
    }
}

async fn start_with<H: RequestHandler>(
    config: FrontendConfig,
    handler: Arc<H>,
) -> (std::net::SocketAddr, Frontend<H>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let frontend = Frontend::new(config, handler).expect("valid config");
    let f = frontend.clone();
    tokio::spawn(async move {
        f.serve(
            listener,
            plaintext(),
            Default::default(),
            std::future::pending(),
        )
        .await
    });
    (addr, frontend)
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
async fn a_panicking_handler_closes_only_its_connection() {
    let addr = start(FrontendConfig::default()).await;
    let metadata = |client: &str| {
        frame(ApiKey::Metadata, 9, 1, client, |b| {
            MetadataRequest::default().encode(b, 9).expect("encode")
        })
    };
    let mut other = TcpStream::connect(addr).await.expect("connect");
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(&metadata("panic")).await.expect("write");
    assert!(
        closed(&mut s).await,
        "the panicking request's connection is closed"
    );
    other.write_all(&metadata("0")).await.expect("write");
    assert!(
        read_response(&mut other).await.is_some(),
        "another connection is served"
    );
    let mut fresh = TcpStream::connect(addr).await.expect("connect");
    fresh.write_all(&metadata("0")).await.expect("write");
    assert!(
        read_response(&mut fresh).await.is_some(),
        "new connections are served"
    );
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

/// Records the order in which Produce requests take effect; each is delayed inside the handler
/// by the number of milliseconds in its client id, so that, handled concurrently, later
/// requests would take effect first.
#[derive(Default)]
struct Recorder {
    effects: std::sync::Mutex<Vec<i32>>,
}

impl RequestHandler for Recorder {
    fn supported_apis(&self) -> Vec<(ApiKey, VersionRange)> {
        vec![
            (ApiKey::Produce, VersionRange { min: 3, max: 11 }),
            (ApiKey::Metadata, VersionRange { min: 0, max: 12 }),
        ]
    }

    async fn handle(&self, ctx: RequestContext, request: RequestKind) -> Handled {
        tokio::time::sleep(delay_of(&ctx)).await;
        assert_eq!(ctx.session.listener.name, "PLAINTEXT");
        assert_eq!(ctx.session.principal.to_string(), "User:ANONYMOUS");
        match request {
            RequestKind::Produce(_) => {
                self.effects
                    .lock()
                    .expect("not poisoned")
                    .push(ctx.correlation_id);
                Some(ResponseKind::Produce(Default::default())).into()
            }
            _ => Some(ResponseKind::Metadata(MetadataResponse::default())).into(),
        }
    }
}

#[tokio::test]
async fn pipelined_produce_requests_take_effect_in_request_order() {
    let recorder = Arc::new(Recorder::default());
    let (addr, _frontend) = start_with(FrontendConfig::default(), Arc::clone(&recorder)).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut all = BytesMut::new();
    let n = 30;
    for i in 0..n {
        // Earlier requests are held longer inside the handler.
        let delay = ((n - i) * 7) % 50;
        all.extend_from_slice(&frame(ApiKey::Produce, 9, i, &delay.to_string(), |b| {
            ProduceRequest::default()
                .with_acks(1)
                .encode(b, 9)
                .expect("encode")
        }));
    }
    s.write_all(&all).await.expect("write");
    for i in 0..n {
        let mut resp = read_response(&mut s).await.expect("response");
        let header = ResponseHeader::decode(&mut resp, ApiKey::Produce.response_header_version(9))
            .expect("header");
        assert_eq!(header.correlation_id, i, "responses in request order");
    }
    let effects = recorder.effects.lock().expect("not poisoned").clone();
    assert_eq!(
        effects,
        (0..n).collect::<Vec<_>>(),
        "requests of one connection take effect in arrival order"
    );
}

#[tokio::test]
async fn each_response_goes_out_as_soon_as_it_is_ready() {
    // A quick request pipelined with a slow one (3 s inside the handler): the quick one's
    // response goes out at once, not when the connection has nothing left in progress (the
    // old writer flushed only then, so 20 pipelined Metadata requests came back together).
    let addr = start(FrontendConfig::default()).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut both = BytesMut::new();
    for (i, delay) in [(0, "0"), (1, "3000")] {
        both.extend_from_slice(&frame(ApiKey::Metadata, 9, i, delay, |b| {
            MetadataRequest::default().encode(b, 9).expect("encode")
        }));
    }
    let sent = std::time::Instant::now();
    s.write_all(&both).await.expect("write");
    let mut resp = read_response(&mut s).await.expect("response");
    let header = ResponseHeader::decode(&mut resp, ApiKey::Metadata.response_header_version(9))
        .expect("header");
    assert_eq!(header.correlation_id, 0);
    // Well below the slow request's 3 s; this is not a benchmark, it catches a response held
    // back behind a request still being handled.
    assert!(
        sent.elapsed() < Duration::from_millis(1500),
        "the first response was held back {:?}",
        sent.elapsed()
    );
    let mut resp = read_response(&mut s).await.expect("second response");
    let header = ResponseHeader::decode(&mut resp, ApiKey::Metadata.response_header_version(9))
        .expect("header");
    assert_eq!(header.correlation_id, 1);
}

#[tokio::test]
async fn requests_read_ahead_are_bounded_by_queued_max_request_bytes() {
    // A pool of 64 KiB: 32 KiB for a largest request beside 1 KiB for each of 32 connections.
    let (addr, frontend) = start_with(
        FrontendConfig {
            socket_request_max_bytes: 32 * 1024,
            queued_max_request_bytes: 64 * 1024,
            max_connections: 32,
            ..FrontendConfig::default()
        },
        Arc::new(Slow),
    )
    .await;
    let metadata = || {
        frame(ApiKey::Metadata, 9, 1, "0", |b| {
            MetadataRequest::default().encode(b, 9).expect("encode")
        })
    };
    // Twenty peers announce a 30 KiB request, send 100 bytes of it and stall: each is charged
    // its first KiB only, and a normal client is still served beside them.
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(&(30 * 1024i32).to_be_bytes())
            .await
            .expect("size");
        s.write_all(&[0u8; 100]).await.expect("partial body");
        stalled.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(frontend.queued_request_bytes(), 20 * 1024);
    let mut ok = TcpStream::connect(addr).await.expect("connect");
    ok.write_all(&metadata()).await.expect("write");
    assert!(read_response(&mut ok).await.is_some(), "served beside them");
    // A peer past its first KiB is charged its whole frame at once, and no more.
    let mut big = TcpStream::connect(addr).await.expect("connect");
    big.write_all(&(30 * 1024i32).to_be_bytes())
        .await
        .expect("size");
    big.write_all(&[0u8; 2048]).await.expect("partial body");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(frontend.queued_request_bytes(), 20 * 1024 + 30 * 1024);
    // Once the stalled peers go away, their memory comes back.
    drop(stalled);
    drop(big);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(frontend.queued_request_bytes(), 0, "all memory released");
    ok.write_all(&metadata()).await.expect("write");
    assert!(read_response(&mut ok).await.is_some(), "still served");
}

#[tokio::test]
async fn an_idle_connection_is_closed_after_connections_max_idle_ms() {
    let addr = start(FrontendConfig {
        connections_max_idle_ms: 300,
        ..FrontendConfig::default()
    })
    .await;
    // Silent, and stalled inside a frame: both closed.
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let mut partial = TcpStream::connect(addr).await.expect("connect");
    partial
        .write_all(&1000i32.to_be_bytes())
        .await
        .expect("size");
    // A request handled for longer than the idle time keeps its connection.
    let mut busy = TcpStream::connect(addr).await.expect("connect");
    busy.write_all(&frame(ApiKey::Metadata, 9, 1, "900", |b| {
        MetadataRequest::default().encode(b, 9).expect("encode")
    }))
    .await
    .expect("write");
    assert!(closed(&mut silent).await, "silent connection closed");
    assert!(closed(&mut partial).await, "stalled connection closed");
    assert!(
        read_response(&mut busy).await.is_some(),
        "a request in progress is not idleness"
    );
}

#[test]
fn bounds_that_cannot_serve_a_request_are_refused_naming_the_key() {
    let bad = FrontendConfig {
        // 100 MiB, the largest request: nothing left for the other connections' first KiB.
        queued_max_request_bytes: 100 * 1024 * 1024,
        ..FrontendConfig::default()
    };
    let err = Frontend::new(bad, Arc::new(Slow)).expect_err("refused");
    assert_eq!(err.key, "queued.max.request.bytes");
    let bad = FrontendConfig {
        queued_max_requests: 0,
        ..FrontendConfig::default()
    };
    assert_eq!(
        Frontend::new(bad, Arc::new(Slow)).expect_err("refused").key,
        "queued.max.requests"
    );
}

#[tokio::test]
async fn pending_responses_keep_request_order_and_do_not_hold_up_later_requests() {
    // Request 0 is an acks=all produce whose response waits 400 ms after its effect; request 1
    // is answered at once. Request 1 is handled meanwhile, but its response waits its turn.
    let addr = start(FrontendConfig::default()).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut all = BytesMut::new();
    all.extend_from_slice(&frame(ApiKey::Produce, 9, 0, "400", |b| {
        ProduceRequest::default()
            .with_acks(-1)
            .encode(b, 9)
            .expect("encode")
    }));
    all.extend_from_slice(&frame(ApiKey::Metadata, 9, 1, "0", |b| {
        MetadataRequest::default().encode(b, 9).expect("encode")
    }));
    let sent = std::time::Instant::now();
    s.write_all(&all).await.expect("write");
    for i in 0..2 {
        let mut resp = read_response(&mut s).await.expect("response");
        let header_version = if i == 0 {
            ApiKey::Produce.response_header_version(9)
        } else {
            ApiKey::Metadata.response_header_version(9)
        };
        let header = ResponseHeader::decode(&mut resp, header_version).expect("header");
        assert_eq!(header.correlation_id, i, "responses in request order");
    }
    assert!(
        sent.elapsed() >= Duration::from_millis(400),
        "the pending one was awaited"
    );
}
