//! What every HTTP gateway client shares: the classes of transport failure and how each becomes an
//! agent-facing error, bounded jittered retries for read-only calls, and safe excerpts of replies.
//!
//! The distinction that matters for money: a request that provably never left ([`CallError::NotSent`])
//! changed nothing, while one whose reply was lost ([`CallError::NoReply`]) may have. For a query
//! both are a plain transport error; for a create or refund the second is `outcome_unknown`.

use crate::error::{ErrorKind, PaymentError};
use std::future::Future;
use std::time::{Duration, Instant};

/// A reqwest client builder with the TLS crypto provider (ring) installed for the process. Every
/// HTTP client in the crate is built through this: reqwest is compiled without a provider of its
/// own, to keep aws-lc's C build out of the tree.
pub fn client_builder() -> reqwest::ClientBuilder {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        // Err only means another provider was installed first, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
}

/// Runs one HTTP request to a gateway and records its latency and outcome for `/metrics`
/// ([`crate::metrics::gateway_request`]); `operation` is the path or method name, never a URL.
pub async fn timed<T>(
    provider: &'static str,
    operation: &str,
    call: impl Future<Output = Result<T, CallError>>,
) -> Result<T, CallError> {
    let started = Instant::now();
    let result = call.await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(CallError::NotSent(_)) => "not_sent",
        Err(CallError::NoReply(_)) => "no_reply",
        Err(CallError::Rejected(_)) => "rejected",
        Err(CallError::BadSignature) => "bad_signature",
    };
    crate::metrics::gateway_request(provider, operation, outcome, started.elapsed());
    result
}

/// The configuration error for an HTTP client that could not be built. The usual cause on a
/// server or in a container is a missing CA bundle: the TLS verifier finds no trusted roots, and
/// reqwest says only "builder error", so say what is missing and how to install it.
pub fn client_error(e: &reqwest::Error) -> PaymentError {
    let roots = rustls_native_certs::load_native_certs();
    let message = if roots.certs.is_empty() {
        "payment-mcp cannot make HTTPS requests: this machine has no CA certificates (the system trust store is empty). Install them (Debian/Ubuntu: apt-get install ca-certificates; Alpine: apk add ca-certificates; RHEL/Fedora: dnf install ca-certificates), or point SSL_CERT_FILE at a PEM bundle; in a scratch container, copy /etc/ssl/certs/ca-certificates.crt into the image.".to_owned()
    } else {
        format!("cannot build the HTTP client: {e}")
    };
    PaymentError::new(ErrorKind::Config, message)
}

/// For a redirect reply, where it points ([`redirect_origin`] of its `Location`); `None` for any
/// other reply. Every client that carries a key or a signed request refuses to follow it.
pub fn redirect_target(response: &reqwest::Response) -> Option<String> {
    response.status().is_redirection().then(|| {
        let location = response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok());
        redirect_origin(location, response.url())
    })
}

/// Where a redirect reply points, as `scheme://host[:port]` only: the path and query of a
/// `Location` may echo the request (keys included), so they are never repeated. A relative
/// `Location` is resolved against `request_url`; one that cannot be read is "an unreadable address".
/// Pure, so tested.
pub fn redirect_origin(location: Option<&str>, request_url: &reqwest::Url) -> String {
    let Some(target) = location.and_then(|l| request_url.join(l.trim()).ok()) else {
        return "an unreadable address".into();
    };
    if target.host_str().is_none() {
        return "an address without a host".into();
    }
    origin_of(&target)
}

/// A reply's body, read to the end: a body cut off or late is [`CallError::NoReply`] (the request
/// may have been processed), and so is an HTTP 5xx, with an excerpt. Redirects and 4xx are left to
/// the caller, whose message names its own setting.
pub async fn reply_body(response: reqwest::Response) -> Result<(reqwest::StatusCode, String), CallError> {
    let status = response.status();
    let body = match response.text().await {
        Ok(body) => body,
        Err(e) => {
            let e = e.without_url();
            return Err(if e.is_timeout() {
                CallError::NoReply("the gateway did not finish its reply in time".into())
            } else {
                CallError::NoReply(format!("the reply was cut off: {}", root_cause(&e)))
            });
        }
    };
    if status.is_server_error() {
        return Err(CallError::NoReply(format!("the gateway answered HTTP {status} ({})", snippet(&body))));
    }
    Ok((status, body))
}

/// How many times a read-only call is tried in all.
pub const QUERY_ATTEMPTS: u32 = 3;

/// Why a call produced no usable reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The request provably never left (connection refused): safe to retry.
    NotSent(String),
    /// The request may have been processed, but no usable reply came back (timeout, reset, HTTP
    /// 5xx, a body that is not a reply).
    NoReply(String),
    /// A reply that is not an answer: HTTP 3xx or 4xx.
    Rejected(String),
    /// A success reply whose signature does not verify.
    BadSignature,
}

impl CallError {
    /// As an error for a read-only call: nothing can have changed, so every fault is plain.
    pub fn for_query(self) -> PaymentError {
        match self {
            CallError::NotSent(m) | CallError::NoReply(m) => PaymentError::new(
                ErrorKind::Transport,
                format!("{}. Nothing changed; try the query again shortly.", sentence(&m)),
            ),
            CallError::Rejected(m) => PaymentError::new(ErrorKind::Gateway, format!("{}.", sentence(&m))),
            CallError::BadSignature => bad_signature(),
        }
    }

    /// As an error for a call that moves money: a lost reply leaves the outcome unknown, and `next`
    /// says how to find it out.
    pub fn for_money(self, what: &str, next: &str) -> PaymentError {
        match self {
            CallError::NotSent(m) => PaymentError::new(
                ErrorKind::Transport,
                format!("{}. The {what} was not sent, so nothing changed; it is safe to try again.", sentence(&m)),
            ),
            CallError::NoReply(m) => PaymentError::new(
                ErrorKind::OutcomeUnknown,
                format!("{}, so it is unknown whether the {what} went through. {next}", sentence(&m)),
            ),
            CallError::Rejected(m) => PaymentError::new(
                ErrorKind::Gateway,
                format!("{}. The gateway did not accept the request, so the {what} was not made.", sentence(&m)),
            ),
            CallError::BadSignature => bad_signature(),
        }
    }
}

/// A success reply that cannot be trusted: never success, whatever it says.
fn bad_signature() -> PaymentError {
    PaymentError::new(
        ErrorKind::Gateway,
        "The gateway's reply carried a signature that does not verify, so it was not trusted. Check PAYMENT_SIGN_KEY and PAYMENT_API_BASE_URL (a proxy may be rewriting replies); the operation's real outcome must be checked with a query.",
    )
}

/// The pause before retry number `retry` (1-based) of a read-only call: exponential from 150 ms,
/// with half of it random ("equal jitter") so many clients do not retry in step. Pure, so tested.
pub fn retry_delay(retry: u32, random: u64) -> Duration {
    let base_ms = 150u64 << retry.min(6);
    Duration::from_millis(base_ms / 2 + random % (base_ms / 2 + 1))
}

/// Runs a read-only call, retrying with [`retry_delay`] while `worth_retrying` says so, at most
/// [`QUERY_ATTEMPTS`] times and within `budget` (the whole-request timeout) in all. Never used for
/// create or refund, which must not be sent blindly twice.
pub async fn with_retries<T, F, Fut>(
    budget: Duration,
    label: &str,
    worth_retrying: impl Fn(&Result<T, CallError>) -> bool,
    mut attempt: F,
) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CallError>>,
{
    let started = Instant::now();
    let mut tries = 1;
    loop {
        // Each try gets what is left of the budget, so the whole call stays within it.
        let left = budget.saturating_sub(started.elapsed());
        let outcome = match tokio::time::timeout(left, attempt()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(CallError::NoReply(format!("The gateway did not answer within {} ms", budget.as_millis()))),
        };
        if tries >= QUERY_ATTEMPTS || !worth_retrying(&outcome) {
            return outcome;
        }
        let pause = retry_delay(tries, u64::from_le_bytes(random_bytes()));
        if started.elapsed() + pause >= budget {
            return outcome;
        }
        tracing::debug!(call = label, attempt = tries, "retrying a read-only call after {pause:?}");
        tokio::time::sleep(pause).await;
        tries += 1;
    }
}

/// Eight random bytes; the clock when the OS has no randomness (nonces and jitter only need to
/// differ, not be secret).
pub fn random_bytes() -> [u8; 8] {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        bytes = (t.as_nanos() as u64).to_le_bytes();
    }
    bytes
}

/// The innermost cause of an error, which is the one that says what went wrong.
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A short, safe excerpt of a reply body for an error message: markup stripped, whitespace collapsed.
pub fn snippet(body: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if in_tag => {}
            c if c.is_control() || c.is_whitespace() => text.push(' '),
            c => text.push(c),
        }
    }
    let clean: String = text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(80).collect();
    if clean.is_empty() { "empty body".into() } else { clean }
}

/// The message with its first letter in upper case.
pub fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// Where a URL points, for messages: `scheme://host[:port]`, never its userinfo, path, query or
/// fragment, which is where a key (echoed by a gateway or pasted in the wrong place) would sit.
pub fn origin_of(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("?");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_and_stay_jittered_within_bounds() {
        for retry in 1..=3 {
            let base = 150u64 << retry;
            for random in [0, 1, 77, u64::MAX] {
                let d = retry_delay(retry, random).as_millis() as u64;
                assert!((base / 2..=base).contains(&d), "retry {retry}: {d} ms");
            }
        }
        assert!(retry_delay(60, u64::MAX) <= Duration::from_millis(150 << 6));
    }

    #[test]
    fn redirect_origins_never_carry_a_path_or_query() {
        let base = reqwest::Url::parse("https://api.example.com/index/Payment/pre_order").unwrap();
        let origin = |l: Option<&str>| redirect_origin(l, &base);
        assert_eq!(origin(Some("http://127.0.0.1:9/steal?apikey=k#f")), "http://127.0.0.1:9");
        assert_eq!(origin(Some("https://u:p@new.example.com/x")), "https://new.example.com");
        assert_eq!(origin(Some("https://new.example.com:8443/")), "https://new.example.com:8443");
        assert_eq!(origin(Some("http://[::1]:80/a")), "http://[::1]");
        assert_eq!(origin(Some("/moved?key=1")), "https://api.example.com");
        assert_eq!(origin(None), "an unreadable address");
        assert_eq!(origin(Some("data:text/plain,x")), "an address without a host");
    }

    #[test]
    fn snippets_strip_markup() {
        assert_eq!(snippet("<html><body><h1>502 Bad Gateway</h1>\n</body></html>"), "502 Bad Gateway");
        assert_eq!(snippet(""), "empty body");
    }

    #[test]
    fn a_lost_reply_is_unknown_only_for_money() {
        let lost = CallError::NoReply("the gateway did not answer in time".into());
        assert_eq!(lost.clone().for_query().kind, ErrorKind::Transport);
        assert_eq!(lost.for_money("order", "Query it.").kind, ErrorKind::OutcomeUnknown);
        let never = CallError::NotSent("connection refused".into());
        assert_eq!(never.for_money("order", "").kind, ErrorKind::Transport);
        assert_eq!(CallError::BadSignature.for_query().kind, ErrorKind::Gateway);
    }

    #[tokio::test]
    async fn retries_stop_at_the_attempt_limit_and_on_success() {
        let mut calls = 0;
        let out: Result<(), CallError> = with_retries(
            Duration::from_secs(10),
            "t",
            |_| true,
            || {
                calls += 1;
                async { Err(CallError::NoReply("x".into())) }
            },
        )
        .await;
        assert!(out.is_err());
        assert_eq!(calls, QUERY_ATTEMPTS);
        let mut calls = 0;
        let out = with_retries(
            Duration::from_secs(10),
            "t",
            |r: &Result<u8, CallError>| r.is_err(),
            || {
                calls += 1;
                async { Ok(7) }
            },
        )
        .await;
        assert_eq!((out, calls), (Ok(7), 1));
    }

    #[tokio::test]
    async fn a_retry_never_runs_past_the_budget() {
        let budget = Duration::from_millis(400);
        let started = Instant::now();
        let mut calls = 0;
        let out: Result<(), CallError> = with_retries(
            budget,
            "t",
            |_| true,
            || {
                calls += 1;
                let first = calls == 1;
                async move {
                    if !first {
                        // A retry that would hang far past the budget.
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    Err(CallError::NoReply("x".into()))
                }
            },
        )
        .await;
        assert!(matches!(out, Err(CallError::NoReply(_))));
        assert_eq!(calls, 2);
        assert!(started.elapsed() < Duration::from_secs(10), "bounded by the budget, not by the hanging try");
    }
}
