//! Accepting connections.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::connection::Connection;
use crate::RequestHandler;

/// Frontend bounds, with Kafka's names and defaults.
#[derive(Debug, Clone)]
pub struct FrontendConfig {
    /// The listener's name (`PLAINTEXT`, ...).
    pub listener: String,
    /// `socket.request.max.bytes` (100 MiB).
    pub socket_request_max_bytes: usize,
    /// `queued.max.requests` per connection (500).
    pub queued_max_requests: usize,
    /// `max.connections` (Kafka: unlimited; here 10,000 unless set).
    pub max_connections: usize,
}

impl Default for FrontendConfig {
    fn default() -> Self {
        Self {
            listener: "PLAINTEXT".into(),
            socket_request_max_bytes: 100 * 1024 * 1024,
            queued_max_requests: 500,
            max_connections: 10_000,
        }
    }
}

/// Serves connections accepted on `listener` until `shutdown` resolves; then stops accepting,
/// lets every connection finish the requests it has read, and returns.
pub async fn serve<H: RequestHandler>(
    listener: TcpListener,
    config: FrontendConfig,
    handler: Arc<H>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let config = Arc::new(config);
    let permits = Arc::new(Semaphore::new(config.max_connections));
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
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    tracing::warn!(%peer, max_connections = config.max_connections, "connection limit reached; closing");
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let conn = Connection::new(stream, peer, Arc::clone(&config), Arc::clone(&handler), stop_rx.clone());
                tasks.spawn(async move {
                    conn.run().await;
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
