//! The frontend's metrics, named as Prometheus' JMX exporter names Kafka's
//! `kafka.network:type=RequestMetrics` and `kafka.server:type=socket-server-metrics` MBeans:
//! requests per API and version, errors per API and error code, the time a request spends
//! queued, handled, waiting (purgatory) and being sent, and open connections per listener.
//!
//! Each API's handles are made once, when the frontend is built, so a request costs a few
//! atomic adds and histogram observations, no label lookup.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::messages::{ApiKey, ResponseKind};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
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

fn histogram() -> Histogram {
    Histogram::new(TIME_BUCKETS_MS)
}

/// One family of request time histograms.
type Times = Family<RequestLabel, Histogram, fn() -> Histogram>;

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
    /// Per served API, its handles.
    apis: HashMap<i16, Arc<ApiMetrics>>,
}

/// The handles of one API.
#[derive(Debug)]
pub(crate) struct ApiMetrics {
    name: &'static str,
    /// `requests_total` by version (index = version).
    by_version: Vec<Counter>,
    total_time: Histogram,
    queue_time: Histogram,
    local_time: Histogram,
    remote_time: Histogram,
    send_time: Histogram,
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
        let ms =
            |from: Instant, to: Instant| to.saturating_duration_since(from).as_secs_f64() * 1e3;
        let a = &self.api;
        a.queue_time.observe(ms(self.received, self.started));
        a.local_time.observe(ms(self.started, self.handled));
        a.remote_time.observe(ms(self.handled, self.ready));
        a.send_time.observe(ms(self.ready, at));
        a.total_time.observe(ms(self.received, at));
    }
}

impl FrontendMetrics {
    /// Handles for `apis` (every API the frontend answers).
    pub fn new(apis: impl IntoIterator<Item = (ApiKey, i16)>) -> Self {
        let mut m = Self {
            requests: Family::default(),
            errors: Family::default(),
            total_time: Family::new_with_constructor(histogram),
            queue_time: Family::new_with_constructor(histogram),
            local_time: Family::new_with_constructor(histogram),
            remote_time: Family::new_with_constructor(histogram),
            send_time: Family::new_with_constructor(histogram),
            connections: Family::default(),
            connections_created: Family::default(),
            apis: HashMap::new(),
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
            m.apis.insert(key as i16, Arc::new(api));
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
        self.apis.get(&(key as i16))
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
