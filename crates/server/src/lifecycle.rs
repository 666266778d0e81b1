//! Registration and heartbeats: the broker registers (fenced), heartbeats every
//! `broker.heartbeat.interval.ms` with its metadata offset, is unfenced once caught up, and
//! re-registers if the controller forgot it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use odradek_common::Uuid;
use odradek_controller::pb;
use odradek_metadata::MetadataImage;
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::controller_client::ControllerClient;

/// What the broker's registration and heartbeats work with.
#[derive(Debug)]
pub struct Membership {
    /// The broker's configuration.
    pub config: Arc<BrokerConfig>,
    /// The cluster id it was formatted for.
    pub cluster_id: String,
    /// The controllers.
    pub client: ControllerClient,
    /// The broker's metadata (its offset goes with each heartbeat).
    pub images: watch::Receiver<Arc<MetadataImage>>,
    /// Whether the controller has this broker fenced.
    pub fenced: watch::Sender<bool>,
    /// The epoch of its registration.
    pub broker_epoch: Arc<AtomicI64>,
    /// This process's incarnation id (its registration names it; the change feed waits for it).
    pub incarnation: Uuid,
    /// Its replicas (the offline ones go with each heartbeat).
    pub replicas: Arc<crate::replicas::ReplicaManager>,
}

/// Runs until `stop`; publishes whether the broker is fenced.
pub async fn run(membership: Membership, mut stop: watch::Receiver<bool>) {
    let Membership {
        config,
        cluster_id,
        client,
        images,
        fenced,
        broker_epoch,
        incarnation,
        replicas,
    } = membership;
    let broker_id = config.node.node_id;
    let mut epoch: Option<i64> = None;
    let interval = Duration::from_millis(config.heartbeat_interval_ms.max(100));
    loop {
        if *stop.borrow() {
            // Tell the controller we are going: it moves leaderships away at once.
            if let Some(e) = epoch {
                let req = pb::BrokerHeartbeatRequest {
                    broker_id,
                    broker_epoch: e,
                    current_metadata_offset: images.borrow().offset,
                    want_fence: true,
                    want_shut_down: false,
                    offline_replicas: vec![],
                };
                let r = client
                    .call(Duration::from_secs(2), |mut c| {
                        let r = req.clone();
                        async move { c.broker_heartbeat(r).await }
                    })
                    .await;
                match r {
                    Ok(r) if r.error_code == 0 => {
                        tracing::info!(
                            broker_id,
                            "controlled shutdown: fenced by the controller, leaderships moved away"
                        )
                    }
                    Ok(r) => {
                        tracing::warn!(broker_id, code = r.error_code, message = %r.error_message, "controlled shutdown refused; leaderships move when the session times out")
                    }
                    Err(e) => {
                        tracing::warn!(broker_id, error = %e, "controlled shutdown failed; leaderships move when the session times out")
                    }
                }
            }
            return;
        }
        match epoch {
            None => {
                let req = pb::RegisterBrokerRequest {
                    broker_id,
                    cluster_id: cluster_id.clone(),
                    incarnation_id: incarnation.as_bytes().to_vec(),
                    listeners: config
                        .advertised
                        .iter()
                        .map(|l| pb::Listener {
                            name: l.name.clone(),
                            host: advertised_host(&l.host),
                            port: u32::from(l.port),
                            security_protocol: config.security_protocol(&l.name).name().into(),
                        })
                        .collect(),
                    rack: config.rack.clone(),
                    log_dirs: vec![],
                };
                let call = client.call(Duration::from_secs(5), |mut c| {
                    let r = req.clone();
                    async move { c.register_broker(r).await }
                });
                // A stop ends a call in progress: shutting down must not wait out its retries.
                let result = tokio::select! {
                    r = call => r,
                    _ = crate::until_stopped(&mut stop) => continue,
                };
                match result {
                    Ok(r) if r.error_code == 0 => {
                        tracing::info!(
                            broker_id,
                            broker_epoch = r.broker_epoch,
                            "registered with the controller"
                        );
                        epoch = Some(r.broker_epoch);
                        broker_epoch.store(r.broker_epoch, Ordering::Release);
                        continue;
                    }
                    Ok(r) => {
                        tracing::error!(broker_id, code = r.error_code, message = %r.error_message, "registration refused")
                    }
                    Err(e) => tracing::warn!(error = %e, "registration failed; retrying"),
                }
            }
            Some(e) => {
                let req = pb::BrokerHeartbeatRequest {
                    broker_id,
                    broker_epoch: e,
                    current_metadata_offset: images.borrow().offset,
                    want_fence: false,
                    want_shut_down: false,
                    offline_replicas: replicas
                        .offline_replicas()
                        .into_iter()
                        .map(|(topic_id, partition)| pb::OfflineReplica {
                            topic_id: topic_id.as_bytes().to_vec(),
                            partition,
                        })
                        .collect(),
                };
                let call = client.call(Duration::from_secs(5), |mut c| {
                    let r = req.clone();
                    async move { c.broker_heartbeat(r).await }
                });
                let result = tokio::select! {
                    r = call => r,
                    _ = crate::until_stopped(&mut stop) => continue,
                };
                match result {
                    Ok(r) if r.error_code == 0 => {
                        fenced.send_if_modified(|f| {
                            let changed = *f != r.is_fenced;
                            *f = r.is_fenced;
                            changed
                        });
                        if !r.is_fenced {
                            // Caught up and serving: heartbeat at the normal pace.
                            tokio::select! { _ = tokio::time::sleep(interval) => {}, _ = stop.changed() => {} }
                            continue;
                        }
                    }
                    Ok(r) if r.error_code == 77 || r.error_code == 102 => {
                        tracing::warn!(
                            broker_id,
                            "the controller no longer knows this registration; registering again"
                        );
                        epoch = None;
                        continue;
                    }
                    Ok(r) => {
                        tracing::warn!(code = r.error_code, message = %r.error_message, "heartbeat refused")
                    }
                    Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                }
            }
        }
        // Not yet serving: try again soon.
        tokio::select! { _ = tokio::time::sleep(Duration::from_millis(200)) => {}, _ = stop.changed() => {} }
    }
}

/// A listener bound to all interfaces advertises the loopback address unless configured.
fn advertised_host(host: &str) -> String {
    match host {
        "" | "0.0.0.0" | "::" => "127.0.0.1".into(),
        h => h.into(),
    }
}
