//! One client connection: framing, header decoding, ApiVersions, ordered responses.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable, VersionRange};
use odradek_common::ErrorCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::server::FrontendConfig;
use crate::{RequestContext, RequestHandler};

/// The ApiVersions range we answer.
const API_VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

/// A response on its way: spawned handling, or an answer computed inline.
enum Pending {
    Spawned {
        correlation_id: i32,
        api_key: ApiKey,
        version: i16,
        task: JoinHandle<Option<ResponseKind>>,
    },
    Ready {
        correlation_id: i32,
        api_key: ApiKey,
        version: i16,
        response: Box<ResponseKind>,
    },
}

pub(crate) struct Connection<H: RequestHandler> {
    stream: TcpStream,
    peer: SocketAddr,
    config: Arc<FrontendConfig>,
    handler: Arc<H>,
    stop: watch::Receiver<bool>,
}

/// Why a connection is closed.
#[derive(Debug, thiserror::Error)]
enum Close {
    #[error("peer closed the connection")]
    Eof,
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Protocol(String),
}

impl<H: RequestHandler> Connection<H> {
    pub(crate) fn new(
        stream: TcpStream,
        peer: SocketAddr,
        config: Arc<FrontendConfig>,
        handler: Arc<H>,
        stop: watch::Receiver<bool>,
    ) -> Self {
        Self {
            stream,
            peer,
            config,
            handler,
            stop,
        }
    }

    pub(crate) async fn run(self) {
        let Connection {
            stream,
            peer,
            config,
            handler,
            mut stop,
        } = self;
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::channel::<Pending>(config.queued_max_requests.max(1));
        let writer = tokio::spawn(write_responses(write, rx, peer));
        let result = tokio::select! {
            r = read_requests(read, peer, &config, &handler, &tx) => r,
            _ = stop.wait_for(|s| *s) => Ok(()),
        };
        match &result {
            Ok(()) | Err(Close::Eof) => tracing::debug!(%peer, "connection closed"),
            Err(e) => tracing::info!(%peer, reason = %e, "closing connection"),
        }
        drop(tx);
        // Finish what was read: the writer drains the queue, then ends.
        let _ = writer.await;
    }
}

async fn read_frame(read: &mut OwnedReadHalf, max: usize) -> Result<Bytes, Close> {
    let mut size = [0u8; 4];
    match read.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(Close::Eof),
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(size);
    if size <= 0 || size as usize > max {
        return Err(Close::Protocol(format!(
            "request size {size} is outside 1..={max} (socket.request.max.bytes)"
        )));
    }
    // Read into spare capacity (no zero-filling), at most this frame's bytes.
    let mut buf = BytesMut::with_capacity(size as usize);
    let mut frame = (&mut *read).take(size as u64);
    while buf.len() < size as usize {
        if frame.read_buf(&mut buf).await? == 0 {
            return Err(Close::Protocol("truncated request".into()));
        }
    }
    Ok(buf.freeze())
}

async fn read_requests<H: RequestHandler>(
    mut read: OwnedReadHalf,
    peer: SocketAddr,
    config: &FrontendConfig,
    handler: &Arc<H>,
    tx: &mpsc::Sender<Pending>,
) -> Result<(), Close> {
    loop {
        let mut frame = read_frame(&mut read, config.socket_request_max_bytes).await?;
        if frame.len() < 8 {
            return Err(Close::Protocol("request shorter than a header".into()));
        }
        let api_key_raw = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let api_key = ApiKey::try_from(api_key_raw)
            .map_err(|_| Close::Protocol(format!("unknown API key {api_key_raw}")))?;

        if api_key == ApiKey::ApiVersions {
            // Answered here, whatever the version: an unsupported one gets our ranges.
            let response = api_versions(handler.as_ref(), version);
            // An unsupported version is answered in the v0 layout, which every client reads.
            let supported = (API_VERSIONS.min..=API_VERSIONS.max).contains(&version);
            let version = if supported { version } else { 0 };
            // The body is not needed; v3+ carries only client name and version.
            let pending = Pending::Ready {
                correlation_id,
                api_key,
                version,
                response: Box::new(ResponseKind::ApiVersions(response)),
            };
            if tx.send(pending).await.is_err() {
                return Ok(());
            }
            continue;
        }

        let range = handler
            .supported_apis()
            .into_iter()
            .find(|(k, _)| *k == api_key)
            .map(|(_, r)| r)
            .ok_or_else(|| Close::Protocol(format!("API {api_key:?} is not served")))?;
        if version < range.min || version > range.max || version < api_key.valid_versions().min {
            return Err(Close::Protocol(format!(
                "{api_key:?} version {version} is not supported ({}..={})",
                range.min.max(api_key.valid_versions().min),
                range.max
            )));
        }
        let header_version = api_key.request_header_version(version);
        let header = RequestHeader::decode(&mut frame, header_version)
            .map_err(|e| Close::Protocol(format!("bad request header: {e}")))?;
        let request = RequestKind::decode(api_key, &mut frame, version)
            .map_err(|e| Close::Protocol(format!("cannot decode {api_key:?} v{version}: {e}")))?;
        let ctx = RequestContext {
            api_key,
            api_version: version,
            client_id: header.client_id.map(|c| c.to_string()),
            peer,
            listener: config.listener.clone(),
        };
        let handler = Arc::clone(handler);
        let task = tokio::spawn(async move { handler.handle(ctx, request).await });
        if tx
            .send(Pending::Spawned {
                correlation_id,
                api_key,
                version,
                task,
            })
            .await
            .is_err()
        {
            return Ok(());
        }
    }
}

/// ApiVersions: our ranges, or UNSUPPORTED_VERSION with them for a version we do not know.
fn api_versions<H: RequestHandler>(handler: &H, version: i16) -> ApiVersionsResponse {
    let mut keys = vec![ApiVersion::default()
        .with_api_key(ApiKey::ApiVersions as i16)
        .with_min_version(API_VERSIONS.min)
        .with_max_version(API_VERSIONS.max)];
    for (key, range) in handler.supported_apis() {
        // librdkafka disables compression unless Produce is advertised from v0 (Kafka 4.0 does
        // the same and refuses v0-2 when they are used).
        let min = if key == ApiKey::Produce { 0 } else { range.min };
        keys.push(
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(range.max),
        );
    }
    keys.sort_by_key(|k| k.api_key);
    let mut response = ApiVersionsResponse::default().with_api_keys(keys);
    if !(API_VERSIONS.min..=API_VERSIONS.max).contains(&version) {
        response.error_code = ErrorCode::UnsupportedVersion.code();
    }
    response
}

async fn write_responses(write: OwnedWriteHalf, mut rx: mpsc::Receiver<Pending>, peer: SocketAddr) {
    let mut out = BufWriter::new(write);
    let mut buf = BytesMut::new();
    while let Some(p) = rx.recv().await {
        let (correlation_id, api_key, version, response) = match p {
            Pending::Ready {
                correlation_id,
                api_key,
                version,
                response,
            } => (correlation_id, api_key, version, Some(*response)),
            Pending::Spawned {
                correlation_id,
                api_key,
                version,
                task,
            } => match task.await {
                Ok(r) => (correlation_id, api_key, version, r),
                Err(e) => {
                    tracing::error!(%peer, ?api_key, error = %e, "request handler failed; closing the connection");
                    return;
                }
            },
        };
        let Some(response) = response else { continue };
        buf.clear();
        buf.put_i32(0); // size, filled below
                        // ApiVersions responses always use header v0, whatever the request version.
        let header_version = if api_key == ApiKey::ApiVersions {
            0
        } else {
            api_key.response_header_version(version)
        };
        let header = ResponseHeader::default().with_correlation_id(correlation_id);
        if let Err(e) = header.encode(&mut buf, header_version) {
            tracing::error!(%peer, error = %e, "cannot encode response header");
            return;
        }
        if let Err(e) = response.encode(&mut buf, version) {
            tracing::error!(%peer, ?api_key, version, error = %e, "cannot encode response; closing the connection");
            return;
        }
        let size = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&size.to_be_bytes());
        if out.write_all(&buf).await.is_err() {
            return;
        }
        // Flush when nothing else is ready, so pipelined responses share a write.
        if rx.is_empty() && out.flush().await.is_err() {
            return;
        }
    }
    let _ = out.flush().await;
    let _ = out.shutdown().await;
}
