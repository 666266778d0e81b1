//! What a connection is: the listener it came in on, its security protocol, its principal.

use std::fmt;
use std::str::FromStr;

/// Kafka's security protocols (`listener.security.protocol.map` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    /// No encryption, no authentication.
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Kafka's name for it.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Not one of Kafka's security protocol names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown security protocol {0:?} (PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)")]
pub struct UnknownSecurityProtocol(pub String);

impl FromStr for SecurityProtocol {
    type Err = UnknownSecurityProtocol;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(SecurityProtocol::Plaintext),
            "SSL" => Ok(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Ok(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Ok(SecurityProtocol::SaslSsl),
            _ => Err(UnknownSecurityProtocol(s.to_string())),
        }
    }
}

/// Kafka's `KafkaPrincipal`: a type and a name, written `User:alice`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KafkaPrincipal {
    /// The principal type (`User` for every built-in authenticator).
    pub principal_type: String,
    /// The name.
    pub name: String,
}

impl KafkaPrincipal {
    /// `User:ANONYMOUS`, the principal of an unauthenticated connection.
    pub fn anonymous() -> Self {
        Self {
            principal_type: "User".into(),
            name: "ANONYMOUS".into(),
        }
    }
}

impl fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

/// A listener as a connection sees it: its name (`PLAINTEXT`, `INTERNAL`, ...) and protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerInfo {
    /// The listener's name from `listeners`.
    pub name: String,
    /// Its protocol from `listener.security.protocol.map`.
    pub security_protocol: SecurityProtocol,
}

/// One connection's session, shared by every request it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The listener the connection was accepted on.
    pub listener: ListenerInfo,
    /// Who is on the other end (`User:ANONYMOUS` until authentication exists).
    pub principal: KafkaPrincipal,
}

impl Session {
    /// A session on `listener` with the anonymous principal.
    pub fn anonymous(listener: ListenerInfo) -> Self {
        Self {
            listener,
            principal: KafkaPrincipal::anonymous(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_protocols_parse_by_kafkas_names() {
        for p in [
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ] {
            assert_eq!(p.name().parse::<SecurityProtocol>(), Ok(p));
        }
        assert_eq!("sasl_ssl".parse(), Ok(SecurityProtocol::SaslSsl));
        assert!("TLS".parse::<SecurityProtocol>().is_err());
        assert_eq!(KafkaPrincipal::anonymous().to_string(), "User:ANONYMOUS");
    }
}
