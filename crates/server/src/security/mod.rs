//! The broker's security: each listener's TLS and SASL settings (from Kafka's keys), and the
//! credentials SASL checks (PLAIN users from the JAAS config, SCRAM credentials from the
//! metadata image).

mod authz;
pub mod config;
pub mod reload;

use std::collections::BTreeMap;
use std::sync::Arc;

use odradek_common::scram::{ScramCredential, ScramMechanism};
use odradek_frontend::security::{tls, SaslCredentials, SaslSettings, TlsError, TlsListener};
use odradek_frontend::ListenerSecurity;
use odradek_metadata::MetadataImage;
use tokio::sync::watch;

pub(crate) use authz::host_address;
pub use config::{listener_security, ListenerSecurityConfig, SaslConfig, TlsConfig};

/// The credentials of one listener's SASL.
struct BrokerCredentials {
    plain_users: BTreeMap<String, String>,
    images: watch::Receiver<Arc<MetadataImage>>,
}

impl SaslCredentials for BrokerCredentials {
    fn check_plain(&self, user: &str, password: &str) -> bool {
        // Constant time over the password's bytes, as far as lengths allow.
        self.plain_users.get(user).is_some_and(|p| {
            p.len() == password.len()
                && p.bytes()
                    .zip(password.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        })
    }

    fn scram(&self, mechanism: ScramMechanism, user: &str) -> Option<ScramCredential> {
        self.images.borrow().scram_credential(mechanism, user)
    }
}

/// The frontend's view of a listener's security settings.
pub fn frontend_security(
    config: &ListenerSecurityConfig,
    images: &watch::Receiver<Arc<MetadataImage>>,
) -> Result<ListenerSecurity, TlsError> {
    let mut security = ListenerSecurity::default();
    if let Some(t) = &config.tls {
        let server = tls::server_config(&t.stores, t.client_auth)?;
        security.tls = Some(Arc::new(TlsListener::new(server)));
        security.principal_mapper = t.principal_mapper.clone();
    }
    if let Some(s) = &config.sasl {
        security.sasl = Some(Arc::new(SaslSettings {
            enabled_mechanisms: s.mechanisms.clone(),
            credentials: Arc::new(BrokerCredentials {
                plain_users: s.plain_users.clone(),
                images: images.clone(),
            }),
            max_reauth_ms: s.max_reauth_ms,
            failed_authentication_delay_ms: s.failed_authentication_delay_ms,
        }));
    }
    Ok(security)
}
