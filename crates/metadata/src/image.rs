//! The immutable metadata image and its sub-images.

use std::collections::BTreeMap;
use std::sync::Arc;

use odradek_common::scram::{ScramCredential, ScramMechanism};

use crate::chunked::ChunkedMap;
use crate::security::{AclsImage, ClientQuotasImage, ScramImage};

use odradek_common::Uuid;

/// A broker listener as registered.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    /// Listener name (`PLAINTEXT`, ...).
    pub listener: String,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// Security protocol of the listener.
    pub security_protocol: String,
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    /// `node.id`.
    pub id: i32,
    /// Epoch given at registration (the offset of its RegisterBroker record).
    pub epoch: i64,
    /// Random id of this broker process incarnation.
    pub incarnation_id: Uuid,
    /// Listeners.
    pub endpoints: Vec<Endpoint>,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// Fenced brokers lead nothing and are not in any ISR.
    pub fenced: bool,
    /// The broker is shutting down.
    pub in_controlled_shutdown: bool,
    /// Directory ids of its log dirs.
    pub log_dirs: Vec<Uuid>,
}

/// Registered brokers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClusterImage {
    /// By broker id.
    pub brokers: BTreeMap<i32, BrokerRegistration>,
}

impl ClusterImage {
    /// Brokers that are registered and not fenced.
    pub fn unfenced(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }
}

/// A partition's replica assignment and leadership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRegistration {
    /// Assigned replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas being removed by a reassignment.
    pub removing_replicas: Vec<i32>,
    /// Replicas being added by a reassignment.
    pub adding_replicas: Vec<i32>,
    /// Leader broker id, or [`crate::NO_LEADER`].
    pub leader: i32,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change.
    pub partition_epoch: i32,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    /// Topic name.
    pub name: String,
    /// Topic id.
    pub id: Uuid,
    /// Partitions by index.
    pub partitions: BTreeMap<i32, PartitionRegistration>,
}

/// All topics, by id and by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicsImage {
    /// Topics by id; each shared until changed.
    pub by_id: ChunkedMap<Uuid, Arc<TopicImage>>,
    /// Name -> id.
    pub by_name: ChunkedMap<String, Uuid>,
}

impl TopicsImage {
    /// The topic with this name.
    pub fn get_by_name(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.by_name.get(name).and_then(|id| self.by_id.get(id))
    }
}

/// A config resource: Kafka's (type, name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigResource {
    /// A topic, by name.
    Topic(String),
    /// A broker, by id as text; `""` is the cluster-wide broker default.
    Broker(String),
    /// A consumer or share group, by id (Kafka's group configs).
    Group(String),
}

/// Dynamic configs per resource.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConfigsImage {
    /// Resource -> key -> value; resources without keys are absent.
    pub resources: ChunkedMap<ConfigResource, BTreeMap<String, String>>,
}

impl ConfigsImage {
    /// The configs set on a resource (empty when none).
    pub fn get(&self, resource: &ConfigResource) -> BTreeMap<String, String> {
        self.resources.get(resource).cloned().unwrap_or_default()
    }
}

/// Finalized feature levels (`metadata.version` and others).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeaturesImage {
    /// Feature name -> level; absent means level 0.
    pub levels: BTreeMap<String, u16>,
}

/// Producer-id allocation state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProducerIdsImage {
    /// The next producer id the controller will hand out.
    pub next_producer_id: i64,
}

/// The whole cluster metadata as of one log offset. Immutable; share it as `Arc<MetadataImage>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataImage {
    /// Offset of the last record applied, -1 for the empty image.
    pub offset: i64,
    /// Brokers.
    pub cluster: Arc<ClusterImage>,
    /// Topics and partitions.
    pub topics: Arc<TopicsImage>,
    /// Dynamic configs.
    pub configs: Arc<ConfigsImage>,
    /// Feature levels.
    pub features: Arc<FeaturesImage>,
    /// Producer-id blocks.
    pub producer_ids: ProducerIdsImage,
    /// SCRAM credentials.
    pub scram: Arc<ScramImage>,
    /// ACLs.
    pub acls: Arc<AclsImage>,
    /// Client quotas.
    pub client_quotas: Arc<ClientQuotasImage>,
}

impl MetadataImage {
    /// The image before any record.
    pub fn empty() -> MetadataImage {
        MetadataImage {
            offset: -1,
            cluster: Arc::default(),
            topics: Arc::default(),
            configs: Arc::default(),
            features: Arc::default(),
            producer_ids: ProducerIdsImage::default(),
            scram: Arc::default(),
            acls: Arc::default(),
            client_quotas: Arc::default(),
        }
    }

    /// `user`'s SCRAM credential for `mechanism`, if any.
    pub fn scram_credential(
        &self,
        mechanism: ScramMechanism,
        user: &str,
    ) -> Option<ScramCredential> {
        self.scram.users.get(user)?.get(&mechanism).cloned()
    }
}

impl Default for MetadataImage {
    fn default() -> Self {
        Self::empty()
    }
}
