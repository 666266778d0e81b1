//! The frontend's metrics, named as Prometheus' JMX exporter names Kafka's
//! `kafka.network:type=RequestMetrics` and `kafka.server:type=socket-server-metrics` MBeans:
//! requests per API and version, errors per API and error code, the time a request spends
//! queued, handled, waiting (purgatory) and being sent, and open connections per listener.
//!
//! Each API's handles are made once, when the frontend is built (indexed by API key), so a
//! request costs a few atomic adds, no label lookup and no lock: the time histograms are
//! [`TimeHistogram`]s, atomics only.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, ResponseKind};
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// Upper bounds (ms) of the request time histograms: 0.25 ms to 30 s.
pub const TIME_BUCKETS_MS: [f64; 16] = [
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
    10000.0, 30000.0,
];

/// The `request` label: the API's name as Kafka's MBeans spell it (`Produce`, `Fetch`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabel {
    /// The API.
    pub request: String,
}

/// The labels of `requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestVersionLabels {
    /// The API.
    pub request: String,
    /// Its version.
    pub version: String,
}

/// The labels of `errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// The API.
    pub request: String,
    /// The error's name in Kafka's upper-case spelling (`NOT_LEADER_OR_FOLLOWER`).
    pub error: String,
}

/// The `listener` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ListenerLabel {
    /// The listener's name.
    pub listener: String,
}

/// A histogram of durations over [`TIME_BUCKETS_MS`], kept in atomics (an observation is two
/// relaxed adds, its bucket found among integer bounds; a scrape may see one observation's
/// bucket before its sum, which Prometheus tolerates). Encoded as a Prometheus histogram in
/// milliseconds; the count is the buckets' sum.
#[derive(Debug, Clone, Default)]
pub struct TimeHistogram(Arc<TimeCells>);

#[derive(Debug, Default)]
struct TimeCells {
    /// Per bucket (the last one is +Inf), not cumulative.
    buckets: [AtomicU64; TIME_BUCKETS_MS.len() + 1],
    sum_ns: AtomicU64,
}

/// [`TIME_BUCKETS_MS`] in nanoseconds.
const TIME_BUCKETS_NS: [u64; TIME_BUCKETS_MS.len()] = {
    let mut ns = [0u64; TIME_BUCKETS_MS.len()];
    let mut i = 0;
    while i < ns.len() {
        ns[i] = (TIME_BUCKETS_MS[i] * 1e6) as u64;
        i += 1;
    }
    ns
};

impl TimeHistogram {
    /// Records one duration.
    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = TIME_BUCKETS_NS.partition_point(|b| *b < ns);
        let c = &self.0;
        c.buckets[i].fetch_add(1, Ordering::Relaxed);
        c.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

impl TypedMetric for TimeHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for TimeHistogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let c = &self.0;
        let buckets: Vec<(f64, u64)> = TIME_BUCKETS_MS
            .iter()
            .copied()
            .chain([f64::MAX])
            .zip(c.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum_ms = c.sum_ns.load(Ordering::Relaxed) as f64 / 1e6;
        encoder.encode_histogram::<NoLabelSet>(sum_ms, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// One family of request time histograms.
type Times = Family<RequestLabel, TimeHistogram>;

/// The frontend's metrics. Register them with [`FrontendMetrics::register`].
#[derive(Debug)]
pub struct FrontendMetrics {
    requests: Family<RequestVersionLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    total_time: Times,
    queue_time: Times,
    local_time: Times,
    remote_time: Times,
    send_time: Times,
    connections: Family<ListenerLabel, Gauge>,
    connections_created: Family<ListenerLabel, Counter>,
    /// Per served API (indexed by API key), its handles.
    apis: Vec<Option<Arc<ApiMetrics>>>,
}

/// The handles of one API.
#[derive(Debug)]
pub(crate) struct ApiMetrics {
    name: &'static str,
    /// `requests_total` by version (index = version).
    by_version: Vec<Counter>,
    total_time: TimeHistogram,
    queue_time: TimeHistogram,
    local_time: TimeHistogram,
    remote_time: TimeHistogram,
    send_time: TimeHistogram,
}

/// When a request reached each stage, for its time histograms.
#[derive(Debug, Clone)]
pub(crate) struct Timing {
    pub(crate) api: Arc<ApiMetrics>,
    /// Read and decoded.
    pub(crate) received: Instant,
    /// Handed to the handler.
    pub(crate) started: Instant,
    /// The handler returned (its effect taken).
    pub(crate) handled: Instant,
    /// The response was ready (later than `handled` for a response that waited).
    pub(crate) ready: Instant,
}

impl Timing {
    /// Records the request's times once its response is written.
    pub(crate) fn written(&self, at: Instant) {
        let a = &self.api;
        let queue = self.started.saturating_duration_since(self.received);
        let local = self.handled.saturating_duration_since(self.started);
        let remote = self.ready.saturating_duration_since(self.handled);
        let send = at.saturating_duration_since(self.ready);
        a.queue_time.observe(queue);
        a.local_time.observe(local);
        a.remote_time.observe(remote);
        a.send_time.observe(send);
        a.total_time.observe(queue + local + remote + send);
    }
}

impl FrontendMetrics {
    /// Handles for `apis` (every API the frontend answers).
    pub fn new(apis: impl IntoIterator<Item = (ApiKey, i16)>) -> Self {
        let mut m = Self {
            requests: Family::default(),
            errors: Family::default(),
            total_time: Family::default(),
            queue_time: Family::default(),
            local_time: Family::default(),
            remote_time: Family::default(),
            send_time: Family::default(),
            connections: Family::default(),
            connections_created: Family::default(),
            apis: Vec::new(),
        };
        for (key, max_version) in apis {
            let name = api_name(key);
            let label = RequestLabel {
                request: name.to_string(),
            };
            let by_version = (0..=max_version.max(0))
                .map(|v| {
                    m.requests
                        .get_or_create(&RequestVersionLabels {
                            request: name.to_string(),
                            version: v.to_string(),
                        })
                        .clone()
                })
                .collect();
            let api = ApiMetrics {
                name,
                by_version,
                total_time: m.total_time.get_or_create(&label).clone(),
                queue_time: m.queue_time.get_or_create(&label).clone(),
                local_time: m.local_time.get_or_create(&label).clone(),
                remote_time: m.remote_time.get_or_create(&label).clone(),
                send_time: m.send_time.get_or_create(&label).clone(),
            };
            let index = usize::try_from(key as i16).unwrap_or(0);
            if m.apis.len() <= index {
                m.apis.resize(index + 1, None);
            }
            m.apis[index] = Some(Arc::new(api));
        }
        m
    }

    /// Adds these metrics to `registry` (the node's root registry).
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("kafka_network_requestmetrics");
        r.register(
            "requests",
            "Requests received, per API and version",
            self.requests.clone(),
        );
        r.register(
            "errors",
            "Error codes in responses, per API and error (NONE not counted)",
            self.errors.clone(),
        );
        r.register(
            "totaltimems",
            "Time from a request's arrival to its response's send, ms",
            self.total_time.clone(),
        );
        r.register(
            "requestqueuetimems",
            "Time a request waited behind earlier ones of its connection, ms",
            self.queue_time.clone(),
        );
        r.register(
            "localtimems",
            "Time the handler took to give a request its effect, ms",
            self.local_time.clone(),
        );
        r.register(
            "remotetimems",
            "Time a response waited for replication or a delayed operation (purgatory), ms",
            self.remote_time.clone(),
        );
        r.register(
            "responsesendtimems",
            "Time from a response being ready to it being written, ms",
            self.send_time.clone(),
        );
        let s = registry.sub_registry_with_prefix("kafka_server_socket_server_metrics");
        s.register(
            "connection_count",
            "Open client connections, per listener",
            self.connections.clone(),
        );
        s.register(
            "connection_creation",
            "Connections accepted, per listener",
            self.connections_created.clone(),
        );
    }

    /// The handles of `key`, if served.
    pub(crate) fn api(&self, key: ApiKey) -> Option<&Arc<ApiMetrics>> {
        self.apis
            .get(usize::try_from(key as i16).ok()?)
            .and_then(Option::as_ref)
    }

    /// Counts one request.
    pub(crate) fn request(&self, key: ApiKey, version: i16) -> Option<Arc<ApiMetrics>> {
        let api = self.api(key)?;
        if let Some(c) = usize::try_from(version)
            .ok()
            .and_then(|v| api.by_version.get(v))
        {
            c.inc();
        }
        Some(Arc::clone(api))
    }

    /// Counts the error codes of a response.
    pub(crate) fn response(&self, api: &ApiMetrics, response: &ResponseKind) {
        crate::errors::each_error(response, |code| {
            if code != 0 {
                let error = odradek_common::ErrorCode::from_code(code)
                    .map_or_else(|| format!("CODE_{code}"), |e| e.name().to_string());
                self.errors
                    .get_or_create(&ErrorLabels {
                        request: api.name.to_string(),
                        error,
                    })
                    .inc();
            }
        });
    }

    /// A connection opened on `listener`; the guard counts it closed when dropped.
    pub(crate) fn connection(&self, listener: &str) -> ConnectionGuard {
        let label = ListenerLabel {
            listener: listener.to_string(),
        };
        self.connections_created.get_or_create(&label).inc();
        let gauge = self.connections.get_or_create(&label).clone();
        gauge.inc();
        ConnectionGuard(gauge)
    }
}

/// Counts an open connection until dropped.
pub(crate) struct ConnectionGuard(Gauge);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The API's name as Kafka's `RequestMetrics` MBeans label it.
pub fn api_name(key: ApiKey) -> &'static str {
    // `ApiKey`'s Debug form is the Kafka name (`Produce`, `OffsetCommit`, ...); leaked once per
    // API at start, a few dozen short strings.
    static NAMES: std::sync::OnceLock<std::sync::Mutex<HashMap<i16, &'static str>>> =
        std::sync::OnceLock::new();
    let names = NAMES.get_or_init(Default::default);
    // The lock is held for one map lookup (or insert), only while a frontend is built.
    let mut names = match names.lock() {
        Ok(n) => n,
        Err(p) => p.into_inner(),
    };
    names
        .entry(key as i16)
        .or_insert_with(|| Box::leak(format!("{key:?}").into_boxed_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_histograms_put_durations_in_their_millisecond_buckets() {
        let h = TimeHistogram::default();
        h.observe(Duration::from_micros(100)); // <= 0.25 ms
        h.observe(Duration::from_micros(250)); // = 0.25 ms, still the first bucket
        h.observe(Duration::from_millis(3)); // <= 5 ms
        h.observe(Duration::from_secs(60)); // +Inf
        let b: Vec<u64> =
            h.0.buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect();
        assert_eq!(b[0], 2);
        assert_eq!(b[4], 1);
        assert_eq!(b[TIME_BUCKETS_MS.len()], 1);
        assert_eq!(b.iter().sum::<u64>(), 4);
        assert_eq!(
            h.0.sum_ns.load(Ordering::Relaxed),
            100_000 + 250_000 + 3_000_000 + 60_000_000_000
        );
    }
}
