//! Running a node: the controller part (when `process.roles` has it) and the broker part share
//! one shutdown signal. The broker follows metadata, registers, waits until the controller
//! unfences it, then opens its client listener.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use odradek_common::{Clock, SystemClock};
use odradek_controller::{dirs, run_controller, RunError};
use odradek_frontend::{Frontend, ListenerInfo};
use odradek_metadata::MetadataImage;
use tokio::sync::{oneshot, watch};

use crate::config::BrokerConfig;
use crate::controller_client::ControllerClient;
use crate::fetcher::ReplicaFetchers;
use crate::groups::GroupCoordinator;
use crate::handlers::Broker;
use crate::replicas::ReplicaManager;
use crate::{lifecycle, metadata_cache};

/// Runs the node until `shutdown` resolves. `ready` receives the broker's client address once it
/// serves.
pub async fn run_node(
    config: BrokerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: Option<oneshot::Sender<SocketAddr>>,
) -> Result<(), RunError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    // One registry for the node's parts, served on metrics.listener (bound first: a port in
    // use fails the start).
    let registry = odradek_controller::metrics::node_registry();
    if let Some(addr) = config.node.metrics_listener {
        let stop = stop_rx.clone();
        odradek_controller::metrics::start(addr, &registry, async move {
            let mut stop = stop;
            crate::until_stopped(&mut stop).await;
        })
        .await?;
    }
    {
        let stop_tx = Arc::clone(&stop_tx);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
    }
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    // Either part failing (a listener that cannot bind, unformatted directories) stops the
    // whole node: it must not look healthy with half of it missing.
    let fail_stops = |r: Result<(), RunError>| {
        if r.is_err() {
            let _ = stop_tx.send(true);
        }
        r
    };
    // A combined node stops its controller only after its broker part has stopped: the
    // broker's last act is asking the quorum to fence it (moving its leaderships away), which
    // needs this controller when it is the active one or needed for a majority (Kafka shuts
    // the broker down first, too).
    let (broker_done_tx, broker_done) = watch::channel(false);
    let controller_stop = {
        let stop = stopped(stop_rx.clone());
        let mut broker_done = broker_done.clone();
        let has_broker = config.node.roles.broker;
        async move {
            stop.await;
            if has_broker {
                let _ = broker_done.wait_for(|d| *d).await;
            }
        }
    };
    let controller = async {
        if !config.node.roles.controller {
            return Ok(());
        }
        let task = tokio::spawn(run_controller(
            config.node.clone(),
            controller_stop,
            Some(Arc::clone(&registry)),
        ));
        let r = match task.await {
            Ok(r) => r,
            Err(e) => Err(RunError::Config(format!("controller task failed: {e}"))),
        };
        fail_stops(r)
    };
    let broker = async {
        if !config.node.roles.broker {
            return Ok(());
        }
        let r = run_broker(config.clone(), stop_rx.clone(), ready, &registry).await;
        let _ = broker_done_tx.send(true);
        fail_stops(r)
    };
    let (c, b) = tokio::join!(controller, broker);
    c.and(b)
}

/// Binds every client listener, so that a port in use fails the start (naming the address)
/// before the broker registers. Advertised listeners on port 0 take the bound port.
async fn bind_listeners(
    config: &mut BrokerConfig,
) -> Result<Vec<(tokio::net::TcpListener, ListenerInfo)>, RunError> {
    let mut bound = Vec::new();
    for (l, info) in config.listener_infos() {
        let addr = l.bind_addr().ok_or_else(|| {
            RunError::Config(format!(
                "listener {}://{}:{} is not an address",
                l.name, l.host, l.port
            ))
        })?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| RunError::Serve {
                addr: format!("{}://{addr}", l.name),
                message: e.to_string(),
            })?;
        let port = listener.local_addr().map_or(l.port, |a| a.port());
        for a in config
            .advertised
            .iter_mut()
            .filter(|a| a.name == l.name && a.port == 0)
        {
            a.port = port;
        }
        bound.push((listener, info));
    }
    Ok(bound)
}

async fn run_broker(
    mut config: BrokerConfig,
    stop: watch::Receiver<bool>,
    ready: Option<oneshot::Sender<SocketAddr>>,
    registry: &odradek_controller::metrics::SharedRegistry,
) -> Result<(), RunError> {
    let cluster_id = dirs::check_formatted(&config.node)?;
    let listeners = bind_listeners(&mut config).await?;
    let console_listener = match config.console_listener {
        Some(addr) => Some(crate::console::bind(addr).await?),
        None => None,
    };
    let config = Arc::new(config);
    let client = ControllerClient::new(&config.node.voters, config.node.control_tls.clone())
        .map_err(RunError::Config)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (images_tx, images) = watch::channel(Arc::new(MetadataImage::empty()));
    let replicas = Arc::new(
        ReplicaManager::new(
            config.node.log_dirs.clone(),
            config.log_defaults.clone(),
            config.node.node_id,
            Arc::clone(&clock),
        )
        .and_then(|m| {
            if config.flush_before_ack {
                m.with_flush_before_ack()
            } else {
                Ok(m)
            }
        })
        .map_err(RunError::Config)?,
    );
    let broker_epoch = Arc::new(AtomicI64::new(-1));
    let (applied_tx, applied) = watch::channel(Arc::new(MetadataImage::empty()));
    let fetchers = ReplicaFetchers::new(
        config.node.node_id,
        config.replication.clone(),
        (
            config.inter_broker_listener.clone(),
            config.inter_broker_security.clone(),
        ),
        images.clone(),
        Arc::clone(&clock),
        stop.clone(),
        Arc::clone(replicas.throttles()),
    );

    // The change feed holds images back until this process's registration is in one: the
    // images before it may name this broker leader under an epoch of its previous process.
    let incarnation = odradek_common::Uuid::random();
    let feed = Arc::new(metadata_cache::ChangeFeed::for_broker(
        config.node.node_id,
        incarnation,
    ));
    tokio::spawn(metadata_cache::follow(
        client.clone(),
        config.node.node_id,
        images_tx,
        Arc::clone(&feed),
        stop.clone(),
    ));
    let groups = Arc::new(GroupCoordinator::new(
        config.node.node_id,
        config.groups.coordinator.clone(),
        Arc::clone(&clock),
    ));
    let (txns, marker_jobs) = crate::transactions::TxnCoordinator::new(
        config.node.node_id,
        config.transactions.clone(),
        Arc::clone(&clock),
    );
    let txns = Arc::new(txns);
    let shares = Arc::new(crate::share_coordinator::ShareCoordinator::new(
        config.node.node_id,
        config.shares.updates_per_snapshot,
        Arc::clone(&clock),
    ));
    // Publisher: the replica manager (roles, then the replica fetchers) acts on the changes of
    // each new image, once the metadata cache has caught up.
    {
        let feed = Arc::clone(&feed);
        let replicas = Arc::clone(&replicas);
        let fetchers = fetchers.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            loop {
                let (changes, image) = tokio::select! {
                    c = feed.next() => c,
                    _ = crate::until_stopped(&mut stop) => return,
                };
                // Opening a log may recover it from disk, and loading a coordinator partition
                // reads it: keep both off the async workers.
                let (r, f, i) = (Arc::clone(&replicas), fetchers.clone(), Arc::clone(&image));
                let _ = tokio::task::spawn_blocking(move || f.apply(r.apply(&changes, &i))).await;
                // Partition APIs (and the coordinator's loads) may go ahead now.
                let _ = applied_tx.send(image);
            }
        });
    }
    // The group and transaction coordinators follow each image the replica manager has
    // applied, in a loop of their own: loading a large __consumer_offsets partition does not
    // hold up role changes.
    {
        let mut applied = applied.clone();
        let replicas = Arc::clone(&replicas);
        let groups = Arc::clone(&groups);
        let txns = Arc::clone(&txns);
        let shares = Arc::clone(&shares);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = applied.changed() => if changed.is_err() { return },
                    _ = crate::until_stopped(&mut stop) => return,
                }
                // The image the replica manager applied, not a newer one: a partition it has
                // not made leader yet must not be loaded as led.
                let image = Arc::clone(&applied.borrow_and_update());
                let (r, g, t, sh) = (
                    Arc::clone(&replicas),
                    Arc::clone(&groups),
                    Arc::clone(&txns),
                    Arc::clone(&shares),
                );
                let _ = tokio::task::spawn_blocking(move || {
                    g.on_image(&image, &r);
                    t.on_image(&image, &r);
                    sh.on_image(&image, &r);
                })
                .await;
            }
        });
    }
    // Retention and compaction on log.retention.check.interval.ms; high watermark checkpoints
    // on replica.high.watermark.checkpoint.interval.ms.
    {
        let replicas = Arc::clone(&replicas);
        let every = Duration::from_millis(config.retention_check_interval_ms.max(1000));
        let checkpoint_every = Duration::from_millis(
            config
                .replication
                .replica_high_watermark_checkpoint_interval_ms
                .max(100),
        );
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut checkpoint = tokio::time::interval(checkpoint_every);
            tick.tick().await;
            checkpoint.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => { let r = Arc::clone(&replicas); let _ = tokio::task::spawn_blocking(move || r.enforce_retention()).await; }
                    _ = checkpoint.tick() => { let r = Arc::clone(&replicas); let _ = tokio::task::spawn_blocking(move || r.checkpoint_high_watermarks()).await; }
                    _ = crate::until_stopped(&mut stop) => return,
                }
            }
        });
    }
    // Idle idempotent producers are forgotten (producer.id.expiration.ms).
    {
        let replicas = Arc::clone(&replicas);
        let expiration = config.replication.producer_id_expiration_ms;
        let interval = config.replication.producer_id_expiration_check_interval_ms;
        every(
            Duration::from_millis(interval.max(100)),
            stop.clone(),
            move || replicas.remove_expired_producers(expiration),
        );
    }
    // ISR shrinks: every half of replica.lag.time.max.ms, as Kafka checks.
    {
        let replicas = Arc::clone(&replicas);
        let client = client.clone();
        let broker_epoch = Arc::clone(&broker_epoch);
        let lag = config.replication.replica_lag_time_max_ms;
        let broker_id = config.node.node_id;
        let half = Duration::from_millis((lag / 2).max(100) as u64);
        every(half, stop.clone(), move || {
            for (partition, proposal) in replicas.maybe_shrink_isrs(lag) {
                crate::isr::propose(&client, broker_id, &broker_epoch, partition, proposal);
            }
        });
    }
    // Group rebalance and session deadlines; offsets retention.
    {
        let g = Arc::clone(&groups);
        every(Duration::from_millis(100), stop.clone(), move || g.tick());
        let g = Arc::clone(&groups);
        let retention_ms = config.groups.offsets_retention_ms;
        let interval =
            u64::try_from(config.groups.offsets_retention_check_interval_ms).unwrap_or(600_000);
        every(Duration::from_millis(interval), stop.clone(), move || {
            g.expire_offsets(retention_ms)
        });
    }
    let (fenced_tx, mut fenced) = watch::channel(true);
    // A log directory with a storage error goes offline with its replicas; the broker goes on.
    {
        let replicas = Arc::clone(&replicas);
        let fetchers = fetchers.clone();
        every(Duration::from_millis(500), stop.clone(), move || {
            let changes = replicas.take_failed_dirs_offline();
            if !changes.is_empty() {
                fetchers.apply(changes);
            }
        });
    }
    let lifecycle_task = tokio::spawn(lifecycle::run(
        lifecycle::Membership {
            config: Arc::clone(&config),
            cluster_id: cluster_id.clone(),
            client: client.clone(),
            images: images.clone(),
            fenced: fenced_tx,
            broker_epoch: Arc::clone(&broker_epoch),
            incarnation,
            replicas: Arc::clone(&replicas),
        },
        stop.clone(),
    ));

    // Serve clients only once the controller has unfenced us (we are caught up).
    let mut stop_wait = stop.clone();
    tokio::select! {
        r = fenced.wait_for(|f| !*f) => { if r.is_err() { return Ok(()); } }
        _ = crate::until_stopped(&mut stop_wait) => { close_logs(&replicas).await; return Ok(()); }
    }
    // ...and once our own metadata shows it, so Metadata responses list this broker.
    let id = config.node.node_id;
    let mut own = images.clone();
    tokio::select! {
        r = own.wait_for(|i| i.cluster.brokers.get(&id).is_some_and(|b| !b.fenced)) => { if r.is_err() { return Ok(()); } }
        _ = crate::until_stopped(&mut stop_wait) => { close_logs(&replicas).await; return Ok(()); }
    }
    let fetch_sessions = Arc::new(crate::fetch_session::FetchSessions::new(
        config.fetch_session_cache_slots,
    ));
    let broker = Arc::new(Broker {
        config: Arc::clone(&config),
        cluster_id: cluster_id.clone(),
        images: images.clone(),
        replicas: Arc::clone(&replicas),
        producer_ids: crate::producer_ids::ProducerIdManager::new(
            config.node.node_id,
            Arc::clone(&broker_epoch),
            client.clone(),
        ),
        broker_epoch,
        applied,
        controller: client,
        clock,
        groups,
        txns: Arc::clone(&txns),
        quotas: Arc::new(crate::quotas::ClientQuotaManager::new(config.quota_window)),
        remote_ends: Arc::default(),
        fetch_sessions: Arc::clone(&fetch_sessions),
        shares,
        share_partitions: Arc::new(crate::share_partitions::SharePartitions::new(
            config.shares.partition.clone(),
            config.shares.max_share_sessions,
        )),
    });
    // Share-partitions' record locks (group.share.record.lock.duration.ms).
    {
        let b = Arc::clone(&broker);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    _ = tick.tick() => crate::handlers::expire_share_locks(&b).await,
                    _ = crate::until_stopped(&mut stop) => return,
                }
            }
        });
    }
    // Consumer lag of partitions not hosted here: their leaders' end offsets.
    {
        let b = Arc::clone(&broker);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(crate::lag::REFRESH_MS));
            loop {
                tokio::select! {
                    _ = tick.tick() => b.remote_ends.refresh(&b).await,
                    _ = crate::until_stopped(&mut stop) => return,
                }
            }
        });
    }
    // Transaction markers, and the abort of transactions past their timeout
    // (transaction.abort.timed.out.transaction.cleanup.interval.ms).
    tokio::spawn(crate::transactions::run_markers(
        Arc::clone(&broker),
        marker_jobs,
    ));
    {
        let txns = Arc::clone(&txns);
        let interval = config.transactions.abort_timed_out_interval_ms.max(100);
        every(Duration::from_millis(interval), stop.clone(), move || {
            for write in txns.expire() {
                let t = Arc::clone(&txns);
                tokio::spawn(async move {
                    let _ = t.finish(write).await;
                });
            }
        });
    }
    {
        // Quota sensors of clients gone quiet are forgotten (bounds the map).
        let b = Arc::clone(&broker);
        every(Duration::from_secs(60), stop.clone(), move || {
            b.quotas.expire(b.clock.now_ms());
        });
    }
    let frontend = Frontend::new(config.frontend.clone(), Arc::clone(&broker))
        .map_err(|e| RunError::Config(e.to_string()))?;
    odradek_controller::metrics::register_with(registry, |r| {
        crate::metrics::register(r, &broker, frontend.metrics())
    });
    // The console's plots: lag and rates sampled every history::SAMPLE_MS.
    let history = Arc::new(crate::history::History::default());
    {
        let (h, b) = (Arc::clone(&history), Arc::clone(&broker));
        every(
            Duration::from_millis(crate::history::SAMPLE_MS),
            stop.clone(),
            move || h.sample(&b, b.clock.now_ms()),
        );
    }
    if let Some(listener) = console_listener {
        crate::console::start(listener, Arc::clone(&broker), history, stop.clone());
    }
    let mut serving = tokio::task::JoinSet::new();
    let mut first = None;
    let mut reloadable = Vec::new();
    for (listener, info) in listeners {
        let bound = listener.local_addr().map_err(|e| RunError::Serve {
            addr: info.name.clone(),
            message: e.to_string(),
        })?;
        let security = match config
            .listener_security
            .get(&info.name.to_ascii_uppercase())
        {
            Some(s) => crate::security::frontend_security(s, &images)
                .map_err(|e| RunError::Config(format!("listener {}: {e}", info.name)))?,
            None => odradek_frontend::ListenerSecurity::default(),
        };
        if let Some(tls) = &security.tls {
            reloadable.push(crate::security::reload::Reloadable {
                name: info.name.clone(),
                protocol: info.security_protocol,
                tls: Arc::clone(tls),
            });
        }
        tracing::info!(broker_id = config.node.node_id, listener = %info.name, %bound, "listening");
        first.get_or_insert(bound);
        let frontend = frontend.clone();
        let mut stop_serve = stop.clone();
        serving.spawn(async move {
            frontend
                .serve(listener, info, security, async move {
                    let _ = stop_serve.wait_for(|s| *s).await;
                })
                .await
        });
    }
    tokio::spawn(crate::security::reload::run(
        config.properties.clone(),
        config.node.node_id,
        reloadable,
        images.clone(),
    ));
    if let Some(bound) = first {
        tracing::info!(broker_id = config.node.node_id, %cluster_id, %bound, "broker ready: bootstrap.servers={bound}");
        if let Some(r) = ready {
            let _ = r.send(bound);
        }
    }
    while serving.join_next().await.is_some() {}
    let _ = lifecycle_task.await;
    close_logs(&replicas).await;
    tracing::info!("broker stopped");
    Ok(())
}

/// Checkpoints high watermarks, flushes and closes every log on a blocking thread (fsyncs are
/// slow).
async fn close_logs(replicas: &Arc<ReplicaManager>) {
    let r = Arc::clone(replicas);
    let _ = tokio::task::spawn_blocking(move || r.close_all()).await;
}

/// Runs `f` every `period` (the first time one period from now) until `stop`.
fn every(period: Duration, mut stop: watch::Receiver<bool>, mut f: impl FnMut() + Send + 'static) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => f(),
                _ = crate::until_stopped(&mut stop) => return,
            }
        }
    });
}
