//! The frontend: bounds shared by every listener, the API table, accepting connections.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::VersionRange;
use odradek_common::ErrorCode;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::{connection, ListenerInfo, ListenerSecurity, RequestHandler, Session};

/// The ApiVersions range we answer.
pub(crate) const API_VERSIONS: VersionRange = VersionRange { min: 0, max: 4 };

/// Frontend bounds, with Kafka's names and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendConfig {
    /// `socket.request.max.bytes` (100 MiB): the largest request frame.
    pub socket_request_max_bytes: usize,
    /// `queued.max.requests` (500): requests read ahead of the one being handled. Kafka bounds
    /// this broker-wide; here it is per connection (the byte bound below is broker-wide).
    pub queued_max_requests: usize,
    /// `queued.max.request.bytes`: the bytes of requests read but not yet handled, over every
    /// connection. Kafka's default is unbounded (-1); here [`FrontendConfig::default_queued_bytes`]
    /// unless set. It must leave room for one largest request beside the first KiB of a frame
    /// on every connection (see [`FrontendConfig::validate`]).
    pub queued_max_request_bytes: usize,
    /// `max.connections` over all listeners (Kafka: unlimited; here 65,536 unless set).
    pub max_connections: usize,
    /// `connections.max.idle.ms` (600000): a connection with no complete request for this long,
    /// and none queued or being handled, is closed.
    pub connections_max_idle_ms: u64,
}

impl Default for FrontendConfig {
    fn default() -> Self {
        Self {
            socket_request_max_bytes: 100 * 1024 * 1024,
            queued_max_requests: 500,
            queued_max_request_bytes: 512 * 1024 * 1024,
            max_connections: 65_536,
            connections_max_idle_ms: 600_000,
        }
    }
}

/// A bound that cannot work, naming its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}={value}: {reason}")]
pub struct ConfigError {
    /// The config key.
    pub key: &'static str,
    /// The value given.
    pub value: String,
    /// Why it is refused.
    pub reason: &'static str,
}

impl FrontendConfig {
    /// The pool when `queued.max.request.bytes` is not set (or <= 0, Kafka's unbounded): 512 MiB,
    /// or more if the other bounds need it.
    pub fn default_queued_bytes(socket_request_max_bytes: usize, max_connections: usize) -> usize {
        (512 * 1024 * 1024).max(Self::min_queued_bytes(
            socket_request_max_bytes,
            max_connections,
        ))
    }

    /// The smallest pool that cannot deadlock: a frame waiting for memory holds at most its
    /// first KiB, so once every connection holds that, one largest request still fits.
    fn min_queued_bytes(socket_request_max_bytes: usize, max_connections: usize) -> usize {
        socket_request_max_bytes
            .saturating_add(max_connections.saturating_mul(crate::connection::INITIAL_FRAME_BYTES))
    }

    /// Checks that the bounds can serve requests and cannot deadlock.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |key, value: usize, reason| {
            Err(ConfigError {
                key,
                value: value.to_string(),
                reason,
            })
        };
        if self.socket_request_max_bytes < 8 || self.socket_request_max_bytes > i32::MAX as usize {
            return err(
                "socket.request.max.bytes",
                self.socket_request_max_bytes,
                "must be between 8 and 2147483647",
            );
        }
        if self.queued_max_requests == 0 {
            return err(
                "queued.max.requests",
                self.queued_max_requests,
                "must be at least 1",
            );
        }
        if self.queued_max_request_bytes
            < Self::min_queued_bytes(self.socket_request_max_bytes, self.max_connections)
        {
            return err(
                "queued.max.request.bytes",
                self.queued_max_request_bytes,
                "must be at least socket.request.max.bytes + 1 KiB per max.connections, so that \
                 a largest request always fits beside every connection's first KiB",
            );
        }
        if self.queued_max_request_bytes > Semaphore::MAX_PERMITS {
            return err(
                "queued.max.request.bytes",
                self.queued_max_request_bytes,
                "is too large",
            );
        }
        if self.max_connections == 0 {
            return err(
                "max.connections",
                self.max_connections,
                "must be at least 1",
            );
        }
        Ok(())
    }
}

/// The APIs a handler serves, computed once.
pub(crate) struct ApiTable {
    ranges: HashMap<ApiKey, VersionRange>,
    /// The ApiVersions response body (error code 0); cloned per request.
    api_versions: ApiVersionsResponse,
}

impl ApiTable {
    fn new(mut apis: Vec<(ApiKey, VersionRange)>) -> Self {
        // The frontend answers SASL itself, as it does ApiVersions (Kafka 4's ranges).
        apis.retain(|(k, _)| !matches!(k, ApiKey::SaslHandshake | ApiKey::SaslAuthenticate));
        apis.push((ApiKey::SaslHandshake, VersionRange { min: 0, max: 1 }));
        apis.push((ApiKey::SaslAuthenticate, VersionRange { min: 0, max: 2 }));
        let mut keys = vec![ApiVersion::default()
            .with_api_key(ApiKey::ApiVersions as i16)
            .with_min_version(API_VERSIONS.min)
            .with_max_version(API_VERSIONS.max)];
        for (key, range) in &apis {
            // librdkafka disables compression unless Produce is advertised from v0 (Kafka 4.0
            // does the same and refuses v0-2 when they are used).
            let min = if *key == ApiKey::Produce {
                0
            } else {
                range.min
            };
            keys.push(
                ApiVersion::default()
                    .with_api_key(*key as i16)
                    .with_min_version(min)
                    .with_max_version(range.max),
            );
        }
        keys.sort_by_key(|k| k.api_key);
        Self {
            ranges: apis.into_iter().collect(),
            api_versions: ApiVersionsResponse::default().with_api_keys(keys),
        }
    }

    /// The served range of `key`, if served.
    pub(crate) fn range(&self, key: ApiKey) -> Option<VersionRange> {
        self.ranges.get(&key).copied()
    }

    /// ApiVersions: our ranges, with UNSUPPORTED_VERSION for a version we do not know.
    pub(crate) fn api_versions(&self, version: i16) -> ApiVersionsResponse {
        let mut response = self.api_versions.clone();
        if !(API_VERSIONS.min..=API_VERSIONS.max).contains(&version) {
            response.error_code = ErrorCode::UnsupportedVersion.code();
        }
        response
    }
}

/// What every connection of a frontend shares.
pub(crate) struct Shared<H> {
    pub(crate) handler: Arc<H>,
    pub(crate) config: FrontendConfig,
    pub(crate) apis: ApiTable,
    /// `queued.max.request.bytes` as permits of one byte each.
    pub(crate) memory: Arc<Semaphore>,
    connections: Arc<Semaphore>,
    pub(crate) metrics: Arc<crate::metrics::FrontendMetrics>,
}

/// The Kafka protocol server of one node: every listener it serves shares the handler, the API
/// table and the bounds.
pub struct Frontend<H> {
    shared: Arc<Shared<H>>,
}

impl<H> std::fmt::Debug for Frontend<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frontend")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<H> Clone for Frontend<H> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<H: RequestHandler> Frontend<H> {
    /// A frontend for `handler`, with its API table computed once.
    pub fn new(config: FrontendConfig, handler: Arc<H>) -> Result<Self, ConfigError> {
        config.validate()?;
        let apis = ApiTable::new(handler.supported_apis());
        let metrics = Arc::new(crate::metrics::FrontendMetrics::new(
            apis.ranges
                .iter()
                .map(|(k, r)| (*k, r.max))
                .chain([(ApiKey::ApiVersions, API_VERSIONS.max)]),
        ));
        Ok(Self {
            shared: Arc::new(Shared {
                metrics,
                memory: Arc::new(Semaphore::new(config.queued_max_request_bytes)),
                connections: Arc::new(Semaphore::new(config.max_connections)),
                handler,
                config,
                apis,
            }),
        })
    }

    /// The frontend's metrics (register them with a node's registry).
    pub fn metrics(&self) -> &Arc<crate::metrics::FrontendMetrics> {
        &self.shared.metrics
    }

    /// Bytes of requests read and not yet handled, over every connection.
    pub fn queued_request_bytes(&self) -> usize {
        self.shared.config.queued_max_request_bytes - self.shared.memory.available_permits()
    }

    /// Serves connections accepted on `listener` until `shutdown` resolves; then stops
    /// accepting, lets every connection finish the request it is handling (for at most a
    /// second), closes them, and returns.
    ///
    /// On a listener with TLS, each connection first completes its handshake (within
    /// [`crate::security`]'s bound); a client certificate names the principal through
    /// `ssl.principal.mapping.rules`. On a listener with SASL, a connection must authenticate
    /// before any request but ApiVersions.
    pub async fn serve(
        &self,
        listener: TcpListener,
        info: ListenerInfo,
        security: ListenerSecurity,
        shutdown: impl Future<Output = ()> + Send,
    ) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors, most likely: wait rather than spin.
                            tracing::warn!(listener = %info.name, error = %e, "accept failed");
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    };
                    let Ok(permit) = Arc::clone(&self.shared.connections).try_acquire_owned() else {
                        tracing::warn!(%peer, max_connections = self.shared.config.max_connections, "connection limit reached; closing");
                        drop(stream);
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    let session = Session::anonymous(info.clone());
                    let this = self.clone();
                    let stop = stop_rx.clone();
                    let security = security.clone();
                    let open = self.shared.metrics.connection(&info.name);
                    tasks.spawn(async move {
                        this.accept_connection(stream, peer, session, security, stop).await;
                        drop(open);
                        drop(permit);
                    });
                    // Reap finished connections so the set stays small.
                    while tasks.try_join_next().is_some() {}
                }
            }
        }
        let _ = stop_tx.send(true);
        while tasks.join_next().await.is_some() {}
    }

    /// Completes the TLS handshake of a listener with TLS, then serves the connection.
    async fn accept_connection(
        &self,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
        mut session: Session,
        security: ListenerSecurity,
        stop: watch::Receiver<bool>,
    ) {
        let Some(tls) = &security.tls else {
            // Plaintext: responses' file ranges go out with sendfile.
            connection::run(
                stream,
                peer,
                Arc::new(session),
                security.sasl,
                Arc::clone(&self.shared),
                stop,
            )
            .await;
            return;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
        let stream = match tokio::time::timeout(
            crate::security::TLS_HANDSHAKE_TIMEOUT,
            acceptor.accept(stream),
        )
        .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::info!(%peer, listener = %session.listener.name, error = %e, "TLS handshake failed; closing");
                return;
            }
            Err(_) => {
                tracing::info!(%peer, listener = %session.listener.name, "TLS handshake timed out; closing");
                return;
            }
        };
        // SASL_SSL: the principal comes from SASL; SSL: from the client's certificate, if any.
        if security.sasl.is_none() {
            if let Some(cert) = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
            {
                let name = crate::security::subject_dn(cert.as_ref()).and_then(|dn| {
                    security.principal_mapper.name(&dn).ok_or_else(|| {
                        format!("no ssl.principal.mapping.rules rule matches {dn:?}")
                    })
                });
                match name {
                    Ok(name) => {
                        session.principal = crate::KafkaPrincipal {
                            principal_type: "User".into(),
                            name,
                        }
                    }
                    Err(e) => {
                        tracing::info!(%peer, error = %e, "client certificate refused; closing");
                        return;
                    }
                }
            }
        }
        connection::run(
            connection::AnyStream(stream),
            peer,
            Arc::new(session),
            security.sasl,
            Arc::clone(&self.shared),
            stop,
        )
        .await;
    }

    /// Serves one connection over any stream (a TCP stream, a TLS stream over one, an
    /// in-memory pipe in tests) until the peer closes it, it sends bad input, or `stop` turns
    /// true. The caller owns the `max.connections` bound for streams it accepted itself.
    pub async fn serve_connection<S>(
        &self,
        stream: S,
        peer: SocketAddr,
        session: Session,
        stop: watch::Receiver<bool>,
    ) where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        connection::run(
            connection::AnyStream(stream),
            peer,
            Arc::new(session),
            None,
            Arc::clone(&self.shared),
            stop,
        )
        .await;
    }
}
