//! Who may reach `/mcp`: the bearer-token check, OAuth access tokens, the per-caller rate limit,
//! and the answers a client gets when it is turned away.
//!
//! Every request to `/mcp` passes [`admit`] first. With credentials configured (a token file, an
//! OAuth issuer, or both) a request needs `Authorization: Bearer …`: a `pmcp_` token is looked up
//! in the token file, anything else is verified as a JWT when OAuth is on. The caller found (its
//! name and [`crate::scope::Scope`]) goes into the request's extensions, where the tool layer
//! reads it to hide and refuse tools and to cap amounts per call. Refusals:
//!
//! - no or unknown credentials: 401 with `WWW-Authenticate: Bearer …` (with `resource_metadata`
//!   pointing at the protected-resource metadata in OAuth mode, and `error="invalid_token"` when a
//!   credential was sent), as RFC 6750 and the MCP authorization spec describe;
//! - a credential whose scope grants no tool: 403 `insufficient_scope`;
//! - over the rate limit: 429 with `Retry-After`;
//! - while shutting down: 503, so a load balancer retries on another instance;
//! - the issuer's key set cannot be fetched (and none is cached): 503 with `Retry-After`, since
//!   the token may well be valid.
//!
//! With no credentials configured (allowed on a loopback address only, see `mod.rs`), requests pass
//! as the server itself, under the server's own scope.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::jwt::JwtVerifierSet;
use super::limits::RateLimiter;
use super::tokens::{TOKEN_PREFIX, TokenStore};
use crate::tools::Caller;

/// The credentials `serve --http` accepts.
pub struct Auth {
    /// `PAYMENT_TOKENS_FILE`, when it exists.
    pub tokens: Option<TokenStore>,
    /// OAuth resource-server mode, when `PAYMENT_OAUTH_ISSUER` is set.
    pub jwt: Option<JwtVerifierSet>,
    pub limiter: RateLimiter,
}

impl Auth {
    /// Whether every request must carry a credential.
    pub fn required(&self) -> bool {
        self.tokens.is_some() || self.jwt.is_some()
    }
}

/// Who made a request, put in the response's extensions for the access log.
#[derive(Debug, Clone)]
pub struct CallerName(pub String);

/// Why a request was turned away.
enum Refusal {
    Missing,
    Invalid(String),
    NoTools(String),
    RateLimited(std::time::Duration),
    /// The issuer's key set cannot be fetched: not the client's fault, so not a 401.
    KeysUnavailable(String),
}

/// The middleware in front of `/mcp`.
pub async fn admit(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    if state.draining.load(Ordering::SeqCst) {
        crate::metrics::auth_refused("draining");
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, "payment-mcp is shutting down; retry on another instance")
            .into_response();
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        return response;
    }
    if !state.auth.required() {
        return next.run(request).await;
    }
    let caller = match identify(&state, request.headers()).await {
        Ok(caller) => caller,
        Err(refusal) => return refuse(&state, refusal),
    };
    let key = caller.name.clone();
    if let Err(wait) = state.auth.limiter.check(&key, Instant::now()) {
        return refuse(&state, Refusal::RateLimited(wait));
    }
    request.extensions_mut().insert(Arc::new(caller));
    let mut response = next.run(request).await;
    response.extensions_mut().insert(CallerName(key));
    response
}

/// The caller behind the request's bearer credential.
async fn identify(state: &AppState, headers: &HeaderMap) -> Result<Caller, Refusal> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Refusal::Missing);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Refusal::Invalid("the Authorization header is not `Bearer <token>`".into()))?;
    let auth = &state.auth;
    if token.starts_with(TOKEN_PREFIX) || auth.jwt.is_none() {
        let entry = auth
            .tokens
            .as_ref()
            .and_then(|store| store.lookup(token))
            .ok_or_else(|| Refusal::Invalid("unknown or revoked token".into()))?;
        let caller = Caller { name: format!("token:{}", entry.name), scope: entry.scope.clone() };
        return granting(caller);
    }
    let Some(jwt) = &auth.jwt else {
        return Err(Refusal::Invalid("unknown or revoked token".into()));
    };
    match jwt.verify(token).await {
        Ok(verified) => granting(Caller { name: format!("oauth:{}", verified.subject), scope: verified.scope }),
        Err(e @ super::jwt::JwtError::KeySet(_)) => {
            tracing::error!("cannot check OAuth access tokens: {e}");
            Err(Refusal::KeysUnavailable(e.to_string()))
        }
        Err(e) => {
            tracing::info!(target: "payment_mcp::serve::access", "access token refused: {e}");
            Err(Refusal::Invalid(e.to_string()))
        }
    }
}

fn granting(caller: Caller) -> Result<Caller, Refusal> {
    if caller.scope.grants_any() { Ok(caller) } else { Err(Refusal::NoTools(caller.name)) }
}

/// The `WWW-Authenticate` challenge: the realm, and in OAuth mode where the metadata is.
fn challenge(state: &AppState, extra: &str) -> String {
    let mut value = "Bearer realm=\"payment-mcp\"".to_owned();
    if state.auth.jwt.is_some() {
        value.push_str(&format!(", resource_metadata=\"{}\"", state.metadata_url()));
    }
    value.push_str(extra);
    value
}

/// A quoted-string value without the characters that would end it.
fn quoted(text: &str) -> String {
    text.chars().filter(|c| *c != '"' && *c != '\\' && !c.is_control()).collect()
}

fn refuse(state: &AppState, refusal: Refusal) -> Response {
    let (status, reason, error, description, extra) = match refusal {
        Refusal::Missing => (
            StatusCode::UNAUTHORIZED,
            "missing_token",
            "invalid_request",
            "this server needs an Authorization: Bearer credential".to_owned(),
            String::new(),
        ),
        Refusal::Invalid(why) => {
            let extra = format!(", error=\"invalid_token\", error_description=\"{}\"", quoted(&why));
            (StatusCode::UNAUTHORIZED, "bad_token", "invalid_token", why, extra)
        }
        Refusal::NoTools(who) => {
            let grants = crate::scope::GRANT_ITEMS.join(" ");
            let extra = format!(", error=\"insufficient_scope\", scope=\"{grants}\"");
            let why = format!("the credential of {who} grants no tool of this server; its scope needs one of {grants}");
            (StatusCode::FORBIDDEN, "insufficient_scope", "insufficient_scope", why, extra)
        }
        Refusal::KeysUnavailable(why) => {
            crate::metrics::auth_refused("keys_unavailable");
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"error": "temporarily_unavailable", "error_description": why})),
            )
                .into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            return response;
        }
        Refusal::RateLimited(wait) => {
            crate::metrics::auth_refused("rate_limited");
            let secs = wait.as_secs().saturating_add(1);
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({"error": "rate_limited", "error_description": format!("too many requests from this caller; retry in {secs} s (PAYMENT_HTTP_RATE_LIMIT)")})),
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return response;
        }
    };
    crate::metrics::auth_refused(reason);
    let mut response = (status, axum::Json(json!({"error": error, "error_description": description}))).into_response();
    let value = challenge(state, &extra);
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

/// `GET /.well-known/oauth-protected-resource[/mcp]`: RFC 9728 protected-resource metadata, which
/// MCP clients read to find the authorization server (OAuth mode only; 404 otherwise).
pub async fn protected_resource(State(state): State<Arc<AppState>>) -> Response {
    let Some(jwt) = &state.auth.jwt else {
        return (StatusCode::NOT_FOUND, "no OAuth authorization server is configured (PAYMENT_OAUTH_ISSUER)")
            .into_response();
    };
    axum::Json(json!({
        "resource": state.resource,
        "authorization_servers": [jwt.settings().issuer],
        "bearer_methods_supported": ["header"],
        "scopes_supported": crate::scope::GRANT_ITEMS,
        "resource_name": "payment-mcp",
    }))
    .into_response()
}
