//! What a listener's security protocol asks of a connection: a TLS handshake (SSL, SASL_SSL),
//! a principal from the client's certificate, and SASL authentication before any other request
//! (SASL_PLAINTEXT, SASL_SSL).

pub(crate) mod authenticator;
mod principal;
mod sasl;
pub mod tls;

use std::sync::Arc;

pub use principal::{subject_dn, SslPrincipalMapper};
pub use sasl::{SaslCredentials, SaslSettings, SUPPORTED_MECHANISMS};
pub use tls::{ClientAuth, PemStores, TlsError, TlsListener};

/// The security of one listener.
#[derive(Debug, Clone, Default)]
pub struct ListenerSecurity {
    /// TLS, for SSL and SASL_SSL listeners.
    pub tls: Option<Arc<TlsListener>>,
    /// `ssl.principal.mapping.rules`, for the principal of an SSL client's certificate.
    pub principal_mapper: SslPrincipalMapper,
    /// SASL, for SASL_PLAINTEXT and SASL_SSL listeners.
    pub sasl: Option<Arc<SaslSettings>>,
}

/// How long a TLS handshake may take before the connection is dropped.
pub(crate) const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
