//! The payment notifications endpoint: `POST|GET /notify/{provider}`, the URL a merchant gives the
//! gateway as `notify_url`.
//!
//! Each notification is checked with the same code as the `verify_payment_notification` tool
//! ([`Payments::receive_notification`] calls [`Payments::verify_notification`]), its final state is
//! recorded in the ledger once however often the gateway repeats it, and every `wait_for_payment`
//! on its order is woken (on PostgreSQL, in every instance). The reply is exactly what the gateway
//! looks for: a plain-text body `success` acknowledges it (LFWin, epay and Alipay all stop
//! repeating a notification on that body); anything else makes the gateway repeat it later, so a
//! notification that cannot be trusted or recorded is answered `fail`:
//!
//! | case | status | body |
//! |---|---|---|
//! | signature verifies (recorded, repeated, or a non-final state) | 200 | `success` |
//! | bad or missing signature, no order named, unreadable body | 400 | `fail` |
//! | `{provider}` is not the configured provider | 404 | `fail` |
//! | configuration problem, or the ledger cannot record it | 503 | `fail` |
//!
//! [`router`] is an axum [`Router`] of its own, so any HTTP server can mount it: the stdio server
//! serves it on `PAYMENT_NOTIFY_ADDR` ([`serve`]), and an HTTP transport can merge it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use tokio_util::sync::CancellationToken;

use crate::payments::{Payments, Received};
use crate::provider::ProviderKind;

/// The largest notification body read: gateways send a few hundred bytes to a few KiB (Alipay's,
/// with its RSA signature, about 2 KiB).
pub const MAX_BODY: usize = 64 * 1024;

/// The body that acknowledges a notification, per provider (each gateway's documentation; the
/// sandbox speaks LFWin's and Alipay's wires).
pub fn success_reply(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Lfwin
        | ProviderKind::Epay
        | ProviderKind::Alipay
        | ProviderKind::Sandbox
        | ProviderKind::Unconfigured => "success",
    }
}

/// The body that refuses a notification (the gateway repeats it later).
pub const FAILURE_REPLY: &str = "fail";

/// The notifications router: `GET` and `POST` on `/notify/{provider}`.
pub fn router(payments: Arc<Payments>) -> Router {
    Router::new().route("/notify/{provider}", any(receive)).layer(DefaultBodyLimit::max(MAX_BODY)).with_state(payments)
}

/// The notify URL path for `kind`, as a gateway should be given it after the public base URL.
pub fn path_for(kind: ProviderKind) -> String {
    format!("/notify/{}", kind.as_str())
}

fn reply(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// The provider as a metrics label: a provider this server knows, or `other` (the path is the
/// caller's, so it must not grow the label set).
fn label(provider: &str) -> &'static str {
    [ProviderKind::Lfwin, ProviderKind::Epay, ProviderKind::Alipay, ProviderKind::Sandbox]
        .into_iter()
        .map(ProviderKind::as_str)
        .find(|known| *known == provider)
        .unwrap_or("other")
}

fn refuse(status: StatusCode, provider: &str, why: &str) -> Response {
    crate::metrics::notification_rejected(label(provider));
    tracing::warn!(provider, status = status.as_u16(), "payment notification refused: {why}");
    reply(status, FAILURE_REPLY)
}

async fn receive(
    State(payments): State<Arc<Payments>>,
    Path(provider): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if method != Method::GET && method != Method::POST {
        return refuse(StatusCode::METHOD_NOT_ALLOWED, &provider, "only GET and POST carry notifications");
    }
    let kind = payments.kind();
    if provider != kind.as_str() {
        return refuse(StatusCode::NOT_FOUND, &provider, "this server is not configured for that provider");
    }
    // A form body (LFWin, Alipay), else the query string (epay's GET).
    let raw = if body.is_empty() {
        query.unwrap_or_default()
    } else {
        match String::from_utf8(body.to_vec()) {
            Ok(text) => text,
            Err(_) => return refuse(StatusCode::BAD_REQUEST, &provider, "the body is not UTF-8"),
        }
    };
    if raw.trim().is_empty() {
        return refuse(StatusCode::BAD_REQUEST, &provider, "it is empty");
    }
    match payments.receive_notification(&raw).await {
        Ok(Received::Accepted { .. }) => {
            // Counted on every acknowledged delivery, repeats included.
            crate::metrics::notification_accepted(kind.as_str());
            reply(StatusCode::OK, success_reply(kind))
        }
        Ok(Received::Rejected(why)) => refuse(StatusCode::BAD_REQUEST, &provider, why),
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, &provider, &crate::redact::scrub(&e.message)),
    }
}

/// Serves [`router`] on `addr` until `cancel` fires, with the same slow-client limits as the
/// sandbox (a request head within 10 s, its body within 10 s). Returns the bound address (port 0
/// picks a free one) once listening.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    payments: Arc<Payments>,
    cancel: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(payments).layer(axum::middleware::from_fn(crate::sandbox::http::read_body));
    tokio::spawn(crate::sandbox::http::serve(listener, app, cancel));
    Ok(bound)
}

#[cfg(test)]
mod tests;
