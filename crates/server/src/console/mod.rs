//! The web console: HTML pages rendered here from templates (askama, compiled in), a little
//! JavaScript and the uPlot chart library, all embedded in the binary, served on
//! `console.listener`.
//!
//! Every page is built from Kafka requests handed to the broker's own request handlers, as a
//! client's would be (`Console::call`): the console sees what a client sees, and with an
//! authorizer configured, each request is authorised for the console user's principal. With an
//! authorizer or a SASL listener, the user signs in with HTTP Basic authentication against the
//! cluster's SCRAM credentials (`User:<name>`; a successful check is remembered for a minute,
//! and checks run off the async workers); otherwise the console is open, as a PLAINTEXT
//! listener is. Forms are refused from another origin (`Origin` / `Sec-Fetch-Site`), and a
//! console on a loopback address answers only loopback host names (DNS rebinding).
//!
//! Pages: overview (brokers, quorum, health), topics (list, create, delete), a topic
//! (partitions, configs and their alteration, throughput plot), the message browser, consumer
//! groups, a group (members, assignments, offsets, lag and its plot). Plots read JSON series
//! from `/api/...`, sampled by the broker into [`crate::history::History`].

mod data;
mod pages;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use odradek_frontend::{
    Handled, KafkaPrincipal, ListenerInfo, RequestContext, RequestHandler, SecurityProtocol,
    Session,
};

use crate::handlers::Broker;
use crate::history::History;

/// What every console request shares.
#[derive(Debug)]
pub struct Console {
    broker: Arc<Broker>,
    history: Arc<History>,
    /// Whether users must sign in: an authorizer, or a SASL listener, is configured.
    sign_in_required: bool,
    /// Recent successful sign-ins: user -> (SHA-256 of the password, when). Bounded by
    /// [`SIGN_IN_CACHE`]; the lock is held for one lookup or insert.
    signed_in: std::sync::Mutex<std::collections::HashMap<String, (Vec<u8>, std::time::Instant)>>,
    /// Where the console listens (loopback: only loopback host names are answered).
    addr: SocketAddr,
}

/// How long a checked password is remembered.
const SIGN_IN_TTL: std::time::Duration = std::time::Duration::from_secs(60);
/// Users remembered at most.
const SIGN_IN_CACHE: usize = 1024;

/// The signed-in user of one HTTP request, and where the request came from (the host ACLs
/// are checked against).
#[derive(Debug, Clone)]
pub(crate) struct User(KafkaPrincipal, SocketAddr);

/// A page that could not be made: its status and a message for the user.
#[derive(Debug)]
pub(crate) struct PageError(StatusCode, String);

impl PageError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self(status, message.into())
    }
}

impl From<String> for PageError {
    /// A Kafka error from the handlers: not found, not authorised, else the broker's failure.
    fn from(m: String) -> Self {
        let status = if m.contains("UNKNOWN_TOPIC_OR_PARTITION") || m.contains("GROUP_ID_NOT_FOUND")
        {
            StatusCode::NOT_FOUND
        } else if m.contains("AUTHORIZATION_FAILED") {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_GATEWAY
        };
        Self(status, m)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = pages::ErrorPage {
            nav: "",
            status: self.0.as_u16(),
            message: self.1,
        };
        (self.0, pages::html(&page)).into_response()
    }
}

const UPLOT_JS: &str = include_str!("../../console/static/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../console/static/uPlot.min.css");
const CONSOLE_JS: &str = include_str!("../../console/static/console.js");
const CONSOLE_CSS: &str = include_str!("../../console/static/console.css");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        body,
    )
        .into_response()
}

impl Console {
    /// A console over `broker`'s handlers, listening on `addr`.
    pub fn new(broker: Arc<Broker>, history: Arc<History>, addr: SocketAddr) -> Self {
        let sign_in_required = broker.config.authorizer.is_some()
            || broker.config.listener_infos().iter().any(|(_, info)| {
                matches!(
                    info.security_protocol,
                    SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
                )
            });
        Self {
            broker,
            history,
            sign_in_required,
            signed_in: Default::default(),
            addr,
        }
    }

    /// The request context of `user`'s requests.
    pub(crate) fn context(&self, user: &User, api_key: ApiKey, version: i16) -> RequestContext {
        RequestContext {
            api_key,
            api_version: version,
            correlation_id: 0,
            client_id: Some("odradek-console".into()),
            peer: user.1,
            session: Arc::new(Session {
                listener: ListenerInfo {
                    name: "CONSOLE".into(),
                    security_protocol: SecurityProtocol::Plaintext,
                },
                principal: user.0.clone(),
            }),
            newer: Default::default(),
        }
    }

    /// Hands `request` to the broker's handler for `api_key` at `version`, as `user`.
    pub(crate) async fn call(
        &self,
        user: &User,
        api_key: ApiKey,
        version: i16,
        request: RequestKind,
    ) -> Result<ResponseKind, String> {
        let ctx = self.context(user, api_key, version);
        let mut handled = self.broker.handle(ctx, request).await;
        loop {
            match handled {
                Handled::Done(Some(r)) => return Ok(r),
                Handled::Files(mut r, files) => {
                    files
                        .copy_into(&mut r)
                        .await
                        .map_err(|e| format!("{api_key:?}: reading records: {e}"))?;
                    return Ok(r);
                }
                Handled::Done(None) => return Err(format!("{api_key:?} gave no response")),
                Handled::Pending(f) => {
                    return f
                        .await
                        .ok_or_else(|| format!("{api_key:?} gave no response"))
                }
                // A quota's delay does not apply to the console.
                Handled::Muting(inner, _) => handled = *inner,
            }
        }
    }

    /// The principal of HTTP Basic credentials checked against the cluster's SCRAM
    /// credentials; `None` when they are missing or wrong. The salted-password derivation (the
    /// credential's iterations) runs on a blocking thread; an unknown user costs the same as a
    /// known one.
    async fn authenticate(self: &Arc<Self>, headers: &HeaderMap) -> Option<KafkaPrincipal> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let encoded = value.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (name, password) = text.split_once(':')?;
        let (name, password) = (name.to_string(), password.to_string());
        let digest = odradek_common::scram::ScramMechanism::Sha256.hash(password.as_bytes());
        let principal = KafkaPrincipal {
            principal_type: "User".into(),
            name: name.clone(),
        };
        if let Ok(cache) = self.signed_in.lock() {
            if let Some((d, at)) = cache.get(&name) {
                if at.elapsed() < SIGN_IN_TTL && constant_time_eq(d, &digest) {
                    return Some(principal);
                }
            }
        }
        let this = Arc::clone(self);
        let user = name.clone();
        let ok = tokio::task::spawn_blocking(move || {
            let image = this.broker.image();
            match image.scram.users.get(&user) {
                Some(credentials) => credentials.iter().any(|(mechanism, c)| {
                    let candidate = odradek_common::scram::ScramCredential::from_password(
                        *mechanism,
                        &password,
                        c.salt.clone(),
                        c.iterations,
                    );
                    constant_time_eq(&candidate.stored_key, &c.stored_key)
                }),
                None => {
                    // As much work as a real check, so a wrong name is not told apart.
                    let _ = odradek_common::scram::ScramCredential::from_password(
                        odradek_common::scram::ScramMechanism::Sha256,
                        &password,
                        vec![0; 16],
                        4096,
                    );
                    false
                }
            }
        })
        .await
        .unwrap_or(false);
        if !ok {
            return None;
        }
        if let Ok(mut cache) = self.signed_in.lock() {
            if cache.len() >= SIGN_IN_CACHE {
                cache.retain(|_, (_, at)| at.elapsed() < SIGN_IN_TTL);
                if cache.len() >= SIGN_IN_CACHE {
                    cache.clear();
                }
            }
            cache.insert(name, (digest, std::time::Instant::now()));
        }
        Some(principal)
    }

    /// Whether `headers` come from a page of this console: a form from another origin is
    /// refused (CSRF), and a console on a loopback address answers only loopback host names
    /// (a DNS-rebinding page cannot read it).
    fn same_origin(
        &self,
        method: &axum::http::Method,
        headers: &HeaderMap,
    ) -> Result<(), &'static str> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if self.addr.ip().is_loopback() {
            let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
            if !matches!(name, "localhost" | "127.0.0.1" | "[::1]") && !name.starts_with("127.") {
                return Err("this console answers only loopback host names");
            }
        }
        if method == axum::http::Method::GET || method == axum::http::Method::HEAD {
            return Ok(());
        }
        if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            if !matches!(site, "same-origin" | "none") {
                return Err("a form from another site");
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            if origin != format!("http://{host}") {
                return Err("a form from another origin");
            }
        }
        Ok(())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Signs the request's user in: anonymous without an authorizer, else HTTP Basic against the
/// SCRAM credentials.
async fn sign_in(
    State(console): State<Arc<Console>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Err(why) = console.same_origin(request.method(), request.headers()) {
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    let user = if !console.sign_in_required {
        KafkaPrincipal::anonymous()
    } else {
        match console.authenticate(request.headers()).await {
            Some(p) => p,
            None => {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(
                        header::WWW_AUTHENTICATE,
                        "Basic realm=\"odradek console (SCRAM user)\", charset=\"UTF-8\"",
                    )],
                    "sign in with a SCRAM user name and password",
                )
                    .into_response()
            }
        }
    };
    request.extensions_mut().insert(User(user, peer));
    next.run(request).await
}

/// The console's routes.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(pages::overview))
        .route("/topics", get(pages::topics).post(pages::create_topic))
        .route("/topics/{name}", get(pages::topic))
        .route("/topics/{name}/delete", post(pages::delete_topic))
        .route("/topics/{name}/config", post(pages::alter_config))
        .route("/topics/{name}/messages", get(pages::messages))
        .route("/groups", get(pages::groups))
        .route("/groups/{id}", get(pages::group))
        .route("/api/topics/{name}/rates", get(pages::topic_rates))
        .route("/api/rates", get(pages::total_rates))
        .route("/api/groups/{id}/lag", get(pages::group_lag))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&console),
            sign_in,
        ))
        .route(
            "/static/uPlot.min.js",
            get(|| async { asset("text/javascript", UPLOT_JS) }),
        )
        .route(
            "/static/uPlot.min.css",
            get(|| async { asset("text/css", UPLOT_CSS) }),
        )
        .route(
            "/static/console.js",
            get(|| async { asset("text/javascript", CONSOLE_JS) }),
        )
        .route(
            "/static/console.css",
            get(|| async { asset("text/css", CONSOLE_CSS) }),
        )
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .with_state(console)
}

/// Binds `addr` (`console.listener`); a listener that cannot bind fails, naming the key and
/// the address.
pub async fn bind(
    addr: SocketAddr,
) -> Result<tokio::net::TcpListener, odradek_controller::RunError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| odradek_controller::RunError::Serve {
            addr: format!("console.listener http://{addr}"),
            message: e.to_string(),
        })
}

/// Serves the console on `listener` in the background until `stop` turns true.
pub fn start(
    listener: tokio::net::TcpListener,
    broker: Arc<Broker>,
    history: Arc<History>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let Ok(bound) = listener.local_addr() else {
        return;
    };
    let app = router(Arc::new(Console::new(broker, history, bound)));
    tracing::info!(%bound, "web console on http://{bound}/");
    tokio::spawn(async move {
        let r = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { crate::until_stopped(&mut stop).await })
        .await;
        if let Err(e) = r {
            tracing::error!(%bound, error = %e, "web console failed");
        }
    });
}
