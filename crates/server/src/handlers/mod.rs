//! Request handlers, one file per API. [`Broker`] routes decoded requests to them.

pub(crate) mod acks;
mod admin;
mod authorize;
mod configs;
mod consumer_groups;
mod fetch;
mod group_configs;
mod groups;
mod list_offsets;
mod log_dirs;
mod metadata;
mod produce;
mod producers;
mod quorum;
mod quotas;
mod reassign;
mod records;
mod security;
mod share;
mod share_acks;
mod share_state;
mod throttling;
mod txn;

pub(crate) use txn::write_txn_markers_local;

use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use kafka_protocol::protocol::VersionRange;
use odradek_common::{Clock, Uuid};
use odradek_frontend::{Handled, RequestContext, RequestHandler};
use odradek_metadata::{MetadataImage, TopicImage};
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::controller_client::ControllerClient;
use crate::quotas::QuotaKind;
use crate::replicas::{HostedPartition, ReplicaManager};

/// The broker's request handling state, shared by all connections.
#[derive(Debug)]
pub struct Broker {
    pub(crate) config: Arc<BrokerConfig>,
    pub(crate) cluster_id: String,
    pub(crate) images: watch::Receiver<Arc<MetadataImage>>,
    pub(crate) replicas: Arc<ReplicaManager>,
    /// This broker's epoch from its registration (-1 until registered), for AlterPartition.
    pub(crate) broker_epoch: Arc<std::sync::atomic::AtomicI64>,
    /// The latest image the replica manager has applied.
    pub(crate) applied: watch::Receiver<Arc<MetadataImage>>,
    pub(crate) controller: ControllerClient,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) groups: Arc<crate::groups::GroupCoordinator>,
    pub(crate) producer_ids: crate::producer_ids::ProducerIdManager,
    pub(crate) txns: Arc<crate::transactions::TxnCoordinator>,
    /// Client quota usage.
    pub(crate) quotas: Arc<crate::quotas::ClientQuotaManager>,
    /// End offsets of partitions not hosted here, for consumer lag.
    pub(crate) remote_ends: Arc<crate::lag::RemoteEnds>,
    /// Incremental fetch sessions (KIP-227).
    pub(crate) fetch_sessions: Arc<crate::fetch_session::FetchSessions>,
    /// The share coordinator (KIP-932's `__share_group_state`).
    pub(crate) shares: Arc<crate::share_coordinator::ShareCoordinator>,
    /// The share-partitions this broker leads, and share sessions.
    pub(crate) share_partitions: Arc<crate::share_partitions::SharePartitions>,
}

/// The cluster's topics as the group coordinator sees them (consumer and share groups).
pub(crate) struct ImageTopics<'a>(pub &'a MetadataImage);

impl odradek_coordinator::TopicView for ImageTopics<'_> {
    fn topic(&self, name: &str) -> Option<(Uuid, i32)> {
        let t = self.0.topics.get_by_name(name)?;
        Some((t.id, t.partitions.len() as i32))
    }

    fn names(&self) -> Vec<String> {
        self.0
            .topics
            .by_name
            .iter()
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn version(&self) -> i64 {
        self.0.offset
    }

    fn name(&self, id: &Uuid) -> Option<String> {
        self.0.topics.by_id.get(id).map(|t| t.name.clone())
    }
}

/// Fires the record locks of the share-partitions here (the broker's 100 ms task).
pub async fn expire_share_locks(broker: &Broker) {
    share::expire_locks(broker).await
}

impl Broker {
    pub(crate) fn image(&self) -> Arc<MetadataImage> {
        Arc::clone(&self.images.borrow())
    }

    pub(crate) fn id(&self) -> i32 {
        self.config.node.node_id
    }

    /// Waits (up to a second) until the replica manager has applied the metadata image that
    /// was current when the request arrived, so a partition API sees the partitions this
    /// broker's Metadata answers describe (a topic just created, a leadership just moved here)
    /// instead of answering NOT_LEADER_OR_FOLLOWER and costing the client a retry. Returns at
    /// once when it is caught up.
    pub(crate) async fn await_applied(&self) {
        let wanted = self.image().offset;
        if self.applied.borrow().offset >= wanted {
            return;
        }
        let mut applied = self.applied.clone();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            applied.wait_for(|a| a.offset >= wanted),
        )
        .await;
    }

    /// Sends an ISR change a leader proposed.
    pub(crate) fn propose_isr(
        &self,
        partition: &Arc<HostedPartition>,
        proposal: Option<odradek_replication::IsrProposal>,
    ) {
        if let Some(proposal) = proposal {
            crate::isr::propose(
                &self.controller,
                self.id(),
                &self.broker_epoch,
                Arc::clone(partition),
                proposal,
            );
        }
    }

    /// `min.insync.replicas` of `topic`: its override, else this broker's dynamic value, else
    /// the cluster-wide dynamic default, else server.properties'.
    pub(crate) fn min_insync_replicas(&self, image: &MetadataImage, topic: &str) -> usize {
        use odradek_metadata::ConfigResource;
        const KEY: &str = "min.insync.replicas";
        [
            ConfigResource::Topic(topic.to_string()),
            ConfigResource::Broker(self.id().to_string()),
            ConfigResource::Broker(String::new()),
        ]
        .iter()
        // Borrowed, not copied: this runs for every partition of every produce.
        .find_map(|r| {
            image
                .configs
                .resources
                .get(r)
                .and_then(|c| c.get(KEY))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(self.config.replication.min_insync_replicas)
    }

    /// Waits (up to `timeout`) until the metadata image satisfies `pred`.
    pub(crate) async fn wait_for_image(
        &self,
        timeout: std::time::Duration,
        pred: impl Fn(&MetadataImage) -> bool,
    ) -> Arc<MetadataImage> {
        let mut rx = self.images.clone();
        let _ = tokio::time::timeout(timeout, rx.wait_for(|i| pred(i))).await;
        self.image()
    }
}

/// Asks the active controller to create topics the broker needs (auto-creation, internal
/// topics); refusals and failures are logged under `what`, not returned: the caller waits for the
/// topics in its metadata and answers from what it sees.
pub(crate) async fn create_through_controller(
    broker: &Broker,
    req: odradek_controller::pb::CreateTopicsRequest,
    what: &str,
) {
    match broker
        .controller
        .call(std::time::Duration::from_secs(5), |mut c| {
            let r = req.clone();
            async move { c.create_topics(r).await }
        })
        .await
    {
        Ok(resp) => {
            for t in resp.topics.iter().filter(|t| t.error_code != 0) {
                tracing::info!(topic = %t.name, code = t.error_code, message = %t.error_message, "{what} refused");
            }
        }
        Err(e) => tracing::warn!(error = %e, "{what} failed"),
    }
}

/// The endpoint of `broker` on the listener a request arrived on (its first one otherwise).
pub(crate) fn endpoint_for<'a>(
    broker: &'a odradek_metadata::BrokerRegistration,
    listener: &str,
) -> Option<&'a odradek_metadata::Endpoint> {
    broker
        .endpoints
        .iter()
        .find(|e| e.listener == listener)
        .or_else(|| broker.endpoints.first())
}

pub(crate) fn kuuid(id: Uuid) -> uuid::Uuid {
    uuid::Uuid::from_bytes(*id.as_bytes())
}

pub(crate) fn ouuid(id: &uuid::Uuid) -> Uuid {
    Uuid(*id.as_bytes())
}

/// The topic named by `name`, or by `id` when the name is empty (topic-id based versions).
pub(crate) fn find_topic(
    image: &MetadataImage,
    name: &str,
    id: &uuid::Uuid,
) -> Option<Arc<TopicImage>> {
    if !name.is_empty() {
        return image.topics.get_by_name(name).cloned();
    }
    image.topics.by_id.get(&ouuid(id)).cloned()
}

impl RequestHandler for Broker {
    fn supported_apis(&self) -> Vec<(ApiKey, VersionRange)> {
        vec![
            (ApiKey::Produce, VersionRange { min: 3, max: 11 }),
            (ApiKey::Fetch, VersionRange { min: 4, max: 16 }),
            (ApiKey::ListOffsets, VersionRange { min: 1, max: 8 }),
            (ApiKey::Metadata, VersionRange { min: 0, max: 12 }),
            (ApiKey::CreateTopics, VersionRange { min: 2, max: 7 }),
            (ApiKey::DeleteTopics, VersionRange { min: 1, max: 6 }),
            (ApiKey::DeleteRecords, VersionRange { min: 0, max: 2 }),
            (
                ApiKey::OffsetForLeaderEpoch,
                VersionRange { min: 2, max: 4 },
            ),
            (ApiKey::DescribeConfigs, VersionRange { min: 1, max: 4 }),
            (ApiKey::CreatePartitions, VersionRange { min: 0, max: 3 }),
            (
                ApiKey::IncrementalAlterConfigs,
                VersionRange { min: 0, max: 1 },
            ),
            (ApiKey::DescribeCluster, VersionRange { min: 0, max: 2 }),
            (ApiKey::DescribeQuorum, VersionRange { min: 0, max: 2 }),
            (ApiKey::FindCoordinator, VersionRange { min: 0, max: 4 }),
            (ApiKey::JoinGroup, VersionRange { min: 2, max: 9 }),
            (ApiKey::SyncGroup, VersionRange { min: 0, max: 5 }),
            (ApiKey::Heartbeat, VersionRange { min: 0, max: 4 }),
            (ApiKey::LeaveGroup, VersionRange { min: 0, max: 5 }),
            (ApiKey::OffsetCommit, VersionRange { min: 2, max: 9 }),
            (ApiKey::OffsetFetch, VersionRange { min: 1, max: 9 }),
            (ApiKey::ListGroups, VersionRange { min: 0, max: 5 }),
            (ApiKey::DescribeGroups, VersionRange { min: 0, max: 5 }),
            (ApiKey::DeleteGroups, VersionRange { min: 0, max: 2 }),
            (
                ApiKey::ConsumerGroupHeartbeat,
                VersionRange { min: 0, max: 1 },
            ),
            (
                ApiKey::ConsumerGroupDescribe,
                VersionRange { min: 0, max: 1 },
            ),
            (ApiKey::ShareGroupHeartbeat, VersionRange { min: 1, max: 1 }),
            (ApiKey::ShareGroupDescribe, VersionRange { min: 1, max: 1 }),
            // v2 (KIP-1206, KIP-1222: RENEW) is read by the frontend (`odradek_frontend::newer`).
            (ApiKey::ShareFetch, VersionRange { min: 1, max: 2 }),
            (ApiKey::ShareAcknowledge, VersionRange { min: 1, max: 2 }),
            (
                ApiKey::InitializeShareGroupState,
                VersionRange { min: 0, max: 0 },
            ),
            (ApiKey::ReadShareGroupState, VersionRange { min: 0, max: 0 }),
            (
                ApiKey::WriteShareGroupState,
                VersionRange { min: 0, max: 0 },
            ),
            (
                ApiKey::DeleteShareGroupState,
                VersionRange { min: 0, max: 0 },
            ),
            (ApiKey::InitProducerId, VersionRange { min: 0, max: 5 }),
            (ApiKey::DescribeProducers, VersionRange { min: 0, max: 0 }),
            (ApiKey::AddPartitionsToTxn, VersionRange { min: 0, max: 3 }),
            (ApiKey::AddOffsetsToTxn, VersionRange { min: 0, max: 3 }),
            (ApiKey::EndTxn, VersionRange { min: 0, max: 3 }),
            (ApiKey::WriteTxnMarkers, VersionRange { min: 1, max: 1 }),
            (ApiKey::TxnOffsetCommit, VersionRange { min: 0, max: 3 }),
            (
                ApiKey::DescribeTransactions,
                VersionRange { min: 0, max: 0 },
            ),
            (ApiKey::ListTransactions, VersionRange { min: 0, max: 1 }),
            (
                ApiKey::AlterPartitionReassignments,
                VersionRange { min: 0, max: 1 },
            ),
            (
                ApiKey::ListPartitionReassignments,
                VersionRange { min: 0, max: 0 },
            ),
            (ApiKey::ElectLeaders, VersionRange { min: 0, max: 2 }),
            (ApiKey::UnregisterBroker, VersionRange { min: 0, max: 0 }),
            (ApiKey::DescribeLogDirs, VersionRange { min: 1, max: 4 }),
            (ApiKey::AddRaftVoter, VersionRange { min: 0, max: 0 }),
            (ApiKey::RemoveRaftVoter, VersionRange { min: 0, max: 0 }),
            (ApiKey::CreateAcls, VersionRange { min: 1, max: 3 }),
            (ApiKey::DescribeAcls, VersionRange { min: 1, max: 3 }),
            (ApiKey::DeleteAcls, VersionRange { min: 1, max: 3 }),
            (
                ApiKey::DescribeUserScramCredentials,
                VersionRange { min: 0, max: 0 },
            ),
            (
                ApiKey::AlterUserScramCredentials,
                VersionRange { min: 0, max: 0 },
            ),
            (
                ApiKey::DescribeClientQuotas,
                VersionRange { min: 0, max: 1 },
            ),
            (ApiKey::AlterClientQuotas, VersionRange { min: 0, max: 1 }),
        ]
    }

    async fn handle(&self, ctx: RequestContext, request: RequestKind) -> Handled {
        // The request percentage counts the time the handler runs (its polls), not the time
        // it waits (a long-polling Fetch, a JoinGroup waiting for its rebalance), as Kafka
        // counts request-thread time; inter-broker requests and acks=0 produce are exempt.
        let exempt = match &request {
            RequestKind::Fetch(r) => r.replica_id.0 >= 0 || r.replica_state.replica_id.0 >= 0,
            RequestKind::Produce(r) => r.acks == 0,
            RequestKind::WriteTxnMarkers(_) => true,
            _ => false,
        };
        let quota_ctx = ctx.clone();
        let (handled, busy) = throttling::PollTimed::new(self.dispatch(ctx, request)).await;
        if exempt {
            return handled;
        }
        let ms = self.record_quota(&quota_ctx, QuotaKind::Request, busy.as_secs_f64() * 100.0);
        throttling::throttled(handled, ms)
    }
}

impl Broker {
    /// Routes a request to its handler, after Kafka's ACL checks; applies the byte quotas.
    async fn dispatch(&self, ctx: RequestContext, request: RequestKind) -> Handled {
        let (request, refused) = match authorize::check(self, &ctx, request) {
            authorize::Gate::Answer(r) => return Handled::Done(Some(r)),
            authorize::Gate::Handle(r, refused) => (r, refused),
        };
        if matches!(
            request,
            RequestKind::Produce(_)
                | RequestKind::Fetch(_)
                | RequestKind::ListOffsets(_)
                | RequestKind::DeleteRecords(_)
                | RequestKind::OffsetForLeaderEpoch(_)
                | RequestKind::DescribeProducers(_)
                | RequestKind::WriteTxnMarkers(_)
        ) {
            self.await_applied().await;
        }
        if let RequestKind::Produce(r) = request {
            let bytes = throttling::produce_bytes(&r);
            let produce_ms = self.record_quota(&ctx, QuotaKind::Produce, bytes as f64);
            let handled = produce::handle(self, &ctx, r).await;
            return throttling::throttled(handled, produce_ms);
        }
        let response = match request {
            RequestKind::Metadata(r) => Some(ResponseKind::Metadata(
                metadata::handle(self, &ctx, r).await,
            )),
            RequestKind::Fetch(mut r) => {
                let consumer = r.replica_id.0 < 0 && r.replica_state.replica_id.0 < 0;
                if consumer {
                    // Kafka: a fetch never asks for more than the quota window allows, or
                    // it could only ever be throttled.
                    if let Some(max) = throttling::fetch_cap(self, &ctx) {
                        r.max_bytes = r.max_bytes.min(max);
                        r.min_bytes = r.min_bytes.min(max);
                    }
                }
                let (response, attachments) = fetch::handle(self, &ctx, r).await;
                let (response, fetch_ms) = if consumer {
                    throttling::fetch(self, &ctx, response)
                } else {
                    (response, 0)
                };
                // The records go out from their files (zero copy on plaintext listeners).
                let response = authorize::merge(ResponseKind::Fetch(response), refused);
                return throttling::throttled(Handled::Files(response, attachments), fetch_ms);
            }
            RequestKind::ListOffsets(r) => Some(ResponseKind::ListOffsets(list_offsets::handle(
                self,
                ctx.api_version,
                r,
            ))),
            RequestKind::CreateTopics(r) => Some(ResponseKind::CreateTopics(
                admin::create_topics(self, &ctx, r).await,
            )),
            RequestKind::DeleteTopics(r) => Some(ResponseKind::DeleteTopics(
                admin::delete_topics(self, &ctx, r).await,
            )),
            RequestKind::DeleteRecords(r) => Some(ResponseKind::DeleteRecords(
                records::delete_records(self, r).await,
            )),
            RequestKind::OffsetForLeaderEpoch(r) => Some(ResponseKind::OffsetForLeaderEpoch(
                records::offset_for_leader_epoch(self, r),
            )),
            RequestKind::DescribeCluster(r) => Some(ResponseKind::DescribeCluster(
                records::describe_cluster(self, &ctx, r),
            )),
            RequestKind::DescribeConfigs(r) => Some(ResponseKind::DescribeConfigs(
                configs::describe(self, &ctx, r),
            )),
            RequestKind::IncrementalAlterConfigs(r) => Some(ResponseKind::IncrementalAlterConfigs(
                configs::incremental_alter(self, r).await,
            )),
            RequestKind::CreatePartitions(r) => Some(ResponseKind::CreatePartitions(
                admin::create_partitions(self, r).await,
            )),
            RequestKind::DescribeQuorum(r) => Some(ResponseKind::DescribeQuorum(
                quorum::describe(self, &ctx, r).await,
            )),
            RequestKind::FindCoordinator(r) => Some(ResponseKind::FindCoordinator(
                groups::find_coordinator(self, &ctx, r).await,
            )),
            RequestKind::JoinGroup(r) => Some(ResponseKind::JoinGroup({
                let span = tracing::info_span!("rebalance", broker_id = self.id(), group_id = %r.group_id.0);
                tracing::Instrument::instrument(groups::join_group(self, &ctx, r), span).await
            })),
            RequestKind::SyncGroup(r) => Some(ResponseKind::SyncGroup(
                groups::sync_group(self, &ctx, r).await,
            )),
            RequestKind::Heartbeat(r) => Some(ResponseKind::Heartbeat(groups::heartbeat(self, r))),
            RequestKind::LeaveGroup(r) => {
                Some(ResponseKind::LeaveGroup(groups::leave_group(self, &ctx, r)))
            }
            RequestKind::OffsetCommit(r) => Some(ResponseKind::OffsetCommit(
                groups::offset_commit(self, r).await,
            )),
            RequestKind::OffsetFetch(r) => {
                // Which requests named their topics (v0-7: one; v8+: per group).
                let named: Vec<bool> = if r.groups.is_empty() {
                    vec![r.topics.is_some()]
                } else {
                    r.groups.iter().map(|g| g.topics.is_some()).collect()
                };
                let response = groups::offset_fetch(self, &ctx, r);
                Some(ResponseKind::OffsetFetch(authorize::filter_offset_fetch(
                    self, &ctx, &named, response,
                )))
            }
            RequestKind::ListGroups(r) => Some(ResponseKind::ListGroups(
                authorize::filter_list_groups(self, &ctx, groups::list_groups(self, &ctx, r)),
            )),
            RequestKind::DescribeGroups(r) => Some(ResponseKind::DescribeGroups(
                groups::describe_groups(self, &ctx, r),
            )),
            RequestKind::ConsumerGroupHeartbeat(r) => Some(ResponseKind::ConsumerGroupHeartbeat(
                consumer_groups::heartbeat(self, &ctx, r).await,
            )),
            RequestKind::ConsumerGroupDescribe(r) => Some(ResponseKind::ConsumerGroupDescribe(
                consumer_groups::describe(self, &ctx, r),
            )),
            RequestKind::ShareGroupHeartbeat(r) => Some(ResponseKind::ShareGroupHeartbeat(
                share::heartbeat(self, &ctx, r).await,
            )),
            RequestKind::ShareGroupDescribe(r) => {
                Some(ResponseKind::ShareGroupDescribe(share::describe(self, r)))
            }
            RequestKind::ShareFetch(r) => {
                Some(ResponseKind::ShareFetch(share::fetch(self, &ctx, r).await))
            }
            RequestKind::ShareAcknowledge(r) => Some(ResponseKind::ShareAcknowledge(
                share::acknowledge_request(self, &ctx, r).await,
            )),
            RequestKind::InitializeShareGroupState(r) => Some(
                ResponseKind::InitializeShareGroupState(share_state::initialize(self, r).await),
            ),
            RequestKind::ReadShareGroupState(r) => Some(ResponseKind::ReadShareGroupState(
                share_state::read(self, r).await,
            )),
            RequestKind::WriteShareGroupState(r) => Some(ResponseKind::WriteShareGroupState(
                share_state::write(self, r).await,
            )),
            RequestKind::DeleteShareGroupState(r) => Some(ResponseKind::DeleteShareGroupState(
                share_state::delete(self, r).await,
            )),
            RequestKind::DeleteGroups(r) => {
                Some(ResponseKind::DeleteGroups(groups::delete_groups(self, r)))
            }
            RequestKind::InitProducerId(r) => Some(ResponseKind::InitProducerId(
                producers::init_producer_id(self, r).await,
            )),
            RequestKind::DescribeProducers(r) => Some(ResponseKind::DescribeProducers(
                producers::describe_producers(self, r),
            )),
            RequestKind::AddPartitionsToTxn(r) => Some(ResponseKind::AddPartitionsToTxn(
                txn::add_partitions_to_txn(self, r).await,
            )),
            RequestKind::AddOffsetsToTxn(r) => Some(ResponseKind::AddOffsetsToTxn(
                txn::add_offsets_to_txn(self, r).await,
            )),
            RequestKind::EndTxn(r) => Some(ResponseKind::EndTxn(txn::end_txn(self, r).await)),
            RequestKind::WriteTxnMarkers(r) => Some(ResponseKind::WriteTxnMarkers(
                txn::write_txn_markers(self, r).await,
            )),
            RequestKind::TxnOffsetCommit(r) => Some(ResponseKind::TxnOffsetCommit(
                txn::txn_offset_commit(self, r).await,
            )),
            RequestKind::ListTransactions(r) => Some(ResponseKind::ListTransactions(
                authorize::filter_list_transactions(self, &ctx, txn::list_transactions(self, r)),
            )),
            RequestKind::DescribeTransactions(r) => Some(ResponseKind::DescribeTransactions(
                txn::describe_transactions(self, r),
            )),
            RequestKind::AlterPartitionReassignments(r) => {
                Some(ResponseKind::AlterPartitionReassignments(
                    reassign::alter_partition_reassignments(self, &ctx, r).await,
                ))
            }
            RequestKind::ListPartitionReassignments(r) => {
                Some(ResponseKind::ListPartitionReassignments(
                    reassign::list_partition_reassignments(self, r).await,
                ))
            }
            RequestKind::ElectLeaders(r) => Some(ResponseKind::ElectLeaders(
                reassign::elect_leaders(self, &ctx, r).await,
            )),
            RequestKind::UnregisterBroker(r) => Some(ResponseKind::UnregisterBroker(
                reassign::unregister_broker(self, r).await,
            )),
            RequestKind::AddRaftVoter(r) => Some(ResponseKind::AddRaftVoter(
                quorum::add_raft_voter(self, r).await,
            )),
            RequestKind::RemoveRaftVoter(r) => Some(ResponseKind::RemoveRaftVoter(
                quorum::remove_raft_voter(self, r).await,
            )),
            RequestKind::DescribeLogDirs(r) => Some(ResponseKind::DescribeLogDirs(
                log_dirs::describe_log_dirs(self, r),
            )),
            RequestKind::CreateAcls(r) => Some(ResponseKind::CreateAcls(
                security::create_acls(self, &ctx, r).await,
            )),
            RequestKind::DeleteAcls(r) => Some(ResponseKind::DeleteAcls(
                security::delete_acls(self, &ctx, r).await,
            )),
            RequestKind::DescribeAcls(r) => Some(ResponseKind::DescribeAcls(
                security::describe_acls(self, &ctx, r),
            )),
            RequestKind::AlterUserScramCredentials(r) => {
                Some(ResponseKind::AlterUserScramCredentials(
                    security::alter_user_scram_credentials(self, &ctx, r).await,
                ))
            }
            RequestKind::DescribeUserScramCredentials(r) => {
                Some(ResponseKind::DescribeUserScramCredentials(
                    security::describe_user_scram_credentials(self, &ctx, r),
                ))
            }
            RequestKind::AlterClientQuotas(r) => Some(ResponseKind::AlterClientQuotas(
                quotas::alter_client_quotas(self, &ctx, r).await,
            )),
            RequestKind::DescribeClientQuotas(r) => Some(ResponseKind::DescribeClientQuotas(
                quotas::describe_client_quotas(self, &ctx, r),
            )),
            other => {
                // The frontend only passes APIs listed in supported_apis.
                tracing::error!(api = ?std::mem::discriminant(&other), "request for an API this broker does not serve");
                None
            }
        };
        Handled::Done(response.map(|r| authorize::merge(r, refused)))
    }
}
