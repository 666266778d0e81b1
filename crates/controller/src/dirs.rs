//! Formatting and checking a node's directories: `meta.properties` in every log dir and the
//! metadata dir (Kafka's format: `cluster.id`, `directory.id`, `node.id`, `version=1`), and, on
//! controllers, the quorum store initialised with the voter set and the bootstrap metadata.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use odradek_common::{parse_properties, Uuid};
use odradek_metadata::proto::{self, metadata_record::Record, MetadataRecord};
use odradek_metadata::{MetadataDelta, MetadataImage};
use odradek_quorum::RocksStorage;

use crate::config::NodeConfig;

/// The metadata version this release writes (Kafka's `metadata.version` feature).
pub const METADATA_VERSION: u16 = 1;

/// A storage problem, in words an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The directory has no `meta.properties`.
    #[error("{} is not formatted: run odradek-storage format -t <cluster-id> -c <config>", .0.display())]
    NotFormatted(PathBuf),
    /// Already formatted (format without `--ignore-formatted`).
    #[error("{} is already formatted (cluster {cluster_id}); use --ignore-formatted to skip it", path.display())]
    AlreadyFormatted {
        /// The directory.
        path: PathBuf,
        /// The cluster it belongs to.
        cluster_id: String,
    },
    /// Not empty and not formatted.
    #[error("{} is not empty; refusing to format it", .0.display())]
    NotEmpty(PathBuf),
    /// Directories disagree, or the node id differs.
    #[error("{0}")]
    Mismatch(String),
    /// A bad cluster id.
    #[error("invalid cluster id {0:?}: expected 22 characters of URL-safe base64 (odradek-storage random-uuid)")]
    BadClusterId(String),
    /// I/O.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A bootstrap record that does not replay.
    #[error("bootstrap metadata: {0}")]
    Bootstrap(String),
    /// The quorum store.
    #[error(transparent)]
    Quorum(#[from] odradek_quorum::QuorumError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `meta.properties`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    /// `cluster.id`.
    pub cluster_id: String,
    /// `node.id`.
    pub node_id: i32,
    /// `directory.id`.
    pub directory_id: Uuid,
}

impl MetaProperties {
    /// Reads `dir/meta.properties`; `Ok(None)` if absent.
    pub fn read(dir: &Path) -> Result<Option<MetaProperties>, StorageError> {
        let path = dir.join("meta.properties");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        let p = parse_properties(&text);
        let bad = |what: &str| StorageError::Mismatch(format!("{}: {what}", path.display()));
        if p.get("version").map(String::as_str) != Some("1") {
            return Err(bad("only version=1 is supported"));
        }
        Ok(Some(MetaProperties {
            cluster_id: p
                .get("cluster.id")
                .cloned()
                .ok_or_else(|| bad("no cluster.id"))?,
            node_id: p
                .get("node.id")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad("no valid node.id"))?,
            directory_id: p
                .get("directory.id")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad("no valid directory.id"))?,
        }))
    }

    fn write(&self, dir: &Path) -> Result<(), StorageError> {
        let text = format!(
            "#\n#Written by odradek-storage format\ncluster.id={}\ndirectory.id={}\nnode.id={}\nversion=1\n",
            self.cluster_id, self.directory_id, self.node_id
        );
        let tmp = dir.join("meta.properties.tmp");
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        let target = dir.join("meta.properties");
        std::fs::rename(&tmp, &target).map_err(io(&target))
    }
}

fn all_dirs(config: &NodeConfig) -> Vec<PathBuf> {
    let mut dirs = config.log_dirs.clone();
    if !dirs.contains(&config.metadata_log_dir) {
        dirs.push(config.metadata_log_dir.clone());
    }
    dirs
}

/// The bootstrap metadata a new cluster starts from: the metadata version feature, then
/// `extra` (the SCRAM credentials of `format --add-scram`).
pub fn bootstrap_image(extra: &[MetadataRecord]) -> Result<MetadataImage, StorageError> {
    let record = MetadataRecord {
        version: 0,
        record: Some(Record::FeatureLevel(proto::FeatureLevelRecord {
            name: "metadata.version".into(),
            feature_level: u32::from(METADATA_VERSION),
        })),
    };
    let mut delta = MetadataDelta::new(std::sync::Arc::new(MetadataImage::empty()));
    delta
        .replay(0, &record)
        .expect("the bootstrap record replays on the empty image");
    for r in extra {
        delta
            .replay(0, r)
            .map_err(|e| StorageError::Bootstrap(e.to_string()))?;
    }
    let mut image = delta.apply();
    image.offset = 0;
    Ok(image)
}

/// What `format` did.
#[derive(Debug, Default)]
pub struct FormatReport {
    /// Directories formatted.
    pub formatted: Vec<PathBuf>,
    /// Directories skipped (already formatted, `--ignore-formatted`).
    pub skipped: Vec<PathBuf>,
}

/// `odradek-storage format`.
pub fn format(
    config: &NodeConfig,
    cluster_id: &str,
    ignore_formatted: bool,
    bootstrap_records: &[MetadataRecord],
) -> Result<FormatReport, StorageError> {
    let bootstrap = bootstrap_image(bootstrap_records)?;
    cluster_id
        .parse::<Uuid>()
        .map_err(|_| StorageError::BadClusterId(cluster_id.into()))?;
    let mut report = FormatReport::default();
    let mut to_format = Vec::new();
    for dir in all_dirs(config) {
        if let Some(meta) = MetaProperties::read(&dir)? {
            if ignore_formatted {
                report.skipped.push(dir);
                continue;
            }
            return Err(StorageError::AlreadyFormatted {
                path: dir,
                cluster_id: meta.cluster_id,
            });
        }
        if dir.exists() && std::fs::read_dir(&dir).map_err(io(&dir))?.next().is_some() {
            return Err(StorageError::NotEmpty(dir));
        }
        to_format.push(dir);
    }
    for dir in to_format {
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        if config.roles.controller && dir == config.metadata_log_dir {
            let voters: Vec<u64> = config.voters.keys().copied().collect();
            let bootstrap = odradek_metadata::encode_snapshot(&bootstrap);
            RocksStorage::format(
                &config.quorum_dir(),
                cluster_id,
                config.node_id as u64,
                &voters,
                bootstrap,
            )?;
        }
        MetaProperties {
            cluster_id: cluster_id.into(),
            node_id: config.node_id,
            directory_id: Uuid::random(),
        }
        .write(&dir)?;
        report.formatted.push(dir);
    }
    Ok(report)
}

/// Checks every directory is formatted for this node and one cluster; returns the cluster id.
pub fn check_formatted(config: &NodeConfig) -> Result<String, StorageError> {
    let mut cluster: Option<String> = None;
    for dir in all_dirs(config) {
        let meta =
            MetaProperties::read(&dir)?.ok_or_else(|| StorageError::NotFormatted(dir.clone()))?;
        if meta.node_id != config.node_id {
            return Err(StorageError::Mismatch(format!(
                "{} belongs to node {}, but node.id is {}",
                dir.display(),
                meta.node_id,
                config.node_id
            )));
        }
        match &cluster {
            Some(c) if *c != meta.cluster_id => {
                return Err(StorageError::Mismatch(format!(
                    "cluster id mismatch: {} belongs to {}, another directory to {c}",
                    dir.display(),
                    meta.cluster_id
                )))
            }
            _ => cluster = Some(meta.cluster_id),
        }
    }
    cluster.ok_or_else(|| StorageError::NotFormatted(config.metadata_log_dir.clone()))
}

/// `odradek-storage info`: what is on disk, as `key: value` lines per directory.
pub fn info(config: &NodeConfig) -> Result<BTreeMap<PathBuf, Vec<(String, String)>>, StorageError> {
    let mut out = BTreeMap::new();
    for dir in all_dirs(config) {
        let mut lines = Vec::new();
        match MetaProperties::read(&dir)? {
            None => lines.push(("status".into(), "not formatted".into())),
            Some(m) => {
                lines.push(("cluster.id".into(), m.cluster_id));
                lines.push(("node.id".into(), m.node_id.to_string()));
                lines.push(("directory.id".into(), m.directory_id.to_string()));
            }
        }
        if dir == config.metadata_log_dir {
            if let Some(id) = RocksStorage::identity(&config.quorum_dir())? {
                lines.push((
                    "metadata log".into(),
                    format!("cluster {} node {}", id.cluster_id, id.node_id),
                ));
            }
        }
        out.insert(dir, lines);
    }
    Ok(out)
}
