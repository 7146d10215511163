//! The epay ("易支付") protocol client, for the many aggregators that speak it (`shared/spec/epay.md`).
//!
//! Orders are created through the MD5-signed `mapi.php`; everything else goes through the query API,
//! which authenticates with the merchant key itself sent in the request (the protocol's design, so the
//! gateway must be reached over HTTPS). That makes this client careful in three ways:
//!
//! - no request URL or body is ever logged, reqwest errors are stripped of their URL (an act-style GET
//!   carries the key in its query string) and every message is scrubbed of the key before it leaves;
//! - redirects are not followed, so a redirecting gateway cannot make the client resend the key to
//!   another address (the error names only the target's origin);
//! - merchant info drops every field that names or holds a secret (act-style `query` echoes the key).
//!
//! Two query-API styles exist ([`EpayApiStyle`]): path style (`/api.php/getorder`, POST form) as the
//! reference gateway documents it, and the classic act style (`/api.php?act=order`, GET). Only the act
//! style has a refund API, and neither has a refund query or a refund number: refunds are reported as
//! processing, never settled.
//!
//! Replies carry no fine status codes (just `code` 1 or not, and a free-text `msg`), so failures are
//! classified from the message ([`classify_failure`]). Reply parsing is pure ([`parse_create`],
//! [`parse_query`], [`parse_list`], [`parse_merchant`], [`parse_refund`]) and unit tested against
//! fixtures; the HTTP edge is [`EpayClient::send`].

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::{
    CreateRequest, CreatedOrder, ErrorKind, Gateway, GatewayError, ListQuery, MerchantInfo, Notification, OrderPage,
    OrderRef, OrderStatus, OrderSummary, PaymentState, ProviderKind, RefundAccepted, RefundQuery, RefundRequest,
    RefundState, RefundStatus,
};
use crate::config::{EpayApiStyle, ExposeSecret, SecretString};
use crate::money::Fen;
use crate::sign;

const PATH_CREATE: &str = "/mapi.php";
const PATH_API: &str = "/api.php";
const PATH_GETORDER: &str = "/api.php/getorder";
const PATH_GETORDERS: &str = "/api.php/getorders";
const PATH_GETUSER: &str = "/api.php/getuser";

/// How many times a read-only call is tried in all.
const QUERY_ATTEMPTS: u32 = 3;

/// Asia/Shanghai is UTC+8 all year (no daylight saving).
const CHINA_OFFSET_SECS: i64 = 8 * 3600;

/// The pay type used when neither the request nor the configuration names one.
const FALLBACK_PAY_TYPE: &str = "alipay";

/// What replaces the merchant key wherever it would otherwise appear in a message.
const REDACTED: &str = "[redacted]";

const CREATE_UNKNOWN_NEXT: &str = "Do not create a new order for this sale under another merchant_order_no. Call query_payment_order with the same merchant_order_no in a few seconds to find out; repeat create_payment_order only with the same merchant_order_no and amount.";
const REFUND_UNKNOWN_NEXT: &str = "Do not send this refund again: the epay protocol has no refund idempotency key, so a second request could refund the money twice, and it has no refund query either. Check the order's refunds in the gateway's merchant console before deciding anything.";
const REFUND_PROCESSING_NOTE: &str = "The epay protocol has no refund number and no refund query, so this server cannot confirm that the refund settled; it is reported as processing. Confirm it in the gateway's merchant console.";

/// HTTP method of one API call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

/// Where one API call goes: method, path and, for act-style calls, the `act` (sent in the query string
/// ahead of any other field, so a POST's form body holds only the call's own fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Endpoint {
    method: Method,
    path: &'static str,
    act: Option<&'static str>,
}

impl Endpoint {
    const fn post(path: &'static str) -> Endpoint {
        Endpoint { method: Method::Post, path, act: None }
    }

    const fn act(method: Method, act: &'static str) -> Endpoint {
        Endpoint { method, path: PATH_API, act: Some(act) }
    }

    /// The path and act, for logs and messages: never any field value.
    fn label(&self) -> String {
        match self.act {
            Some(act) => format!("{}?act={act}", self.path),
            None => self.path.to_owned(),
        }
    }
}

/// The read-only calls of the query API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QueryOp {
    Order,
    Orders,
    User,
}

/// An epay gateway at `base_url` with one merchant's id and key.
pub struct EpayClient {
    timeout: Duration,
    http: reqwest::Client,
    base_url: String,
    merchant_id: String,
    key: SecretString,
    api_style: EpayApiStyle,
    default_pay_type: String,
}

impl EpayClient {
    /// A client with a whole-request `timeout` (and a connect timeout of at most 5 s) that never
    /// follows redirects (see the module doc).
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the base URL, merchant id or key is empty, or the TLS backend cannot
    /// be initialised.
    pub fn new(
        base_url: &str,
        merchant_id: &str,
        key: SecretString,
        api_style: EpayApiStyle,
        default_pay_type: &str,
        timeout: Duration,
    ) -> Result<EpayClient, GatewayError> {
        let base_url = base_url.trim().trim_end_matches('/').to_owned();
        if base_url.is_empty() {
            return Err(config_error(
                "PAYMENT_API_BASE_URL",
                "PAYMENT_API_BASE_URL is not set; epay gateways have no default base URL, so set it to your gateway's https address (e.g. https://pay.example.com).",
            ));
        }
        let merchant_id = merchant_id.trim().to_owned();
        if merchant_id.is_empty() {
            return Err(config_error(
                "PAYMENT_MERCHANT_ID",
                "PAYMENT_MERCHANT_ID is not set; set it to your epay merchant id (pid) from the gateway's merchant console.",
            ));
        }
        if key.expose_secret().is_empty() {
            return Err(config_error(
                "PAYMENT_SIGN_KEY",
                "PAYMENT_SIGN_KEY is not set; set it to your epay merchant key from the gateway's merchant console.",
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("payment-mcp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GatewayError::new(ErrorKind::Config, format!("cannot build the HTTP client: {e}")))?;
        let default_pay_type = match default_pay_type.trim() {
            "" => FALLBACK_PAY_TYPE.to_owned(),
            t => t.to_owned(),
        };
        Ok(EpayClient { timeout, http, base_url, merchant_id, key, api_style, default_pay_type })
    }

    /// The endpoint of a read-only call in this gateway's API style.
    fn query_endpoint(&self, op: QueryOp) -> Endpoint {
        match (self.api_style, op) {
            (EpayApiStyle::Path, QueryOp::Order) => Endpoint::post(PATH_GETORDER),
            (EpayApiStyle::Path, QueryOp::Orders) => Endpoint::post(PATH_GETORDERS),
            (EpayApiStyle::Path, QueryOp::User) => Endpoint::post(PATH_GETUSER),
            (EpayApiStyle::Act, QueryOp::Order) => Endpoint::act(Method::Get, "order"),
            (EpayApiStyle::Act, QueryOp::Orders) => Endpoint::act(Method::Get, "orders"),
            (EpayApiStyle::Act, QueryOp::User) => Endpoint::act(Method::Get, "query"),
        }
    }

    /// `pid` and `key`: how the query API authenticates (the key itself travels, as the protocol says).
    fn auth_fields(&self) -> Vec<(&'static str, String)> {
        vec![("pid", self.merchant_id.clone()), ("key", self.key.expose_secret().to_owned())]
    }

    /// Replaces every occurrence of the merchant key in `text` (gateways may echo requests in error
    /// pages or messages).
    fn scrub(&self, text: &str) -> String {
        scrub_secret(text, self.key.expose_secret())
    }

    fn scrub_error(&self, mut err: GatewayError) -> GatewayError {
        err.message = self.scrub(&err.message);
        err.code = err.code.map(|c| self.scrub(&c));
        err
    }

    /// Sends a read-only request, retrying with jittered backoff while the outcome is a transport
    /// fault, at most [`QUERY_ATTEMPTS`] times and not after the whole-request timeout has been spent.
    /// Never used for create or refund, which must not be sent blindly twice.
    async fn send_query(&self, endpoint: Endpoint, fields: &[(&'static str, String)]) -> Result<Reply, CallError> {
        let started = std::time::Instant::now();
        let mut attempt = 1;
        loop {
            let outcome = self.send(endpoint, fields).await;
            if attempt >= QUERY_ATTEMPTS || !worth_retrying(&outcome) {
                return outcome;
            }
            let pause = super::lfwin::retry_delay(attempt, random_u64());
            if started.elapsed() + pause >= self.timeout {
                return outcome;
            }
            tracing::debug!(endpoint = %endpoint.label(), attempt, "retrying a read-only epay call after {pause:?}");
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    /// Sends one request and parses the reply. The URL and body are never logged and reqwest errors
    /// lose their URL before they are formatted: both may hold the merchant key.
    async fn send(&self, endpoint: Endpoint, fields: &[(&'static str, String)]) -> Result<Reply, CallError> {
        let mut url = format!("{}{}", self.base_url, endpoint.path);
        if let Some(act) = endpoint.act {
            url.push_str("?act=");
            url.push_str(act);
        }
        let request = match endpoint.method {
            Method::Get => {
                let query = serde_urlencoded::to_string(fields)
                    .map_err(|_| CallError::NotSent("the request's fields could not be URL-encoded".into()))?;
                if !query.is_empty() {
                    url.push(if endpoint.act.is_some() { '&' } else { '?' });
                    url.push_str(&query);
                }
                self.http.get(url)
            }
            Method::Post => self.http.post(url).form(fields),
        };
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let e = e.without_url();
                return Err(if e.is_connect() && !e.is_timeout() {
                    CallError::NotSent(format!(
                        "could not connect to the gateway at {}: {}",
                        self.base_url,
                        root_cause(&e)
                    ))
                } else if e.is_timeout() {
                    CallError::NoReply("the gateway did not answer in time".into())
                } else if e.is_builder() {
                    CallError::NotSent(format!(
                        "the request could not be built ({}); check PAYMENT_API_BASE_URL ({})",
                        root_cause(&e),
                        self.base_url
                    ))
                } else {
                    CallError::NoReply(format!("the connection failed: {}", root_cause(&e)))
                });
            }
        };
        let status = response.status();
        let location = response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(origin_of);
        let body = match response.text().await {
            Ok(b) => b,
            Err(e) => {
                let e = e.without_url();
                return Err(if e.is_timeout() {
                    CallError::NoReply("the gateway did not finish its reply in time".into())
                } else {
                    CallError::NoReply(format!("the reply was cut off: {}", root_cause(&e)))
                });
            }
        };
        let label = endpoint.label();
        if status.is_server_error() {
            return Err(CallError::NoReply(format!("the gateway answered HTTP {status} ({})", snippet(&body))));
        }
        if status.is_redirection() {
            let target = location.unwrap_or_else(|| "an unnamed address".into());
            return Err(CallError::Rejected(format!(
                "the gateway answered HTTP {status} at {label}, redirecting to {target}; redirects are not followed (the request carries the merchant key), so set PAYMENT_API_BASE_URL (now {}) to the address the gateway really serves",
                self.base_url
            )));
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(CallError::Rejected(format!(
                "the gateway answered HTTP 404 at {label}; check PAYMENT_API_BASE_URL ({}) and PAYMENT_EPAY_API_STYLE (`path` for /api.php/getorder…, `act` for /api.php?act=order…)",
                self.base_url
            )));
        }
        if !status.is_success() {
            return Err(CallError::Rejected(format!(
                "the gateway answered HTTP {status} at {label}; check PAYMENT_API_BASE_URL ({})",
                self.base_url
            )));
        }
        Reply::parse(&body)
    }
}

fn config_error(variable: &str, message: &str) -> GatewayError {
    GatewayError::new(ErrorKind::Config, message).with_code(variable)
}

/// `text` with every occurrence of `secret` replaced by [`REDACTED`]. Pure, so tested.
pub fn scrub_secret(text: &str, secret: &str) -> String {
    if secret.is_empty() { text.to_owned() } else { text.replace(secret, REDACTED) }
}

/// The scheme, host and port of a redirect target: its path and query may echo the key.
fn origin_of(location: &str) -> String {
    match reqwest::Url::parse(location) {
        Ok(url) => {
            let host = url.host_str().unwrap_or("?");
            match url.port() {
                Some(port) => format!("{}://{host}:{port}", url.scheme()),
                None => format!("{}://{host}", url.scheme()),
            }
        }
        Err(_) => "a relative address on the same gateway".into(),
    }
}

/// Eight random bytes as a number, for retry jitter; the clock when the OS has no randomness.
fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        return t.as_nanos() as u64;
    }
    u64::from_le_bytes(bytes)
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A short, safe excerpt of a reply body for an error message: markup stripped, whitespace collapsed.
fn snippet(body: &str) -> String {
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
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// Why a call produced no usable reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The request provably never left (connection refused): safe to retry.
    NotSent(String),
    /// The request may have been processed, but no usable reply came back (timeout, HTTP 5xx,
    /// a body that is not a JSON object with a `code`).
    NoReply(String),
    /// A reply that is not an answer: HTTP 3xx or 4xx.
    Rejected(String),
}

/// Whether a read-only call's outcome is worth one more try: transport faults only (epay replies
/// carry no "busy, retry" code).
fn worth_retrying(outcome: &Result<Reply, CallError>) -> bool {
    matches!(outcome, Err(CallError::NotSent(_) | CallError::NoReply(_)))
}

impl CallError {
    /// As an error for a read-only call: nothing can have changed, so every fault is plain.
    fn for_query(self) -> GatewayError {
        match self {
            CallError::NotSent(m) | CallError::NoReply(m) => GatewayError::new(
                ErrorKind::Transport,
                format!("{}. Nothing changed; try the query again shortly.", sentence(&m)),
            ),
            CallError::Rejected(m) => GatewayError::new(ErrorKind::Gateway, format!("{}.", sentence(&m))),
        }
    }

    /// As an error for a call that moves money: a lost reply leaves the outcome unknown.
    fn for_money(self, what: &str, next: &str) -> GatewayError {
        match self {
            CallError::NotSent(m) => GatewayError::new(
                ErrorKind::Transport,
                format!("{}. The {what} was not sent, so nothing changed; it is safe to try again.", sentence(&m)),
            ),
            CallError::NoReply(m) => GatewayError::new(
                ErrorKind::OutcomeUnknown,
                format!("{}, so it is unknown whether the {what} went through. {next}", sentence(&m)),
            ),
            CallError::Rejected(m) => GatewayError::new(
                ErrorKind::Gateway,
                format!("{}. The gateway did not accept the request, so the {what} was not made.", sentence(&m)),
            ),
        }
    }
}

/// A gateway reply: its `code` as text, and every field.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: String,
    pub fields: Map<String, Value>,
}

impl Reply {
    /// Parses a reply body (a UTF-8 byte-order mark and surrounding whitespace are tolerated).
    ///
    /// # Errors
    /// [`CallError::NoReply`] for a body that is not a JSON object or has no `code`.
    pub fn parse(body: &str) -> Result<Reply, CallError> {
        let trimmed = body.trim_start_matches('\u{feff}').trim();
        let fields: Map<String, Value> = match serde_json::from_str(trimmed) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(CallError::NoReply(format!(
                    "the gateway's reply was not a JSON object ({})",
                    snippet(body)
                )));
            }
        };
        let code = fields.get("code").and_then(text).map(|c| c.trim().to_owned()).unwrap_or_default();
        if code.is_empty() {
            return Err(CallError::NoReply(format!("the gateway's reply had no code ({})", snippet(body))));
        }
        Ok(Reply { code, fields })
    }

    /// `code` 1, as a number or a string (`1`, `"1"`, `1.0`).
    pub fn is_success(&self) -> bool {
        self.code.parse::<f64>().is_ok_and(|c| c == 1.0)
    }

    fn get(&self, key: &str) -> Option<String> {
        field(&self.fields, key)
    }

    fn msg(&self) -> String {
        self.get("msg").or_else(|| self.get("message")).unwrap_or_default()
    }

    /// The object holding the payload: `data` when it is an object (some act-style gateways nest
    /// there), else the reply itself.
    fn payload(&self) -> &Map<String, Value> {
        match self.fields.get("data") {
            Some(Value::Object(d)) => d,
            _ => &self.fields,
        }
    }

    /// `code -1: 订单不存在`, or just the code.
    fn said(&self) -> String {
        match self.msg() {
            m if m.is_empty() => format!("code {}", self.code),
            m => format!("code {}: {m}", self.code),
        }
    }
}

/// A scalar JSON value as text: strings as they are, numbers as their literal, booleans as words.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A field as trimmed, non-empty text.
fn field(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(text).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn amount(map: &Map<String, Value>, key: &str) -> Option<Fen> {
    field(map, key).and_then(|s| Fen::from_gateway(&s))
}

/// `YYYY-MM-DD HH:MM:SS` in gateway local time (Asia/Shanghai, UTC+8) → Unix seconds. `None` for
/// anything else, including PHP's zero date `0000-00-00 00:00:00`.
pub fn china_time_to_unix(text: &str) -> Option<i64> {
    let t = chrono::NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
    Some(t.and_utc().timestamp() - CHINA_OFFSET_SECS).filter(|s| *s > 0)
}

/// An epay order `status`: `1` paid, `0` unpaid; anything else (some gateways use `2` for refunded)
/// is not guessed at.
pub fn order_state(status: Option<&str>) -> PaymentState {
    match status {
        Some("1") => PaymentState::Paid,
        Some("0") => PaymentState::Pending,
        _ => PaymentState::Unknown,
    }
}

/// What a failed reply's free-text `msg` says, as far as a client can tell. Epay gateways have no
/// failure codes (`code` is just "not 1"), so this reads the message, in Chinese or English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// An order that does not exist (`订单不存在`).
    NotFound,
    /// Wrong merchant id, key or signature (`商户密钥错误`, `签名校验失败`).
    Auth,
    /// Missing or malformed parameters (`订单号不能为空`, `金额不合法`).
    BadInput,
    /// The gateway does not know the API called (`No Act!`): likely the other query-API style.
    WrongApi,
    /// Anything else: a business refusal or an internal error.
    Other,
}

const NOT_FOUND_WORDS: &[&str] = &[
    "不存在",
    "无此",
    "未找到",
    "找不到",
    "没有找到",
    "查询不到",
    "not exist",
    "not found",
    "no such",
    "doesn't exist",
];
const ORDER_WORDS: &[&str] = &["订单", "order", "trade"];
/// Deliberately narrow: `商户` alone is not enough (`商户未开通该支付方式` is a business refusal), but
/// a merchant that does not exist or a wrong merchant number is a credentials problem.
const AUTH_WORDS: &[&str] = &[
    "密钥",
    "签名",
    "验签",
    "商户不存在",
    "商户号",
    "商户id",
    "key",
    "sign",
    "pid",
    "merchant id",
    "merchant not",
    "invalid merchant",
    "unauthori",
    "authenticat",
];
const BAD_INPUT_WORDS: &[&str] =
    &["不能为空", "不合法", "格式错误", "格式不正确", "参数", "缺少", "invalid", "missing", "required", "empty"];
const WRONG_API_WORDS: &[&str] = &["no act", "接口", "api", "action", "method"];

/// Classifies a failed reply's message. Order matters: an order that does not exist is NotFound even
/// when the message says `商户订单号` (merchant order number); otherwise credential words win, so
/// `商户不存在` (merchant does not exist) is Auth.
pub fn classify_failure(msg: &str) -> Failure {
    let m = msg.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| m.contains(w));
    let not_found = has(NOT_FOUND_WORDS);
    if not_found && has(ORDER_WORDS) {
        Failure::NotFound
    } else if has(AUTH_WORDS) {
        Failure::Auth
    } else if has(BAD_INPUT_WORDS) {
        Failure::BadInput
    } else if has(WRONG_API_WORDS) {
        Failure::WrongApi
    } else if not_found {
        Failure::NotFound
    } else {
        Failure::Other
    }
}

/// Which call a failed reply answered: the same message means different things to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Create,
    Query,
    Refund,
}

/// The error for a `code` other than 1. Credential problems are [`ErrorKind::Auth`] and malformed
/// parameters [`ErrorKind::InvalidInput`] on every call; an unknown order is [`ErrorKind::NotFound`]
/// on queries and refunds; any other failure is [`ErrorKind::Refused`] on create and refund (a
/// business decision: do not retry unchanged) and [`ErrorKind::Gateway`] on queries.
fn failure_error(reply: &Reply, call: Call) -> GatewayError {
    let said = reply.said();
    let msg = reply.msg();
    let err = match (classify_failure(&msg), call) {
        (Failure::Auth, _) => GatewayError::new(
            ErrorKind::Auth,
            format!(
                "The gateway rejected the merchant credentials or the request signature ({said}). Stop and check PAYMENT_MERCHANT_ID (the pid) and PAYMENT_SIGN_KEY (the merchant key) in the MCP client's configuration; retrying will not help."
            ),
        ),
        (Failure::NotFound, Call::Query | Call::Refund) => GatewayError::new(
            ErrorKind::NotFound,
            format!(
                "The gateway has no such order ({said}). Check the number: order_no is the gateway's trade_no, merchant_order_no is your out_trade_no."
            ),
        ),
        (Failure::BadInput, _) => GatewayError::new(
            ErrorKind::InvalidInput,
            format!("The gateway refused the request's parameters ({said}). Correct them before trying again."),
        ),
        (Failure::WrongApi, Call::Query) => GatewayError::new(
            ErrorKind::Gateway,
            format!(
                "The gateway did not recognise the query API ({said}). It may speak the other query-API style: check PAYMENT_EPAY_API_STYLE (`path` or `act`) and PAYMENT_API_BASE_URL."
            ),
        ),
        (_, Call::Create) => {
            let lower = msg.to_lowercase();
            let duplicate = ["已存在", "重复", "already", "duplicate"].iter().any(|w| lower.contains(w));
            let hint = if duplicate {
                " An order with this merchant_order_no may already exist on the gateway (perhaps from an earlier attempt): call query_payment_order with it before anything else."
            } else {
                " This is the gateway's decision (for example the pay type is not enabled for this merchant, or the amount is out of range): change the request or ask the gateway; do not retry unchanged."
            };
            GatewayError::new(ErrorKind::Refused, format!("The gateway refused to create the order ({said}).{hint}"))
        }
        (_, Call::Refund) => GatewayError::new(
            ErrorKind::Refused,
            format!(
                "The gateway refused the refund ({said}). This is the gateway's decision (for example the order is unpaid, or the amount exceeds what is left to refund); do not retry unchanged."
            ),
        ),
        (_, Call::Query) => GatewayError::new(
            ErrorKind::Gateway,
            format!("The gateway reported an error ({said}). Try again later, or contact the gateway if it persists."),
        ),
    };
    err.with_code(reply.code.clone())
}

/// Reads a `mapi.php` reply: the platform order number (never a URL), the pay target (`payurl`, else
/// `qrcode`, else `urlscheme`), the QR content (`qrcode` when present, so the QR encodes it rather
/// than the pay page) and what the payer will be charged (`price`, when it parses).
///
/// # Errors
/// A `code` other than 1 (see [`failure_error`]), or a success reply with no pay target at all.
pub fn parse_create(reply: &Reply) -> Result<CreatedOrder, GatewayError> {
    if !reply.is_success() {
        return Err(failure_error(reply, Call::Create));
    }
    let p = reply.payload();
    let qrcode = field(p, "qrcode");
    let pay_url = field(p, "payurl").or_else(|| qrcode.clone()).or_else(|| field(p, "urlscheme"));
    let platform_order_no = field(p, "trade_no").filter(|no| !no.contains("://"));
    let Some(pay_url) = pay_url else {
        let which = match &platform_order_no {
            Some(no) => format!(" (trade_no {no})"),
            None => String::new(),
        };
        return Err(GatewayError::new(
            ErrorKind::Gateway,
            format!(
                "The gateway accepted the order{which} but its reply held no payurl, qrcode or urlscheme, so there is nothing to show the payer. Do not create it again under another merchant_order_no; query it by merchant_order_no to see its state, or contact the gateway."
            ),
        )
        .with_code(reply.code.clone()));
    };
    Ok(CreatedOrder {
        platform_order_no,
        pay_url: Some(pay_url),
        qr_content: qrcode,
        charged_amount: amount(p, "price").filter(|f| f.0 > 0),
        raw_status: reply.code.clone(),
        message: reply.msg(),
    })
}

/// Reads a `getorder` / `act=order` reply (flat, or nested under `data`).
///
/// # Errors
/// A `code` other than 1 (see [`failure_error`]), or an answer about a different order than asked.
pub fn parse_query(reply: &Reply, order: &OrderRef) -> Result<OrderStatus, GatewayError> {
    if !reply.is_success() {
        return Err(failure_error(reply, Call::Query));
    }
    let p = reply.payload();
    let platform_order_no = field(p, "trade_no");
    let merchant_order_no = field(p, "out_trade_no");
    let (asked, got) = match order {
        OrderRef::Platform(no) => (no, &platform_order_no),
        OrderRef::Merchant { merchant_order_no: no, .. } => (no, &merchant_order_no),
    };
    if let Some(got) = got
        && got != asked.trim()
    {
        return Err(GatewayError::new(
            ErrorKind::Gateway,
            format!(
                "The gateway answered about order {got} when asked about {asked}, so its answer was not used. Query again; if it persists, contact the gateway."
            ),
        )
        .with_code(reply.code.clone()));
    }
    let raw_paystatus = field(p, "status");
    let state = order_state(raw_paystatus.as_deref());
    let paid = state == PaymentState::Paid;
    let amount_due = amount(p, "money");
    Ok(OrderStatus {
        state,
        platform_order_no,
        merchant_order_no,
        amount: amount_due,
        paid_amount: if paid { amount(p, "price").or(amount_due) } else { None },
        paid_time: if paid { field(p, "endtime").and_then(|t| china_time_to_unix(&t)) } else { None },
        order_time: field(p, "addtime").and_then(|t| china_time_to_unix(&t)),
        raw_status: reply.code.clone(),
        raw_paystatus,
        message: reply.msg(),
        pending_reason: None,
    })
}

/// One order of a list reply.
pub fn order_summary(o: &Map<String, Value>) -> OrderSummary {
    let amount_due = amount(o, "money");
    let state = field(o, "status").map(|s| order_state(Some(&s)));
    OrderSummary {
        platform_order_no: field(o, "trade_no"),
        merchant_order_no: field(o, "out_trade_no"),
        pay_type: field(o, "type"),
        name: field(o, "name"),
        amount: amount_due,
        charged_amount: amount(o, "price").filter(|p| Some(*p) != amount_due && p.0 > 0),
        state,
        created_at: field(o, "addtime"),
        paid_at: if state == Some(PaymentState::Paid) { field(o, "endtime") } else { None },
    }
}

/// The order objects of a list: an array, a PHP associative array serialised as an object of
/// objects, or an object holding `list`.
fn order_items(v: &Value) -> Option<Vec<&Map<String, Value>>> {
    match v {
        Value::Array(items) => Some(items.iter().filter_map(Value::as_object).collect()),
        Value::Object(m) => match m.get("list") {
            Some(list) => order_items(list),
            None => Some(m.values().filter_map(Value::as_object).collect()),
        },
        _ => None,
    }
}

/// Whether an order matches a list query's filters, applied here for act-style gateways, whose
/// `act=orders` takes only `page` and `limit`. An order whose field is missing or unreadable does
/// not match a filter on that field. Times compare as `YYYY-MM-DD HH:MM:SS` China time.
fn matches_filters(o: &OrderSummary, query: &ListQuery) -> bool {
    if let Some(state) = query.state
        && o.state != Some(state)
    {
        return false;
    }
    if let Some(pay_type) = query.pay_type.as_deref().map(str::trim).filter(|t| !t.is_empty())
        && o.pay_type.as_deref() != Some(pay_type)
    {
        return false;
    }
    let created = o.created_at.as_deref().and_then(china_time_to_unix);
    let bound = |t: &Option<String>| t.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(china_time_to_unix);
    if let Some(start) = bound(&query.start_time)
        && !matches!((created, start), (Some(c), Some(s)) if c >= s)
    {
        return false;
    }
    if let Some(end) = bound(&query.end_time)
        && !matches!((created, end), (Some(c), Some(e)) if c <= e)
    {
        return false;
    }
    true
}

fn number(map: &Map<String, Value>, key: &str) -> Option<u64> {
    field(map, key).and_then(|s| s.parse::<u64>().ok())
}

/// Reads a `getorders` (`total`, `page`, `limit`, `list`) or `act=orders` (`data`) reply. With
/// `filter_here`, the query's filters are applied to the returned page (act style) and the total is
/// left unknown, since the gateway's total counts unfiltered orders.
///
/// # Errors
/// A `code` other than 1.
pub fn parse_list(reply: &Reply, query: &ListQuery, filter_here: bool) -> Result<OrderPage, GatewayError> {
    if !reply.is_success() {
        return Err(failure_error(reply, Call::Query));
    }
    let f = &reply.fields;
    let meta = match f.get("data") {
        Some(Value::Object(d)) if d.contains_key("list") => d,
        _ => f,
    };
    let items = f.get("list").and_then(order_items).or_else(|| f.get("data").and_then(order_items)).unwrap_or_default();
    let mut orders: Vec<OrderSummary> = items.into_iter().map(order_summary).collect();
    let mut total = number(meta, "total").or_else(|| number(meta, "count"));
    if filter_here {
        orders.retain(|o| matches_filters(o, query));
        total = None;
    }
    let page = number(meta, "page").and_then(|p| u32::try_from(p).ok()).filter(|p| *p > 0).unwrap_or(query.page);
    let limit = number(meta, "limit").and_then(|l| u32::try_from(l).ok()).filter(|l| *l > 0).unwrap_or(query.limit);
    Ok(OrderPage { total, page, limit, orders })
}

/// Whether a field name suggests a secret; such fields never reach [`MerchantInfo::extra`].
fn secret_name(name: &str) -> bool {
    let n = name.to_lowercase();
    ["key", "secret", "token", "password", "passwd", "pwd", "sign"].iter().any(|w| n.contains(w))
}

/// Fields that [`parse_merchant`] maps to their own [`MerchantInfo`] fields or that are envelope.
const MERCHANT_KNOWN: &[&str] = &["code", "msg", "message", "data", "pid", "username", "money", "status", "active"];

/// Reads a `getuser` / `act=query` reply. The act-style reply echoes the merchant key: every field
/// whose name suggests a secret, and every value that contains `key`, is dropped.
///
/// # Errors
/// A `code` other than 1.
pub fn parse_merchant(reply: &Reply, merchant_id: &str, key: &str) -> Result<MerchantInfo, GatewayError> {
    if !reply.is_success() {
        return Err(failure_error(reply, Call::Query));
    }
    let p = reply.payload();
    let safe = |v: &String| key.is_empty() || !v.contains(key);
    let extra = p
        .iter()
        .filter(|(k, _)| !MERCHANT_KNOWN.contains(&k.as_str()) && !secret_name(k))
        .filter_map(|(k, v)| text(v).map(|t| (k.clone(), t.trim().to_owned())))
        .filter(|(_, v)| !v.is_empty() && safe(v))
        .collect();
    Ok(MerchantInfo {
        merchant_id: field(p, "pid").filter(safe).unwrap_or_else(|| merchant_id.to_owned()),
        name: field(p, "username").filter(safe),
        balance: amount(p, "money"),
        status: field(p, "status").or_else(|| field(p, "active")).filter(safe),
        extra,
    })
}

/// Reads an `act=refund` reply: `code` 1 is accepted (processing: the protocol cannot confirm
/// settlement), never refunded.
///
/// # Errors
/// A `code` other than 1 (see [`failure_error`]).
pub fn parse_refund(reply: &Reply, req: &RefundRequest) -> Result<RefundAccepted, GatewayError> {
    if !reply.is_success() {
        return Err(failure_error(reply, Call::Refund));
    }
    let message = match reply.msg() {
        m if m.is_empty() => REFUND_PROCESSING_NOTE.to_owned(),
        m => format!("{m}. {REFUND_PROCESSING_NOTE}"),
    };
    Ok(RefundAccepted {
        state: RefundState::Processing,
        refund_no: None,
        mch_refund_no: req.mch_refund_no.clone(),
        order_no: Some(req.order_no.clone()),
        raw_status: reply.code.clone(),
        message,
    })
}

/// Verifies an epay payment notification with the merchant `key`: the epay rule (every field except
/// `sign` and `sign_type`, empty values dropped, sorted, key appended) over the decoded fields. Paid
/// only with a valid signature and `trade_status = TRADE_SUCCESS`; `WAIT_BUYER_PAY` reads as pending
/// and `TRADE_CLOSED` as closed, anything else (or an invalid signature) as unknown.
pub fn verify_epay_notification(raw: &str, key: &str) -> Notification {
    let fields = super::notification_fields(raw);
    let given = fields.iter().find(|(k, _)| k == "sign").map(|(_, v)| v.clone()).unwrap_or_default();
    let signature_valid =
        !key.is_empty() && !given.is_empty() && sign::signatures_match(&sign::epay_sign(&fields, key), &given);
    let get =
        |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_owned()).filter(|v| !v.is_empty());
    let raw_status = get("trade_status");
    let state = match (signature_valid, raw_status.as_deref()) {
        (true, Some("TRADE_SUCCESS")) => PaymentState::Paid,
        (true, Some("WAIT_BUYER_PAY")) => PaymentState::Pending,
        (true, Some("TRADE_CLOSED")) => PaymentState::Closed,
        _ => PaymentState::Unknown,
    };
    Notification {
        signature_valid,
        platform_order_no: get("trade_no"),
        merchant_order_no: get("out_trade_no"),
        amount: get("money").and_then(|m| Fen::from_gateway(&m)),
        state,
        raw_status,
        fields: fields.into_iter().filter(|(k, _)| k != "sign").collect(),
    }
}

/// The status filter the path-style `getorders` takes (`0` unpaid, `1` paid).
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for states epay orders never have: filtering on them would silently
/// return everything (path style) or nothing (act style).
fn status_filter(state: Option<PaymentState>) -> Result<Option<&'static str>, GatewayError> {
    match state {
        None => Ok(None),
        Some(PaymentState::Pending) => Ok(Some("0")),
        Some(PaymentState::Paid) => Ok(Some("1")),
        Some(other) => Err(GatewayError::new(
            ErrorKind::InvalidInput,
            format!(
                "Epay gateways only record orders as pending (unpaid) or paid, so they cannot filter by `{}`; filter by pending or paid, or not by state. Nothing was sent.",
                other.name()
            ),
        )),
    }
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

#[async_trait]
impl Gateway for EpayClient {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Epay
    }

    fn merchant_query_needs_order_time(&self) -> bool {
        false
    }

    async fn create_order(&self, req: &CreateRequest) -> Result<CreatedOrder, GatewayError> {
        let (Some(notify_url), Some(return_url)) =
            (non_empty(req.notify_url.as_deref()), non_empty(req.return_url.as_deref()))
        else {
            return Err(GatewayError::new(
                ErrorKind::InvalidInput,
                "The epay gateway requires both notify_url and return_url: pass them to create_payment_order or set PAYMENT_NOTIFY_URL and PAYMENT_RETURN_URL; nothing was sent.",
            ));
        };
        let pay_type = non_empty(req.pay_type.as_deref()).unwrap_or(&self.default_pay_type);
        let name = non_empty(req.subject.as_deref()).unwrap_or(&req.merchant_order_no);
        let mut fields: Vec<(&'static str, String)> = vec![
            ("pid", self.merchant_id.clone()),
            ("type", pay_type.to_owned()),
            ("out_trade_no", req.merchant_order_no.clone()),
            ("notify_url", notify_url.to_owned()),
            ("return_url", return_url.to_owned()),
            ("name", name.to_owned()),
            ("money", req.amount.to_yuan()),
        ];
        let signature = sign::epay_sign(&fields, self.key.expose_secret());
        fields.push(("sign", signature));
        fields.push(("sign_type", "MD5".to_owned()));
        let result = match self.send(Endpoint::post(PATH_CREATE), &fields).await {
            Ok(reply) => parse_create(&reply),
            Err(e) => Err(e.for_money("order", CREATE_UNKNOWN_NEXT)),
        };
        result
            .map(|mut c| {
                c.message = self.scrub(&c.message);
                c
            })
            .map_err(|e| self.scrub_error(e))
    }

    async fn query_order(&self, order: &OrderRef) -> Result<OrderStatus, GatewayError> {
        let mut fields = self.auth_fields();
        match order {
            OrderRef::Platform(no) => fields.push(("trade_no", no.trim().to_owned())),
            // The order time LFWin needs is not part of the epay protocol.
            OrderRef::Merchant { merchant_order_no, .. } => {
                fields.push(("out_trade_no", merchant_order_no.trim().to_owned()));
            }
        }
        let result = match self.send_query(self.query_endpoint(QueryOp::Order), &fields).await {
            Ok(reply) => parse_query(&reply, order),
            Err(e) => Err(e.for_query()),
        };
        result
            .map(|mut s| {
                s.message = self.scrub(&s.message);
                s
            })
            .map_err(|e| self.scrub_error(e))
    }

    async fn refund(&self, req: &RefundRequest) -> Result<RefundAccepted, GatewayError> {
        if self.api_style == EpayApiStyle::Path {
            return Err(GatewayError::new(
                ErrorKind::Refused,
                "This epay gateway (path-style API) documents no refund API; refund in the gateway's merchant console. Nothing was sent. (If the gateway also speaks the classic act-style API with act=refund, set PAYMENT_EPAY_API_STYLE=act.)",
            ));
        }
        let mut fields = self.auth_fields();
        fields.push(("trade_no", req.order_no.trim().to_owned()));
        fields.push(("money", req.amount.to_yuan()));
        let result = match self.send(Endpoint::act(Method::Post, "refund"), &fields).await {
            Ok(reply) => parse_refund(&reply, req),
            Err(e) => Err(e.for_money("refund", REFUND_UNKNOWN_NEXT)),
        };
        result
            .map(|mut a| {
                a.message = self.scrub(&a.message);
                a
            })
            .map_err(|e| self.scrub_error(e))
    }

    /// The protocol has no refund query: an error, without a request, rather than an invented state.
    async fn query_refund(&self, _query: &RefundQuery) -> Result<RefundStatus, GatewayError> {
        Err(GatewayError::new(
            ErrorKind::Refused,
            "The epay protocol has no refund query API, so this server cannot report a refund's state; check the refund in the gateway's merchant console. Nothing was sent.",
        ))
    }

    fn can_list_orders(&self) -> bool {
        true
    }

    /// Path style passes every filter to `getorders`. Act style's `act=orders` takes only `page` and
    /// `limit`, so the state, pay type and time filters are applied here to the page the gateway
    /// returned: a page may then hold fewer than `limit` orders (or none) while later pages still
    /// match, and the total is unknown.
    async fn list_orders(&self, query: &ListQuery) -> Result<OrderPage, GatewayError> {
        let status = status_filter(query.state)?;
        for (name, value) in [("start_time", &query.start_time), ("end_time", &query.end_time)] {
            if let Some(v) = non_empty(value.as_deref())
                && china_time_to_unix(v).is_none()
            {
                return Err(GatewayError::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "`{name}` must be `YYYY-MM-DD HH:MM:SS` (China time), e.g. 2026-11-25 00:00:00. Nothing was sent."
                    ),
                ));
            }
        }
        let page = query.page.max(1);
        let limit = query.limit.clamp(1, 100);
        let query = ListQuery { page, limit, ..query.clone() };
        let mut fields = self.auth_fields();
        fields.push(("page", page.to_string()));
        fields.push(("limit", limit.to_string()));
        let filter_here = self.api_style == EpayApiStyle::Act;
        if !filter_here {
            if let Some(status) = status {
                fields.push(("status", status.to_owned()));
            }
            let optional =
                [("type", &query.pay_type), ("start_time", &query.start_time), ("end_time", &query.end_time)];
            for (name, value) in optional {
                if let Some(v) = non_empty(value.as_deref()) {
                    fields.push((name, v.to_owned()));
                }
            }
        }
        let result = match self.send_query(self.query_endpoint(QueryOp::Orders), &fields).await {
            Ok(reply) => parse_list(&reply, &query, filter_here),
            Err(e) => Err(e.for_query()),
        };
        result.map_err(|e| self.scrub_error(e))
    }

    fn can_describe_merchant(&self) -> bool {
        true
    }

    async fn merchant_info(&self) -> Result<MerchantInfo, GatewayError> {
        let fields = self.auth_fields();
        let result = match self.send_query(self.query_endpoint(QueryOp::User), &fields).await {
            Ok(reply) => parse_merchant(&reply, &self.merchant_id, self.key.expose_secret()),
            Err(e) => Err(e.for_query()),
        };
        result.map_err(|e| self.scrub_error(e))
    }

    fn verify_notification(&self, raw: &str) -> Notification {
        verify_epay_notification(raw, self.key.expose_secret())
    }
}
