//! Certificate reload without a restart, on Kafka's dynamic listener config path: when a
//! broker's dynamic configs (IncrementalAlterConfigs on the broker, or the cluster default)
//! change a listener's `ssl.keystore.*` / `ssl.truststore.*`, the listener's files are read
//! again and new handshakes use them; open connections keep theirs. Altering a key to the
//! same path reloads it too (a certificate renewed in place), as Kafka does.

use std::collections::BTreeMap;
use std::sync::Arc;

use odradek_controller::managers::broker_configs::is_dynamic_ssl_key;
use odradek_frontend::security::{tls, TlsListener};
use odradek_frontend::SecurityProtocol;
use odradek_metadata::{ConfigResource, ConfigsImage, MetadataImage};
use tokio::sync::watch;

/// A listener whose TLS can be reloaded.
#[derive(Debug)]
pub struct Reloadable {
    /// The listener's name.
    pub name: String,
    /// Its protocol.
    pub protocol: SecurityProtocol,
    /// Its TLS.
    pub tls: Arc<TlsListener>,
}

/// The listener SSL keys of this broker's dynamic configs (per broker only, as in Kafka: a
/// cluster-wide default would put one certificate on every broker).
fn dynamic_ssl(image: &MetadataImage, broker_id: i32) -> BTreeMap<String, String> {
    image
        .configs
        .get(&ConfigResource::Broker(broker_id.to_string()))
        .into_iter()
        .filter(|(k, _)| is_dynamic_ssl_key(k))
        .collect()
}

/// Reloads `listeners` whenever the dynamic SSL configs change (or are set again), until
/// `images` closes. `props` are the static properties the dynamic ones override.
pub async fn run(
    props: BTreeMap<String, String>,
    broker_id: i32,
    listeners: Vec<Reloadable>,
    mut images: watch::Receiver<Arc<MetadataImage>>,
) {
    if listeners.is_empty() {
        return;
    }
    // Dynamic values set before this start apply at once (a certificate rotated while the
    // broker was down), then every change of the configs.
    let mut applied = BTreeMap::new();
    let mut configs: Option<Arc<ConfigsImage>> = None;
    loop {
        let image = Arc::clone(&images.borrow_and_update());
        // The configs sub-image is replaced only by a delta that replayed config records
        // (re-setting a key to the same path included: "read the files again").
        let same = configs
            .as_ref()
            .is_some_and(|c| Arc::ptr_eq(c, &image.configs));
        configs = Some(Arc::clone(&image.configs));
        let current = dynamic_ssl(&image, broker_id);
        if same || (current.is_empty() && applied.is_empty()) {
            if images.changed().await.is_err() {
                return;
            }
            continue;
        }
        applied = current.clone();
        let mut merged = props.clone();
        merged.extend(current);
        for l in &listeners {
            let result = crate::security::listener_security(&merged, &l.name, l.protocol)
                .map_err(|e| e.to_string())
                .and_then(|c| {
                    let t = c.tls.ok_or_else(|| "the listener has no TLS".to_string())?;
                    tls::server_config(&t.stores, t.client_auth).map_err(|e| e.to_string())
                });
            match result {
                Ok(config) => {
                    l.tls.reload(config);
                    tracing::info!(listener = %l.name, "TLS key store and trust store reloaded");
                }
                Err(e) => {
                    tracing::error!(listener = %l.name, error = %e, "cannot reload TLS; keeping the current certificate")
                }
            }
        }
        if images.changed().await.is_err() {
            return;
        }
    }
}
