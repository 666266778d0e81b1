//! SASL on a listener, over real sockets: only ApiVersions and the SASL APIs before
//! authentication, SaslHandshake v1 with SaslAuthenticate and v0 with raw tokens, the
//! principal every later request carries, a wrong password answered late and closed, the
//! pre-authentication frame bound, and KIP-368 re-authentication only for expiring sessions.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes, VersionRange};
use odradek_common::scram::{ScramCredential, ScramMechanism};
use odradek_frontend::security::{SaslCredentials, SaslSettings};
use odradek_frontend::{
    Frontend, FrontendConfig, Handled, ListenerInfo, ListenerSecurity, RequestContext,
    RequestHandler, RequestKind, ResponseKind, SecurityProtocol,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Answers Metadata with the request's principal as the cluster id.
struct WhoAmI;

impl RequestHandler for WhoAmI {
    fn supported_apis(&self) -> Vec<(ApiKey, VersionRange)> {
        vec![(ApiKey::Metadata, VersionRange { min: 0, max: 12 })]
    }

    async fn handle(&self, ctx: RequestContext, _request: RequestKind) -> Handled {
        let who = ctx.session.principal.to_string();
        Some(ResponseKind::Metadata(
            MetadataResponse::default().with_cluster_id(Some(StrBytes::from_string(who))),
        ))
        .into()
    }
}

struct Users(HashMap<String, String>);

impl SaslCredentials for Users {
    fn check_plain(&self, user: &str, password: &str) -> bool {
        self.0.get(user).is_some_and(|p| p == password)
    }
    fn scram(&self, m: ScramMechanism, user: &str) -> Option<ScramCredential> {
        self.0
            .get(user)
            .map(|p| ScramCredential::from_password(m, p, b"salt".to_vec(), 4096))
    }
}

async fn start(max_reauth_ms: u64) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let frontend = Frontend::new(FrontendConfig::default(), Arc::new(WhoAmI)).expect("valid");
    let security = ListenerSecurity {
        sasl: Some(Arc::new(SaslSettings {
            enabled_mechanisms: vec!["PLAIN".into(), "SCRAM-SHA-256".into()],
            credentials: Arc::new(Users([("alice".to_string(), "pw".to_string())].into())),
            max_reauth_ms,
            failed_authentication_delay_ms: 300,
        })),
        ..ListenerSecurity::default()
    };
    let info = ListenerInfo {
        name: "SASL_PLAINTEXT".into(),
        security_protocol: SecurityProtocol::SaslPlaintext,
    };
    tokio::spawn(async move {
        frontend
            .serve(listener, info, security, std::future::pending())
            .await
    });
    addr
}

fn frame<R: Encodable>(key: ApiKey, version: i16, correlation: i32, body: &R) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_static_str("t")))
        .encode(&mut buf, key.request_header_version(version))
        .expect("header");
    body.encode(&mut buf, version).expect("body");
    let size = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    buf.freeze()
}

/// The next frame's body, or `None` once the connection is closed.
async fn read_frame(s: &mut TcpStream) -> Option<Bytes> {
    let mut size = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut size))
        .await
        .expect("an answer or a close in time")
        .ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(size) as usize];
    s.read_exact(&mut body).await.ok()?;
    Some(Bytes::from(body))
}

async fn call<Resp: Decodable>(
    s: &mut TcpStream,
    key: ApiKey,
    version: i16,
    body: &impl Encodable,
) -> Option<Resp> {
    s.write_all(&frame(key, version, 7, body)).await.ok()?;
    let mut b = read_frame(s).await?;
    let h = ResponseHeader::decode(&mut b, key.response_header_version(version)).expect("header");
    assert_eq!(h.correlation_id, 7);
    Some(Resp::decode(&mut b, version).expect("response"))
}

async fn handshake(s: &mut TcpStream, version: i16, mechanism: &str) -> SaslHandshakeResponse {
    call(
        s,
        ApiKey::SaslHandshake,
        version,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(mechanism.into())),
    )
    .await
    .expect("a handshake answer")
}

async fn authenticate(s: &mut TcpStream, token: &[u8]) -> Option<SaslAuthenticateResponse> {
    call(
        s,
        ApiKey::SaslAuthenticate,
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(token)),
    )
    .await
}

async fn whoami(s: &mut TcpStream) -> Option<String> {
    let r: MetadataResponse = call(s, ApiKey::Metadata, 12, &MetadataRequest::default()).await?;
    r.cluster_id.map(|c| c.to_string())
}

#[tokio::test]
async fn plain_authenticates_and_every_request_carries_the_principal() {
    let addr = start(0).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let hs = handshake(&mut s, 1, "PLAIN").await;
    assert_eq!(hs.error_code, 0);
    assert_eq!(hs.mechanisms.len(), 2);
    let a = authenticate(&mut s, b"\0alice\0pw").await.expect("answer");
    assert_eq!((a.error_code, a.session_lifetime_ms), (0, 0));
    assert_eq!(whoami(&mut s).await.as_deref(), Some("User:alice"));
    // No expiring session: a second handshake is refused and the connection goes on.
    assert_eq!(handshake(&mut s, 1, "PLAIN").await.error_code, 34);
    assert_eq!(whoami(&mut s).await.as_deref(), Some("User:alice"));
}

#[tokio::test]
async fn requests_before_authentication_close_the_connection() {
    let addr = start(0).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(whoami(&mut s).await, None, "closed, not answered");
    // An unknown mechanism: UNSUPPORTED_SASL_MECHANISM with the enabled ones, then closed.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let hs = handshake(&mut s, 1, "GSSAPI").await;
    assert_eq!(hs.error_code, 33);
    assert_eq!(whoami(&mut s).await, None);
    // A frame over 512 KiB before authentication.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut big = BytesMut::new();
    big.put_i32(600_000);
    s.write_all(&big).await.expect("write");
    assert!(read_frame(&mut s).await.is_none());
}

#[tokio::test]
async fn a_wrong_password_is_answered_late_then_closed() {
    let addr = start(0).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(handshake(&mut s, 1, "PLAIN").await.error_code, 0);
    let started = Instant::now();
    let a = authenticate(&mut s, b"\0alice\0nope")
        .await
        .expect("answer");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(a.error_code, 58);
    assert!(a
        .error_message
        .as_deref()
        .is_some_and(|m| m.contains("Invalid username or password")));
    assert_eq!(whoami(&mut s).await, None);
}

#[tokio::test]
async fn a_v0_handshake_takes_raw_tokens() {
    let addr = start(0).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(handshake(&mut s, 0, "PLAIN").await.error_code, 0);
    // The token goes as a bare size-prefixed frame; the answer is one too (empty for PLAIN).
    let token = b"\0alice\0pw";
    let mut raw = BytesMut::new();
    raw.put_i32(token.len() as i32);
    raw.put_slice(token);
    s.write_all(&raw).await.expect("write");
    let answer = read_frame(&mut s).await.expect("a raw answer");
    assert!(answer.is_empty());
    assert_eq!(whoami(&mut s).await.as_deref(), Some("User:alice"));
}

#[tokio::test]
async fn expiring_sessions_reauthenticate_in_place_and_expired_ones_close() {
    let addr = start(400).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    assert_eq!(handshake(&mut s, 1, "PLAIN").await.error_code, 0);
    let a = authenticate(&mut s, b"\0alice\0pw").await.expect("answer");
    assert_eq!(a.session_lifetime_ms, 400);
    // Re-authentication is allowed once a second at most.
    assert_eq!(handshake(&mut s, 1, "PLAIN").await.error_code, 34);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // Expired: re-authenticating still works (the handshake is exempt), then requests go on.
    assert_eq!(handshake(&mut s, 1, "PLAIN").await.error_code, 0);
    let a = authenticate(&mut s, b"\0alice\0pw").await.expect("answer");
    assert_eq!(a.error_code, 0);
    assert_eq!(whoami(&mut s).await.as_deref(), Some("User:alice"));
    // Left to expire: the next request closes the connection.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(whoami(&mut s).await, None);
}
