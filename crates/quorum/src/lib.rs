//! `odradek-quorum`: the controller quorum's replicated log.
//!
//! # What it owns
//! A Raft voter built on tikv's raft-rs (`RawNode`), with the log, hard state, conf state and
//! snapshots in RocksDB ([`RocksStorage`]) and messages between voters over gRPC (tonic). The
//! log's contents are opaque bytes; the controller puts metadata record batches in them. A
//! [`StateMachine`] supplied by the caller receives committed entries in order, produces the
//! snapshots that compact the log, and is restored from snapshots (at start-up, and when a
//! lagging voter is sent one by the leader).
//!
//! # Layering
//! Layer L2 of DESIGN.md: the async edge. It depends on `odradek-common`, raft-rs, RocksDB,
//! tokio and tonic, and on no other Odradek crate.
//!
//! # Threading
//! One driver task owns the `RawNode`, the store's write side and the state machine; everything
//! else talks to it through a bounded command channel ([`QuorumHandle`]) and reads its status
//! from a `watch`. The state machine's methods run on the driver task and must not block.
//! Readers of committed entries share the store's `Arc<DB>` ([`QuorumHandle::storage`]).
//!
//! # Voters
//! The voter set starts as the store was formatted (`controller.quorum.voters`) and then lives
//! in the log as raft configuration changes (KIP-853's AddRaftVoter / RemoveRaftVoter): a new
//! controller joins as an observer (a raft learner), is sent a snapshot, and is promoted once it
//! has the committed log. Controllers' addresses travel with voter changes and with every
//! message, so a statically configured quorum can change its members too (Kafka cannot,
//! KAFKA-16538).
//!
//! # Timing
//! 100 ms ticks, an election timeout of 10 ticks (raft randomises it between 1 s and 2 s), and
//! pre-vote with check-quorum: a leader that dies is replaced well within 3 s.

mod config;
mod error;
mod log;
pub mod metrics;
mod node;
mod storage;
mod tls;
mod transport;

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

pub use config::{parse_voters, valid_address, QuorumConfig, DEFAULT_SNAPSHOT_INTERVAL_BYTES};
pub use error::{MembershipError, QuorumError};
pub use metrics::QuorumMetrics;
pub use storage::{RocksStorage, StoreIdentity};
pub use tls::{endpoint, ControlTls};
pub use transport::{TransportService, MAX_MESSAGE_BYTES};

/// The generated gRPC types (`odradek.quorum.v1`).
#[allow(missing_docs, clippy::all, missing_debug_implementations)]
pub mod pb {
    tonic::include_proto!("odradek.quorum.v1");
}

/// What the quorum replicates into: receives committed entries in order.
pub trait StateMachine: Send + 'static {
    /// Applies the committed entry at `index`.
    fn apply(&mut self, index: u64, data: &[u8]);
    /// Encodes the state as of the last applied entry (used to compact the log).
    fn snapshot(&self) -> Vec<u8>;
    /// Replaces the state with a snapshot taken at `index`.
    fn restore(&mut self, index: u64, data: &[u8]);
}

/// A voter's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Leads the quorum: proposals go here.
    Leader,
    /// Campaigning.
    Candidate,
    /// Follows a leader (or waits for one).
    Follower,
}

/// A voter's view of the quorum, published on every change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumStatus {
    /// This voter.
    pub node_id: u64,
    /// The leader it knows of.
    pub leader_id: Option<u64>,
    /// Current term (Kafka's leader epoch of the metadata log).
    pub term: u64,
    /// This voter's role.
    pub role: Role,
    /// Highest committed index (the metadata log's high watermark).
    pub commit_index: u64,
    /// Highest index applied to the state machine.
    pub applied_index: u64,
    /// This node is a voter (not an observer, nor removed).
    pub is_voter: bool,
}

/// The voter set as this node knows it, with every known controller address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VoterSet {
    /// Voters.
    pub voters: Vec<u64>,
    /// Observers (raft learners: controllers catching up before they vote).
    pub observers: Vec<u64>,
    /// Controller addresses by node id.
    pub addresses: Arc<std::collections::BTreeMap<u64, String>>,
}

/// One voter or observer in a [`QuorumDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoterState {
    /// The node.
    pub node_id: u64,
    /// Its log end as the describing voter knows it (the leader knows everyone's).
    pub log_end_offset: Option<u64>,
    /// When the describing node last heard from it (ms since the epoch).
    pub last_fetch_ms: Option<i64>,
    /// When it last had the leader's whole log, as the leader saw (ms since the epoch).
    pub last_caught_up_ms: Option<i64>,
    /// Its controller address, if known.
    pub address: Option<String>,
}

/// DescribeQuorum data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumDescription {
    /// The leader, if known.
    pub leader_id: Option<u64>,
    /// Current term.
    pub term: u64,
    /// Commit index.
    pub high_watermark: u64,
    /// Every voter.
    pub voters: Arc<Vec<VoterState>>,
    /// Every observer (learner).
    pub observers: Arc<Vec<VoterState>>,
}

/// An entry in the leader's log, not yet known to be committed.
#[derive(Debug)]
pub struct Appended {
    /// The entry's index.
    pub index: u64,
    committed: oneshot::Receiver<Result<u64, QuorumError>>,
    started: std::time::Instant,
    metrics: QuorumMetrics,
}

impl Appended {
    /// Resolves with the index once the entry is committed and applied here; fails with
    /// [`QuorumError::NotLeader`] when this voter lost the leadership before (the entry may
    /// then be lost or committed by the next leader).
    pub async fn committed(self) -> Result<u64, QuorumError> {
        let r = self.committed.await.map_err(|_| QuorumError::Shutdown)?;
        if r.is_ok() {
            self.metrics
                .commit_latency
                .observe(self.started.elapsed().as_secs_f64() * 1e3);
        }
        r
    }
}

/// A handle to a running voter. Cheap to clone.
#[derive(Debug, Clone)]
pub struct QuorumHandle {
    commands: mpsc::Sender<node::Command>,
    status: watch::Receiver<QuorumStatus>,
    voter_set: watch::Receiver<VoterSet>,
    storage: RocksStorage,
    metrics: QuorumMetrics,
}

impl QuorumHandle {
    /// The quorum's metrics; [`QuorumMetrics::register`] adds them to a registry.
    pub fn metrics(&self) -> &QuorumMetrics {
        &self.metrics
    }

    /// Proposes `data`; resolves with the entry's index once it is committed and applied here.
    /// Fails with [`QuorumError::NotLeader`] on a follower.
    pub async fn propose(&self, data: Vec<u8>) -> Result<u64, QuorumError> {
        self.append(data).await?.committed().await
    }

    /// Appends `data` to the leader's log without waiting for the commit: resolves with the
    /// entry's index as soon as the leader holds it, so a caller can pipeline proposals (each
    /// later entry follows this one in the log) and wait for [`Appended::committed`] apart.
    /// Fails with [`QuorumError::NotLeader`] on a follower and
    /// [`QuorumError::ProposalDropped`] when the leader refuses the entry; either way the
    /// entry is not in the log.
    pub async fn append(&self, data: Vec<u8>) -> Result<Appended, QuorumError> {
        let started = std::time::Instant::now();
        let (appended, appended_rx) = oneshot::channel();
        let (reply, committed) = oneshot::channel();
        self.commands
            .send(node::Command::Propose {
                data,
                appended,
                reply,
            })
            .await
            .map_err(|_| QuorumError::Shutdown)?;
        let index = appended_rx.await.map_err(|_| QuorumError::Shutdown)??;
        Ok(Appended {
            index,
            committed,
            started,
            metrics: self.metrics.clone(),
        })
    }

    /// The latest status.
    pub fn status(&self) -> QuorumStatus {
        *self.status.borrow()
    }

    /// A receiver that sees every status change.
    pub fn watch_status(&self) -> watch::Receiver<QuorumStatus> {
        self.status.clone()
    }

    /// DescribeQuorum data from this voter.
    pub async fn describe(&self) -> Result<QuorumDescription, QuorumError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(node::Command::Describe(reply))
            .await
            .map_err(|_| QuorumError::Shutdown)?;
        rx.await.map_err(|_| QuorumError::Shutdown)
    }

    /// The voter set and controller addresses as this node knows them.
    pub fn voter_set(&self) -> VoterSet {
        self.voter_set.borrow().clone()
    }

    async fn membership(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), QuorumError>>) -> node::Command,
    ) -> Result<(), QuorumError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| QuorumError::Shutdown)?;
        rx.await.map_err(|_| QuorumError::Shutdown)?
    }

    /// AddRaftVoter (KIP-853), on the leader: `id` at `address` joins as an observer, and is
    /// promoted to voter once it has the committed log (within 30 s, or
    /// [`QuorumError::CatchUpTimeout`]). Resolves when the promotion is committed.
    pub async fn add_voter(&self, id: u64, address: String) -> Result<(), QuorumError> {
        self.membership(|reply| node::Command::AddVoter { id, address, reply })
            .await
    }

    /// RemoveRaftVoter, on the leader (which hands over leadership first when it is the one
    /// removed: then the answer is [`QuorumError::NotLeader`] naming the new leader).
    pub async fn remove_voter(&self, id: u64) -> Result<(), QuorumError> {
        self.membership(|reply| node::Command::RemoveVoter { id, reply })
            .await
    }

    /// UpdateRaftVoter, on the leader: a voter's new address.
    pub async fn update_voter(&self, id: u64, address: String) -> Result<(), QuorumError> {
        self.membership(|reply| node::Command::UpdateVoter { id, address, reply })
            .await
    }

    /// The store, for reading committed entries and the latest snapshot.
    pub fn storage(&self) -> &RocksStorage {
        &self.storage
    }

    /// Stops the voter.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(node::Command::Shutdown).await;
    }
}

/// Starts a voter on the current tokio runtime. Returns its handle and the transport service,
/// which the caller mounts on its gRPC server (the controller listener).
pub fn start<S: StateMachine>(
    config: QuorumConfig,
    state_machine: S,
) -> Result<
    (
        QuorumHandle,
        pb::raft_transport_server::RaftTransportServer<TransportService>,
    ),
    QuorumError,
> {
    let node::Built {
        driver,
        commands,
        service,
        status,
        voter_set,
        storage,
    } = node::build(config, state_machine)?;
    tokio::spawn(driver.run());
    let server = pb::raft_transport_server::RaftTransportServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    Ok((
        QuorumHandle {
            commands,
            status,
            voter_set,
            storage,
            metrics: QuorumMetrics::default(),
        },
        server,
    ))
}
