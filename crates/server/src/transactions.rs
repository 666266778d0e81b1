//! The transaction coordinator of this broker: one [`Transactions`] per `__transaction_state`
//! partition it leads, rebuilt from the partition's log when it becomes leader (transactions
//! it finds half-ended get their markers written again) and dropped when it stops leading.
//!
//! A call that changes a transaction appends its record with acks=all semantics
//! (`transaction.state.log.min.isr`); the caller answers once the record is committed
//! ([`TxnCoordinator::finish`]). A committed PrepareCommit/PrepareAbort queues a marker job:
//! the marker writer ([`run_markers`]) sends WriteTxnMarkers to every partition's leader
//! (itself included), retrying until each is written, then writes CompleteCommit/CompleteAbort.
//! Open transactions past their timeout are aborted under a bumped epoch ([`TxnCoordinator::expire`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{ApiKey, ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;
use odradek_common::ErrorCode;
use odradek_coordinator::partition_for;
use odradek_coordinator::txn::{FollowUp, Transactions, Transition, TRANSACTION_STATE_TOPIC};
use odradek_metadata::MetadataImage;
use tokio::sync::mpsc;

use crate::config::TransactionsConfig;
use crate::coordinator_runtime::{append_records, Shards};
use crate::handlers::Broker;
use crate::replicas::{HostedPartition, ReplicaManager};

/// A transaction record appended and not yet known to be committed.
#[derive(Debug)]
pub struct PendingWrite {
    p: i32,
    leader_epoch: i32,
    transition: Transition,
    partition: Arc<HostedPartition>,
    last_offset: i64,
}

/// Markers to write for one transaction, queued by the coordinator.
#[derive(Debug, Clone)]
pub struct MarkerJob {
    p: i32,
    /// The `__transaction_state` partition's leader epoch: the coordinator epoch of markers.
    coordinator_epoch: i32,
    follow: FollowUp,
}

/// The broker's transaction coordinator.
#[derive(Debug)]
pub struct TxnCoordinator {
    config: TransactionsConfig,
    /// One shard (a `Transactions`) per led `__transaction_state` partition.
    shards: Shards<Transactions>,
    markers: mpsc::UnboundedSender<MarkerJob>,
    clock: Arc<dyn odradek_common::Clock>,
}

impl TxnCoordinator {
    /// A coordinator leading nothing yet, and the queue its marker jobs go to (for
    /// [`run_markers`]).
    pub fn new(
        broker_id: i32,
        config: TransactionsConfig,
        clock: Arc<dyn odradek_common::Clock>,
    ) -> (Self, mpsc::UnboundedReceiver<MarkerJob>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                config,
                shards: Shards::new(TRANSACTION_STATE_TOPIC, broker_id),
                markers: tx,
                clock,
            },
            rx,
        )
    }

    /// The `__transaction_state` partition of `transactional_id`, if the topic exists.
    pub fn partition_of(image: &MetadataImage, transactional_id: &str) -> Option<i32> {
        let t = image.topics.get_by_name(TRANSACTION_STATE_TOPIC)?;
        Some(partition_for(transactional_id, t.partitions.len() as i32))
    }

    /// Runs `f` on the transactions of `transactional_id`'s partition; a transition it returns
    /// is appended, and comes back to be awaited with [`TxnCoordinator::finish`]. Errors are
    /// Kafka's: NOT_COORDINATOR when another broker leads the partition (or the topic does
    /// not exist), COORDINATOR_LOAD_IN_PROGRESS while loading.
    pub fn exec<T>(
        &self,
        image: &MetadataImage,
        transactional_id: &str,
        f: impl FnOnce(&mut Transactions, i64) -> (T, Option<Transition>),
    ) -> Result<(T, Option<PendingWrite>), ErrorCode> {
        let p = Self::partition_of(image, transactional_id).ok_or(ErrorCode::NotCoordinator)?;
        match self.exec_partition(p, f) {
            Err(ErrorCode::NotCoordinator) => Err(self.shards.missing(image, p)),
            other => other,
        }
    }

    fn exec_partition<T>(
        &self,
        p: i32,
        f: impl FnOnce(&mut Transactions, i64) -> (T, Option<Transition>),
    ) -> Result<(T, Option<PendingWrite>), ErrorCode> {
        let now = self.clock.now_ms();
        self.shards.with(p, |txns, partition, leader_epoch| {
            let (value, transition) = f(txns, now);
            let Some(transition) = transition else {
                return Ok((value, None));
            };
            let (k, v) = transition.record();
            match self.append(partition, &[(k, v)], now) {
                Ok(last_offset) => Ok((
                    value,
                    Some(PendingWrite {
                        p,
                        leader_epoch,
                        transition,
                        partition: Arc::clone(partition),
                        last_offset,
                    }),
                )),
                Err(e) => {
                    txns.fail(&transition);
                    Err(e)
                }
            }
        })?
    }

    /// Appends records to the partition as leader, acks=all with the state log's min ISR;
    /// returns the last offset.
    fn append(
        &self,
        partition: &HostedPartition,
        records: &[(bytes::Bytes, Option<bytes::Bytes>)],
        now: i64,
    ) -> Result<i64, ErrorCode> {
        append_records(partition, records, None, -1, self.min_isr(), now)
            .map(|a| a.info.last_offset)
    }

    fn min_isr(&self) -> usize {
        self.config.state_log_min_isr.max(1) as usize
    }

    /// Waits (up to 30 s) until `write` is committed, then applies it; a committed Prepare
    /// state queues its markers. A write that is not committed leaves the transaction as it
    /// was: COORDINATOR_NOT_AVAILABLE (or NOT_COORDINATOR if leadership moved), both
    /// retriable.
    pub async fn finish(&self, write: PendingWrite) -> Result<(), ErrorCode> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let committed = crate::handlers::acks::wait_committed(
            &write.partition,
            write.leader_epoch,
            write.last_offset,
            self.min_isr(),
            deadline,
        )
        .await;
        self.shards
            .with(write.p, |txns, _, epoch| {
                if epoch != write.leader_epoch {
                    return Err(ErrorCode::NotCoordinator);
                }
                match committed {
                    Ok(()) => {
                        let follow = txns.complete(&write.transition);
                        if follow != FollowUp::None {
                            let _ = self.markers.send(MarkerJob {
                                p: write.p,
                                coordinator_epoch: write.leader_epoch,
                                follow,
                            });
                        }
                        Ok(())
                    }
                    Err((code, message)) => {
                        tracing::warn!(%message, "a transaction record was not committed");
                        txns.fail(&write.transition);
                        Err(match code {
                            ErrorCode::NotLeaderOrFollower => ErrorCode::NotCoordinator,
                            _ => ErrorCode::CoordinatorNotAvailable,
                        })
                    }
                }
            })
            .map_err(|_| ErrorCode::NotCoordinator)?
    }

    /// Whether this broker still coordinates partition `p` under `leader_epoch`.
    fn leads(&self, p: i32, leader_epoch: i32) -> bool {
        self.shards.leads(p, leader_epoch)
    }

    /// Aborts, in every loaded partition, the open transactions past their timeout and drops
    /// transactional ids idle past `transactional.id.expiration.ms`; returns the writes to
    /// await.
    pub fn expire(&self) -> Vec<PendingWrite> {
        let mut writes = Vec::new();
        for p in self.shards.partitions() {
            let now = self.clock.now_ms();
            let _ = self.shards.with(p, |txns, partition, leader_epoch| {
                let (aborts, tombstones) = txns.expire(now);
                if !tombstones.is_empty() {
                    let records: Vec<_> = tombstones.into_iter().map(|k| (k, None)).collect();
                    if let Err(e) = self.append(partition, &records, now) {
                        tracing::warn!(?e, "cannot write expired transactional ids' tombstones");
                    }
                }
                for transition in aborts {
                    tracing::info!(transactional_id = %transition.target.transactional_id, "aborting a transaction past its timeout");
                    let (k, v) = transition.record();
                    match self.append(partition, &[(k, v)], now) {
                        Ok(last_offset) => writes.push(PendingWrite {
                            p,
                            leader_epoch,
                            transition,
                            partition: Arc::clone(partition),
                            last_offset,
                        }),
                        Err(_) => txns.fail(&transition),
                    }
                }
            });
        }
        writes
    }

    /// Every marker of a job was written: the transaction completes (a write to await).
    /// `Ok(None)`: nothing to do (completed already, or this broker no longer coordinates
    /// it); an error: the Complete record could not be appended (retry).
    fn markers_written(&self, job: &MarkerJob) -> Result<Option<PendingWrite>, ErrorCode> {
        let FollowUp::WriteMarkers {
            transactional_id,
            producer_id,
            producer_epoch,
            ..
        } = &job.follow
        else {
            return Ok(None);
        };
        let (id, pid, epoch) = (transactional_id.clone(), *producer_id, *producer_epoch);
        if !self.leads(job.p, job.coordinator_epoch) {
            return Ok(None);
        }
        self.exec_partition(job.p, |txns, now| {
            ((), txns.markers_written(now, &id, pid, epoch))
        })
        .map(|(_, w)| w)
    }

    /// The transactions of every loaded partition (ListTransactions).
    pub fn list(&self) -> Vec<odradek_coordinator::txn::TxnMetadata> {
        self.shards
            .each_loaded(|txns| txns.all().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .flatten()
            .collect()
    }

    /// Follows leadership of `__transaction_state` in `image`: loads the partitions this
    /// broker now leads (reading their logs; call on a blocking thread), queues the markers of
    /// transactions found in a Prepare state, and drops the partitions it no longer leads.
    pub fn on_image(&self, image: &MetadataImage, replicas: &ReplicaManager) {
        let followed = self.shards.on_image(image, replicas, |p, partition| {
            let mut txns = Transactions::new(self.config.coordinator);
            let (records, skipped) = replay(partition, &mut txns);
            if records > 0 || skipped > 0 {
                tracing::info!(
                    partition = p,
                    records,
                    skipped,
                    "loaded {TRANSACTION_STATE_TOPIC}-{p}"
                );
            }
            txns
        });
        // Transactions found half-ended: their markers are written again.
        for (p, epoch) in followed.loaded {
            let unfinished = self
                .shards
                .with(p, |txns, _, _| txns.unfinished())
                .unwrap_or_default();
            for follow in unfinished {
                let _ = self.markers.send(MarkerJob {
                    p,
                    coordinator_epoch: epoch,
                    follow,
                });
            }
        }
    }
}

/// Replays a `__transaction_state` partition; returns records read and skipped.
fn replay(partition: &HostedPartition, txns: &mut Transactions) -> (u64, u64) {
    let (mut records, mut unreadable) = (0u64, 0u64);
    let skipped = partition.read_all_records(|r| {
        let Some(k) = r.key.filter(|_| !r.control) else {
            return;
        };
        if txns.replay(&k, r.value.as_deref()) {
            records += 1;
        } else {
            unreadable += 1;
        }
    });
    (records, skipped + unreadable)
}

/// Writes the markers of queued jobs, each in a task of its own.
pub async fn run_markers(broker: Arc<Broker>, mut jobs: mpsc::UnboundedReceiver<MarkerJob>) {
    while let Some(job) = jobs.recv().await {
        tokio::spawn(write_markers(Arc::clone(&broker), job));
    }
}

async fn write_markers(broker: Arc<Broker>, job: MarkerJob) {
    let FollowUp::WriteMarkers {
        transactional_id,
        producer_id,
        producer_epoch,
        commit,
        partitions,
    } = &job.follow
    else {
        return;
    };
    let mut left: BTreeSet<(String, i32)> = partitions.iter().cloned().collect();
    let mut backoff = Duration::from_millis(50);
    while !left.is_empty() {
        if !broker.txns.leads(job.p, job.coordinator_epoch) {
            // The new coordinator finishes it.
            return;
        }
        let image = broker.image();
        // By leader; a partition whose topic is gone needs no marker.
        let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
        left.retain(|(t, p)| {
            let Some(topic) = image.topics.get_by_name(t) else {
                return false;
            };
            match topic.partitions.get(p) {
                None => false,
                Some(r) => {
                    by_leader
                        .entry(r.leader)
                        .or_default()
                        .entry(t.clone())
                        .or_default()
                        .push(*p);
                    true
                }
            }
        });
        for (leader, topics) in by_leader {
            if leader < 0 {
                continue;
            }
            let req =
                WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                    .with_producer_id(ProducerId(*producer_id))
                    .with_producer_epoch(*producer_epoch)
                    .with_transaction_result(*commit)
                    .with_coordinator_epoch(job.coordinator_epoch)
                    .with_topics(
                        topics
                            .iter()
                            .map(|(t, ps)| {
                                WritableTxnMarkerTopic::default()
                                    .with_name(TopicName(StrBytes::from_string(t.clone())))
                                    .with_partition_indexes(ps.clone())
                            })
                            .collect(),
                    )]);
            let response = if leader == broker.id() {
                Ok(crate::handlers::write_txn_markers_local(&broker, req).await)
            } else {
                send_markers(&broker, &image, leader, &req).await
            };
            match response {
                Ok(r) => {
                    for m in r.markers {
                        for t in m.topics {
                            for p in t.partitions {
                                let key = (t.name.0.to_string(), p.partition_index);
                                if p.error_code == 0 {
                                    left.remove(&key);
                                } else {
                                    tracing::debug!(topic = %key.0, partition = key.1, code = p.error_code, "marker not written yet");
                                }
                            }
                        }
                    }
                }
                Err(e) => tracing::debug!(leader, error = %e, "cannot send transaction markers"),
            }
        }
        if !left.is_empty() {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }
    tracing::debug!(%transactional_id, commit, "transaction markers written");
    // Complete. Until that record is committed the transaction stays in its Prepare state
    // (every call on it answers CONCURRENT_TRANSACTIONS), so it is retried for as long as this
    // broker coordinates the transaction; a new coordinator would finish it from its load.
    let mut backoff = Duration::from_millis(100);
    loop {
        match broker.txns.markers_written(&job) {
            Ok(None) => return,
            Ok(Some(write)) => {
                if broker.txns.finish(write).await.is_ok() {
                    return;
                }
            }
            Err(e) => {
                tracing::debug!(?e, %transactional_id, "cannot write the transaction's completion yet")
            }
        }
        if !broker.txns.leads(job.p, job.coordinator_epoch) {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

async fn send_markers(
    broker: &Broker,
    image: &MetadataImage,
    leader: i32,
    req: &WriteTxnMarkersRequest,
) -> Result<kafka_protocol::messages::WriteTxnMarkersResponse, String> {
    let b = image
        .cluster
        .brokers
        .get(&leader)
        .ok_or_else(|| format!("broker {leader} is not registered"))?;
    let e = crate::handlers::endpoint_for(b, &broker.config.inter_broker_listener)
        .ok_or_else(|| format!("broker {leader} has no endpoint"))?;
    let addr = format!("{}:{}", e.host, e.port);
    let mut conn = odradek_client::Connection::connect_secure(
        &addr,
        "odradek-txn-coordinator",
        &broker.config.inter_broker_security,
    )
    .await
    .map_err(|e| e.to_string())?;
    let v = conn
        .version(ApiKey::WriteTxnMarkers, 1)
        .map_err(|e| e.to_string())?;
    tokio::time::timeout(Duration::from_secs(35), conn.send(req, v))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())
}
