//! One connection's SASL state: which requests it may send before it has authenticated, the
//! SaslHandshake / SaslAuthenticate exchange (and the raw tokens that follow a v0 handshake),
//! the session's expiry and re-authentication (KIP-368).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, RequestKind, ResponseKind, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use odradek_common::ErrorCode;
use tokio::time::Instant;

use super::sasl::{SaslExchange, SaslSettings, SaslStep};
use crate::{KafkaPrincipal, Session};

/// How the reader takes the next frame while a connection authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadMode {
    /// A Kafka request, after which the reader waits for the next mode.
    Request,
    /// A raw SASL token (after a v0 SaslHandshake), after which the reader waits.
    RawToken,
    /// Authenticated: requests are read ahead without waiting.
    Open,
}

/// What the connection does with a request or token.
pub(crate) enum Verdict {
    /// Hand the request to the handler.
    Pass(Box<RequestKind>),
    /// Answer it and go on.
    Reply(Reply),
    /// Answer it (if there is an answer) `delay` later, then close the connection.
    Close {
        reply: Option<Reply>,
        delay: Duration,
        reason: String,
    },
}

/// An answer of the authenticator.
// Made once per SASL exchange step; boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Reply {
    /// A Kafka response.
    Response(ResponseKind),
    /// A raw SASL token, size-prefixed (v0 handshake).
    Raw(Bytes),
}

#[allow(clippy::large_enum_variant)] // one per connection
enum Stage {
    /// Waiting for SaslHandshake (first authentication or re-authentication).
    Handshake,
    /// A mechanism was chosen; tokens come in SaslAuthenticate (`framed`) or raw.
    Authenticate {
        exchange: SaslExchange,
        framed: bool,
    },
    /// Authenticated (or a listener without SASL).
    Open,
}

pub(crate) struct Authenticator {
    sasl: Option<Arc<SaslSettings>>,
    stage: Stage,
    session: Arc<Session>,
    /// The mechanism of the first authentication (a re-authentication must use it).
    mechanism: Option<String>,
    /// When the session ends (`connections.max.reauth.ms`).
    expires_at: Option<Instant>,
    /// When the last authentication finished (re-authentication is at most once a second).
    authenticated_at: Option<Instant>,
    authenticated: bool,
}

impl Authenticator {
    pub(crate) fn new(session: Arc<Session>, sasl: Option<Arc<SaslSettings>>) -> Self {
        let stage = if sasl.is_some() {
            Stage::Handshake
        } else {
            Stage::Open
        };
        Self {
            sasl,
            stage,
            session,
            mechanism: None,
            expires_at: None,
            authenticated_at: None,
            authenticated: false,
        }
    }

    /// The session requests carry.
    pub(crate) fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// How the reader takes the next frame.
    pub(crate) fn read_mode(&self) -> ReadMode {
        match &self.stage {
            Stage::Open => ReadMode::Open,
            Stage::Authenticate { framed: false, .. } => ReadMode::RawToken,
            Stage::Handshake | Stage::Authenticate { .. } if self.authenticated => ReadMode::Open,
            _ => ReadMode::Request,
        }
    }

    fn failure_delay(&self) -> Duration {
        Duration::from_millis(
            self.sasl
                .as_ref()
                .map_or(0, |s| s.failed_authentication_delay_ms),
        )
    }

    /// Decides on a decoded request.
    pub(crate) fn on_request(
        &mut self,
        api_key: ApiKey,
        version: i16,
        request: Box<RequestKind>,
        now: Instant,
    ) -> Verdict {
        match *request {
            RequestKind::SaslHandshake(r) => self.handshake(version, r.mechanism.as_str(), now),
            RequestKind::SaslAuthenticate(r) => self.authenticate(version, &r.auth_bytes, now),
            request => match self.stage {
                Stage::Open => {
                    if self.expires_at.is_some_and(|t| now >= t) {
                        return Verdict::Close {
                            reply: None,
                            delay: Duration::ZERO,
                            reason: "the SASL session expired without re-authentication (connections.max.reauth.ms)".into(),
                        };
                    }
                    Verdict::Pass(Box::new(request))
                }
                _ => Verdict::Close {
                    reply: None,
                    delay: self.failure_delay(),
                    reason: format!(
                        "unexpected {api_key:?} request before SASL authentication finished"
                    ),
                },
            },
        }
    }

    fn handshake(&mut self, version: i16, mechanism: &str, now: Instant) -> Verdict {
        let Some(sasl) = self.sasl.clone() else {
            return Verdict::Reply(Reply::Response(ResponseKind::SaslHandshake(
                SaslHandshakeResponse::default()
                    .with_error_code(ErrorCode::IllegalSaslState.code()),
            )));
        };
        let enabled: Vec<StrBytes> = sasl
            .enabled_mechanisms
            .iter()
            .map(|m| StrBytes::from_string(m.clone()))
            .collect();
        let response = |code: ErrorCode| {
            Reply::Response(ResponseKind::SaslHandshake(
                SaslHandshakeResponse::default()
                    .with_error_code(code.code())
                    .with_mechanisms(enabled.clone()),
            ))
        };
        let reauth = self.authenticated;
        if reauth && matches!(self.stage, Stage::Open) {
            // KIP-368: a session re-authenticates only if it expires, at most once a second;
            // otherwise the handshake is refused and the connection carries on, as in Kafka.
            let allowed = self.expires_at.is_some()
                && version >= 1
                && self
                    .authenticated_at
                    .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
            if !allowed {
                return Verdict::Reply(response(ErrorCode::IllegalSaslState));
            }
        } else if !matches!(self.stage, Stage::Handshake) {
            return Verdict::Close {
                reply: Some(response(ErrorCode::IllegalSaslState)),
                delay: self.failure_delay(),
                reason: "SaslHandshake out of order".into(),
            };
        }
        // Mechanism names are matched exactly, as Kafka does.
        let upper = mechanism.to_string();
        let exchange = sasl
            .enabled_mechanisms
            .contains(&upper)
            .then(|| SaslExchange::start(&upper))
            .flatten();
        let Some(exchange) = exchange else {
            return Verdict::Close {
                reply: Some(response(ErrorCode::UnsupportedSaslMechanism)),
                delay: self.failure_delay(),
                reason: format!("SASL mechanism {mechanism:?} is not enabled"),
            };
        };
        if reauth && self.mechanism.as_deref() != Some(upper.as_str()) {
            return Verdict::Close {
                reply: Some(response(ErrorCode::IllegalSaslState)),
                delay: self.failure_delay(),
                reason: "re-authentication must use the session's SASL mechanism".into(),
            };
        }
        self.mechanism = Some(upper);
        self.stage = Stage::Authenticate {
            exchange,
            framed: version >= 1,
        };
        Verdict::Reply(response(ErrorCode::None))
    }

    fn authenticate(&mut self, version: i16, token: &[u8], now: Instant) -> Verdict {
        if matches!(self.stage, Stage::Open) {
            // After authentication (or on a listener without SASL): refused, connection kept.
            return Verdict::Reply(Reply::Response(ResponseKind::SaslAuthenticate(
                SaslAuthenticateResponse::default()
                    .with_error_code(ErrorCode::IllegalSaslState.code())
                    .with_error_message(Some(StrBytes::from_static_str(
                        "SaslAuthenticate request received after successful authentication",
                    ))),
            )));
        }
        if !matches!(self.stage, Stage::Authenticate { framed: true, .. }) {
            let response = SaslAuthenticateResponse::default()
                .with_error_code(ErrorCode::IllegalSaslState.code())
                .with_error_message(Some(StrBytes::from_static_str(
                    "SaslAuthenticate request received without a SaslHandshake v1 before it",
                )));
            return Verdict::Close {
                reply: Some(Reply::Response(ResponseKind::SaslAuthenticate(response))),
                delay: self.failure_delay(),
                reason: "SaslAuthenticate out of order".into(),
            };
        }
        match self.step(token, now) {
            Ok((token, lifetime_ms)) => {
                let mut response =
                    SaslAuthenticateResponse::default().with_auth_bytes(Bytes::from(token));
                if version >= 1 {
                    response.session_lifetime_ms = lifetime_ms;
                }
                Verdict::Reply(Reply::Response(ResponseKind::SaslAuthenticate(response)))
            }
            Err((code, message)) => {
                let response = SaslAuthenticateResponse::default()
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message.clone())));
                Verdict::Close {
                    reply: Some(Reply::Response(ResponseKind::SaslAuthenticate(response))),
                    delay: self.failure_delay(),
                    reason: message,
                }
            }
        }
    }

    /// A raw token, after a v0 handshake.
    pub(crate) fn on_raw_token(&mut self, token: &[u8], now: Instant) -> Verdict {
        match self.step(token, now) {
            Ok((token, _)) => {
                let mut framed = Vec::with_capacity(4 + token.len());
                framed.extend_from_slice(&(token.len() as u32).to_be_bytes());
                framed.extend_from_slice(&token);
                Verdict::Reply(Reply::Raw(Bytes::from(framed)))
            }
            Err((_, message)) => Verdict::Close {
                reply: None,
                delay: self.failure_delay(),
                reason: message,
            },
        }
    }

    /// One token of the exchange: the token to send back and, once authenticated, the
    /// session's lifetime (0: unbounded).
    fn step(&mut self, token: &[u8], now: Instant) -> Result<(Vec<u8>, i64), (ErrorCode, String)> {
        let sasl = self.sasl.clone().ok_or((
            ErrorCode::IllegalSaslState,
            "no SASL on this listener".to_string(),
        ))?;
        let Stage::Authenticate { exchange, .. } = &mut self.stage else {
            return Err((
                ErrorCode::IllegalSaslState,
                "no SASL exchange under way".into(),
            ));
        };
        match exchange.step(token, sasl.credentials.as_ref()) {
            Ok(SaslStep::Challenge(challenge)) => Ok((challenge, 0)),
            Ok(SaslStep::Done { user, token }) => {
                let principal = KafkaPrincipal {
                    principal_type: "User".into(),
                    name: user,
                };
                if self.authenticated && principal != self.session.principal {
                    return Err((
                        ErrorCode::SaslAuthenticationFailed,
                        "Cannot change principals during re-authentication".into(),
                    ));
                }
                let mut session = (*self.session).clone();
                session.principal = principal;
                self.session = Arc::new(session);
                self.authenticated = true;
                self.authenticated_at = Some(now);
                self.stage = Stage::Open;
                let lifetime_ms = sasl.max_reauth_ms;
                self.expires_at =
                    (lifetime_ms > 0).then(|| now + Duration::from_millis(lifetime_ms));
                Ok((token, lifetime_ms.min(i64::MAX as u64) as i64))
            }
            Err(failure) => Err((ErrorCode::SaslAuthenticationFailed, failure.0)),
        }
    }
}
