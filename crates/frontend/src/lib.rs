//! `odradek-frontend`: the Kafka wire protocol server.
//!
//! # What it owns
//! Listening sockets, framing (4-byte size prefix, bounded by `socket.request.max.bytes`),
//! request headers, decoding and encoding of messages with the `kafka-protocol` crate (no
//! hand-written codecs), ApiVersions (answered here, with Kafka's traps handled: Produce is
//! advertised from version 0 though v0-2 are refused, the response header is always v0, an
//! unsupported ApiVersions version gets UNSUPPORTED_VERSION plus our ranges), pipelining with
//! responses in request order, and the bounds on connections (`max.connections`) and queued
//! requests per connection (`queued.max.requests`).
//!
//! What a request means is the [`RequestHandler`]'s business (the broker, in `odradek-server`).
//!
//! # Bad input
//! A frame that is empty, larger than the bound, truncated, for an unknown API, of an unsupported
//! version or undecodable closes that connection (as Kafka does); nothing panics and every other
//! connection carries on.
//!
//! # Threading
//! Per connection, a reader task decodes frames and spawns each request's handling, in parallel;
//! a writer task awaits those results in request order and writes them. The bounded channel
//! between them is the per-connection request queue.

mod connection;
mod server;

use std::future::Future;

pub use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
pub use kafka_protocol::protocol::VersionRange;
pub use server::{serve, FrontendConfig};

/// Who sent a request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The API.
    pub api_key: ApiKey,
    /// Its version.
    pub api_version: i16,
    /// `client.id` from the header.
    pub client_id: Option<String>,
    /// The peer's address.
    pub peer: std::net::SocketAddr,
    /// The listener the request arrived on.
    pub listener: String,
}

/// The broker side of the protocol.
pub trait RequestHandler: Send + Sync + 'static {
    /// The APIs served (ApiVersions excluded: the frontend answers it) and their version ranges.
    fn supported_apis(&self) -> Vec<(ApiKey, VersionRange)>;

    /// Handles a decoded request. `None` sends no response (Produce with acks=0).
    fn handle(
        &self,
        ctx: RequestContext,
        request: RequestKind,
    ) -> impl Future<Output = Option<ResponseKind>> + Send;
}
