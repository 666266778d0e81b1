//! Each listener's security settings, from Kafka's keys: `ssl.*` and `sasl.*`, each of which a
//! `listener.name.<listener>.` prefix overrides for one listener (as in Kafka), and the JAAS
//! config of SASL/PLAIN users.

use std::collections::BTreeMap;

use odradek_controller::config::ConfigError;
use odradek_frontend::security::{ClientAuth, PemStores, SslPrincipalMapper, SUPPORTED_MECHANISMS};
use odradek_frontend::SecurityProtocol;

use odradek_common::jaas::{self, JaasEntry};

/// A listener's validated security settings.
#[derive(Debug, Clone)]
pub struct ListenerSecurityConfig {
    /// The listener's protocol.
    pub protocol: SecurityProtocol,
    /// TLS (SSL, SASL_SSL).
    pub tls: Option<TlsConfig>,
    /// SASL (SASL_PLAINTEXT, SASL_SSL).
    pub sasl: Option<SaslConfig>,
}

/// A listener's TLS settings.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// The key store and trust store, read from their files.
    pub stores: PemStores,
    /// `ssl.client.auth` (none).
    pub client_auth: ClientAuth,
    /// `ssl.principal.mapping.rules` (DEFAULT).
    pub principal_mapper: SslPrincipalMapper,
}

/// A listener's SASL settings.
#[derive(Debug, Clone)]
pub struct SaslConfig {
    /// `sasl.enabled.mechanisms`.
    pub mechanisms: Vec<String>,
    /// SASL/PLAIN users (`user_<name>="<password>"` of the PLAIN JAAS config).
    pub plain_users: BTreeMap<String, String>,
    /// `connections.max.reauth.ms` (0).
    pub max_reauth_ms: u64,
    /// `connection.failed.authentication.delay.ms` (100).
    pub failed_authentication_delay_ms: u64,
}

fn err(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// A listener's view of the properties: `listener.name.<l>.<key>` before `<key>`.
struct Scoped<'a> {
    props: &'a BTreeMap<String, String>,
    prefix: String,
}

impl Scoped<'_> {
    /// The value and the key it was found under.
    fn get(&self, key: &str) -> Option<(String, &str)> {
        let scoped = format!("{}{key}", self.prefix);
        if let Some(v) = self.props.get(&scoped) {
            return Some((scoped, v.as_str()));
        }
        self.props.get(key).map(|v| (key.to_string(), v.as_str()))
    }

    fn read_file(&self, key: &str, path: &str) -> Result<String, ConfigError> {
        std::fs::read_to_string(path.trim())
            .map_err(|e| err(key, path, format!("cannot read the file: {e}")))
    }
}

/// The security settings of `listener` (its name as in `listeners`).
pub fn listener_security(
    props: &BTreeMap<String, String>,
    listener: &str,
    protocol: SecurityProtocol,
) -> Result<ListenerSecurityConfig, ConfigError> {
    let scoped = Scoped {
        props,
        prefix: format!("listener.name.{}.", listener.to_ascii_lowercase()),
    };
    let tls = match protocol {
        SecurityProtocol::Ssl | SecurityProtocol::SaslSsl => Some(tls_config(
            &scoped,
            listener,
            protocol == SecurityProtocol::SaslSsl,
        )?),
        _ => None,
    };
    let sasl = match protocol {
        SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => {
            Some(sasl_config(&scoped, listener)?)
        }
        _ => None,
    };
    Ok(ListenerSecurityConfig {
        protocol,
        tls,
        sasl,
    })
}

fn tls_config(s: &Scoped<'_>, listener: &str, sasl_ssl: bool) -> Result<TlsConfig, ConfigError> {
    for key in ["ssl.keystore.type", "ssl.truststore.type"] {
        if let Some((k, v)) = s.get(key) {
            if !v.trim().eq_ignore_ascii_case("PEM") {
                return Err(err(
                    &k,
                    v,
                    "only PEM stores are supported (convert a JKS or PKCS12 store to PEM)",
                ));
            }
        }
    }
    // A listener that names its own key store (in either form) ignores the broker-wide one.
    const KEYSTORE: [&str; 3] = [
        "ssl.keystore.location",
        "ssl.keystore.certificate.chain",
        "ssl.keystore.key",
    ];
    let own = KEYSTORE
        .iter()
        .any(|k| s.props.contains_key(&format!("{}{k}", s.prefix)));
    let get = |k: &str| {
        if own {
            let scoped = format!("{}{k}", s.prefix);
            s.props.get(&scoped).map(|v| (scoped, v.as_str()))
        } else {
            s.get(k)
        }
    };
    let (certificate_chain, private_key) = match (
        get(KEYSTORE[0]),
        get(KEYSTORE[1]),
        get(KEYSTORE[2]),
    ) {
        (Some((k, path)), None, None) => {
            let pem = s.read_file(&k, path)?;
            (pem.clone(), pem)
        }
        (None, Some((_, chain)), Some((_, key))) => (chain.to_string(), key.to_string()),
        (Some((k, v)), _, _) => {
            return Err(err(
                &k,
                v,
                "give either ssl.keystore.location or ssl.keystore.certificate.chain with ssl.keystore.key, not both",
            ))
        }
        _ => {
            return Err(err(
                &format!("listener.name.{}.ssl.keystore.location", listener.to_ascii_lowercase()),
                "",
                format!(
                    "listener {listener} uses TLS and needs a PEM key store (ssl.keystore.location, or ssl.keystore.certificate.chain and ssl.keystore.key)"
                ),
            ))
        }
    };
    if let Some((k, v)) = s.get("ssl.key.password") {
        if !v.is_empty() && private_key.contains("ENCRYPTED PRIVATE KEY") {
            return Err(err(
                &k,
                "(hidden)",
                "encrypted private keys are not supported; give an unencrypted PKCS#8 key",
            ));
        }
    }
    let trusted_certificates = match (
        s.get("ssl.truststore.location"),
        s.get("ssl.truststore.certificates"),
    ) {
        (Some((k, path)), None) => Some(s.read_file(&k, path)?),
        (None, Some((_, pem))) => Some(pem.to_string()),
        (Some((k, v)), Some(_)) => {
            return Err(err(
                &k,
                v,
                "give either ssl.truststore.location or ssl.truststore.certificates, not both",
            ))
        }
        (None, None) => None,
    };
    // Kafka: on a SASL_SSL listener only the listener-prefixed `ssl.client.auth` counts
    // (SASL authenticates the client there).
    let client_auth_key = if sasl_ssl {
        let k = format!("{}ssl.client.auth", s.prefix);
        s.props.get(&k).map(|v| (k, v.as_str()))
    } else {
        s.get("ssl.client.auth")
    };
    let client_auth = match client_auth_key {
        None => ClientAuth::None,
        Some((k, v)) => v.parse().map_err(|e: String| err(&k, v, e))?,
    };
    let principal_mapper = match s.get("ssl.principal.mapping.rules") {
        None => SslPrincipalMapper::default(),
        Some((k, v)) => SslPrincipalMapper::parse(v).map_err(|e| err(&k, v, e))?,
    };
    let config = TlsConfig {
        stores: PemStores {
            certificate_chain,
            private_key,
            trusted_certificates,
        },
        client_auth,
        principal_mapper,
    };
    // Fail at start, naming the listener, rather than at the first handshake.
    odradek_frontend::security::tls::server_config(&config.stores, config.client_auth).map_err(
        |e| {
            err(
                &format!(
                    "listener.name.{}.ssl.keystore.location",
                    listener.to_ascii_lowercase()
                ),
                "",
                e.0,
            )
        },
    )?;
    Ok(config)
}

fn sasl_config(s: &Scoped<'_>, listener: &str) -> Result<SaslConfig, ConfigError> {
    let lower = listener.to_ascii_lowercase();
    let Some((key, value)) = s.get("sasl.enabled.mechanisms") else {
        return Err(err(
            "sasl.enabled.mechanisms",
            "GSSAPI",
            format!(
                "listener {listener} uses SASL; Kafka's default mechanism GSSAPI (Kerberos) is not served, so set sasl.enabled.mechanisms to some of {}",
                SUPPORTED_MECHANISMS.join(", ")
            ),
        ));
    };
    let mut mechanisms = Vec::new();
    for m in value.split(',').map(|m| m.trim().to_ascii_uppercase()) {
        if m.is_empty() {
            continue;
        }
        if !SUPPORTED_MECHANISMS.contains(&m.as_str()) {
            return Err(err(
                &key,
                value,
                format!(
                    "mechanism {m} is not served (served: {})",
                    SUPPORTED_MECHANISMS.join(", ")
                ),
            ));
        }
        if !mechanisms.contains(&m) {
            mechanisms.push(m);
        }
    }
    if mechanisms.is_empty() {
        return Err(err(&key, value, "no mechanism enabled"));
    }
    let mut plain_users = BTreeMap::new();
    if mechanisms.iter().any(|m| m == "PLAIN") {
        let jaas_key = format!("listener.name.{lower}.plain.sasl.jaas.config");
        let Some(text) = s.props.get(&jaas_key) else {
            return Err(err(
                &jaas_key,
                "",
                "SASL/PLAIN needs its users: org.apache.kafka.common.security.plain.PlainLoginModule required user_<name>=\"<password>\" ...;",
            ));
        };
        let entries = jaas::parse(text).map_err(|e| err(&jaas_key, "(hidden)", e))?;
        let entry: &JaasEntry =
            match entries.as_slice() {
                [e] if e.login_module.ends_with("PlainLoginModule") => e,
                _ => return Err(err(
                    &jaas_key,
                    "(hidden)",
                    "expected one org.apache.kafka.common.security.plain.PlainLoginModule entry",
                )),
            };
        for (k, v) in &entry.options {
            if let Some(user) = k.strip_prefix("user_") {
                plain_users.insert(user.to_string(), v.clone());
            }
        }
    }
    let num = |key: &str, default: u64| -> Result<u64, ConfigError> {
        match s.get(key) {
            None => Ok(default),
            Some((k, v)) => v
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(|n| n as u64)
                .ok_or_else(|| err(&k, v, "must be a non-negative number of milliseconds")),
        }
    };
    Ok(SaslConfig {
        mechanisms,
        plain_users,
        max_reauth_ms: num("connections.max.reauth.ms", 0)?,
        failed_authentication_delay_ms: num("connection.failed.authentication.delay.ms", 100)?,
    })
}

/// The authorizer: `authorizer.class.name` (none by default: everyone may do everything),
/// `super.users`, `allow.everyone.if.no.acl.found` (false).
pub fn authorizer_config(
    props: &BTreeMap<String, String>,
) -> Result<Option<odradek_metadata::acl::AuthorizerConfig>, ConfigError> {
    const KEY: &str = "authorizer.class.name";
    const STANDARD: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
    match props.get(KEY).map(|v| v.trim()) {
        None | Some("") => return Ok(None),
        Some(STANDARD) => {}
        Some(v) => {
            return Err(err(
                KEY,
                v,
                format!("the authorizer served is {STANDARD} (ACLs in the metadata log)"),
            ))
        }
    }
    let allow = match props
        .get("allow.everyone.if.no.acl.found")
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(err(
                "allow.everyone.if.no.acl.found",
                v,
                "must be true or false",
            ))
        }
    };
    Ok(Some(odradek_metadata::acl::AuthorizerConfig {
        super_users: odradek_metadata::acl::AuthorizerConfig::parse_super_users(
            props.get("super.users").map_or("", |s| s.as_str()),
        ),
        allow_everyone_if_no_acl_found: allow,
    }))
}

/// How this broker connects to the others (followers' fetchers, transaction markers): over
/// the inter-broker listener with its protocol, trusting the listener's trust store, showing
/// its key store (for mTLS), and logging in with `sasl.mechanism.inter.broker.protocol` and the
/// `username`/`password` of `listener.name.<l>.<mechanism>.sasl.jaas.config`.
pub fn inter_broker_security(
    props: &BTreeMap<String, String>,
    listener: &str,
    protocol: SecurityProtocol,
) -> Result<odradek_client::ClientSecurity, ConfigError> {
    let lower = listener.to_ascii_lowercase();
    let scoped = Scoped {
        props,
        prefix: format!("listener.name.{lower}."),
    };
    let mut client = BTreeMap::new();
    client.insert("security.protocol".to_string(), protocol.name().to_string());
    if matches!(protocol, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl) {
        for key in [
            "ssl.truststore.location",
            "ssl.truststore.certificates",
            "ssl.keystore.location",
            "ssl.keystore.certificate.chain",
            "ssl.keystore.key",
            "ssl.endpoint.identification.algorithm",
        ] {
            if let Some((_, v)) = scoped.get(key) {
                client.insert(key.to_string(), v.to_string());
            }
        }
        if !client.contains_key("ssl.truststore.location")
            && !client.contains_key("ssl.truststore.certificates")
        {
            return Err(err(
                "inter.broker.listener.name",
                listener,
                "brokers connect to each other over TLS on this listener and need a trust store (ssl.truststore.location)",
            ));
        }
    }
    if matches!(
        protocol,
        SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
    ) {
        const KEY: &str = "sasl.mechanism.inter.broker.protocol";
        let Some(mechanism) = props.get(KEY).map(|m| m.trim().to_string()) else {
            return Err(err(
                KEY,
                "GSSAPI",
                "the inter-broker listener uses SASL; Kafka's default GSSAPI is not served, so set PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
            ));
        };
        let jaas_key = format!(
            "listener.name.{lower}.{}.sasl.jaas.config",
            mechanism.to_ascii_lowercase()
        );
        let Some(text) = props.get(&jaas_key) else {
            return Err(err(
                &jaas_key,
                "",
                "the inter-broker login needs username=\"...\" password=\"...\" here",
            ));
        };
        let entries = jaas::parse(text).map_err(|e| err(&jaas_key, "(hidden)", e))?;
        let option = |name: &str| {
            entries
                .iter()
                .flat_map(|e| &e.options)
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let (Some(user), Some(password)) = (option("username"), option("password")) else {
            return Err(err(
                &jaas_key,
                "(hidden)",
                "the inter-broker login needs username and password options",
            ));
        };
        client.insert("sasl.mechanism".into(), mechanism);
        client.insert("sasl.username".into(), user);
        client.insert("sasl.password".into(), password);
    }
    odradek_client::ClientSecurity::from_properties(&client)
        .map_err(|e| err("inter.broker.listener.name", listener, e.to_string()))
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
    fn sasl_keys_are_checked_by_name() {
        let e = listener_security(
            &props(&[]),
            "SASL_PLAINTEXT",
            SecurityProtocol::SaslPlaintext,
        )
        .expect_err("must fail");
        assert_eq!(e.key, "sasl.enabled.mechanisms", "{e}");
        let e = listener_security(
            &props(&[("sasl.enabled.mechanisms", "PLAIN")]),
            "SASL_PLAINTEXT",
            SecurityProtocol::SaslPlaintext,
        )
        .expect_err("must fail");
        assert_eq!(e.key, "listener.name.sasl_plaintext.plain.sasl.jaas.config");
        let e = listener_security(
            &props(&[("sasl.enabled.mechanisms", "GSSAPI")]),
            "X",
            SecurityProtocol::SaslPlaintext,
        )
        .expect_err("must fail");
        assert!(e.reason.contains("GSSAPI"), "{e}");
        let ok = listener_security(
            &props(&[
                ("listener.name.client.sasl.enabled.mechanisms", "plain,SCRAM-SHA-512"),
                (
                    "listener.name.client.plain.sasl.jaas.config",
                    r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="a" user_admin="a" user_bob="b";"#,
                ),
                ("connections.max.reauth.ms", "60000"),
            ]),
            "CLIENT",
            SecurityProtocol::SaslPlaintext,
        )
        .expect("must work");
        let sasl = ok.sasl.expect("must work");
        assert_eq!(sasl.mechanisms, vec!["PLAIN", "SCRAM-SHA-512"]);
        assert_eq!(sasl.plain_users.get("bob").map(String::as_str), Some("b"));
        assert_eq!(sasl.max_reauth_ms, 60_000);
        assert_eq!(sasl.failed_authentication_delay_ms, 100);
    }

    #[test]
    fn tls_keys_are_checked_by_name() {
        let e =
            listener_security(&props(&[]), "SSL", SecurityProtocol::Ssl).expect_err("must fail");
        assert_eq!(e.key, "listener.name.ssl.ssl.keystore.location", "{e}");
        let e = listener_security(
            &props(&[
                ("ssl.keystore.type", "JKS"),
                ("ssl.keystore.location", "/x"),
            ]),
            "SSL",
            SecurityProtocol::Ssl,
        )
        .expect_err("must fail");
        assert_eq!(e.key, "ssl.keystore.type");
        let e = listener_security(
            &props(&[(
                "listener.name.ssl.ssl.keystore.location",
                "/nonexistent/k.pem",
            )]),
            "SSL",
            SecurityProtocol::Ssl,
        )
        .expect_err("must fail");
        assert_eq!(e.key, "listener.name.ssl.ssl.keystore.location");
        assert!(e.reason.contains("cannot read"), "{e}");
    }
}
