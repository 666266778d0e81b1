//! The end offsets of partitions this broker does not host, for the consumer lag of the groups
//! it coordinates: every [`REFRESH_MS`], one ListOffsets (latest, that is the high watermark) per
//! leader over the inter-broker listener, for the partitions with a committed offset here and no
//! replica here. Partitions this broker hosts are read from their replicas at once
//! ([`crate::metrics::consumer_lag`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafka_protocol::messages::{ApiKey, BrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::Broker;

/// How often the end offsets are asked for.
pub const REFRESH_MS: u64 = 5000;
/// Partitions asked for at most per refresh (bounds the map and the requests).
pub const MAX_PARTITIONS: usize = 10_000;
/// How long one leader may take to answer.
const TIMEOUT: Duration = Duration::from_secs(3);

/// End offsets by (topic, partition), as their leaders last said. The lock is held for one
/// lookup or one refresh's swap.
#[derive(Debug, Default)]
pub struct RemoteEnds(Mutex<HashMap<(String, i32), i64>>);

impl RemoteEnds {
    /// The end offset of `topic`-`partition`, if a leader gave one at the last refresh.
    pub fn get(&self, topic: &str, partition: i32) -> Option<i64> {
        self.0
            .lock()
            .ok()?
            .get(&(topic.to_string(), partition))
            .copied()
    }

    /// Asks the leaders of the partitions with a committed offset here and no replica here
    /// for their end offsets. Leaders that cannot be reached keep nothing (their lag is not
    /// reported until they answer).
    pub async fn refresh(&self, broker: &Broker) {
        let image = broker.image();
        let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
        let mut wanted = 0;
        for (_, topic, partition, _) in broker.groups.committed_offsets() {
            let Some(t) = image.topics.get_by_name(&topic) else {
                continue;
            };
            if broker.replicas.get(t.id, partition).is_some() || wanted >= MAX_PARTITIONS {
                continue;
            }
            let Some(p) = t.partitions.get(&partition) else {
                continue;
            };
            if p.leader < 0 {
                continue;
            }
            let ps = by_leader
                .entry(p.leader)
                .or_default()
                .entry(topic)
                .or_default();
            if !ps.contains(&partition) {
                ps.push(partition);
                wanted += 1;
            }
        }
        let mut ends = HashMap::new();
        for (leader, topics) in by_leader {
            let Some(addr) = image
                .cluster
                .brokers
                .get(&leader)
                .and_then(|b| {
                    crate::handlers::endpoint_for(b, &broker.config.inter_broker_listener)
                })
                .map(|e| format!("{}:{}", e.host, e.port))
            else {
                continue;
            };
            let req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(t, ps)| {
                            ListOffsetsTopic::default()
                                .with_name(TopicName(StrBytes::from_string(t)))
                                .with_partitions(
                                    ps.into_iter()
                                        .map(|p| {
                                            ListOffsetsPartition::default()
                                                .with_partition_index(p)
                                                .with_current_leader_epoch(-1)
                                                .with_timestamp(-1)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                );
            let asked = async {
                let mut conn = odradek_client::Connection::connect_with(
                    &addr,
                    &format!("consumer-lag-{}", broker.id()),
                    None,
                    &broker.config.inter_broker_security,
                )
                .await?;
                let v = conn.version(ApiKey::ListOffsets, 7)?;
                conn.send(&req, v).await
            };
            match tokio::time::timeout(TIMEOUT, asked).await {
                Ok(Ok(r)) => {
                    for t in r.topics {
                        for p in t.partitions.iter().filter(|p| p.error_code == 0) {
                            ends.insert((t.name.0.to_string(), p.partition_index), p.offset);
                        }
                    }
                }
                Ok(Err(e)) => {
                    tracing::debug!(leader, error = %e, "cannot ask a leader for end offsets")
                }
                Err(_) => tracing::debug!(leader, "a leader did not answer ListOffsets in time"),
            }
        }
        if let Ok(mut map) = self.0.lock() {
            *map = ends;
        }
    }
}
