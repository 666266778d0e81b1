//! SCRAM (RFC 5802, with SHA-256 and SHA-512 as RFC 7677 and Kafka's KIP-84 use them): the
//! credential a server keeps, and the message formats both sides exchange.
//!
//! Pure functions only; the server's and the client's exchanges live in `odradek-frontend` and
//! `odradek-client`, the credential records in `odradek-metadata`.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// The SCRAM mechanisms Kafka serves, with the numbers Kafka's admin protocol gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    /// `SCRAM-SHA-256` (type 1).
    Sha256,
    /// `SCRAM-SHA-512` (type 2).
    Sha512,
}

/// Kafka's bounds on a credential's iteration count (`ScramMechanism.minIterations`/`maxIterations`).
pub const MIN_ITERATIONS: u32 = 4096;
/// The upper bound.
pub const MAX_ITERATIONS: u32 = 16384;

impl ScramMechanism {
    /// Both, in Kafka's order.
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The mechanism type of AlterUserScramCredentials / DescribeUserScramCredentials.
    pub fn type_id(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// The mechanism of a type id.
    pub fn from_type_id(id: i8) -> Option<Self> {
        match id {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    /// The hash's output length in bytes.
    pub fn hash_len(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }

    /// `H(data)`.
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `HMAC(key, data)`.
    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length, so new_from_slice cannot fail.
        match self {
            ScramMechanism::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key length");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    /// `Hi(password, salt, i)` of RFC 5802: PBKDF2 with this HMAC and one block.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut block = salt.to_vec();
        block.extend_from_slice(&1u32.to_be_bytes());
        let mut u = self.hmac(password, &block);
        let mut result = u.clone();
        for _ in 1..iterations {
            u = self.hmac(password, &u);
            for (r, x) in result.iter_mut().zip(&u) {
                *r ^= x;
            }
        }
        result
    }
}

impl fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ScramMechanism {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "SCRAM-SHA-256" => Ok(ScramMechanism::Sha256),
            "SCRAM-SHA-512" => Ok(ScramMechanism::Sha512),
            _ => Err(format!(
                "unknown SCRAM mechanism {s:?} (SCRAM-SHA-256 or SCRAM-SHA-512)"
            )),
        }
    }
}

/// What a server keeps of a user's password for one mechanism.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// The salt.
    pub salt: Vec<u8>,
    /// `H(ClientKey)`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
    /// The iteration count.
    pub iterations: u32,
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keys stay out of logs.
        f.debug_struct("ScramCredential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl ScramCredential {
    /// The credential of a salted password (what AlterUserScramCredentials carries).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salted_password: &[u8],
        salt: Vec<u8>,
        iterations: u32,
    ) -> Self {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        Self {
            salt,
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }

    /// The credential of a password.
    pub fn from_password(
        mechanism: ScramMechanism,
        password: &str,
        salt: Vec<u8>,
        iterations: u32,
    ) -> Self {
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
        Self::from_salted_password(mechanism, &salted, salt, iterations)
    }
}

/// A malformed or refused SCRAM message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScramError(pub String);

fn err<T>(s: impl Into<String>) -> Result<T, ScramError> {
    Err(ScramError(s.into()))
}

/// `base64`.
pub fn b64(data: &[u8]) -> String {
    BASE64.encode(data)
}

/// Un-`base64`.
pub fn unb64(s: &str) -> Result<Vec<u8>, ScramError> {
    BASE64
        .decode(s)
        .map_err(|e| ScramError(format!("bad base64: {e}")))
}

/// The `saslname` form of a user name (`,` and `=` escaped).
pub fn encode_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// A user name from its `saslname` form.
pub fn decode_saslname(s: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return err(format!("invalid user name escape in {s:?}")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The `key=value` attributes of a message, in order.
fn attributes(message: &str) -> Result<Vec<(char, &str)>, ScramError> {
    message
        .split(',')
        .map(|a| {
            let mut chars = a.chars();
            match (chars.next(), chars.next()) {
                (Some(k), Some('=')) if k.is_ascii_alphabetic() => Ok((k, &a[2..])),
                _ => err(format!("invalid SCRAM attribute {a:?}")),
            }
        })
        .collect()
}

/// The client's first message: `gs2-header client-first-bare`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// `n,,` or `y,,` (channel binding is not supported), or with `a=authzid`.
    pub gs2_header: String,
    /// The authorization id, if the client gave one.
    pub authzid: Option<String>,
    /// The user name (decoded).
    pub user: String,
    /// The client's nonce.
    pub nonce: String,
    /// Extensions after the nonce (Kafka's `tokenauth=true` and the like), as `key=value`.
    pub extensions: Vec<String>,
    /// `client-first-message-bare`, as sent (for the AuthMessage).
    pub bare: String,
}

impl ClientFirst {
    /// Parses a client-first-message.
    pub fn parse(message: &str) -> Result<Self, ScramError> {
        let mut parts = message.splitn(3, ',');
        let (Some(cb), Some(authz), Some(bare)) = (parts.next(), parts.next(), parts.next()) else {
            return err("invalid SCRAM client-first message");
        };
        match cb {
            // Kafka's grammar: `n` only (no channel binding either way).
            "n" => {}
            _ if cb.starts_with("p=") => return err("channel binding is not supported"),
            _ => return err(format!("invalid gs2 flag {cb:?}")),
        }
        let authzid = match authz {
            "" => None,
            a if a.starts_with("a=") => Some(decode_saslname(&a[2..])?),
            a => return err(format!("invalid authzid {a:?}")),
        };
        // `n=user,r=nonce[,ext=value...]`, in that order.
        let mut parts = bare.split(',');
        let user = match parts.next().and_then(|p| p.strip_prefix("n=")) {
            Some(u) => decode_saslname(u)?,
            None => return err("SCRAM client-first message must start with n=user"),
        };
        let nonce = match parts.next().and_then(|p| p.strip_prefix("r=")) {
            Some(r) => r.to_string(),
            None => return err("SCRAM client-first message must have r=nonce after the user"),
        };
        let mut extensions = Vec::new();
        for part in parts {
            if part.starts_with("m=") {
                return err("mandatory SCRAM extensions are not supported");
            }
            if !part.contains('=') {
                return err(format!("invalid SCRAM extension {part:?}"));
            }
            extensions.push(part.to_string());
        }
        // RFC 5802 `printable`: 0x21-0x7E except ','.
        if nonce.is_empty()
            || !nonce
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
        {
            return err("invalid client nonce");
        }
        Ok(Self {
            gs2_header: format!("{cb},{authz},"),
            authzid,
            user,
            nonce,
            extensions,
            bare: bare.to_string(),
        })
    }

    /// The message for `user` with `nonce` (the client side).
    pub fn new(user: &str, nonce: &str) -> Self {
        let bare = format!("n={},r={nonce}", encode_saslname(user));
        Self {
            gs2_header: "n,,".into(),
            authzid: None,
            user: user.to_string(),
            nonce: nonce.to_string(),
            extensions: Vec::new(),
            bare,
        }
    }

    /// The message as sent.
    pub fn to_message(&self) -> String {
        format!("{}{}", self.gs2_header, self.bare)
    }
}

/// The server's first message: `r=nonce,s=salt,i=iterations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerFirst {
    /// Client nonce followed by the server's.
    pub nonce: String,
    /// The salt.
    pub salt: Vec<u8>,
    /// The iteration count.
    pub iterations: u32,
}

impl ServerFirst {
    /// The message as sent.
    pub fn to_message(&self) -> String {
        format!(
            "r={},s={},i={}",
            self.nonce,
            b64(&self.salt),
            self.iterations
        )
    }

    /// Parses a server-first-message.
    pub fn parse(message: &str) -> Result<Self, ScramError> {
        let attrs = attributes(message)?;
        match attrs.as_slice() {
            [('r', r), ('s', s), ('i', i), ..] => Ok(Self {
                nonce: r.to_string(),
                salt: unb64(s)?,
                iterations: i
                    .parse()
                    .map_err(|_| ScramError(format!("invalid iteration count {i:?}")))?,
            }),
            [('e', e), ..] => err(format!("server refused: {e}")),
            _ => err("invalid SCRAM server-first message"),
        }
    }
}

/// The client's final message: `c=channel-binding,r=nonce,p=proof`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFinal {
    /// The base64 of the gs2 header (no channel binding data).
    pub channel_binding: String,
    /// The combined nonce.
    pub nonce: String,
    /// The client proof.
    pub proof: Vec<u8>,
    /// `client-final-message-without-proof`, as sent.
    pub without_proof: String,
}

impl ClientFinal {
    /// Parses a client-final-message.
    pub fn parse(message: &str) -> Result<Self, ScramError> {
        let Some(i) = message.rfind(",p=") else {
            return err("SCRAM client-final message without proof");
        };
        let without_proof = &message[..i];
        let proof = unb64(&message[i + 3..])?;
        let attrs = attributes(without_proof)?;
        match attrs.as_slice() {
            [('c', c), ('r', r), ..] => Ok(Self {
                channel_binding: c.to_string(),
                nonce: r.to_string(),
                proof,
                without_proof: without_proof.to_string(),
            }),
            _ => err("invalid SCRAM client-final message"),
        }
    }
}

/// `AuthMessage` of RFC 5802.
pub fn auth_message(client_first_bare: &str, server_first: &str, without_proof: &str) -> String {
    format!("{client_first_bare},{server_first},{without_proof}")
}

/// The client's proof for a salted password.
pub fn client_proof(mechanism: ScramMechanism, salted_password: &[u8], auth: &str) -> Vec<u8> {
    let client_key = mechanism.hmac(salted_password, b"Client Key");
    let stored_key = mechanism.hash(&client_key);
    let signature = mechanism.hmac(&stored_key, auth.as_bytes());
    client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect()
}

/// Whether `proof` proves knowledge of the password behind `credential`.
pub fn verify_client_proof(
    mechanism: ScramMechanism,
    credential: &ScramCredential,
    auth: &str,
    proof: &[u8],
) -> bool {
    if proof.len() != mechanism.hash_len() {
        return false;
    }
    let signature = mechanism.hmac(&credential.stored_key, auth.as_bytes());
    let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
    let computed = mechanism.hash(&client_key);
    // Constant-time comparison: no early exit on the first differing byte.
    computed.len() == credential.stored_key.len()
        && computed
            .iter()
            .zip(&credential.stored_key)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The server's signature (`v=` of the server-final-message).
pub fn server_signature(mechanism: ScramMechanism, server_key: &[u8], auth: &str) -> Vec<u8> {
    mechanism.hmac(server_key, auth.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example exchange.
    #[test]
    fn rfc_7677_example_verifies() {
        let m = ScramMechanism::Sha256;
        let first = ClientFirst::parse("n,,n=user,r=rOprNGfwEbeRWgbNEkqO").expect("must work");
        assert_eq!(first.user, "user");
        let salt = unb64("W22ZaJ0SNY7soEsUEjb6gQ==").expect("must work");
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let parsed = ServerFirst::parse(server_first).expect("must work");
        assert_eq!(parsed.salt, salt);
        assert_eq!(parsed.to_message(), server_first);
        let final_msg = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let fin = ClientFinal::parse(final_msg).expect("must work");
        let auth = auth_message(&first.bare, server_first, &fin.without_proof);
        let credential = ScramCredential::from_password(m, "pencil", salt, 4096);
        assert!(verify_client_proof(m, &credential, &auth, &fin.proof));
        assert_eq!(
            b64(&server_signature(m, &credential.server_key, &auth)),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let wrong = ScramCredential::from_password(m, "pencil2", credential.salt.clone(), 4096);
        assert!(!verify_client_proof(m, &wrong, &auth, &fin.proof));
        let salted = m.salted_password(b"pencil", &credential.salt, 4096);
        assert_eq!(client_proof(m, &salted, &auth), fin.proof);
    }

    #[test]
    fn bad_messages_are_errors() {
        for bad in [
            "",
            "n,,",
            "p=tls-unique,,n=u,r=x",
            "n,,n=u",
            "n,,r=x",
            "n,,n=a=2Xb,r=x",
            "n,,m=ext,n=u,r=x",
            "y,,n=u,r=x",
            "n,,r=x,n=u",
            "n,,n=u,r=a b",
        ] {
            assert!(ClientFirst::parse(bad).is_err(), "{bad:?}");
        }
        assert!(ClientFinal::parse("c=biws,r=x").is_err());
        assert!(ClientFinal::parse("c=biws,r=x,p=!!!").is_err());
        assert_eq!(decode_saslname("a=2Cb=3Dc").expect("must work"), "a,b=c");
        assert_eq!(encode_saslname("a,b=c"), "a=2Cb=3Dc");
        let ext = ClientFirst::parse("n,,n=u,r=x,tokenauth=true").expect("must work");
        assert_eq!(ext.extensions, vec!["tokenauth=true".to_string()]);
    }
}
