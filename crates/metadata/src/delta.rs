//! Replaying records against an image.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use odradek_common::Uuid;

use crate::error::MetadataError;
use crate::image::{
    BrokerRegistration, ClusterImage, ConfigResource, ConfigsImage, Endpoint, FeaturesImage,
    MetadataImage, PartitionRegistration, ProducerIdsImage, TopicImage, TopicsImage,
};
use crate::proto::{self, metadata_record::Record};
use crate::security::{AclsImage, ClientQuotasImage, ScramImage};

/// Changes on top of a base image. Replay records with [`MetadataDelta::replay`] (each record
/// either applies whole or not at all), then [`MetadataDelta::apply`] builds the next image.
/// Sub-images are copied from the base only when a record touches them.
#[derive(Debug, Clone)]
pub struct MetadataDelta {
    base: Arc<MetadataImage>,
    offset: i64,
    cluster: Option<ClusterImage>,
    topics: Option<TopicsImage>,
    configs: Option<ConfigsImage>,
    features: Option<FeaturesImage>,
    producer_ids: Option<ProducerIdsImage>,
    scram: Option<ScramImage>,
    acls: Option<AclsImage>,
    client_quotas: Option<ClientQuotasImage>,
    changed_topics: BTreeSet<Uuid>,
    deleted_topics: BTreeMap<Uuid, String>,
    changed_brokers: BTreeSet<i32>,
    changed_configs: BTreeSet<ConfigResource>,
}

/// What a delta (or several, merged in order) changed, for publishers that act on the changes
/// only (Kafka's publishers receive the delta with the new image). A snapshot changes
/// everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataChanges {
    /// The whole image was replaced (a snapshot): act on every part of it.
    pub everything: bool,
    /// Topics created or changed (partitions, leaders, ISRs), by id.
    pub topics: BTreeSet<Uuid>,
    /// Topics deleted (id -> name).
    pub deleted_topics: BTreeMap<Uuid, String>,
    /// Brokers registered, changed or unregistered.
    pub brokers: BTreeSet<i32>,
    /// Resources whose dynamic configs changed.
    pub configs: BTreeSet<ConfigResource>,
}

impl MetadataChanges {
    /// The changes of a replaced image.
    pub fn everything() -> Self {
        Self {
            everything: true,
            ..Self::default()
        }
    }

    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Adds `later`'s changes (made after these).
    pub fn merge(&mut self, later: MetadataChanges) {
        self.everything |= later.everything;
        for (id, name) in later.deleted_topics {
            self.topics.remove(&id);
            self.deleted_topics.insert(id, name);
        }
        self.topics.extend(later.topics);
        self.brokers.extend(later.brokers);
        self.configs.extend(later.configs);
    }
}

impl MetadataDelta {
    /// An empty delta on top of `base`.
    pub fn new(base: Arc<MetadataImage>) -> Self {
        let offset = base.offset;
        Self {
            base,
            offset,
            cluster: None,
            topics: None,
            configs: None,
            features: None,
            producer_ids: None,
            scram: None,
            acls: None,
            client_quotas: None,
            changed_topics: BTreeSet::new(),
            deleted_topics: BTreeMap::new(),
            changed_brokers: BTreeSet::new(),
            changed_configs: BTreeSet::new(),
        }
    }

    /// The image the delta started from.
    pub fn base(&self) -> &Arc<MetadataImage> {
        &self.base
    }

    /// Offset of the last record replayed (the base's offset if none).
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Topics created or changed (ids), for publishers.
    pub fn changed_topics(&self) -> &BTreeSet<Uuid> {
        &self.changed_topics
    }

    /// Topics deleted (id -> name), for publishers.
    pub fn deleted_topics(&self) -> &BTreeMap<Uuid, String> {
        &self.deleted_topics
    }

    /// Brokers registered, changed or unregistered, for publishers.
    pub fn changed_brokers(&self) -> &BTreeSet<i32> {
        &self.changed_brokers
    }

    /// Everything this delta changed, for publishers.
    pub fn changes(&self) -> MetadataChanges {
        MetadataChanges {
            everything: false,
            topics: self.changed_topics.clone(),
            deleted_topics: self.deleted_topics.clone(),
            brokers: self.changed_brokers.clone(),
            configs: self.changed_configs.clone(),
        }
    }

    /// The topics as they stand in this delta (for command validation mid-batch).
    pub fn topics(&self) -> &TopicsImage {
        self.topics.as_ref().unwrap_or(&self.base.topics)
    }

    /// The brokers as they stand in this delta.
    pub fn cluster(&self) -> &ClusterImage {
        self.cluster.as_ref().unwrap_or(&self.base.cluster)
    }

    fn cluster_mut(&mut self) -> &mut ClusterImage {
        let base = &self.base;
        self.cluster.get_or_insert_with(|| (*base.cluster).clone())
    }

    fn topics_mut(&mut self) -> &mut TopicsImage {
        let base = &self.base;
        self.topics.get_or_insert_with(|| (*base.topics).clone())
    }

    fn configs_mut(&mut self) -> &mut ConfigsImage {
        let base = &self.base;
        self.configs.get_or_insert_with(|| (*base.configs).clone())
    }

    /// Replays the record at `offset`. On error the delta is unchanged.
    pub fn replay(
        &mut self,
        offset: i64,
        record: &proto::MetadataRecord,
    ) -> Result<(), MetadataError> {
        let Some(r) = &record.record else {
            return Err(MetadataError::EmptyRecord { offset });
        };
        match r {
            Record::RegisterBroker(r) => self.replay_register_broker(offset, r)?,
            Record::UnregisterBroker(r) => {
                self.require_broker(offset, r.broker_id, r.broker_epoch)?;
                self.cluster_mut().brokers.remove(&r.broker_id);
                self.changed_brokers.insert(r.broker_id);
            }
            Record::BrokerRegistrationChange(r) => self.replay_broker_change(offset, r)?,
            Record::Topic(r) => self.replay_topic(offset, r)?,
            Record::Partition(r) => self.replay_partition(offset, r)?,
            Record::PartitionChange(r) => self.replay_partition_change(offset, r)?,
            Record::RemoveTopic(r) => self.replay_remove_topic(offset, r)?,
            Record::Config(r) => self.replay_config(offset, r)?,
            Record::FeatureLevel(r) => {
                let level = u16::try_from(r.feature_level)
                    .map_err(|_| invalid(offset, "feature level above 65535"))?;
                let base = &self.base;
                let features = self
                    .features
                    .get_or_insert_with(|| (*base.features).clone());
                if level == 0 {
                    features.levels.remove(&r.name);
                } else {
                    features.levels.insert(r.name.clone(), level);
                }
            }
            Record::ProducerIds(r) => {
                let current = self.producer_ids.unwrap_or(self.base.producer_ids);
                if r.next_producer_id <= current.next_producer_id {
                    return Err(invalid(
                        offset,
                        format!(
                            "producer id block goes backwards: {} after {}",
                            r.next_producer_id, current.next_producer_id
                        ),
                    ));
                }
                self.producer_ids = Some(ProducerIdsImage {
                    next_producer_id: r.next_producer_id,
                });
            }
            Record::NoOp(_) => {}
            Record::UserScramCredential(r) => {
                // Each replay checks the record before it changes anything.
                let base = &self.base;
                self.scram
                    .get_or_insert_with(|| (*base.scram).clone())
                    .replay_set(r)
                    .map_err(|e| invalid(offset, e))?;
            }
            Record::RemoveUserScramCredential(r) => {
                // Each replay checks the record before it changes anything.
                let base = &self.base;
                self.scram
                    .get_or_insert_with(|| (*base.scram).clone())
                    .replay_remove(r)
                    .map_err(|e| invalid(offset, e))?;
            }
            Record::AccessControlEntry(r) => {
                // Each replay checks the record before it changes anything.
                let base = &self.base;
                self.acls
                    .get_or_insert_with(|| (*base.acls).clone())
                    .replay_set(r)
                    .map_err(|e| invalid(offset, e))?;
            }
            Record::RemoveAccessControlEntry(r) => {
                // Each replay checks the record before it changes anything.
                let base = &self.base;
                self.acls
                    .get_or_insert_with(|| (*base.acls).clone())
                    .replay_remove(r)
                    .map_err(|e| invalid(offset, e))?;
            }
            Record::ClientQuota(r) => {
                let base = &self.base;
                self.client_quotas
                    .get_or_insert_with(|| (*base.client_quotas).clone())
                    .replay(r)
                    .map_err(|e| invalid(offset, e))?;
            }
        }
        self.offset = offset;
        Ok(())
    }

    fn require_broker(&self, offset: i64, broker_id: i32, epoch: i64) -> Result<(), MetadataError> {
        match self.cluster().brokers.get(&broker_id) {
            Some(b) if b.epoch == epoch => Ok(()),
            _ => Err(MetadataError::UnknownBroker {
                offset,
                broker_id,
                epoch,
            }),
        }
    }

    fn replay_register_broker(
        &mut self,
        offset: i64,
        r: &proto::RegisterBrokerRecord,
    ) -> Result<(), MetadataError> {
        let incarnation_id = uuid(offset, &r.incarnation_id, "incarnation id")?;
        let log_dirs = r
            .log_dirs
            .iter()
            .map(|d| uuid(offset, d, "log dir id"))
            .collect::<Result<Vec<_>, _>>()?;
        let endpoints = r
            .endpoints
            .iter()
            .map(|e| {
                Ok(Endpoint {
                    listener: e.listener.clone(),
                    host: e.host.clone(),
                    port: u16::try_from(e.port)
                        .map_err(|_| invalid(offset, format!("port {} out of range", e.port)))?,
                    security_protocol: e.security_protocol.clone(),
                })
            })
            .collect::<Result<Vec<_>, MetadataError>>()?;
        let registration = BrokerRegistration {
            id: r.broker_id,
            epoch: r.broker_epoch,
            incarnation_id,
            endpoints,
            rack: r.rack.clone(),
            fenced: r.fenced,
            in_controlled_shutdown: r.in_controlled_shutdown,
            log_dirs,
        };
        self.cluster_mut().brokers.insert(r.broker_id, registration);
        self.changed_brokers.insert(r.broker_id);
        Ok(())
    }

    fn replay_broker_change(
        &mut self,
        offset: i64,
        r: &proto::BrokerRegistrationChangeRecord,
    ) -> Result<(), MetadataError> {
        self.require_broker(offset, r.broker_id, r.broker_epoch)?;
        let fence = proto::FenceChange::try_from(r.fence)
            .map_err(|_| invalid(offset, format!("unknown fence change {}", r.fence)))?;
        let b = self
            .cluster_mut()
            .brokers
            .get_mut(&r.broker_id)
            .expect("broker checked above");
        match fence {
            proto::FenceChange::None => {}
            proto::FenceChange::Fence => b.fenced = true,
            proto::FenceChange::Unfence => b.fenced = false,
        }
        if let Some(cs) = r.in_controlled_shutdown {
            b.in_controlled_shutdown = cs;
        }
        self.changed_brokers.insert(r.broker_id);
        Ok(())
    }

    fn replay_topic(&mut self, offset: i64, r: &proto::TopicRecord) -> Result<(), MetadataError> {
        let id = uuid(offset, &r.topic_id, "topic id")?;
        if r.name.is_empty() {
            return Err(invalid(offset, "empty topic name"));
        }
        let topics = self.topics();
        if topics.by_name.contains_key(&r.name)
            || topics.by_id.contains_key(&id)
            || id == Uuid::ZERO
        {
            return Err(MetadataError::TopicExists {
                offset,
                name: r.name.clone(),
                topic_id: id.to_string(),
            });
        }
        let topics = self.topics_mut();
        topics.by_name.insert(r.name.clone(), id);
        topics.by_id.insert(
            id,
            Arc::new(TopicImage {
                name: r.name.clone(),
                id,
                partitions: BTreeMap::new(),
            }),
        );
        self.changed_topics.insert(id);
        self.deleted_topics.remove(&id);
        Ok(())
    }

    fn topic_mut(
        &mut self,
        offset: i64,
        topic_id: &[u8],
    ) -> Result<(Uuid, &mut TopicImage), MetadataError> {
        let id = uuid(offset, topic_id, "topic id")?;
        if !self.topics().by_id.contains_key(&id) {
            return Err(MetadataError::UnknownTopic {
                offset,
                topic_id: id.to_string(),
            });
        }
        self.changed_topics.insert(id);
        let topic = self
            .topics_mut()
            .by_id
            .get_mut(&id)
            .expect("topic checked above");
        Ok((id, Arc::make_mut(topic)))
    }

    fn replay_partition(
        &mut self,
        offset: i64,
        r: &proto::PartitionRecord,
    ) -> Result<(), MetadataError> {
        if r.partition_id < 0 {
            return Err(invalid(
                offset,
                format!("negative partition {}", r.partition_id),
            ));
        }
        let (_, topic) = self.topic_mut(offset, &r.topic_id)?;
        topic.partitions.insert(
            r.partition_id,
            PartitionRegistration {
                replicas: r.replicas.clone(),
                isr: r.isr.clone(),
                removing_replicas: r.removing_replicas.clone(),
                adding_replicas: r.adding_replicas.clone(),
                leader: r.leader,
                leader_epoch: r.leader_epoch,
                partition_epoch: r.partition_epoch,
            },
        );
        Ok(())
    }

    fn replay_partition_change(
        &mut self,
        offset: i64,
        r: &proto::PartitionChangeRecord,
    ) -> Result<(), MetadataError> {
        let id = uuid(offset, &r.topic_id, "topic id")?;
        let exists = self
            .topics()
            .by_id
            .get(&id)
            .map(|t| (t.name.clone(), t.partitions.contains_key(&r.partition_id)));
        match exists {
            None => {
                return Err(MetadataError::UnknownTopic {
                    offset,
                    topic_id: id.to_string(),
                })
            }
            Some((topic, false)) => {
                return Err(MetadataError::UnknownPartition {
                    offset,
                    topic,
                    partition: r.partition_id,
                })
            }
            Some((_, true)) => {}
        }
        let (_, topic) = self.topic_mut(offset, &r.topic_id)?;
        let p = topic
            .partitions
            .get_mut(&r.partition_id)
            .expect("partition checked above");
        if let Some(isr) = &r.isr {
            p.isr = isr.ids.clone();
        }
        if let Some(replicas) = &r.replicas {
            p.replicas = replicas.ids.clone();
        }
        if let Some(removing) = &r.removing_replicas {
            p.removing_replicas = removing.ids.clone();
        }
        if let Some(adding) = &r.adding_replicas {
            p.adding_replicas = adding.ids.clone();
        }
        if let Some(leader) = r.leader {
            if leader != p.leader {
                p.leader = leader;
                p.leader_epoch += 1;
            }
        }
        p.partition_epoch += 1;
        Ok(())
    }

    fn replay_remove_topic(
        &mut self,
        offset: i64,
        r: &proto::RemoveTopicRecord,
    ) -> Result<(), MetadataError> {
        let id = uuid(offset, &r.topic_id, "topic id")?;
        let Some(name) = self.topics().by_id.get(&id).map(|t| t.name.clone()) else {
            return Err(MetadataError::UnknownTopic {
                offset,
                topic_id: id.to_string(),
            });
        };
        let topics = self.topics_mut();
        topics.by_id.remove(&id);
        topics.by_name.remove(&name);
        // A deleted topic's dynamic configs go with it, as in Kafka.
        let resource = ConfigResource::Topic(name.clone());
        if self
            .configs
            .as_ref()
            .unwrap_or(&self.base.configs)
            .resources
            .contains_key(&resource)
        {
            self.configs_mut().resources.remove(&resource);
            self.changed_configs.insert(resource);
        }
        self.changed_topics.remove(&id);
        self.deleted_topics.insert(id, name);
        Ok(())
    }

    fn replay_config(&mut self, offset: i64, r: &proto::ConfigRecord) -> Result<(), MetadataError> {
        let resource = match proto::ConfigResourceType::try_from(r.resource_type) {
            Ok(proto::ConfigResourceType::ConfigResourceTopic) => {
                ConfigResource::Topic(r.resource_name.clone())
            }
            Ok(proto::ConfigResourceType::ConfigResourceBroker) => {
                ConfigResource::Broker(r.resource_name.clone())
            }
            Ok(proto::ConfigResourceType::ConfigResourceGroup) => {
                ConfigResource::Group(r.resource_name.clone())
            }
            _ => {
                return Err(invalid(
                    offset,
                    format!("unknown config resource type {}", r.resource_type),
                ))
            }
        };
        if r.name.is_empty() {
            return Err(invalid(offset, "empty config name"));
        }
        self.changed_configs.insert(resource.clone());
        let configs = self.configs_mut();
        match &r.value {
            Some(v) => {
                configs
                    .resources
                    .get_or_insert_with(resource, BTreeMap::new)
                    .insert(r.name.clone(), v.clone());
            }
            None => {
                if let Some(keys) = configs.resources.get_mut(&resource) {
                    keys.remove(&r.name);
                    if keys.is_empty() {
                        configs.resources.remove(&resource);
                    }
                }
            }
        }
        Ok(())
    }

    /// Builds the image: changed sub-images are new, the others are shared with the base.
    pub fn apply(self) -> MetadataImage {
        let base = self.base;
        MetadataImage {
            offset: self.offset,
            cluster: self
                .cluster
                .map_or_else(|| Arc::clone(&base.cluster), Arc::new),
            topics: self
                .topics
                .map_or_else(|| Arc::clone(&base.topics), Arc::new),
            configs: self
                .configs
                .map_or_else(|| Arc::clone(&base.configs), Arc::new),
            features: self
                .features
                .map_or_else(|| Arc::clone(&base.features), Arc::new),
            producer_ids: self.producer_ids.unwrap_or(base.producer_ids),
            scram: self.scram.map_or_else(|| Arc::clone(&base.scram), Arc::new),
            acls: self.acls.map_or_else(|| Arc::clone(&base.acls), Arc::new),
            client_quotas: self
                .client_quotas
                .map_or_else(|| Arc::clone(&base.client_quotas), Arc::new),
        }
    }
}

fn invalid(offset: i64, reason: impl Into<String>) -> MetadataError {
    MetadataError::InvalidRecord {
        offset,
        reason: reason.into(),
    }
}

fn uuid(offset: i64, bytes: &[u8], what: &str) -> Result<Uuid, MetadataError> {
    Uuid::from_slice(bytes)
        .ok_or_else(|| invalid(offset, format!("{what} has {} bytes, not 16", bytes.len())))
}
