//! One client connection: framing and decoding ahead, handling one request at a time, writing
//! responses in order as soon as each is ready.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use crate::metrics::{FrontendMetrics, Timing};
use crate::security::authenticator::{Authenticator, ReadMode, Reply, Verdict};
use crate::security::SaslSettings;
use crate::server::{Shared, API_VERSIONS};
use crate::zero_copy::{self, Copying, Piece, ResponseWriter, Sendfile};
use crate::{Handled, PendingResponse, RequestContext, RequestHandler, Session};

/// A response on its way to the writer, in request order.
enum Outgoing {
    /// Encoded and ready (with its request's times, when it answers one).
    Frame(Bytes, Option<Timing>),
    /// Encoded and ready, with file ranges to send in its holes.
    Pieces(Vec<Piece>, Option<Timing>),
    /// Taken effect; the response comes when the future completes.
    Later {
        api_key: ApiKey,
        version: i16,
        correlation_id: i32,
        response: PendingResponse,
        timing: Option<Timing>,
    },
}

/// How long the request being handled may take to finish once the frontend stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Kafka's `sasl.server.max.receive.size` default: the largest frame before authentication.
pub(crate) const SASL_MAX_RECEIVE_BYTES: usize = 524_288;

/// The part of a frame's body read (and charged to the pool) before the rest is reserved.
pub(crate) const INITIAL_FRAME_BYTES: usize = 1024;

/// A decoded request waiting for its turn, holding the memory it was read into.
struct Queued {
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    work: Work,
    /// When it was read and decoded.
    received: Instant,
    /// Released once the request has been handled.
    _memory: FrameMemory,
    _in_flight: InFlight,
}

enum Work {
    /// ApiVersions, which the frontend answers itself.
    Answered(Box<ResponseKind>),
    /// A raw SASL token (after a v0 SaslHandshake).
    RawToken(Bytes),
    /// For the handler, with the header's client id. Boxed: `RequestKind` is large, and the
    /// queue's slots are allocated per connection.
    Handle(Box<RequestKind>, Option<String>, crate::newer::NewerFields),
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
    #[error("frontend stopping")]
    Stopped,
    #[error("idle for connections.max.idle.ms")]
    Idle,
}

/// A connection's stream, split into the request reader and the response writer.
pub(crate) trait Transport: Send + 'static {
    type Reader: AsyncRead + Unpin + Send + 'static;
    type Writer: ResponseWriter;
    fn into_halves(self) -> (Self::Reader, Self::Writer);
}

/// A plaintext TCP connection: responses' file ranges go out with `sendfile`.
impl Transport for tokio::net::TcpStream {
    type Reader = tokio::net::tcp::OwnedReadHalf;
    type Writer = Sendfile;

    fn into_halves(self) -> (Self::Reader, Self::Writer) {
        let (read, write) = self.into_split();
        (read, Sendfile(write))
    }
}

/// Any other stream (TLS, an in-memory pipe): file ranges are copied.
pub(crate) struct AnyStream<S>(pub(crate) S);

impl<S: AsyncRead + AsyncWrite + Send + 'static> Transport for AnyStream<S> {
    type Reader = tokio::io::ReadHalf<S>;
    type Writer = Copying<tokio::io::WriteHalf<S>>;

    fn into_halves(self) -> (Self::Reader, Self::Writer) {
        let (read, write) = tokio::io::split(self.0);
        (read, Copying(write))
    }
}

pub(crate) async fn run<S, H>(
    stream: S,
    peer: SocketAddr,
    session: Arc<Session>,
    sasl: Option<Arc<SaslSettings>>,
    shared: Arc<Shared<H>>,
    mut stop: watch::Receiver<bool>,
) where
    S: Transport,
    H: RequestHandler,
{
    let (read, write) = stream.into_halves();
    let queue = shared.config.queued_max_requests;
    let (request_tx, mut requests) = mpsc::channel::<Queued>(queue);
    let (response_tx, responses) = mpsc::channel::<Outgoing>(queue);
    // Until a SASL connection has authenticated, the reader takes one frame at a time and
    // waits to be told how to read the next (a request, or a raw token after a v0 handshake).
    let (mut gate_tx, gate_rx) = match sasl {
        Some(_) => {
            let (tx, rx) = mpsc::channel::<ReadMode>(1);
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let mut auth = Authenticator::new(session, sasl);
    let writer = tokio::spawn(write_responses(
        write,
        responses,
        peer,
        Arc::clone(&shared.metrics),
    ));
    let reader = {
        let shared = Arc::clone(&shared);
        let stop = stop.clone();
        tokio::spawn(async move {
            let result = read_requests(read, &shared, request_tx, stop, gate_rx).await;
            match &result {
                Ok(()) | Err(Close::Eof) | Err(Close::Stopped) | Err(Close::Idle) => {
                    tracing::debug!(%peer, "connection closed")
                }
                Err(e) => tracing::info!(%peer, reason = %e, "closing connection"),
            }
        })
    };
    // One request at a time, in arrival order.
    loop {
        let queued = tokio::select! {
            q = requests.recv() => q,
            _ = stop.wait_for(|s| *s) => None,
        };
        let Some(queued) = queued else { break };
        let started = Instant::now();
        let api = shared.metrics.request(queued.api_key, queued.version);
        let mut close = false;
        let handled = match queued.work {
            Work::Answered(response) => Handled::Done(Some(*response)),
            Work::RawToken(token) => match auth.on_raw_token(&token, tokio::time::Instant::now()) {
                Verdict::Reply(Reply::Raw(frame)) => {
                    let _ = response_tx.send(Outgoing::Frame(frame, None)).await;
                    Handled::Done(None)
                }
                Verdict::Close { delay, reason, .. } => {
                    tracing::info!(%peer, %reason, "SASL authentication failed; closing");
                    let _ = tokio::time::timeout(delay, stop.wait_for(|s| *s)).await;
                    break;
                }
                _ => Handled::Done(None),
            },
            Work::Handle(request, client_id, newer) => {
                match auth.on_request(
                    queued.api_key,
                    queued.version,
                    request,
                    tokio::time::Instant::now(),
                ) {
                    Verdict::Pass(request) => {
                        let ctx = RequestContext {
                            api_key: queued.api_key,
                            api_version: queued.version,
                            correlation_id: queued.correlation_id,
                            client_id,
                            peer,
                            session: Arc::clone(auth.session()),
                            newer,
                        };
                        // Handled in this task (no hop to another), a panic caught as the end
                        // of this connection only.
                        let handler = Arc::clone(&shared.handler);
                        // A span per request at debug level only (it costs too much at info),
                        // and no wrapper at all when debug is off.
                        let task: Pin<Box<dyn Future<Output = Handled> + Send>> = if tracing::enabled!(
                            tracing::Level::DEBUG
                        ) {
                            let span = tracing::debug_span!("request", api = ?queued.api_key, version = queued.version, correlation_id = queued.correlation_id, client_id = ctx.client_id.as_deref().unwrap_or(""), %peer);
                            Box::pin(tracing::Instrument::instrument(
                                async move { handler.handle(ctx, *request).await },
                                span,
                            ))
                        } else {
                            Box::pin(async move { handler.handle(ctx, *request).await })
                        };
                        let mut task = CatchUnwind(task);
                        let done = tokio::select! {
                            r = &mut task => Some(r),
                            _ = stop.wait_for(|s| *s) => None,
                        };
                        let done = match done {
                            Some(r) => Some(r),
                            None => tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await.ok(),
                        };
                        match done {
                            Some(Ok(r)) => r,
                            Some(Err(())) => {
                                tracing::error!(%peer, api_key = ?queued.api_key, "request handler panicked; closing the connection");
                                break;
                            }
                            None => break,
                        }
                    }
                    Verdict::Reply(Reply::Response(r)) => Handled::Done(Some(r)),
                    Verdict::Reply(Reply::Raw(frame)) => {
                        let _ = response_tx.send(Outgoing::Frame(frame, None)).await;
                        Handled::Done(None)
                    }
                    Verdict::Close {
                        reply,
                        delay,
                        reason,
                    } => {
                        tracing::info!(%peer, %reason, "closing connection");
                        // A failed authentication is answered late (brute force costs time).
                        let _ = tokio::time::timeout(delay, stop.wait_for(|s| *s)).await;
                        close = true;
                        match reply {
                            Some(Reply::Response(r)) => Handled::Done(Some(r)),
                            Some(Reply::Raw(frame)) => {
                                let _ = response_tx.send(Outgoing::Frame(frame, None)).await;
                                Handled::Done(None)
                            }
                            None => break,
                        }
                    }
                }
            }
        };
        drop(queued._memory);
        let handled_at = Instant::now();
        let timing = api.map(|api| Timing {
            api,
            received: queued.received,
            started,
            handled: handled_at,
            ready: handled_at,
        });
        let (handled, mute) = match handled {
            Handled::Muting(inner, d) => (*inner, d),
            h => (h, Duration::ZERO),
        };
        if let Some(gate) = &gate_tx {
            let mode = auth.read_mode();
            if close || mode == ReadMode::Open || gate.send(mode).await.is_err() {
                if mode == ReadMode::Open && !close {
                    let _ = gate.send(mode).await;
                }
                gate_tx = None;
            }
        }
        let outgoing = match handled {
            Handled::Done(None) => {
                if close {
                    break;
                }
                if !mute.is_zero() {
                    let _ = tokio::time::timeout(mute, stop.wait_for(|s| *s)).await;
                }
                continue;
            }
            Handled::Muting(..) => unreachable!("unwrapped above"),
            Handled::Files(response, attachments) => {
                if let Some(t) = &timing {
                    shared.metrics.response(&t.api, &response);
                }
                let encoded = zero_copy::encode(
                    queued.api_key,
                    queued.version,
                    queued.correlation_id,
                    &response,
                    attachments,
                );
                match encoded {
                    Ok(pieces) => Outgoing::Pieces(pieces, timing),
                    Err(e) => {
                        tracing::error!(%peer, api_key = ?queued.api_key, version = queued.version, error = %e, "cannot encode response; closing the connection");
                        break;
                    }
                }
            }
            Handled::Done(Some(response)) => {
                if let Some(t) = &timing {
                    shared.metrics.response(&t.api, &response);
                }
                let encoded = encode_response(
                    queued.api_key,
                    queued.version,
                    queued.correlation_id,
                    response,
                );
                match encoded {
                    Ok(f) => Outgoing::Frame(f, timing),
                    Err(e) => {
                        tracing::error!(%peer, api_key = ?queued.api_key, version = queued.version, error = %e, "cannot encode response; closing the connection");
                        break;
                    }
                }
            }
            Handled::Pending(response) => Outgoing::Later {
                api_key: queued.api_key,
                version: queued.version,
                correlation_id: queued.correlation_id,
                response,
                timing,
            },
        };
        // A peer that does not read its responses must not hold up a stop.
        let sent = tokio::select! {
            r = response_tx.send(outgoing) => r.is_ok(),
            _ = stop.wait_for(|s| *s) => false,
        };
        if !sent || close {
            break;
        }
        if !mute.is_zero() {
            // Muted: the next request waits (a stop still ends the wait).
            let _ = tokio::time::timeout(mute, stop.wait_for(|s| *s)).await;
        }
    }
    // Requests still queued are dropped unanswered (their memory with them); the peer sees the
    // connection close after the responses already made.
    reader.abort();
    drop(requests);
    drop(response_tx);
    // The writer ends once it has written what it holds; when stopping, it gets the grace
    // period to do so.
    let mut writer = writer;
    let stopping = tokio::select! {
        _ = &mut writer => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    if stopping
        && tokio::time::timeout(SHUTDOWN_GRACE, &mut writer)
            .await
            .is_err()
    {
        writer.abort();
    }
}

/// A future whose panic becomes `Err(())` (the panic message is printed by the panic hook).
struct CatchUnwind<F: ?Sized>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future + ?Sized> std::future::Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(_) => std::task::Poll::Ready(Err(())),
        }
    }
}

/// Counts a connection's requests queued or being handled while it lives.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(count))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The memory a read frame holds until its request has been handled.
struct FrameMemory {
    /// Its share of the broker-wide `queued.max.request.bytes` pool.
    _pool: OwnedSemaphorePermit,
    /// Its share of this connection's read-ahead bound.
    _ahead: OwnedSemaphorePermit,
}

/// Reads one frame: its size, then its body. The body is charged to this connection's
/// read-ahead bound (`socket.request.max.bytes` of requests not yet handled) and to the
/// broker-wide pool: first [`INITIAL_FRAME_BYTES`], and, once those have arrived, the rest in a
/// single acquisition. A frame waiting for memory thus holds at most its first KiB, and a
/// frame holding more waits for nothing but its peer, so waiting frames can never hold the pool
/// between them (see [`crate::FrontendConfig::validate`]); a peer that announces a large frame
/// and stalls early holds little.
async fn read_frame<R: AsyncRead + Unpin>(
    read: &mut R,
    max: usize,
    memory: &Arc<Semaphore>,
    ahead: &Arc<Semaphore>,
) -> Result<(Bytes, FrameMemory), Close> {
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
    let size = size as usize;
    // n <= socket.request.max.bytes <= i32::MAX; both semaphores hold at least that.
    let acquire = |pool: &Arc<Semaphore>, n: usize| {
        let pool = Arc::clone(pool);
        async move {
            pool.acquire_many_owned(n as u32)
                .await
                .map_err(|_| Close::Protocol("memory pool closed".into()))
        }
    };
    let ahead = acquire(ahead, size).await?;
    let first = size.min(INITIAL_FRAME_BYTES);
    let mut pool = acquire(memory, first).await?;
    // Read into spare capacity (no zero-filling), at most this frame's bytes.
    let mut buf = BytesMut::with_capacity(first);
    let mut frame = read.take(size as u64);
    fill(&mut frame, &mut buf, first).await?;
    if size > first {
        pool.merge(acquire(memory, size - first).await?);
        buf.reserve(size - buf.len());
        fill(&mut frame, &mut buf, size).await?;
    }
    Ok((
        buf.freeze(),
        FrameMemory {
            _pool: pool,
            _ahead: ahead,
        },
    ))
}

/// Reads into `buf`'s spare capacity until it holds `len` bytes.
async fn fill<R: AsyncRead + Unpin>(
    read: &mut R,
    buf: &mut BytesMut,
    len: usize,
) -> Result<(), Close> {
    while buf.len() < len {
        if read.read_buf(buf).await? == 0 {
            return Err(Close::Protocol("truncated request".into()));
        }
    }
    Ok(())
}

async fn read_requests<R: AsyncRead + Unpin, H: RequestHandler>(
    mut read: R,
    shared: &Shared<H>,
    tx: mpsc::Sender<Queued>,
    mut stop: watch::Receiver<bool>,
    mut gate: Option<mpsc::Receiver<ReadMode>>,
) -> Result<(), Close> {
    let max = shared.config.socket_request_max_bytes;
    let idle = Duration::from_millis(shared.config.connections_max_idle_ms.max(1));
    let ahead = Arc::new(Semaphore::new(max));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut mode = if gate.is_some() {
        ReadMode::Request
    } else {
        ReadMode::Open
    };
    loop {
        // Before authentication a frame may be at most `sasl.server.max.receive.size`.
        let limit = if mode == ReadMode::Open {
            max
        } else {
            max.min(SASL_MAX_RECEIVE_BYTES)
        };
        let next = read_frame(&mut read, limit, &shared.memory, &ahead);
        tokio::pin!(next);
        let (mut frame, memory) = loop {
            tokio::select! {
                f = &mut next => break f?,
                _ = stop.wait_for(|s| *s) => return Err(Close::Stopped),
                // connections.max.idle.ms: no complete request for that long, and none queued
                // or being handled (their permits are all back).
                _ = tokio::time::sleep(idle) => {
                    if in_flight.load(Ordering::Acquire) == 0 {
                        return Err(Close::Idle);
                    }
                }
            }
        };
        if mode == ReadMode::RawToken {
            let queued = Queued {
                correlation_id: 0,
                api_key: ApiKey::SaslAuthenticate,
                version: 0,
                work: Work::RawToken(frame),
                received: Instant::now(),
                _memory: memory,
                _in_flight: InFlight::new(&in_flight),
            };
            if tx.send(queued).await.is_err() {
                return Ok(());
            }
            mode = next_mode(&mut gate).await?;
            continue;
        }
        let (api_key, version, correlation_id) =
            crate::decode::frame_prefix(&frame).map_err(Close::Protocol)?;

        if mode == ReadMode::Request
            && !matches!(
                api_key,
                ApiKey::ApiVersions | ApiKey::SaslHandshake | ApiKey::SaslAuthenticate
            )
        {
            // Refused before its body is decoded, as Kafka does.
            return Err(Close::Protocol(format!(
                "unexpected {api_key:?} request before SASL authentication finished"
            )));
        }
        let queued = if api_key == ApiKey::ApiVersions {
            // Answered here, whatever the version: an unsupported one gets UNSUPPORTED_VERSION
            // and our ranges, in the v0 layout, which every client reads. The body is not
            // needed; v3+ carries only client name and version.
            let supported = (API_VERSIONS.min..=API_VERSIONS.max).contains(&version);
            Queued {
                correlation_id,
                api_key,
                version: if supported { version } else { 0 },
                work: Work::Answered(Box::new(ResponseKind::ApiVersions(
                    shared.apis.api_versions(version),
                ))),
                received: Instant::now(),
                _memory: memory,
                _in_flight: InFlight::new(&in_flight),
            }
        } else {
            let (header, request, newer) = crate::decode::decode_body(
                &mut frame,
                api_key,
                version,
                shared.apis.range(api_key),
            )
            .map_err(Close::Protocol)?;
            Queued {
                correlation_id,
                api_key,
                version,
                work: Work::Handle(
                    Box::new(request),
                    header.client_id.map(|c| c.to_string()),
                    newer,
                ),
                received: Instant::now(),
                _memory: memory,
                _in_flight: InFlight::new(&in_flight),
            }
        };
        if tx.send(queued).await.is_err() {
            return Ok(());
        }
        mode = next_mode(&mut gate).await?;
    }
}

/// While authenticating: how to read the next frame, as the connection says once it has
/// handled this one.
async fn next_mode(gate: &mut Option<mpsc::Receiver<ReadMode>>) -> Result<ReadMode, Close> {
    let Some(g) = gate else {
        return Ok(ReadMode::Open);
    };
    match g.recv().await {
        Some(ReadMode::Open) => {
            *gate = None;
            Ok(ReadMode::Open)
        }
        Some(mode) => Ok(mode),
        None => Err(Close::Stopped),
    }
}

fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    response: ResponseKind,
) -> Result<Bytes, String> {
    // Without attachments the frame is one piece of bytes.
    let pieces = zero_copy::encode(
        api_key,
        version,
        correlation_id,
        &response,
        Default::default(),
    )?;
    match <[Piece; 1]>::try_from(pieces) {
        Ok([Piece::Bytes(frame)]) => Ok(frame),
        _ => Err("a response without file ranges encoded with holes".into()),
    }
}

/// Writes a frame's pieces in order: bytes as they are, file ranges in their holes.
async fn write_pieces<W: ResponseWriter>(out: &mut W, pieces: Vec<Piece>) -> std::io::Result<()> {
    for piece in pieces {
        match piece {
            Piece::Bytes(b) => out.write_bytes(&b).await?,
            Piece::File(range) => out.write_file(range).await?,
        }
    }
    Ok(())
}

/// Responses ready together are gathered into one write up to this size; a larger response is
/// written on its own, without a copy.
const GATHER_BYTES: usize = 64 * 1024;

async fn write_responses<W: ResponseWriter>(
    mut out: W,
    mut rx: mpsc::Receiver<Outgoing>,
    peer: SocketAddr,
    metrics: Arc<FrontendMetrics>,
) {
    // Only finished (or pending) responses are queued here, in request order, so each is
    // written as soon as it and those before it are ready. No buffer is kept between writes
    // (idle connections cost little); frames already waiting are gathered into one write.
    let mut carried: Option<Outgoing> = None;
    // The times of the requests the next write answers.
    let mut timings: Vec<Timing> = Vec::new();
    loop {
        timings.clear();
        let next = match carried.take() {
            Some(o) => o,
            None => match rx.recv().await {
                Some(o) => o,
                None => break,
            },
        };
        let mut write = match next {
            Outgoing::Frame(f, t) => {
                timings.extend(t);
                f
            }
            Outgoing::Pieces(pieces, t) => {
                timings.extend(t);
                if let Err(e) = write_pieces(&mut out, pieces).await {
                    tracing::debug!(%peer, error = %e, "write failed");
                    return;
                }
                let written = Instant::now();
                for t in &timings {
                    t.written(written);
                }
                continue;
            }
            Outgoing::Later {
                api_key,
                version,
                correlation_id,
                response,
                timing,
            } => {
                let Some(response) = response.await else {
                    continue;
                };
                if let Some(mut t) = timing {
                    t.ready = Instant::now();
                    metrics.response(&t.api, &response);
                    timings.push(t);
                }
                match encode_response(api_key, version, correlation_id, response) {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::error!(%peer, ?api_key, version, error = %e, "cannot encode response; closing the connection");
                        return;
                    }
                }
            }
        };
        if write.len() < GATHER_BYTES {
            let mut gathered: Option<BytesMut> = None;
            while let Ok(next) = rx.try_recv() {
                let frame = match next {
                    Outgoing::Frame(f, t) if f.len() < GATHER_BYTES => {
                        timings.extend(t);
                        f
                    }
                    other => {
                        carried = Some(other);
                        break;
                    }
                };
                let g = gathered.get_or_insert_with(|| {
                    let mut g = BytesMut::with_capacity(2 * GATHER_BYTES);
                    g.extend_from_slice(&write);
                    g
                });
                g.extend_from_slice(&frame);
                if g.len() >= GATHER_BYTES {
                    break;
                }
            }
            if let Some(g) = gathered {
                write = g.freeze();
            }
        }
        if let Err(e) = out.write_bytes(&write).await {
            tracing::debug!(%peer, error = %e, "write failed");
            return;
        }
        let written = Instant::now();
        for t in &timings {
            t.written(written);
        }
    }
    let _ = out.shutdown().await;
}
