//! The server side of SASL: which mechanisms a listener enables, where credentials come from,
//! and the exchanges of PLAIN (RFC 4616) and SCRAM-SHA-256/512 (RFC 5802, RFC 7677).

use std::sync::Arc;

use odradek_common::scram::{
    self, ClientFinal, ClientFirst, ScramCredential, ScramMechanism, ServerFirst,
};

/// Where a listener's SASL credentials come from (the broker: the JAAS config for PLAIN, the
/// metadata image for SCRAM).
pub trait SaslCredentials: Send + Sync + 'static {
    /// PLAIN: whether `password` is `user`'s.
    fn check_plain(&self, user: &str, password: &str) -> bool;
    /// SCRAM: `user`'s credential for `mechanism`, if any.
    fn scram(&self, mechanism: ScramMechanism, user: &str) -> Option<ScramCredential>;
}

/// A listener's SASL settings.
#[derive(Clone)]
pub struct SaslSettings {
    /// `sasl.enabled.mechanisms`, upper case (`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`).
    pub enabled_mechanisms: Vec<String>,
    /// The credentials.
    pub credentials: Arc<dyn SaslCredentials>,
    /// `connections.max.reauth.ms` (0: sessions do not expire; KIP-368).
    pub max_reauth_ms: u64,
    /// `connection.failed.authentication.delay.ms` (100): a failed authentication is answered
    /// and closed this much later.
    pub failed_authentication_delay_ms: u64,
}

impl std::fmt::Debug for SaslSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslSettings")
            .field("enabled_mechanisms", &self.enabled_mechanisms)
            .field("max_reauth_ms", &self.max_reauth_ms)
            .finish_non_exhaustive()
    }
}

/// The mechanisms this frontend can serve.
pub const SUPPORTED_MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];

/// One authentication exchange in progress.
pub(crate) enum SaslExchange {
    Plain,
    ScramFirst(ScramMechanism),
    ScramFinal {
        mechanism: ScramMechanism,
        user: String,
        credential: ScramCredential,
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
    },
    Finished,
}

/// What one token of an exchange led to.
pub(crate) enum SaslStep {
    /// Send this challenge; the exchange goes on.
    Challenge(Vec<u8>),
    /// Authenticated as this user; send the last token.
    Done { user: String, token: Vec<u8> },
}

/// A failed authentication, with the message the client is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SaslFailure(pub String);

impl SaslExchange {
    /// An exchange of `mechanism` (upper case), if it is one this frontend serves.
    pub(crate) fn start(mechanism: &str) -> Option<Self> {
        match mechanism {
            "PLAIN" => Some(SaslExchange::Plain),
            m => m
                .parse::<ScramMechanism>()
                .ok()
                .map(SaslExchange::ScramFirst),
        }
    }

    /// Takes the client's next token.
    pub(crate) fn step(
        &mut self,
        token: &[u8],
        credentials: &dyn SaslCredentials,
    ) -> Result<SaslStep, SaslFailure> {
        let state = std::mem::replace(self, SaslExchange::Finished);
        match state {
            SaslExchange::Plain => plain(token, credentials),
            SaslExchange::ScramFirst(mechanism) => {
                let invalid = || {
                    SaslFailure(format!(
                        "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
                    ))
                };
                let message = std::str::from_utf8(token).map_err(|_| invalid())?;
                // Kafka tells the client no more than this for any SCRAM failure.
                let first = ClientFirst::parse(message).map_err(|_| invalid())?;
                if first.extensions.iter().any(|e| e.starts_with("tokenauth=")) {
                    // Delegation tokens are not served: refuse rather than treat the token
                    // id as a user name.
                    return Err(invalid());
                }
                if let Some(authz) = &first.authzid {
                    if authz != &first.user {
                        return Err(SaslFailure(
                            "Authentication failed: Client requested an authorization id that is different from username".into(),
                        ));
                    }
                }
                let credential = credentials
                    .scram(mechanism, &first.user)
                    .ok_or_else(invalid)?;
                let nonce = format!("{}{}", first.nonce, server_nonce());
                let server_first = ServerFirst {
                    nonce: nonce.clone(),
                    salt: credential.salt.clone(),
                    iterations: credential.iterations,
                }
                .to_message();
                *self = SaslExchange::ScramFinal {
                    mechanism,
                    user: first.user,
                    credential,
                    gs2_header: first.gs2_header,
                    client_first_bare: first.bare,
                    server_first: server_first.clone(),
                    nonce,
                };
                Ok(SaslStep::Challenge(server_first.into_bytes()))
            }
            SaslExchange::ScramFinal {
                mechanism,
                user,
                credential,
                gs2_header,
                client_first_bare,
                server_first,
                nonce,
            } => {
                let invalid = || {
                    SaslFailure(format!(
                        "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
                    ))
                };
                let message = std::str::from_utf8(token).map_err(|_| invalid())?;
                let fin = ClientFinal::parse(message)
                    .map_err(|e| SaslFailure(format!("Invalid SCRAM client final message: {e}")))?;
                if fin.nonce != nonce {
                    return Err(SaslFailure(
                        "Invalid SCRAM client final message: nonce mismatch".into(),
                    ));
                }
                if scram::unb64(&fin.channel_binding).ok().as_deref() != Some(gs2_header.as_bytes())
                {
                    return Err(SaslFailure(
                        "Invalid SCRAM client final message: channel binding does not match".into(),
                    ));
                }
                let auth =
                    scram::auth_message(&client_first_bare, &server_first, &fin.without_proof);
                if !scram::verify_client_proof(mechanism, &credential, &auth, &fin.proof) {
                    return Err(invalid());
                }
                let signature = scram::server_signature(mechanism, &credential.server_key, &auth);
                Ok(SaslStep::Done {
                    user,
                    token: format!("v={}", scram::b64(&signature)).into_bytes(),
                })
            }
            SaslExchange::Finished => Err(SaslFailure("the SASL exchange is already over".into())),
        }
    }
}

/// PLAIN: `[authzid] NUL authcid NUL passwd`.
fn plain(token: &[u8], credentials: &dyn SaslCredentials) -> Result<SaslStep, SaslFailure> {
    let text = std::str::from_utf8(token)
        .map_err(|_| SaslFailure("Invalid SASL/PLAIN response: not UTF-8".into()))?;
    let parts: Vec<&str> = text.split('\0').collect();
    let [authz, user, password] = parts.as_slice() else {
        return Err(SaslFailure(
            "Invalid SASL/PLAIN response: expected 3 tokens".into(),
        ));
    };
    if user.is_empty() {
        return Err(SaslFailure(
            "Authentication failed: username not specified".into(),
        ));
    }
    if password.is_empty() {
        return Err(SaslFailure(
            "Authentication failed: password not specified".into(),
        ));
    }
    if !authz.is_empty() && authz != user {
        return Err(SaslFailure(
            "Authentication failed: Client requested an authorization id that is different from username".into(),
        ));
    }
    if !credentials.check_plain(user, password) {
        return Err(SaslFailure(
            "Authentication failed: Invalid username or password".into(),
        ));
    }
    Ok(SaslStep::Done {
        user: user.to_string(),
        token: Vec::new(),
    })
}

/// A fresh, printable server nonce.
fn server_nonce() -> String {
    let mut bytes = [0u8; 24];
    // getrandom fails only without an OS entropy source; a time-derived nonce would be
    // predictable, so refuse to go on silently.
    getrandom::getrandom(&mut bytes).expect("the OS random source is unavailable");
    scram::b64(&bytes).replace(',', "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Users(HashMap<String, String>);

    impl SaslCredentials for Users {
        fn check_plain(&self, user: &str, password: &str) -> bool {
            self.0.get(user).is_some_and(|p| p == password)
        }
        fn scram(&self, m: ScramMechanism, user: &str) -> Option<ScramCredential> {
            self.0
                .get(user)
                .map(|p| ScramCredential::from_password(m, p, b"salty".to_vec(), 4096))
        }
    }

    fn users() -> Users {
        Users([("alice".to_string(), "secret".to_string())].into())
    }

    #[test]
    fn plain_checks_user_password_and_authzid() {
        let u = users();
        let mut ok = SaslExchange::start("PLAIN").expect("must work");
        assert!(
            matches!(ok.step(b"\0alice\0secret", &u), Ok(SaslStep::Done { user, .. }) if user == "alice")
        );
        for bad in [
            &b"\0alice\0wrong"[..],
            b"bob\0alice\0secret",
            b"alice\0secret",
            b"\0\0x",
            b"\0alice\0",
        ] {
            let mut e = SaslExchange::start("PLAIN").expect("must work");
            assert!(e.step(bad, &u).is_err(), "{bad:?}");
        }
    }

    fn scram_exchange(m: ScramMechanism, password: &str) -> Result<String, SaslFailure> {
        let u = users();
        let mut server = SaslExchange::start(m.name()).expect("must work");
        let first = ClientFirst::new("alice", "cnonce123");
        let SaslStep::Challenge(sf) = server.step(first.to_message().as_bytes(), &u)? else {
            panic!("expected a challenge")
        };
        let sf_text = String::from_utf8(sf).expect("must work");
        let parsed = ServerFirst::parse(&sf_text).expect("must work");
        assert!(parsed.nonce.starts_with("cnonce123"));
        let salted = m.salted_password(password.as_bytes(), &parsed.salt, parsed.iterations);
        let without_proof = format!("c=biws,r={}", parsed.nonce);
        let auth = scram::auth_message(&first.bare, &sf_text, &without_proof);
        let proof = scram::client_proof(m, &salted, &auth);
        let fin = format!("{without_proof},p={}", scram::b64(&proof));
        match server.step(fin.as_bytes(), &u)? {
            SaslStep::Done { user, token } => {
                let server_key = m.hmac(&salted, b"Server Key");
                let expected = format!(
                    "v={}",
                    scram::b64(&scram::server_signature(m, &server_key, &auth))
                );
                assert_eq!(String::from_utf8(token).expect("must work"), expected);
                Ok(user)
            }
            SaslStep::Challenge(_) => panic!("expected the end"),
        }
    }

    #[test]
    fn scram_authenticates_the_right_password_only() {
        for m in ScramMechanism::ALL {
            assert_eq!(scram_exchange(m, "secret").expect("must work"), "alice");
            assert!(scram_exchange(m, "wrong").is_err());
        }
        let mut e = SaslExchange::start("SCRAM-SHA-256").expect("must work");
        assert!(e.step(b"n,,n=nobody,r=abc", &users()).is_err());
        assert!(SaslExchange::start("GSSAPI").is_none());
    }
}
