//! `payment-mcp serve --http ADDR`: the same MCP server as over stdio, on the streamable HTTP
//! transport, for teams whose agents run in many places.
//!
//! # Layout
//!
//! - this file: the routes, start-up (settings, the exposure check, binding, the bound address on
//!   stderr), the access log, health, readiness and metrics, and graceful shutdown;
//! - `settings.rs`: the `PAYMENT_HTTP_*` / `PAYMENT_OAUTH_*` variables, and no non-loopback
//!   address without auth;
//! - `auth.rs`: bearer tokens and OAuth access tokens in front of `/mcp`, the 401/403/429 answers,
//!   the protected-resource metadata;
//! - `tokens.rs`: the hashed token file and `payment-mcp token add|list|remove`;
//! - `jwt.rs`: JWT verification against the issuer's cached key set;
//! - `limits.rs`: the per-caller rate limit.
//!
//! # Routes
//!
//! | route | what |
//! | --- | --- |
//! | `/mcp` | MCP (rmcp's `StreamableHttpService` over the same [`PaymentServer`] as stdio) |
//! | `/healthz` | liveness: 200 while the process serves |
//! | `/readyz` | readiness: 200 when the ledger answers, 503 otherwise and while draining |
//! | `/metrics` | Prometheus text ([`crate::metrics`]) |
//! | `/.well-known/oauth-protected-resource[/mcp]` | RFC 9728 metadata (OAuth mode) |
//! | `/notify/{provider}` | payment notifications from the gateway ([`crate::notify`]; no bearer token) |
//!
//! The transport is stateless for 2026-07-28 clients (rmcp serves that revision without sessions)
//! and keeps sessions for older ones (`legacy_session_mode`). `Host` and `Origin` are checked by
//! rmcp (DNS rebinding), the body size is capped there too. TLS is not terminated here: a reverse
//! proxy in front does it (see the README's "Team deployments").
//!
//! Graceful shutdown (SIGTERM, SIGINT): `/mcp` answers 503 to new requests and `/readyz` turns 503
//! so the load balancer moves on; money-moving calls in flight (which run in their own tasks, so a
//! client that disconnects cannot cut one short either, see `tools::PaymentServer::call_tool`)
//! are waited for, up to `PAYMENT_SHUTDOWN_GRACE_SECS`; then sessions close and the process exits.

mod auth;
mod jwt;
mod limits;
mod settings;
pub mod tokens;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::payments::Payments;
use crate::tools::PaymentServer;
pub use settings::HttpSettings;

/// After the last money-moving call of a shutdown finished: time for its reply to be written to
/// its client before the sessions are closed.
const FLUSH: Duration = Duration::from_secs(1);

/// Why `serve` could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A bad setting, or the refusal to serve off loopback without auth.
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("the HTTP server failed: {0}")]
    Server(std::io::Error),
}

/// What the routes share.
pub struct AppState {
    payments: Arc<Payments>,
    auth: auth::Auth,
    /// Set on SIGTERM/SIGINT: new MCP requests are refused.
    draining: AtomicBool,
    /// This server's `/mcp` URL as clients reach it (`PAYMENT_PUBLIC_URL`, or the bound address).
    resource: String,
}

impl AppState {
    /// The protected-resource metadata URL for `resource` (RFC 9728 §3.1: the well-known prefix
    /// inserted before the resource's path).
    fn metadata_url(&self) -> String {
        match reqwest::Url::parse(&self.resource) {
            Ok(url) => {
                let path = url.path().trim_end_matches('/');
                let origin = crate::provider::transport::origin_of(&url);
                format!("{origin}/.well-known/oauth-protected-resource{path}")
            }
            Err(_) => "/.well-known/oauth-protected-resource".into(),
        }
    }
}

/// `payment-mcp serve [--http ADDR]`: serves until SIGTERM or SIGINT; `false` on a start-up error.
pub async fn run(cli_addr: Option<String>) -> bool {
    match serve(cli_addr).await {
        Ok(()) => true,
        Err(e) => {
            eprintln!("payment-mcp serve: {e}"); // stdout-ok: this is stderr (whatever PAYMENT_LOG filters)
            false
        }
    }
}

async fn serve(cli_addr: Option<String>) -> Result<(), ServeError> {
    let settings =
        HttpSettings::from_lookup(cli_addr.as_deref(), |n| std::env::var(n).ok()).map_err(ServeError::Config)?;
    let tokens_path = settings.tokens_file.clone().filter(|p| p.exists());
    settings.check_exposure(tokens_path.is_some()).map_err(ServeError::Config)?;
    let tokens = tokens_path.as_deref().map(tokens::TokenStore::open).transpose().map_err(ServeError::Config)?;

    let payments = Payments::from_env();

    let listener = tokio::net::TcpListener::bind(settings.addr)
        .await
        .map_err(|source| ServeError::Bind { addr: settings.addr, source })?;
    let local = listener.local_addr().map_err(ServeError::Server)?;
    let resource = settings.public_url.clone().unwrap_or_else(|| format!("http://{local}/mcp"));
    let jwt = match &settings.oauth {
        Some(oauth) => Some(jwt::JwtVerifierSet::new(oauth.complete(&resource)).map_err(ServeError::Config)?),
        None => None,
    };
    let auth = auth::Auth { tokens, jwt, limiter: limits::RateLimiter::new(settings.rate) };
    let mode = match (&auth.tokens, &auth.jwt) {
        (Some(t), Some(_)) => format!("bearer tokens ({} in {}) and OAuth", t.len(), t.path().display()),
        (Some(t), None) => format!("bearer tokens ({} in {})", t.len(), t.path().display()),
        (None, Some(_)) => "OAuth access tokens".to_owned(),
        (None, None) => "no authentication (loopback only)".to_owned(),
    };
    let state = Arc::new(AppState { payments: payments.clone(), auth, draining: AtomicBool::new(false), resource });
    let cancel = CancellationToken::new();
    let app = router(
        state.clone(),
        PaymentServer::new(payments).with_confirmation_pages(local.ip().is_loopback()),
        &settings,
        cancel.clone(),
    );

    // Tests and scripts read the bound address (port 0 picks a free one) from this line.
    eprintln!("payment-mcp: listening on http://{local}/mcp ({mode})"); // stdout-ok: this is stderr

    let grace = settings.grace;
    let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
    let drain_state = state.clone();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown_signal().await;
        drain(&drain_state, grace).await;
        let _ = drained_tx.send(());
    });
    // Once drained, no new connections are taken. The replies of the last calls get a moment to
    // be written out, then the MCP sessions (and their long-lived SSE streams) are closed, and
    // connections still open after a few more seconds are dropped.
    let closing = async {
        let _ = drained_rx.await;
        tokio::time::sleep(FLUSH).await;
        cancel.cancel();
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    tokio::select! {
        served = server => served.map_err(ServeError::Server)?,
        () = closing => tracing::warn!("connections still open after shutdown; closing them"),
    }
    eprintln!("payment-mcp: stopped"); // stdout-ok: this is stderr
    Ok(())
}

/// The routes (see the module doc).
fn router(state: Arc<AppState>, server: PaymentServer, settings: &HttpSettings, cancel: CancellationToken) -> Router {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(true)
        .with_json_response(true)
        .with_allowed_hosts(settings.allowed_hosts.clone())
        .with_allowed_origins(settings.allowed_origins.clone())
        .enforce_origin_validation()
        .with_max_request_body_bytes(settings.max_body)
        .with_cancellation_token(cancel);
    // One server, cloned per session or stateless request: the clones share the payment service,
    // the ledger, the tool router and the pending refund confirmations.
    let mcp = StreamableHttpService::new(move || Ok(server.clone()), Arc::new(LocalSessionManager::default()), config);
    let mcp = Router::new().nest_service("/mcp", mcp).layer(middleware::from_fn_with_state(state.clone(), auth::admit));
    // The payment notifications (`POST|GET /notify/{provider}`): outside the auth layer, since
    // gateways carry no bearer token (their signature is the check), with the notify endpoint's
    // own body limit and the same slow-body limit as on PAYMENT_NOTIFY_ADDR.
    let notify =
        crate::notify::router(state.payments.clone()).layer(middleware::from_fn(crate::sandbox::http::read_body));
    Router::new()
        .merge(mcp)
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/.well-known/oauth-protected-resource", get(auth::protected_resource))
        .route("/.well-known/oauth-protected-resource/mcp", get(auth::protected_resource))
        .with_state(state)
        .merge(notify)
        .layer(middleware::from_fn(access))
}

/// `/readyz`: the ledger answers, and the server is not draining.
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.draining.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response();
    }
    // A ledger that hangs (a PostgreSQL server gone quiet) is not ready either.
    match tokio::time::timeout(Duration::from_secs(5), state.payments.ready()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(why)) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", crate::redact::scrub(&why))).into_response()
        }
        Err(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, "not ready: the ledger did not answer within 5 s\n").into_response()
        }
    }
}

async fn metrics() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], crate::metrics::render()).into_response()
}

/// One structured log line per request (target `payment_mcp::serve::access`, level info): method,
/// path (never the query), status, milliseconds, and the caller's token name or OAuth subject.
async fn access(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    crate::metrics::http_response(status);
    let caller = response.extensions().get::<auth::CallerName>().map_or("-", |c| c.0.as_str()).to_owned();
    tracing::info!(
        target: "payment_mcp::serve::access",
        method = %method,
        path = %path,
        status,
        ms = started.elapsed().as_secs_f64() * 1000.0,
        caller = %caller,
        "http request"
    );
    response
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Stops taking MCP requests and waits for money-moving calls in flight, up to `grace`.
async fn drain(state: &AppState, grace: Duration) {
    state.draining.store(true, Ordering::SeqCst);
    let pending = crate::metrics::money_moving_in_flight();
    eprintln!("payment-mcp: shutting down; waiting for {pending} money-moving call(s) in flight"); // stdout-ok: this is stderr
    let deadline = Instant::now() + grace;
    while crate::metrics::money_moving_in_flight() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left = crate::metrics::money_moving_in_flight();
    if left > 0 {
        tracing::error!(
            "shutdown grace ({} s) over with {left} money-moving call(s) still in flight; their ledger intents stay and a repeat of the same call settles them",
            grace.as_secs()
        );
    }
}
