//! The controller's metrics, named as Prometheus' JMX exporter names Kafka's
//! `kafka.controller:type=KafkaController` MBeans, read from the controller's metadata image
//! and quorum status at each scrape, plus each broker's metadata lag as its heartbeats report
//! it (the active controller hears every heartbeat).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use odradek_metadata::{MetadataImage, NO_LEADER};
use odradek_quorum::{QuorumHandle, Role};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use tokio::sync::watch;

/// The `broker` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BrokerLabel {
    broker: String,
}

/// What the controller's metrics read.
#[derive(Debug, Clone)]
pub struct ControllerMetrics {
    quorum: QuorumHandle,
    images: watch::Receiver<Arc<MetadataImage>>,
    /// The metadata offset each broker last reported in a heartbeat. The lock is held for one
    /// map insert per heartbeat, or one copy per scrape.
    heartbeats: Arc<Mutex<BTreeMap<i32, i64>>>,
}

impl ControllerMetrics {
    /// Metrics of the controller whose quorum is `quorum` and image `images`.
    pub fn new(quorum: QuorumHandle, images: watch::Receiver<Arc<MetadataImage>>) -> Self {
        Self {
            quorum,
            images,
            heartbeats: Arc::default(),
        }
    }

    /// Notes the metadata offset `broker` reported.
    pub(crate) fn heartbeat(&self, broker: i32, metadata_offset: i64) {
        if let Ok(mut h) = self.heartbeats.lock() {
            h.insert(broker, metadata_offset);
        }
    }

    /// Adds the controller's and its quorum's metrics to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        self.quorum
            .metrics()
            .register(registry, self.quorum.watch_status());
        registry.register_collector(Box::new(self.clone()));
    }
}

/// Encodes one gauge `name` of `value` (for collectors reading state at scrape time).
pub fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value);
    let e = encoder.encode_descriptor(name, help, None, g.metric_type())?;
    g.encode(e)
}

impl Collector for ControllerMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let image = Arc::clone(&self.images.borrow());
        let status = self.quorum.status();
        let active = status.role == Role::Leader;
        let fenced = image.cluster.brokers.values().filter(|b| b.fenced).count();
        let brokers = image.cluster.brokers.len();
        let mut partitions = 0i64;
        let mut offline = 0i64;
        let mut imbalance = 0i64;
        for t in image.topics.by_id.values() {
            for p in t.partitions.values() {
                partitions += 1;
                if p.leader == NO_LEADER {
                    offline += 1;
                } else if p.replicas.first() != Some(&p.leader) {
                    imbalance += 1;
                }
            }
        }
        let p = "kafka_controller_kafkacontroller_";
        let e = &mut encoder;
        gauge(
            e,
            &format!("{p}activecontrollercount"),
            "1 on the active controller",
            i64::from(active),
        )?;
        gauge(
            e,
            &format!("{p}offlinepartitionscount"),
            "Partitions without a leader",
            offline,
        )?;
        gauge(
            e,
            &format!("{p}preferredreplicaimbalancecount"),
            "Partitions led by a replica other than the preferred one",
            imbalance,
        )?;
        gauge(
            e,
            &format!("{p}globaltopiccount"),
            "Topics in the cluster",
            image.topics.by_id.len() as i64,
        )?;
        gauge(
            e,
            &format!("{p}globalpartitioncount"),
            "Partitions in the cluster",
            partitions,
        )?;
        gauge(
            e,
            &format!("{p}fencedbrokercount"),
            "Registered brokers that are fenced",
            fenced as i64,
        )?;
        gauge(
            e,
            &format!("{p}activebrokercount"),
            "Registered brokers that are not fenced",
            (brokers - fenced) as i64,
        )?;
        gauge(
            e,
            &format!("{p}lastappliedrecordoffset"),
            "Offset of the last metadata record applied",
            image.offset,
        )?;
        gauge(
            e,
            &format!("{p}lastcommittedrecordoffset"),
            "The metadata log's commit index",
            status.commit_index as i64,
        )?;
        if active {
            // Per broker: how far its metadata is behind the committed log (what its last
            // heartbeat said), for brokers still registered.
            let lag: Family<BrokerLabel, Gauge> = Family::default();
            let heartbeats = self
                .heartbeats
                .lock()
                .map(|h| h.clone())
                .unwrap_or_default();
            for (broker, offset) in heartbeats {
                if image.cluster.brokers.contains_key(&broker) {
                    lag.get_or_create(&BrokerLabel {
                        broker: broker.to_string(),
                    })
                    .set((status.commit_index as i64 - offset).max(0));
                }
            }
            let m = e.encode_descriptor(
                "odradek_controller_broker_metadata_lag",
                "Metadata records a broker's last heartbeat said it had yet to apply",
                None,
                lag.metric_type(),
            )?;
            lag.encode(m)?;
        }
        Ok(())
    }
}

/// A node's registry, shared by the parts that register into it as they start and the HTTP
/// endpoint that encodes it. The lock is held for one registration or one scrape's encoding.
pub type SharedRegistry = Arc<Mutex<Registry>>;

/// A node's registry, holding the process metrics (CPU, memory, open files).
pub fn node_registry() -> SharedRegistry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ProcessCollector));
    Arc::new(Mutex::new(registry))
}

/// Runs `register` on the node's registry.
pub fn register_with(registry: &SharedRegistry, register: impl FnOnce(&mut Registry)) {
    match registry.lock() {
        Ok(mut r) => register(&mut r),
        Err(p) => register(&mut p.into_inner()),
    }
}

/// The registry in the Prometheus (OpenMetrics) text format.
pub fn encode(registry: &SharedRegistry) -> Result<String, std::fmt::Error> {
    let mut out = String::with_capacity(64 * 1024);
    match registry.lock() {
        Ok(r) => prometheus_client::encoding::text::encode(&mut out, &r)?,
        Err(p) => prometheus_client::encoding::text::encode(&mut out, &p.into_inner())?,
    }
    Ok(out)
}

/// The content type of [`encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `GET /metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    registry: SharedRegistry,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = Arc::clone(&registry);
            async move {
                // Collectors read state (and take short locks): off the async workers.
                let text = tokio::task::spawn_blocking(move || encode(&registry))
                    .await
                    .unwrap_or(Err(std::fmt::Error));
                match text {
                    Ok(text) => (
                        axum::http::StatusCode::OK,
                        [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
                        text,
                    ),
                    Err(_) => (
                        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        [(axum::http::header::CONTENT_TYPE, "text/plain")],
                        "cannot encode the metrics".to_string(),
                    ),
                }
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Binds `addr` (`metrics.listener`) and serves the registry's `/metrics` there in the
/// background until `shutdown` resolves. A listener that cannot bind fails, naming the key and
/// the address. Returns the bound address.
pub async fn start(
    addr: std::net::SocketAddr,
    registry: &SharedRegistry,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<std::net::SocketAddr, crate::RunError> {
    let listener =
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| crate::RunError::Serve {
                addr: format!("metrics.listener http://{addr}"),
                message: e.to_string(),
            })?;
    let bound = listener.local_addr().unwrap_or(addr);
    tracing::info!(%bound, "serving Prometheus metrics on http://{bound}/metrics");
    let registry = Arc::clone(registry);
    tokio::spawn(async move {
        if let Err(e) = serve(listener, registry, shutdown).await {
            tracing::error!(%bound, error = %e, "metrics endpoint failed");
        }
    });
    Ok(bound)
}

/// The process collector's names, as Prometheus' client libraries name them. Read from
/// `/proc/self` at each scrape (Linux); elsewhere nothing is reported.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(p) = process_stats() else {
            return Ok(());
        };
        let cpu = prometheus_client::metrics::counter::ConstCounter::new(p.cpu_seconds);
        let e = encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time spent, seconds",
            None,
            cpu.metric_type(),
        )?;
        cpu.encode(e)?;
        let e = &mut encoder;
        gauge(
            e,
            "process_resident_memory_bytes",
            "Resident memory size, bytes",
            p.rss_bytes,
        )?;
        gauge(
            e,
            "process_virtual_memory_bytes",
            "Virtual memory size, bytes",
            p.vsize_bytes,
        )?;
        gauge(e, "process_open_fds", "Open file descriptors", p.open_fds)?;
        gauge(e, "process_threads", "OS threads", p.threads)?;
        gauge(
            e,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, seconds",
            p.start_time_seconds,
        )?;
        Ok(())
    }
}

struct ProcessStats {
    cpu_seconds: f64,
    rss_bytes: i64,
    vsize_bytes: i64,
    open_fds: i64,
    threads: i64,
    start_time_seconds: i64,
}

/// `/proc/self/stat` fields (after the command name): utime 14, stime 15, num_threads 20,
/// starttime 22, vsize 23, rss 24 (1-based, as proc(5) numbers them).
fn process_stats() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    // USER_HZ is 100 on every Linux Prometheus runs on; the page size 4 KiB on x86-64 and
    // most arm64 kernels.
    let ticks = 100.0;
    let page = 4096.0;
    let boot_time = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<f64>().ok())
    })?;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as i64;
    Some(ProcessStats {
        cpu_seconds: (field(14)? + field(15)?) / ticks,
        threads: field(20)? as i64,
        start_time_seconds: (boot_time + field(22)? / ticks) as i64,
        vsize_bytes: field(23)? as i64,
        rss_bytes: (field(24)? * page) as i64,
        open_fds,
    })
}
