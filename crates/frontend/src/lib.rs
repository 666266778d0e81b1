//! `odradek-frontend`: the Kafka wire protocol server.
//!
//! # What it owns
//! Listening sockets, framing (4-byte size prefix, bounded by `socket.request.max.bytes`),
//! request headers, decoding and encoding of messages with the `kafka-protocol` crate (no
//! hand-written codecs), ApiVersions (answered here, with Kafka's traps handled: Produce is
//! advertised from version 0 though v0-2 are refused, the response header is always v0, an
//! unsupported ApiVersions version gets UNSUPPORTED_VERSION plus our ranges), each connection's
//! [`Session`] (listener, security protocol, principal), and the bounds: connections
//! (`max.connections`, broker-wide), requests read ahead per connection (`queued.max.requests`)
//! and bytes of requests read but not yet handled, broker-wide (`queued.max.request.bytes`).
//!
//! What a request means is the [`RequestHandler`]'s business (the broker, in `odradek-server`).
//! The frontend measures every request ([`metrics`]): counts per API and version, error codes
//! of responses, and the time queued, handled, waiting (purgatory) and being sent.
//!
//! # Ordering
//! Requests of one connection take effect in the order they arrived, as in Kafka: a connection
//! reads and decodes ahead (bounded), but hands its requests to the handler one at a time, the
//! next only once the previous one has taken effect. Producers with several requests in flight
//! rely on this for the order of records within a partition. A request whose response waits
//! for more than its effect (an acks=all Produce waiting for replication) hands back a
//! [`Handled::Pending`] response, so the next request's append need not wait for the previous
//! one's replication. Responses go out in request order, each as soon as it and those before it
//! are ready (pipelined responses that are ready together share a write).
//!
//! # Bad input and overload
//! A frame that is empty, larger than the bound, truncated, for an unknown API, of an unsupported
//! version or undecodable closes that connection (as Kafka does); nothing panics and every other
//! connection carries on. When the bytes of requests read ahead reach `queued.max.request.bytes`,
//! connections stop reading until handled requests free memory: back-pressure, never a crash.
//! One caveat: the `kafka-protocol` decoders reserve an array's capacity from the count a
//! request claims, so a tiny request claiming billions of elements makes one huge allocation,
//! and a refused allocation aborts the process. Run a frontend on an allocator that grants such
//! reservations lazily ([`alloc::NodeAllocator`], which `odradek-broker` uses). Upstream
//! proposals bound the reservation by the bytes left (kafka-protocol-rs pull requests 152 and
//! 200). The `request` fuzz target runs on that allocator under a 1 GiB RSS limit: the memory
//! decoding really commits stays small, the reservation itself does not.
//!
//! # Threading
//! Per connection, a reader task frames and decodes requests into a bounded queue; the
//! connection's task takes them one at a time, runs each handler itself (a handler that panics
//! is caught and closes only its connection), and passes the encoded response to a writer
//! task. The stream is any `AsyncRead + AsyncWrite` ([`Frontend::serve_connection`]), so TLS can
//! wrap a TCP stream without reshaping this crate.
//!
//! # Zero copy
//! A handler may answer with file ranges in place of a response's record bytes
//! ([`Handled::Files`], [`Attachments`]). On a plaintext TCP listener the writer sends them
//! with `sendfile(2)`, straight from the page cache; on any other stream (TLS) it reads them
//! into memory once. Ranges not in the page cache are read on the blocking pool, never on an
//! async worker.

pub mod alloc;
mod connection;
pub mod decode;
mod errors;
pub mod metrics;
pub mod newer;
pub mod security;
mod server;
mod session;
mod zero_copy;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
pub use kafka_protocol::protocol::VersionRange;
pub use metrics::FrontendMetrics;
pub use security::ListenerSecurity;
pub use server::{ConfigError, Frontend, FrontendConfig};
pub use session::{
    KafkaPrincipal, ListenerInfo, SecurityProtocol, Session, UnknownSecurityProtocol,
};
pub use zero_copy::{Attachments, FileRange};

/// Who sent a request, and over what.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The API.
    pub api_key: ApiKey,
    /// Its version.
    pub api_version: i16,
    /// The correlation id from the header.
    pub correlation_id: i32,
    /// `client.id` from the header.
    pub client_id: Option<String>,
    /// The peer's address.
    pub peer: std::net::SocketAddr,
    /// The connection's session: listener, security protocol, principal.
    pub session: Arc<Session>,
    /// The request's fields of a version newer than the codec crate's (defaults otherwise).
    pub newer: newer::NewerFields,
}

/// A response that is not ready yet.
pub type PendingResponse = Pin<Box<dyn Future<Output = Option<ResponseKind>> + Send>>;

/// What a handler made of a request.
// Moved once per request; boxing the common case would cost an allocation per response.
#[allow(clippy::large_enum_variant)]
pub enum Handled {
    /// Its response (`None`: no response, as for Produce with acks=0).
    Done(Option<ResponseKind>),
    /// Its response, whose `records` hold stand-ins for the attached file ranges (a Fetch):
    /// a plaintext TCP connection sends them with `sendfile`, any other stream copies them.
    Files(ResponseKind, Attachments),
    /// The request has taken effect, and its response comes when this future completes (an
    /// acks=all Produce waiting for replication). The connection goes on with its next request
    /// meanwhile: effects stay in arrival order, and responses still go out in request order.
    Pending(PendingResponse),
    /// A client over its quota: the response goes out as the inner one does, then the
    /// connection handles nothing more of this client for the duration (Kafka's muted channel,
    /// KIP-219; the response's `throttle_time_ms` tells the client the same).
    Muting(Box<Handled>, std::time::Duration),
}

impl std::fmt::Debug for Handled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Handled::Done(r) => f.debug_tuple("Done").field(r).finish(),
            Handled::Files(r, a) => f.debug_tuple("Files").field(r).field(a).finish(),
            Handled::Pending(_) => f.write_str("Pending"),
            Handled::Muting(h, d) => f.debug_tuple("Muting").field(h).field(d).finish(),
        }
    }
}

impl From<Option<ResponseKind>> for Handled {
    fn from(r: Option<ResponseKind>) -> Self {
        Handled::Done(r)
    }
}

/// The broker side of the protocol.
pub trait RequestHandler: Send + Sync + 'static {
    /// The APIs served (ApiVersions excluded: the frontend answers it) and their version ranges.
    /// Asked once, when the [`Frontend`] is built.
    fn supported_apis(&self) -> Vec<(ApiKey, VersionRange)>;

    /// Handles a decoded request. The next request of the same connection is handed over only
    /// once this future has finished, that is once the request has taken effect; a request
    /// whose response must wait for more (replication) returns [`Handled::Pending`].
    fn handle(
        &self,
        ctx: RequestContext,
        request: RequestKind,
    ) -> impl Future<Output = Handled> + Send;
}
