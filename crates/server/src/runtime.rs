//! Running a node: the controller part (when `process.roles` has it) and the broker part share
//! one shutdown signal. The broker follows metadata, registers, waits until the controller
//! unfences it, then opens its client listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use odradek_common::{Clock, SystemClock};
use odradek_controller::{dirs, run_controller, RunError};
use odradek_frontend::FrontendConfig;
use odradek_metadata::MetadataImage;
use tokio::sync::{oneshot, watch};

use crate::config::BrokerConfig;
use crate::controller_client::ControllerClient;
use crate::groups::GroupCoordinator;
use crate::handlers::Broker;
use crate::logs::LogManager;
use crate::{follower, lifecycle};

/// Runs the node until `shutdown` resolves. `ready` receives the broker's client address once it
/// serves.
pub async fn run_node(
    config: BrokerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: Option<oneshot::Sender<SocketAddr>>,
) -> Result<(), RunError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let controller = if config.node.roles.controller {
        Some(tokio::spawn(run_controller(
            config.node.clone(),
            stopped(stop_rx.clone()),
        )))
    } else {
        None
    };
    let broker_result = if config.node.roles.broker {
        run_broker(config, stop_rx.clone(), ready).await
    } else {
        Ok(())
    };
    if let Some(c) = controller {
        let _ = stopped(stop_rx).await;
        c.await
            .map_err(|e| RunError::Config(format!("controller task failed: {e}")))??;
    }
    broker_result
}

async fn run_broker(
    config: BrokerConfig,
    stop: watch::Receiver<bool>,
    ready: Option<oneshot::Sender<SocketAddr>>,
) -> Result<(), RunError> {
    let cluster_id = dirs::check_formatted(&config.node)?;
    let config = Arc::new(config);
    let client = ControllerClient::new(&config.node.voters).map_err(RunError::Config)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (images_tx, images) = watch::channel(Arc::new(MetadataImage::empty()));
    let log_dir = config.node.log_dirs[0].clone();
    let logs = Arc::new(LogManager::new(
        log_dir,
        config.log_defaults.clone(),
        config.node.node_id,
        Arc::clone(&clock),
    ));

    tokio::spawn(follower::follow(
        client.clone(),
        config.node.node_id,
        images_tx,
        stop.clone(),
    ));
    let groups = Arc::new(GroupCoordinator::new(
        config.node.node_id,
        config.groups.coordinator.clone(),
        Arc::clone(&clock),
    ));
    // Publisher: the log manager, then the group coordinator, follow every new image.
    {
        let mut images = images.clone();
        let logs = Arc::clone(&logs);
        let groups = Arc::clone(&groups);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            loop {
                let image = Arc::clone(&images.borrow_and_update());
                // Opening a log may recover it from disk, and loading a coordinator partition
                // reads it: keep both off the async workers.
                let (l, g) = (Arc::clone(&logs), Arc::clone(&groups));
                let _ = tokio::task::spawn_blocking(move || {
                    l.apply(&image);
                    g.on_image(&image, &l);
                })
                .await;
                tokio::select! {
                    changed = images.changed() => if changed.is_err() { return },
                    _ = crate::until_stopped(&mut stop) => return,
                }
            }
        });
    }
    // Retention and compaction on log.retention.check.interval.ms.
    {
        let logs = Arc::clone(&logs);
        let every = Duration::from_millis(config.retention_check_interval_ms.max(1000));
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => { let l = Arc::clone(&logs); let _ = tokio::task::spawn_blocking(move || l.enforce_retention()).await; }
                    _ = crate::until_stopped(&mut stop) => return,
                }
            }
        });
    }
    // Group rebalance and session deadlines; offsets retention.
    {
        let groups = Arc::clone(&groups);
        let mut stop = stop.clone();
        let retention_ms = config.groups.offsets_retention_ms;
        let every = Duration::from_millis(
            u64::try_from(config.groups.offsets_retention_check_interval_ms).unwrap_or(600_000),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let mut retention = tokio::time::interval(every);
            retention.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => groups.tick(),
                    _ = retention.tick() => groups.expire_offsets(retention_ms),
                    _ = crate::until_stopped(&mut stop) => return,
                }
            }
        });
    }
    let (fenced_tx, mut fenced) = watch::channel(true);
    let lifecycle_task = tokio::spawn(lifecycle::run(
        Arc::clone(&config),
        cluster_id.clone(),
        client.clone(),
        images.clone(),
        fenced_tx,
        stop.clone(),
    ));

    // Serve clients only once the controller has unfenced us (we are caught up).
    let mut stop_wait = stop.clone();
    tokio::select! {
        r = fenced.wait_for(|f| !*f) => { if r.is_err() { return Ok(()); } }
        _ = crate::until_stopped(&mut stop_wait) => { close_logs(&logs).await; return Ok(()); }
    }
    // ...and once our own metadata shows it, so Metadata responses list this broker.
    let id = config.node.node_id;
    let mut own = images.clone();
    tokio::select! {
        r = own.wait_for(|i| i.cluster.brokers.get(&id).is_some_and(|b| !b.fenced)) => { if r.is_err() { return Ok(()); } }
        _ = crate::until_stopped(&mut stop_wait) => { close_logs(&logs).await; return Ok(()); }
    }
    let l = &config.listeners[0];
    let addr = l.bind_addr().ok_or_else(|| {
        RunError::Config(format!("listener {}:{} is not an address", l.host, l.port))
    })?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| RunError::Serve {
            addr: addr.to_string(),
            message: e.to_string(),
        })?;
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!(broker_id = config.node.node_id, %cluster_id, %bound, "broker ready: bootstrap.servers={bound}");
    if let Some(r) = ready {
        let _ = r.send(bound);
    }
    let frontend = FrontendConfig {
        listener: l.name.clone(),
        socket_request_max_bytes: config.socket_request_max_bytes,
        queued_max_requests: config.queued_max_requests,
        max_connections: config.max_connections,
    };
    let broker = Arc::new(Broker {
        config: Arc::clone(&config),
        cluster_id,
        images,
        logs: Arc::clone(&logs),
        controller: client,
        clock,
        groups,
    });
    let mut stop_serve = stop.clone();
    odradek_frontend::serve(listener, frontend, broker, async move {
        let _ = stop_serve.wait_for(|s| *s).await;
    })
    .await;
    let _ = lifecycle_task.await;
    close_logs(&logs).await;
    tracing::info!("broker stopped");
    Ok(())
}

/// Flushes and closes every log on a blocking thread (fsyncs are slow).
async fn close_logs(logs: &Arc<LogManager>) {
    let l = Arc::clone(logs);
    let _ = tokio::task::spawn_blocking(move || l.close_all()).await;
}
