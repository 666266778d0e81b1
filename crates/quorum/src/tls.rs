//! TLS for the control plane (the controller listener: Raft between controllers, brokers'
//! calls to controllers), from the same PEM material as the Kafka listeners, with tonic's
//! rustls transport.

use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

/// The controller listener's TLS: what a node trusts, what it shows, and whether it requires
/// the peer's certificate (`ssl.client.auth=required`).
#[derive(Clone, PartialEq, Eq)]
pub struct ControlTls {
    /// Trusted CA certificates (PEM).
    pub ca_pem: String,
    /// This node's certificate chain and key (PEM).
    pub identity: (String, String),
    /// Whether servers require (and verify) the client's certificate.
    pub require_client_auth: bool,
}

impl std::fmt::Debug for ControlTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlTls")
            .field("require_client_auth", &self.require_client_auth)
            .finish_non_exhaustive()
    }
}

impl ControlTls {
    /// The server side.
    pub fn server_config(&self) -> ServerTlsConfig {
        let config =
            ServerTlsConfig::new().identity(Identity::from_pem(&self.identity.0, &self.identity.1));
        if self.require_client_auth {
            config.client_ca_root(Certificate::from_pem(&self.ca_pem))
        } else {
            config
        }
    }

    /// The client side, checking the server's name is `host`.
    pub fn client_config(&self, host: &str) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(&self.identity.0, &self.identity.1))
            .domain_name(host.trim_start_matches('[').trim_end_matches(']'))
    }
}

/// A lazily connecting endpoint to `addr` (`host:port`), over TLS when `tls` is given.
pub fn endpoint(
    addr: &str,
    tls: Option<&ControlTls>,
    timeout: Duration,
) -> Result<Endpoint, tonic::transport::Error> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let e = Endpoint::from_shared(format!("{scheme}://{addr}"))?
        .connect_timeout(Duration::from_secs(1))
        .timeout(timeout);
    match tls {
        None => Ok(e),
        Some(t) => {
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
            e.tls_config(t.client_config(host))
        }
    }
}
