//! The broker's metrics, named as Prometheus' JMX exporter names Kafka's MBeans (lower case,
//! `kafka_<domain>_<type>_<name>`), so dashboards made for Kafka read them:
//!
//! - counted on the data path, per topic: `kafka_server_brokertopicmetrics_{bytesin,bytesout,
//!   messagesin,replicationbytesin,replicationbytesout}_total`; per broker:
//!   `kafka_server_replicamanager_{isrshrinks,isrexpands}_total`,
//!   `kafka_server_group_coordinator_metrics_group_completed_rebalance_total`;
//! - read at each scrape ([`BrokerCollector`]): the replica manager's partition, leader,
//!   under-replicated, under-min-ISR and offline counts, per partition
//!   `kafka_cluster_partition_{underreplicated,underminisr}` and
//!   `kafka_log_log_{size,logendoffset,logstartoffset}`, the metadata offset applied, the
//!   groups by state, and consumer lag per group and partition as kafka_exporter names it
//!   (`kafka_consumergroup_lag{consumergroup,topic,partition}`), computed by the coordinator
//!   from its committed offsets, so no lag exporter is needed.
//!
//! The data path holds each topic's counters in its hosted partitions ([`TopicMetrics`]): a
//! produce or fetch adds to atomics, with no label lookup.

use std::collections::BTreeMap;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use odradek_controller::metrics::gauge;

use crate::handlers::Broker;

/// The `topic` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TopicLabel {
    /// The topic.
    pub topic: String,
}

/// The `topic`, `partition` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: String,
}

/// kafka_exporter's consumer group labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LagLabels {
    consumergroup: String,
    topic: String,
    partition: String,
}

/// One group's labels on one topic.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupTopicLabels {
    consumergroup: String,
    topic: String,
}

/// Counters of the broker's data path.
#[derive(Debug, Default)]
pub struct BrokerMetrics {
    bytes_in: Family<TopicLabel, Counter>,
    bytes_out: Family<TopicLabel, Counter>,
    messages_in: Family<TopicLabel, Counter>,
    replication_bytes_in: Family<TopicLabel, Counter>,
    replication_bytes_out: Family<TopicLabel, Counter>,
    isr_shrinks: Counter,
    isr_expands: Counter,
    /// `log.flush.before.ack`: group commits run, and the appends they covered.
    pub(crate) log_flushes: Counter,
    pub(crate) log_flushed_appends: Counter,
}

/// One topic's counters (shared by its partitions' replicas), and the broker's ISR change
/// counters.
#[derive(Debug, Clone, Default)]
pub struct TopicMetrics {
    /// Bytes of record batches produced by clients.
    pub bytes_in: Counter,
    /// Bytes of record batches sent to consumers (follower fetches excluded).
    pub bytes_out: Counter,
    /// Records produced by clients.
    pub messages_in: Counter,
    /// Bytes a follower appended from its leader.
    pub replication_bytes_in: Counter,
    /// Bytes a leader sent to followers.
    pub replication_bytes_out: Counter,
    /// ISR shrinks of partitions this broker leads (as metadata brings them).
    pub isr_shrinks: Counter,
    /// ISR expansions of partitions this broker leads (as metadata brings them).
    pub isr_expands: Counter,
}

impl BrokerMetrics {
    /// The counters of `topic`.
    pub fn topic(&self, topic: &str) -> TopicMetrics {
        let label = TopicLabel {
            topic: topic.to_string(),
        };
        TopicMetrics {
            bytes_in: self.bytes_in.get_or_create(&label).clone(),
            bytes_out: self.bytes_out.get_or_create(&label).clone(),
            messages_in: self.messages_in.get_or_create(&label).clone(),
            replication_bytes_in: self.replication_bytes_in.get_or_create(&label).clone(),
            replication_bytes_out: self.replication_bytes_out.get_or_create(&label).clone(),
            isr_shrinks: self.isr_shrinks.clone(),
            isr_expands: self.isr_expands.clone(),
        }
    }

    /// Forgets the counters of a topic this broker no longer hosts.
    pub fn remove_topic(&self, topic: &str) {
        let label = TopicLabel {
            topic: topic.to_string(),
        };
        for f in [
            &self.bytes_in,
            &self.bytes_out,
            &self.messages_in,
            &self.replication_bytes_in,
            &self.replication_bytes_out,
        ] {
            f.remove(&label);
        }
    }

    /// A topic's totals: (bytes in, bytes out, messages in), for the console's rates (zero for
    /// a topic without counters; none are created).
    pub fn topic_totals(&self, topic: &str) -> (u64, u64, u64) {
        let label = TopicLabel {
            topic: topic.to_string(),
        };
        let get = |f: &Family<TopicLabel, Counter>| f.get(&label).map_or(0, |c| c.get());
        (
            get(&self.bytes_in),
            get(&self.bytes_out),
            get(&self.messages_in),
        )
    }

    /// Adds the counters to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        let t = registry.sub_registry_with_prefix("kafka_server_brokertopicmetrics");
        t.register(
            "bytesin",
            "Bytes produced by clients, per topic",
            self.bytes_in.clone(),
        );
        t.register(
            "bytesout",
            "Bytes fetched by consumers, per topic",
            self.bytes_out.clone(),
        );
        t.register(
            "messagesin",
            "Records produced by clients, per topic",
            self.messages_in.clone(),
        );
        t.register(
            "replicationbytesin",
            "Bytes appended from leaders, per topic",
            self.replication_bytes_in.clone(),
        );
        t.register(
            "replicationbytesout",
            "Bytes sent to followers, per topic",
            self.replication_bytes_out.clone(),
        );
        let r = registry.sub_registry_with_prefix("kafka_server_replicamanager");
        r.register(
            "isrshrinks",
            "ISR shrinks of partitions led here",
            self.isr_shrinks.clone(),
        );
        r.register(
            "isrexpands",
            "ISR expansions of partitions led here",
            self.isr_expands.clone(),
        );
        let f = registry.sub_registry_with_prefix("kafka_log_logflushstats");
        f.register(
            "flushes",
            "Group commits (one fdatasync per file) run for log.flush.before.ack",
            self.log_flushes.clone(),
        );
        f.register(
            "flushed_appends",
            "Appends acknowledged after a group commit (log.flush.before.ack)",
            self.log_flushed_appends.clone(),
        );
    }
}

/// Consumer lag of one group on one partition, as the coordinator computes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The group.
    pub group: String,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The group's committed offset.
    pub committed: i64,
    /// The partition's high watermark, as this broker's replica has it.
    pub end: i64,
}

impl PartitionLag {
    /// Records the group has yet to consume.
    pub fn lag(&self) -> i64 {
        (self.end - self.committed).max(0)
    }
}

/// The lag of every group this broker coordinates, on every partition with a committed
/// offset: the end is the high watermark of this broker's replica when it hosts one, else what
/// the partition's leader said at the last [`crate::lag::RemoteEnds`] refresh (a partition
/// whose leader has not answered yet is left out).
pub fn consumer_lag(broker: &Broker) -> Vec<PartitionLag> {
    let image = broker.image();
    broker
        .groups
        .committed_offsets()
        .into_iter()
        .filter_map(|(group, topic, partition, committed)| {
            let id = image.topics.get_by_name(&topic)?.id;
            let end = match broker.replicas.get(id, partition) {
                Some(hosted) => hosted.high_watermark(),
                None => broker.remote_ends.get(&topic, partition)?,
            };
            Some(PartitionLag {
                group,
                topic,
                partition,
                committed,
                end,
            })
        })
        .collect()
}

/// Reads the broker's state at each scrape.
#[derive(Debug)]
pub struct BrokerCollector(pub Arc<Broker>);

fn family<
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static,
>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (L, i64)>,
) -> Result<(), std::fmt::Error> {
    let f: Family<L, Gauge> = Family::default();
    for (l, v) in values {
        f.get_or_create(&l).set(v);
    }
    let e = encoder.encode_descriptor(name, help, None, f.metric_type())?;
    f.encode(e)
}

impl Collector for BrokerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let broker = &self.0;
        let image = broker.image();
        let e = &mut encoder;
        let (mut partitions, mut leaders, mut under_replicated, mut under_min_isr) = (0, 0, 0, 0);
        let mut per_partition = Vec::new();
        for hosted in broker.replicas.all() {
            let Ok(p) = hosted.lock() else { continue };
            partitions += 1;
            let labels = PartitionLabels {
                topic: hosted.topic.clone(),
                partition: hosted.index.to_string(),
            };
            let leading = p.role() == odradek_replication::Role::Leader;
            let state = p.state();
            let (ur, umi) = if leading {
                leaders += 1;
                // As Kafka: the replication factor leaves out replicas a reassignment is
                // adding, and min.insync.replicas counts at most the replicas there are.
                let adding = image
                    .topics
                    .by_id
                    .get(&hosted.topic_id)
                    .and_then(|t| t.partitions.get(&hosted.index))
                    .map_or(0, |r| r.adding_replicas.len());
                let replication_factor = state.replicas.len().saturating_sub(adding);
                let min_isr = broker
                    .min_insync_replicas(&image, &hosted.topic)
                    .min(state.replicas.len());
                (
                    state.isr.len() < replication_factor,
                    state.isr.len() < min_isr,
                )
            } else {
                (false, false)
            };
            under_replicated += i64::from(ur);
            under_min_isr += i64::from(umi);
            let log = p.log();
            per_partition.push((
                labels,
                [
                    i64::from(ur),
                    i64::from(umi),
                    log.size_in_bytes() as i64,
                    log.log_end_offset(),
                    log.log_start_offset(),
                ],
                leading,
            ));
        }
        let rm = "kafka_server_replicamanager_";
        gauge(
            e,
            &format!("{rm}partitioncount"),
            "Partition replicas hosted here",
            partitions,
        )?;
        gauge(
            e,
            &format!("{rm}leadercount"),
            "Partitions led here",
            leaders,
        )?;
        gauge(
            e,
            &format!("{rm}underreplicatedpartitions"),
            "Partitions led here with fewer in-sync replicas than replicas",
            under_replicated,
        )?;
        gauge(
            e,
            &format!("{rm}underminisrpartitioncount"),
            "Partitions led here with fewer in-sync replicas than min.insync.replicas",
            under_min_isr,
        )?;
        gauge(
            e,
            &format!("{rm}offlinereplicacount"),
            "Replicas assigned here whose log directory is offline",
            broker.replicas.offline_replicas().len() as i64,
        )?;
        let led = || per_partition.iter().filter(|(_, _, leading)| *leading);
        family(
            e,
            "kafka_cluster_partition_underreplicated",
            "1 when the partition (led here) is under-replicated",
            led().map(|(l, v, _)| (l.clone(), v[0])),
        )?;
        family(
            e,
            "kafka_cluster_partition_underminisr",
            "1 when the partition (led here) is under min.insync.replicas",
            led().map(|(l, v, _)| (l.clone(), v[1])),
        )?;
        family(
            e,
            "kafka_log_log_size",
            "Bytes of the replica's log",
            per_partition.iter().map(|(l, v, _)| (l.clone(), v[2])),
        )?;
        family(
            e,
            "kafka_log_log_logendoffset",
            "The replica's log end offset",
            per_partition.iter().map(|(l, v, _)| (l.clone(), v[3])),
        )?;
        family(
            e,
            "kafka_log_log_logstartoffset",
            "The replica's log start offset",
            per_partition.iter().map(|(l, v, _)| (l.clone(), v[4])),
        )?;
        gauge(
            e,
            "kafka_server_broker_metadata_metrics_last_applied_record_offset",
            "Offset of the last metadata record this broker applied",
            image.offset,
        )?;

        // Kafka's FetchSessionCache gauges (and its eviction meter, as a running total).
        let (sessions, cached, evictions) = broker.fetch_sessions.stats();
        let fs = "kafka_server_fetchsessioncache_";
        gauge(
            e,
            &format!("{fs}numincrementalfetchsessions"),
            "Incremental fetch sessions (KIP-227) kept by this broker",
            sessions as i64,
        )?;
        gauge(
            e,
            &format!("{fs}numincrementalfetchpartitionscached"),
            "Partitions in this broker's incremental fetch sessions",
            cached as i64,
        )?;
        {
            use prometheus_client::encoding::EncodeMetric;
            use prometheus_client::metrics::counter::ConstCounter;
            use prometheus_client::metrics::TypedMetric;
            let c = ConstCounter::new(evictions);
            let name = format!("{fs}incrementalfetchsessionevictions");
            let d = e.encode_descriptor(
                &name,
                "Incremental fetch sessions evicted to make room for new ones",
                None,
                ConstCounter::<u64>::TYPE,
            )?;
            c.encode(d)?;
        }

        // Groups by state, as Kafka's GroupMetadataManager gauges.
        let groups = broker.groups.states();
        let count = |state: &str| groups.iter().filter(|s| **s == state).count() as i64;
        let gm = "kafka_coordinator_group_groupmetadatamanager_";
        gauge(
            e,
            &format!("{gm}numgroups"),
            "Groups coordinated here",
            groups.len() as i64,
        )?;
        for (name, state) in [
            ("numgroupsstable", "Stable"),
            ("numgroupspreparingrebalance", "PreparingRebalance"),
            ("numgroupscompletingrebalance", "CompletingRebalance"),
            ("numgroupsempty", "Empty"),
            ("numgroupsdead", "Dead"),
        ] {
            gauge(
                e,
                &format!("{gm}{name}"),
                &format!("Groups coordinated here in state {state}"),
                count(state),
            )?;
        }
        let lag = consumer_lag(broker);
        gauge(
            e,
            &format!("{gm}numoffsets"),
            "Committed offsets held here",
            broker.groups.committed_offsets().len() as i64,
        )?;
        let labels = |l: &PartitionLag| LagLabels {
            consumergroup: l.group.clone(),
            topic: l.topic.clone(),
            partition: l.partition.to_string(),
        };
        family(e, "kafka_consumergroup_lag", "Records a group has yet to consume on a partition (high watermark minus committed offset)", lag.iter().map(|l| (labels(l), l.lag())))?;
        family(
            e,
            "kafka_consumergroup_current_offset",
            "A group's committed offset on a partition",
            lag.iter().map(|l| (labels(l), l.committed)),
        )?;
        let mut sums: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for l in &lag {
            *sums.entry((&l.group, &l.topic)).or_default() += l.lag();
        }
        family(
            e,
            "kafka_consumergroup_lag_sum",
            "Records a group has yet to consume on a topic, over its partitions",
            sums.into_iter().map(|((g, t), v)| {
                (
                    GroupTopicLabels {
                        consumergroup: g.to_string(),
                        topic: t.to_string(),
                    },
                    v,
                )
            }),
        )?;
        Ok(())
    }
}

/// Adds the broker's metrics (its data path counters, its frontend's, and what
/// [`BrokerCollector`] reads) to `registry`.
pub fn register(
    registry: &mut Registry,
    broker: &Arc<Broker>,
    frontend: &odradek_frontend::FrontendMetrics,
) {
    broker.replicas.metrics().register(registry);
    frontend.register(registry);
    registry.register(
        "kafka_server_group_coordinator_metrics_group_completed_rebalance",
        "Rebalances completed by groups coordinated here",
        broker.groups.rebalances.clone(),
    );
    registry.register_collector(Box::new(BrokerCollector(Arc::clone(broker))));
}
