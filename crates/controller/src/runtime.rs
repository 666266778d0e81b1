//! Running a controller node: check the directories, start the quorum voter and the active
//! controller loop, serve gRPC (Raft transport and ControllerService) on the controller listener
//! until `shutdown` resolves.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use odradek_common::{Clock, SystemClock};
use odradek_quorum::QuorumConfig;
use tokio::sync::mpsc;

use crate::config::NodeConfig;
use crate::dirs;
use crate::pb::controller_service_server::ControllerServiceServer;
use crate::service::ControllerServiceImpl;
use crate::state::MetadataStateMachine;

/// Why a controller could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Directories not formatted or inconsistent.
    #[error(transparent)]
    Storage(#[from] dirs::StorageError),
    /// The quorum could not start.
    #[error(transparent)]
    Quorum(#[from] odradek_quorum::QuorumError),
    /// Configuration.
    #[error("{0}")]
    Config(String),
    /// The listener.
    #[error("cannot serve on {addr}: {message}")]
    Serve {
        /// The address.
        addr: String,
        /// What failed.
        message: String,
    },
}

/// Runs a controller until `shutdown` resolves. Its metrics go into `registry` when one is
/// given (the node serves it on `metrics.listener`).
pub async fn run_controller(
    config: NodeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    registry: Option<crate::metrics::SharedRegistry>,
) -> Result<(), RunError> {
    if !config.roles.controller {
        return Err(RunError::Config(
            "process.roles does not include controller".into(),
        ));
    }
    let cluster_id = dirs::check_formatted(&config)?;
    let addr = config.controller_addr().ok_or_else(|| {
        RunError::Config(format!(
            "listener {} has no usable address",
            config.controller_listener_name
        ))
    })?;
    // Bind first: a port in use fails the start, naming the address, before the quorum runs.
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| RunError::Serve {
            addr: addr.to_string(),
            message: e.to_string(),
        })?;
    let mut settings = config.settings.clone();
    settings.cluster_id = cluster_id.clone();
    let mut quorum_config = QuorumConfig::new(
        config.node_id as u64,
        cluster_id.clone(),
        config.voters.clone(),
        config.quorum_dir(),
    );
    // This controller's address for its peers: its voter entry, else its controller listener
    // (a controller joining with AddRaftVoter is not among the configured voters).
    quorum_config.address = Some(
        config
            .voters
            .get(&(config.node_id as u64))
            .cloned()
            .unwrap_or_else(|| addr.to_string()),
    );
    quorum_config.tls = config.control_tls.clone();
    quorum_config.snapshot_interval_bytes = config.max_record_bytes_between_snapshots;
    quorum_config.election_ticks =
        (config.election_timeout_ms / quorum_config.tick.as_millis() as u64).max(3) as usize;
    let (state_machine, images) = MetadataStateMachine::new();
    let (quorum, raft_service) = odradek_quorum::start(quorum_config, state_machine)?;
    let metrics = crate::metrics::ControllerMetrics::new(quorum.clone(), images.clone());
    if let Some(r) = &registry {
        crate::metrics::register_with(r, |r| metrics.register(r));
    }
    let (commands, command_rx) = mpsc::channel(1024);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    tokio::spawn(crate::active::run(
        command_rx,
        quorum.clone(),
        images,
        settings,
        clock,
    ));
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let service = ControllerServiceImpl {
        commands,
        quorum: quorum.clone(),
        cluster_id: cluster_id.clone(),
        stop: stop.clone(),
        metrics,
    };
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    tracing::info!(node_id = config.node_id, %cluster_id, %addr, "controller listening");
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = &config.control_tls {
        server = server
            .tls_config(tls.server_config())
            .map_err(|e| RunError::Serve {
                addr: addr.to_string(),
                message: format!("TLS: {e}"),
            })?;
    }
    let result = server
        .add_service(raft_service)
        .add_service(
            ControllerServiceServer::new(service)
                .max_decoding_message_size(odradek_quorum::MAX_MESSAGE_BYTES)
                .max_encoding_message_size(odradek_quorum::MAX_MESSAGE_BYTES),
        )
        .serve_with_incoming_shutdown(
            // A listener handed in keeps the kernel's default (Nagle on) unless told: small
            // answers would wait for the peer's delayed ACK, about 40 ms each.
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await;
    quorum.shutdown().await;
    // Give the driver a moment to finish its last write.
    tokio::time::sleep(Duration::from_millis(50)).await;
    result.map_err(|e| RunError::Serve {
        addr: addr.to_string(),
        message: e.to_string(),
    })
}
