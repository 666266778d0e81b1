//! The quorum's metrics, named as Prometheus' JMX exporter names Kafka's
//! `kafka.server:type=raft-metrics` MBean: commit latency of proposals, and (read from the
//! voter's status at each scrape) the current leader, epoch, high watermark and applied offset.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use crate::{QuorumStatus, Role};

/// Upper bounds (ms) of the commit latency histogram.
const COMMIT_BUCKETS_MS: [f64; 14] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0,
];

/// The quorum's metrics.
#[derive(Debug, Clone)]
pub struct QuorumMetrics {
    /// From a proposal to its commit and application here, ms (proposals on the leader).
    pub(crate) commit_latency: Histogram,
}

impl Default for QuorumMetrics {
    fn default() -> Self {
        Self {
            commit_latency: Histogram::new(COMMIT_BUCKETS_MS),
        }
    }
}

/// The voter's status, read at each scrape.
#[derive(Debug)]
struct StatusCollector(watch::Receiver<QuorumStatus>);

impl Collector for StatusCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s = *self.0.borrow();
        let leader = s.leader_id.map_or(-1, |l| l as i64);
        let gauges: [(&str, &str, i64); 6] = [
            (
                "kafka_server_raft_metrics_current_leader",
                "The quorum leader this voter knows (-1: none)",
                leader,
            ),
            (
                "kafka_server_raft_metrics_current_epoch",
                "The quorum's current epoch (Raft term)",
                s.term as i64,
            ),
            (
                "kafka_server_raft_metrics_high_watermark",
                "The metadata log's high watermark (commit index)",
                s.commit_index as i64,
            ),
            (
                "kafka_server_raft_metrics_log_end_offset",
                "Highest metadata log offset applied here",
                s.applied_index as i64,
            ),
            (
                "kafka_server_raft_metrics_current_state_leader",
                "1 when this voter leads the quorum",
                i64::from(s.role == Role::Leader),
            ),
            (
                "kafka_server_raft_metrics_is_voter",
                "1 when this node is a voter (0: observer)",
                i64::from(s.is_voter),
            ),
        ];
        for (name, help, value) in gauges {
            let g = ConstGauge::new(value);
            let e = encoder.encode_descriptor(name, help, None, g.metric_type())?;
            g.encode(e)?;
        }
        Ok(())
    }
}

impl QuorumMetrics {
    /// Adds the quorum's metrics, and its status read from `status`, to `registry`.
    pub fn register(&self, registry: &mut Registry, status: watch::Receiver<QuorumStatus>) {
        registry.register(
            "kafka_server_raft_metrics_commit_latency_ms",
            "Time from a proposal to its commit, on the leader, ms",
            self.commit_latency.clone(),
        );
        registry.register_collector(Box::new(StatusCollector(status)));
    }
}
