//! TLS for SSL and SASL_SSL listeners, with rustls: PEM key stores and trust stores as Kafka
//! accepts them, `ssl.client.auth`, and a server config that can be swapped while serving
//! (certificate reload).

use std::io::BufReader;
use std::sync::{Arc, RwLock};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No client certificate is asked for.
    #[default]
    None,
    /// A client certificate is asked for; a client without one is `User:ANONYMOUS`.
    Requested,
    /// A trusted client certificate is required.
    Required,
}

impl std::str::FromStr for ClientAuth {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(ClientAuth::None),
            "requested" => Ok(ClientAuth::Requested),
            "required" => Ok(ClientAuth::Required),
            _ => Err(format!("must be required, requested or none, not {s:?}")),
        }
    }
}

/// A TLS setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

/// The PEM material of a listener (or a client): Kafka's `ssl.keystore.*` and
/// `ssl.truststore.*` with `ssl.keystore.type=PEM`, already read from their files.
#[derive(Clone, Default)]
pub struct PemStores {
    /// The certificate chain, leaf first (PEM).
    pub certificate_chain: String,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1, unencrypted).
    pub private_key: String,
    /// Trusted CA certificates (PEM), for client certificates.
    pub trusted_certificates: Option<String>,
}

impl std::fmt::Debug for PemStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemStores")
            .field("has_truststore", &self.trusted_certificates.is_some())
            .finish_non_exhaustive()
    }
}

/// The certificates of a PEM text.
pub fn parse_certificates(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Result<Vec<_>, _> = rustls_pemfile_certs(pem);
    let certs = certs.map_err(|e| TlsError(format!("{what}: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError(format!("{what}: no PEM certificate found")));
    }
    Ok(certs)
}

fn rustls_pemfile_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_reader_iter(&mut BufReader::new(pem.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM: {e}"))
}

/// The private key of a PEM text.
pub fn parse_private_key(pem: &str, what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    use rustls::pki_types::pem::PemObject;
    if pem.contains("ENCRYPTED PRIVATE KEY") {
        return Err(TlsError(format!(
            "{what}: encrypted private keys are not supported; give an unencrypted PKCS#8 key"
        )));
    }
    PrivateKeyDer::from_pem_reader(&mut BufReader::new(pem.as_bytes()))
        .map_err(|e| TlsError(format!("{what}: no usable PEM private key ({e})")))
}

/// A root store of the certificates of a PEM text.
pub fn root_store(pem: &str, what: &str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certificates(pem, what)? {
        roots
            .add(cert)
            .map_err(|e| TlsError(format!("{what}: {e}")))?;
    }
    Ok(roots)
}

/// The rustls provider every TLS config here uses (ring; no C build, no OpenSSL).
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A rustls server config of PEM stores and `ssl.client.auth`.
pub fn server_config(
    stores: &PemStores,
    client_auth: ClientAuth,
) -> Result<ServerConfig, TlsError> {
    let chain = parse_certificates(&stores.certificate_chain, "ssl.keystore certificate chain")?;
    let key = parse_private_key(&stores.private_key, "ssl.keystore key")?;
    let builder = ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?;
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let Some(trusted) = &stores.trusted_certificates else {
                return Err(TlsError(
                    "ssl.client.auth needs a truststore (ssl.truststore.location or \
                     ssl.truststore.certificates) to check client certificates"
                        .into(),
                ));
            };
            let roots = Arc::new(root_store(trusted, "ssl.truststore")?);
            let verifier = WebPkiClientVerifier::builder_with_provider(roots, crypto_provider());
            let verifier = if auth == ClientAuth::Requested {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder
                .with_client_cert_verifier(verifier.build().map_err(|e| TlsError(e.to_string()))?)
        }
    };
    builder.with_single_cert(chain, key).map_err(|e| {
        TlsError(format!(
            "ssl.keystore: the key does not fit the certificate: {e}"
        ))
    })
}

/// A listener's TLS: the server config in force, which [`TlsListener::reload`] swaps while
/// connections are served (new handshakes use the new one, open connections keep theirs).
#[derive(Debug)]
pub struct TlsListener {
    // A std lock: held only to clone or replace an Arc, never across an await.
    config: RwLock<Arc<ServerConfig>>,
}

impl TlsListener {
    /// A listener's TLS from its first config.
    pub fn new(config: ServerConfig) -> Self {
        Self {
            config: RwLock::new(Arc::new(config)),
        }
    }

    /// The config for the next handshake.
    pub fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Uses `config` for every handshake from now on.
    pub fn reload(&self, config: ServerConfig) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_auth_parses_kafkas_values() {
        assert_eq!("required".parse(), Ok(ClientAuth::Required));
        assert_eq!("REQUESTED".parse(), Ok(ClientAuth::Requested));
        assert_eq!("none".parse(), Ok(ClientAuth::None));
        assert!("optional".parse::<ClientAuth>().is_err());
    }

    #[test]
    fn bad_pem_is_a_clear_error() {
        let e = parse_certificates("not pem", "ssl.keystore.location").expect_err("must fail");
        assert!(e.0.contains("ssl.keystore.location"), "{e}");
        let e = parse_private_key("-----BEGIN ENCRYPTED PRIVATE KEY-----\n", "k")
            .expect_err("must fail");
        assert!(e.0.contains("encrypted"), "{e}");
        let stores = PemStores {
            certificate_chain: "x".into(),
            private_key: "y".into(),
            trusted_certificates: None,
        };
        assert!(server_config(&stores, ClientAuth::None).is_err());
    }
}
