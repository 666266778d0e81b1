//! The client's SASL exchange: SaslHandshake v1, then SaslAuthenticate tokens of PLAIN or
//! SCRAM-SHA-256/512 (RFC 5802), checking the server's signature.

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use odradek_common::scram::{self, ClientFirst, ScramMechanism, ServerFirst};

use crate::connection::Connection;
use crate::error::ClientError;
use crate::security::SaslLogin;

async fn token(
    conn: &mut Connection,
    bytes: Vec<u8>,
) -> Result<SaslAuthenticateResponse, ClientError> {
    let v = conn.version(ApiKey::SaslAuthenticate, 2)?;
    let resp = conn
        .send(
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes)),
            v,
        )
        .await?;
    ClientError::check(
        resp.error_code,
        resp.error_message.as_ref().map(|m| m.to_string()),
    )?;
    Ok(resp)
}

/// Authenticates `conn` as `login`.
pub(crate) async fn authenticate(
    conn: &mut Connection,
    login: &SaslLogin,
) -> Result<(), ClientError> {
    let v = conn.version(ApiKey::SaslHandshake, 1)?;
    if v < 1 {
        return Err(ClientError::Protocol(
            "the broker only speaks SaslHandshake v0".into(),
        ));
    }
    let hs = conn
        .send(
            &SaslHandshakeRequest::default()
                .with_mechanism(StrBytes::from_string(login.mechanism.clone())),
            v,
        )
        .await?;
    ClientError::check(
        hs.error_code,
        Some(format!(
            "mechanism {} (the broker enables {:?})",
            login.mechanism,
            hs.mechanisms
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
        )),
    )?;
    if login.mechanism == "PLAIN" {
        let t = format!("\0{}\0{}", login.username, login.password).into_bytes();
        token(conn, t).await?;
        return Ok(());
    }
    let mechanism: ScramMechanism = login.mechanism.parse().map_err(ClientError::Config)?;
    let mut nonce = [0u8; 24];
    getrandom::getrandom(&mut nonce)
        .map_err(|e| ClientError::Protocol(format!("no random nonce: {e}")))?;
    let first = ClientFirst::new(&login.username, &scram::b64(&nonce).replace(',', ""));
    let resp = token(conn, first.to_message().into_bytes()).await?;
    let server_first_text = String::from_utf8(resp.auth_bytes.to_vec())
        .map_err(|_| ClientError::Protocol("SCRAM server-first is not UTF-8".into()))?;
    let server_first =
        ServerFirst::parse(&server_first_text).map_err(|e| ClientError::Protocol(e.0))?;
    if server_first.iterations < scram::MIN_ITERATIONS {
        // A server asking for fewer would get a proof cheap to brute-force.
        return Err(ClientError::Protocol(format!(
            "SCRAM: the server asks for {} iterations, fewer than {}",
            server_first.iterations,
            scram::MIN_ITERATIONS
        )));
    }
    if !server_first.nonce.starts_with(&first.nonce) {
        return Err(ClientError::Protocol(
            "SCRAM: the server's nonce does not extend ours".into(),
        ));
    }
    let salted = mechanism.salted_password(
        login.password.as_bytes(),
        &server_first.salt,
        server_first.iterations,
    );
    let without_proof = format!("c=biws,r={}", server_first.nonce);
    let auth = scram::auth_message(&first.bare, &server_first_text, &without_proof);
    let proof = scram::client_proof(mechanism, &salted, &auth);
    let fin = format!("{without_proof},p={}", scram::b64(&proof));
    let resp = token(conn, fin.into_bytes()).await?;
    let server_key = mechanism.hmac(&salted, b"Server Key");
    let expected = format!(
        "v={}",
        scram::b64(&scram::server_signature(mechanism, &server_key, &auth))
    );
    if resp.auth_bytes.as_ref() != expected.as_bytes() {
        return Err(ClientError::Protocol(
            "SCRAM: the server's signature is wrong".into(),
        ));
    }
    Ok(())
}
