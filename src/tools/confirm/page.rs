//! The refund confirmation page for URL-mode elicitation (SEP-1036): a small HTTP server on
//! `127.0.0.1` (a random port, started on first use) that shows one refund (order, amount, reason,
//! refund number) with Confirm and Decline, behind a one-time link.
//!
//! Why a page: a client that cannot show a form (Claude Desktop among them) can still open a link,
//! and what the human clicks there never passes through the model. The link's token is 256 random
//! bits, works once (the first decision wins; the entry is then gone) and expires after
//! `PAYMENT_CONFIRM_TIMEOUT_SECONDS`. The page refuses to be framed (no clickjacking), keeps out
//! of the browser's cache, sends no referrer to other sites (`same-origin`: with `no-referrer`
//! Chromium sends `Origin: null` on the page's own form), loads nothing, and only answers requests
//! addressed to its own loopback origin (a page elsewhere cannot post to it, a rebound DNS name cannot reach
//! it). It is served on the machine running payment-mcp, so it is offered for local (stdio)
//! servers, where the human's browser runs on that machine.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::html::escape;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tokio::sync::{OnceCell, watch};

/// What the page shows about the refund.
#[derive(Debug, Clone)]
pub struct Summary {
    pub order_no: String,
    /// Yuan, two decimals.
    pub amount: String,
    pub reason: String,
    pub mch_refund_no: String,
    pub sandbox: bool,
}

/// A page's state: waiting for the human, or their decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PageState {
    Open,
    Confirmed,
    Declined,
}

/// How a page ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Confirmed,
    Declined,
    /// Nobody decided before the link expired (or it was revoked).
    Expired,
}

struct Entry {
    summary: Summary,
    deadline: Instant,
    decided: watch::Sender<PageState>,
}

/// An open confirmation page, held by the refund call waiting for it.
#[derive(Clone)]
pub struct Ticket {
    /// The one-time link to give the human.
    pub url: String,
    /// The elicitation id (not the token).
    pub id: String,
    token: String,
    deadline: Instant,
    decided: watch::Receiver<PageState>,
}

impl Ticket {
    /// Whether the link's time is up.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

/// The confirmation pages and their server.
pub struct Pages {
    ttl: Duration,
    addr: OnceCell<SocketAddr>,
    entries: Mutex<HashMap<String, Entry>>,
}

fn random_hex(n: usize) -> Option<String> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).ok()?;
    Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Pages {
    /// Pages whose links live `ttl`.
    pub fn new(ttl: Duration) -> Arc<Pages> {
        Arc::new(Pages { ttl, addr: OnceCell::new(), entries: Mutex::new(HashMap::new()) })
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The server's address, binding it on first use.
    async fn addr(self: &Arc<Self>) -> std::io::Result<SocketAddr> {
        let pages = self.clone();
        self.addr
            .get_or_try_init(|| async move {
                let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
                let addr = listener.local_addr()?;
                let app = axum::Router::new().route("/confirm/{token}", get(show).post(decide)).with_state(pages);
                tokio::spawn(async move {
                    if let Err(e) = axum::serve(listener, app).await {
                        tracing::warn!("the refund confirmation page server stopped: {e}");
                    }
                });
                tracing::info!("refund confirmation pages on http://{addr}");
                Ok(addr)
            })
            .await
            .copied()
    }

    /// Opens a page for `summary`.
    ///
    /// # Errors
    /// The loopback server could not be started, or no randomness was available.
    pub async fn open(self: &Arc<Self>, summary: Summary) -> std::io::Result<Ticket> {
        let addr = self.addr().await?;
        let (Some(token), Some(id)) = (random_hex(32), random_hex(16)) else {
            return Err(std::io::Error::other("no randomness for a one-time link"));
        };
        let deadline = Instant::now() + self.ttl;
        let (tx, rx) = watch::channel(PageState::Open);
        let mut entries = self.entries();
        entries.retain(|_, e| e.deadline > Instant::now());
        entries.insert(token.clone(), Entry { summary, deadline, decided: tx });
        Ok(Ticket { url: format!("http://{addr}/confirm/{token}"), id, token, deadline, decided: rx })
    }

    /// Waits for the human's decision on `ticket`'s page, until its link expires.
    pub async fn outcome(&self, ticket: &Ticket) -> Outcome {
        let mut rx = ticket.decided.clone();
        let wait = async {
            loop {
                match *rx.borrow_and_update() {
                    PageState::Confirmed => return Outcome::Confirmed,
                    PageState::Declined => return Outcome::Declined,
                    PageState::Open => {}
                }
                if rx.changed().await.is_err() {
                    // The entry is gone: decided (the value above says how) or revoked.
                    return match *rx.borrow() {
                        PageState::Confirmed => Outcome::Confirmed,
                        PageState::Declined => Outcome::Declined,
                        PageState::Open => Outcome::Expired,
                    };
                }
            }
        };
        let deadline = tokio::time::Instant::from_std(ticket.deadline);
        match tokio::time::timeout_at(deadline, wait).await {
            Ok(outcome) => outcome,
            Err(_) => {
                self.revoke(ticket);
                Outcome::Expired
            }
        }
    }

    /// Makes `ticket`'s link invalid (the human declined in the client, or the call gave up).
    pub fn revoke(&self, ticket: &Ticket) {
        self.entries().remove(&ticket.token);
    }

    /// The entry for `token` if it is still open; an expired one is removed.
    fn summary(&self, token: &str) -> Option<Summary> {
        let mut entries = self.entries();
        let live = entries.get(token).is_some_and(|e| e.deadline > Instant::now());
        if !live {
            entries.remove(token);
            return None;
        }
        entries.get(token).map(|e| e.summary.clone())
    }

    /// Records the decision on `token`'s page; false when the link is unknown, used or expired.
    fn decide(&self, token: &str, confirm: bool) -> bool {
        let Some(entry) = self.entries().remove(token) else { return false };
        if entry.deadline <= Instant::now() {
            return false;
        }
        let _ = entry.decided.send(if confirm { PageState::Confirmed } else { PageState::Declined });
        true
    }

    /// Whether a request is addressed to this server's own origin: the `Host` header names it, and
    /// an `Origin` header, when present, is it.
    fn same_origin(&self, headers: &HeaderMap) -> bool {
        let Some(addr) = self.addr.get() else { return false };
        let own = addr.to_string();
        let host_ok = headers.get(header::HOST).and_then(|h| h.to_str().ok()) == Some(own.as_str());
        let origin_ok =
            headers.get(header::ORIGIN).is_none_or(|o| o.to_str().ok() == Some(format!("http://{own}").as_str()));
        host_ok && origin_ok
    }
}

const STYLE: &str = "body{font:15px/1.5 system-ui,-apple-system,'Segoe UI','PingFang SC',sans-serif;max-width:30em;margin:3em auto;padding:0 1em;color:#18181b;background:#fff}@media(prefers-color-scheme:dark){body{color:#fafafa;background:#18181b}}h1{font-size:1.3em}dl{display:grid;grid-template-columns:auto 1fr;gap:.3em 1em}dt{color:#71717a}dd{margin:0;word-break:break-word}button{font:600 1em system-ui,sans-serif;padding:.6em 1.2em;border-radius:8px;border:1px solid #a1a1aa;margin-right:.5em;cursor:pointer}.yes{background:#18181b;color:#fff}.warn{background:#fef3c7;color:#92400e;padding:.4em .8em;border-radius:6px}";

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn gone() -> Response {
    page(
        StatusCode::GONE,
        "Link expired",
        "<h1>This confirmation link is no longer valid</h1><p>It expired, or it was already used. No refund was sent through it. Ask for the refund again to get a new link.</p>",
    )
}

fn forbidden() -> Response {
    page(StatusCode::FORBIDDEN, "Refused", "<h1>Refused</h1><p>This page only answers its own loopback address.</p>")
}

async fn show(State(pages): State<Arc<Pages>>, Path(token): Path<String>, headers: HeaderMap) -> Response {
    if !pages.same_origin(&headers) {
        return forbidden();
    }
    let Some(s) = pages.summary(&token) else { return gone() };
    let reason = if s.reason.is_empty() { "none given".to_owned() } else { escape(&s.reason) };
    let sandbox = if s.sandbox { "<p class=\"warn\">SANDBOX: no real money moves.</p>" } else { "" };
    let body = format!(
        "<h1>Confirm this refund?</h1>{sandbox}<p>payment-mcp was asked to send money back to a payer. Nothing has been refunded yet.</p><dl><dt>Order</dt><dd id=\"order\">{}</dd><dt>Amount</dt><dd id=\"amount\">¥{}</dd><dt>Reason</dt><dd id=\"reason\">{reason}</dd><dt>Refund no.</dt><dd id=\"refund-no\">{}</dd></dl><form method=\"post\"><button class=\"yes\" name=\"decision\" value=\"confirm\" id=\"confirm\">Confirm refund</button><button name=\"decision\" value=\"decline\" id=\"decline\">Decline</button></form>",
        escape(&s.order_no),
        escape(&s.amount),
        escape(&s.mch_refund_no),
    );
    page(StatusCode::OK, "Confirm refund", &body)
}

#[derive(Deserialize)]
struct Decision {
    decision: String,
}

async fn decide(
    State(pages): State<Arc<Pages>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(form): Form<Decision>,
) -> Response {
    if !pages.same_origin(&headers) {
        return forbidden();
    }
    let confirm = match form.decision.as_str() {
        "confirm" => true,
        "decline" => false,
        _ => return page(StatusCode::BAD_REQUEST, "Bad request", "<h1>Choose Confirm or Decline</h1>"),
    };
    if !pages.decide(&token, confirm) {
        return gone();
    }
    if confirm {
        page(
            StatusCode::OK,
            "Refund confirmed",
            "<h1 id=\"done\">Refund confirmed</h1><p>payment-mcp is sending it now. You can close this tab and return to the chat.</p>",
        )
    } else {
        page(
            StatusCode::OK,
            "Refund declined",
            "<h1 id=\"done\">Refund declined</h1><p>No refund was sent. You can close this tab.</p>",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> Summary {
        Summary {
            order_no: "P1".into(),
            amount: "1.00".into(),
            reason: "<b>".into(),
            mch_refund_no: "R1".into(),
            sandbox: true,
        }
    }

    #[test]
    fn escapes_what_a_model_wrote() {
        assert_eq!(escape("<script>\"a\"&'b'"), "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;");
    }

    #[tokio::test]
    async fn a_link_decides_once() {
        let pages = Pages::new(Duration::from_secs(60));
        let ticket = pages.open(summary()).await.unwrap();
        assert!(ticket.url.starts_with("http://127.0.0.1:"));
        assert!(pages.decide(&ticket.token, true));
        assert!(!pages.decide(&ticket.token, false), "a used link is gone");
        assert_eq!(pages.outcome(&ticket).await, Outcome::Confirmed);
    }

    #[tokio::test]
    async fn an_undecided_link_expires() {
        let pages = Pages::new(Duration::from_millis(20));
        let ticket = pages.open(summary()).await.unwrap();
        assert_eq!(pages.outcome(&ticket).await, Outcome::Expired);
        assert!(!pages.decide(&ticket.token, true), "an expired link confirms nothing");
    }

    #[tokio::test]
    async fn a_revoked_link_is_gone() {
        let pages = Pages::new(Duration::from_secs(60));
        let ticket = pages.open(summary()).await.unwrap();
        pages.revoke(&ticket);
        assert!(pages.summary(&ticket.token).is_none());
        assert_eq!(pages.outcome(&ticket).await, Outcome::Expired);
    }
}
