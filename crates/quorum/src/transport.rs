//! Raft messages between voters over gRPC: one server (mounted on the controller listener) and
//! one sender task per peer with a bounded queue. A full queue or a failed send drops messages,
//! which Raft tolerates (it retries); snapshot sends report their outcome back to raft.

use std::time::Duration;

use protobuf::Message as PbMessage;
use raft::prelude::{Message, MessageType};
use tokio::sync::mpsc;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

use crate::node::Command;
use crate::pb::raft_transport_client::RaftTransportClient;
use crate::pb::raft_transport_server::RaftTransport;
use crate::pb::{RaftBatch, SendResponse};

/// Largest gRPC message between voters (snapshots travel as one message).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// The gRPC service that feeds received messages to the local driver.
#[derive(Debug, Clone)]
pub struct TransportService {
    pub(crate) node_id: u64,
    pub(crate) cluster_id: String,
    pub(crate) commands: mpsc::Sender<Command>,
}

#[tonic::async_trait]
impl RaftTransport for TransportService {
    async fn send(&self, request: Request<RaftBatch>) -> Result<Response<SendResponse>, Status> {
        let batch = request.into_inner();
        if batch.cluster_id != self.cluster_id {
            tracing::error!(node_id = self.node_id, from = batch.from, their_cluster_id = %batch.cluster_id,
                our_cluster_id = %self.cluster_id, "refusing raft messages from another cluster");
            return Err(Status::failed_precondition(format!(
                "cluster id mismatch: this voter belongs to {}",
                self.cluster_id
            )));
        }
        if !batch.from_address.is_empty() {
            let _ = self.commands.try_send(Command::LearnAddress {
                id: batch.from,
                address: batch.from_address.clone(),
            });
        }
        for bytes in &batch.messages {
            let m = Message::parse_from_bytes(bytes)
                .map_err(|e| Status::invalid_argument(format!("bad raft message: {e}")))?;
            self.commands
                .send(Command::Step(Box::new(m)))
                .await
                .map_err(|_| Status::unavailable("quorum shutting down"))?;
        }
        Ok(Response::new(SendResponse {}))
    }
}

/// Starts the sender task for one peer; returns its queue.
/// Who sends: this node's id, cluster and own address.
#[derive(Debug, Clone)]
pub(crate) struct Sender {
    pub from: u64,
    pub cluster_id: String,
    pub address: String,
    pub tls: Option<crate::ControlTls>,
}

/// Starts the sender task for one peer; returns its queue (the task ends when it is dropped).
pub(crate) fn spawn_peer(
    sender: Sender,
    to: u64,
    addr: String,
    queue: usize,
    commands: mpsc::Sender<Command>,
) -> mpsc::Sender<Message> {
    let (tx, rx) = mpsc::channel(queue);
    tokio::spawn(peer_loop(sender, to, addr, rx, commands));
    tx
}

async fn peer_loop(
    sender: Sender,
    to: u64,
    addr: String,
    mut rx: mpsc::Receiver<Message>,
    commands: mpsc::Sender<Command>,
) {
    let Sender {
        from,
        cluster_id,
        address,
        tls,
    } = sender;
    let channel: Channel = match crate::tls::endpoint(&addr, tls.as_ref(), Duration::from_secs(10))
    {
        Ok(e) => e.connect_lazy(),
        Err(e) => {
            tracing::error!(to, %addr, error = %e, "invalid voter address; not sending to it");
            return;
        }
    };
    let mut client = RaftTransportClient::new(channel)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let mut reachable = true;
    while let Some(first) = rx.recv().await {
        let mut msgs = vec![first];
        while msgs.len() < 256 {
            match rx.try_recv() {
                Ok(m) => msgs.push(m),
                Err(_) => break,
            }
        }
        let snapshot = msgs
            .iter()
            .any(|m| m.get_msg_type() == MessageType::MsgSnapshot);
        let encoded: Result<Vec<Vec<u8>>, _> = msgs.iter().map(|m| m.write_to_bytes()).collect();
        let Ok(messages) = encoded else {
            tracing::error!(to, "cannot encode raft message");
            continue;
        };
        let batch = RaftBatch {
            from,
            cluster_id: cluster_id.clone(),
            messages,
            from_address: address.clone(),
        };
        let result = client.send(batch).await;
        match &result {
            Ok(_) if !reachable => {
                tracing::info!(to, %addr, "voter reachable again");
                reachable = true;
            }
            Ok(_) => {}
            Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                tracing::error!(to, %addr, message = status.message(), "voter refused our messages");
            }
            Err(status) => {
                if reachable {
                    tracing::warn!(to, %addr, error = %status.message(), "voter unreachable");
                    reachable = false;
                }
                let _ = commands.try_send(Command::Unreachable(to));
            }
        }
        if snapshot {
            let _ = commands
                .send(Command::SnapshotSent {
                    to,
                    ok: result.is_ok(),
                })
                .await;
        }
    }
}
