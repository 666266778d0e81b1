//! The client side of TLS and SASL, configured with Kafka's client keys
//! (`security.protocol`, `ssl.truststore.*`, `ssl.keystore.*` in PEM, `sasl.mechanism`,
//! `sasl.jaas.config` or `sasl.username`/`sasl.password`): the TLS handshake and the
//! SaslHandshake/SaslAuthenticate exchange of PLAIN and SCRAM-SHA-256/512 (the server's final
//! signature is checked).

use std::collections::BTreeMap;
use std::io::BufReader;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::ClientError;

/// A SASL mechanism and its credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslLogin {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    /// The user.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslLogin")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// How a client connects: TLS (with the server name to check) and SASL, each optional.
#[derive(Debug, Clone, Default)]
pub struct ClientSecurity {
    /// TLS, for SSL and SASL_SSL.
    pub tls: Option<Arc<ClientConfig>>,
    /// SASL, for SASL_PLAINTEXT and SASL_SSL.
    pub sasl: Option<SaslLogin>,
}

fn config_err(key: &str, reason: impl std::fmt::Display) -> ClientError {
    ClientError::Config(format!("{key}: {reason}"))
}

impl ClientSecurity {
    /// Plaintext, no authentication.
    pub fn plaintext() -> Self {
        Self::default()
    }

    /// Security from Kafka client properties (a `--command-config` file).
    pub fn from_properties(p: &BTreeMap<String, String>) -> Result<Self, ClientError> {
        let protocol = p
            .get("security.protocol")
            .map_or("PLAINTEXT".to_string(), |v| v.trim().to_ascii_uppercase());
        let (tls, sasl) = match protocol.as_str() {
            "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            other => {
                return Err(config_err(
                    "security.protocol",
                    format!("{other:?} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"),
                ))
            }
        };
        let mut out = Self::default();
        if tls {
            out.tls = Some(Arc::new(tls_config(p)?));
        }
        if sasl {
            out.sasl = Some(sasl_login(p)?);
        }
        Ok(out)
    }
}

fn read(
    p: &BTreeMap<String, String>,
    location: &str,
    inline: &str,
) -> Result<Option<String>, ClientError> {
    match (p.get(location), p.get(inline)) {
        (Some(path), _) => std::fs::read_to_string(path.trim())
            .map(Some)
            .map_err(|e| config_err(location, format!("cannot read {path}: {e}"))),
        (None, Some(pem)) => Ok(Some(pem.clone())),
        (None, None) => Ok(None),
    }
}

fn certificates(pem: &str, key: &str) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let certs = CertificateDer::pem_reader_iter(&mut BufReader::new(pem.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| config_err(key, format!("bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(config_err(key, "no PEM certificate"));
    }
    Ok(certs)
}

fn tls_config(p: &BTreeMap<String, String>) -> Result<ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let trusted =
        read(p, "ssl.truststore.location", "ssl.truststore.certificates")?.ok_or_else(|| {
            config_err(
                "ssl.truststore.location",
                "TLS needs the CA certificates to trust (PEM)",
            )
        })?;
    let mut roots = RootCertStore::empty();
    for c in certificates(&trusted, "ssl.truststore.location")? {
        roots
            .add(c)
            .map_err(|e| config_err("ssl.truststore.location", e))?;
    }
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| config_err("ssl", e))?;
    let roots = Arc::new(roots);
    let builder = if p
        .get("ssl.endpoint.identification.algorithm")
        .is_some_and(|v| v.trim().is_empty())
    {
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| config_err("ssl.truststore.location", e))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoHostnameCheck(inner)))
    } else {
        builder.with_root_certificates(roots)
    };
    // mTLS: the key store holds the key and the certificate chain (one PEM file, or inline).
    let chain = match p.get("ssl.keystore.location") {
        Some(path) => Some(std::fs::read_to_string(path.trim()).map_err(|e| {
            config_err("ssl.keystore.location", format!("cannot read {path}: {e}"))
        })?),
        None => p.get("ssl.keystore.certificate.chain").cloned(),
    };
    match chain {
        None => Ok(builder.with_no_client_auth()),
        Some(chain) => {
            let key_pem = p
                .get("ssl.keystore.key")
                .cloned()
                .unwrap_or_else(|| chain.clone());
            let key = PrivateKeyDer::from_pem_reader(&mut BufReader::new(key_pem.as_bytes()))
                .map_err(|e| {
                    config_err(
                        "ssl.keystore.location",
                        format!("no usable private key: {e}"),
                    )
                })?;
            builder
                .with_client_auth_cert(certificates(&chain, "ssl.keystore.location")?, key)
                .map_err(|e| config_err("ssl.keystore.location", e))
        }
    }
}

/// `ssl.endpoint.identification.algorithm=` (empty): the chain is checked, the name is not.
#[derive(Debug)]
struct NoHostnameCheck(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for NoHostnameCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

fn sasl_login(p: &BTreeMap<String, String>) -> Result<SaslLogin, ClientError> {
    let mechanism = p
        .get("sasl.mechanism")
        .or_else(|| p.get("sasl.mechanisms"))
        .map_or("GSSAPI".to_string(), |m| m.trim().to_ascii_uppercase());
    if !["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].contains(&mechanism.as_str()) {
        return Err(config_err(
            "sasl.mechanism",
            format!("{mechanism} is not served (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"),
        ));
    }
    let (username, password) = match (p.get("sasl.username"), p.get("sasl.password")) {
        (Some(u), Some(pw)) => (u.clone(), pw.clone()),
        _ => {
            let jaas = p.get("sasl.jaas.config").ok_or_else(|| {
                config_err("sasl.jaas.config", "SASL needs username and password (sasl.jaas.config, or sasl.username and sasl.password)")
            })?;
            let entries =
                odradek_common::jaas::parse(jaas).map_err(|e| config_err("sasl.jaas.config", e))?;
            let option = |name: &str| {
                entries
                    .iter()
                    .flat_map(|e| &e.options)
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            match (option("username"), option("password")) {
                (Some(u), Some(pw)) => (u, pw),
                _ => {
                    return Err(config_err(
                        "sasl.jaas.config",
                        "expected username=\"...\" password=\"...\"",
                    ))
                }
            }
        }
    };
    Ok(SaslLogin {
        mechanism,
        username,
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kafka_client_keys_configure_sasl() {
        let s = ClientSecurity::from_properties(&props(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            (
                "sasl.jaas.config",
                r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="s3cret";"#,
            ),
        ]))
        .expect("valid");
        let login = s.sasl.expect("sasl");
        assert_eq!(
            (login.username.as_str(), login.password.as_str()),
            ("alice", "s3cret")
        );
        assert!(s.tls.is_none());
        for bad in [
            vec![("security.protocol", "TLS")],
            vec![("security.protocol", "SASL_PLAINTEXT")],
            vec![
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "PLAIN"),
            ],
            vec![("security.protocol", "SSL")],
        ] {
            assert!(
                ClientSecurity::from_properties(&props(&bad)).is_err(),
                "{bad:?}"
            );
        }
    }
}
