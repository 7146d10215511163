//! The epay client's HTTP edge: where each call goes in each query-API style, what fields it sends,
//! and sending one request.
//!
//! Kept apart from reply parsing because this is the only place that touches the network and the
//! only place the merchant key travels: the query API authenticates with the key itself, in the form
//! body (POST) or the query string (act-style GET). So nothing here logs a URL or a body, reqwest
//! errors lose their URL before they are formatted, and redirects are refused rather than followed
//! (a redirect would resend the key elsewhere; the error names only the target's origin). Read-only
//! calls retry transport faults ([`transport::with_retries`]); create and refund are sent once.
//!
//! The field builders ([`create_fields`], [`list_fields`], [`order_field`]) and [`status_filter`]
//! are pure and unit tested here; the wire itself (methods, query string against form body,
//! redirects, HTTP errors) is tested through the binary against the fake epay gateway in
//! `tests/it/epay_client.rs`.

use crate::error::{ErrorKind, PaymentError};
use std::time::Duration;

use super::super::transport::{self, CallError, root_cause};
use super::super::{CreateRequest, ListQuery, OrderRef, PaymentState};
use super::EpayApiStyle;
use super::{EpayClient, Reply};
use crate::sign;
use crate::time::china_time_to_unix;
use secrecy::ExposeSecret;

pub(super) const PATH_CREATE: &str = "/mapi.php";
const PATH_API: &str = "/api.php";
const PATH_GETORDER: &str = "/api.php/getorder";
const PATH_GETORDERS: &str = "/api.php/getorders";
const PATH_GETUSER: &str = "/api.php/getuser";

/// HTTP method of one API call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Get,
    Post,
}

/// Where one API call goes: method, path and, for act-style calls, the `act` (sent in the query string
/// ahead of any other field, so a POST's form body holds only the call's own fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Endpoint {
    method: Method,
    path: &'static str,
    act: Option<&'static str>,
}

impl Endpoint {
    pub(super) const fn post(path: &'static str) -> Endpoint {
        Endpoint { method: Method::Post, path, act: None }
    }

    pub(super) const fn act(method: Method, act: &'static str) -> Endpoint {
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
pub(super) enum QueryOp {
    Order,
    Orders,
    User,
}

/// The endpoint of a read-only call in an API style.
fn query_endpoint(style: EpayApiStyle, op: QueryOp) -> Endpoint {
    match (style, op) {
        (EpayApiStyle::Path, QueryOp::Order) => Endpoint::post(PATH_GETORDER),
        (EpayApiStyle::Path, QueryOp::Orders) => Endpoint::post(PATH_GETORDERS),
        (EpayApiStyle::Path, QueryOp::User) => Endpoint::post(PATH_GETUSER),
        (EpayApiStyle::Act, QueryOp::Order) => Endpoint::act(Method::Get, "order"),
        (EpayApiStyle::Act, QueryOp::Orders) => Endpoint::act(Method::Get, "orders"),
        (EpayApiStyle::Act, QueryOp::User) => Endpoint::act(Method::Get, "query"),
    }
}

/// The HTTP client: a whole-request `timeout`, a connect timeout of at most 5 s, and no redirects.
///
/// # Errors
/// [`ErrorKind::Config`] when the TLS backend cannot be initialised.
pub(super) fn build_client(timeout: Duration) -> Result<reqwest::Client, PaymentError> {
    transport::client_builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("payment-mcp/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| transport::client_error(&e))
}

impl EpayClient {
    /// The endpoint of a read-only call in this gateway's API style.
    pub(super) fn query_endpoint(&self, op: QueryOp) -> Endpoint {
        query_endpoint(self.api_style, op)
    }

    /// `pid` and `key`: how the query API authenticates (the key itself travels, as the protocol says).
    pub(super) fn auth_fields(&self) -> Vec<(&'static str, String)> {
        vec![("pid", self.merchant_id.clone()), ("key", self.key.expose_secret().to_owned())]
    }

    /// Sends a read-only request, retrying transport faults (see [`transport::with_retries`]).
    pub(super) async fn send_query(
        &self,
        endpoint: Endpoint,
        fields: &[(&'static str, String)],
    ) -> Result<Reply, CallError> {
        transport::with_retries(self.timeout, endpoint.path, worth_retrying, || self.send(endpoint, fields)).await
    }

    /// Sends one request and parses the reply. The URL and body are never logged and reqwest errors
    /// lose their URL before they are formatted: both may hold the merchant key.
    pub(super) async fn send(&self, endpoint: Endpoint, fields: &[(&'static str, String)]) -> Result<Reply, CallError> {
        transport::timed("epay", &endpoint.label(), self.send_once(endpoint, fields)).await
    }

    async fn send_once(&self, endpoint: Endpoint, fields: &[(&'static str, String)]) -> Result<Reply, CallError> {
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
        let label = endpoint.label();
        if let Some(target) = transport::redirect_target(&response) {
            return Err(CallError::Rejected(format!(
                "the gateway answered HTTP {} at {label}, redirecting to {target}; redirects are not followed (the request carries the merchant key), so set PAYMENT_API_BASE_URL (now {}) to the address the gateway really serves",
                response.status(),
                self.base_url
            )));
        }
        let (status, body) = transport::reply_body(response).await?;
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

/// Whether a read-only call's outcome is worth one more try: transport faults only (epay replies
/// carry no "busy, retry" code).
fn worth_retrying(outcome: &Result<Reply, CallError>) -> bool {
    matches!(outcome, Err(CallError::NotSent(_) | CallError::NoReply(_)))
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// The signed `mapi.php` form for a new order: the request's pay type, else `default_pay_type`; its
/// subject, else the merchant order number, as the item name; `sign` and `sign_type` last. The key
/// signs the form but is not part of it.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] when `notify_url` or `return_url` is missing or blank: the protocol
/// requires both, so nothing is sent.
pub(super) fn create_fields(
    req: &CreateRequest,
    merchant_id: &str,
    key: &str,
    default_pay_type: &str,
) -> Result<Vec<(&'static str, String)>, PaymentError> {
    let (Some(notify_url), Some(return_url)) =
        (non_empty(req.notify_url.as_deref()), non_empty(req.return_url.as_deref()))
    else {
        return Err(PaymentError::new(
            ErrorKind::InvalidInput,
            "The epay gateway requires both notify_url and return_url: pass them to create_payment_order or set PAYMENT_NOTIFY_URL and PAYMENT_RETURN_URL; nothing was sent.",
        ));
    };
    let pay_type = non_empty(req.pay_type.as_deref()).unwrap_or(default_pay_type);
    let name = non_empty(req.subject.as_deref()).unwrap_or(&req.merchant_order_no);
    let mut fields: Vec<(&'static str, String)> = vec![
        ("pid", merchant_id.to_owned()),
        ("type", pay_type.to_owned()),
        ("out_trade_no", req.merchant_order_no.clone()),
        ("notify_url", notify_url.to_owned()),
        ("return_url", return_url.to_owned()),
        ("name", name.to_owned()),
        ("money", req.amount.to_yuan()),
    ];
    let signature = sign::epay_sign(&fields, key);
    fields.push(("sign", signature));
    fields.push(("sign_type", "MD5".to_owned()));
    Ok(fields)
}

/// The field naming the order of an order query. The order time LFWin needs is not part of the epay
/// protocol.
pub(super) fn order_field(order: &OrderRef) -> (&'static str, String) {
    match order {
        OrderRef::Platform(no) => ("trade_no", no.trim().to_owned()),
        OrderRef::Merchant { merchant_order_no, .. } => ("out_trade_no", merchant_order_no.trim().to_owned()),
    }
}

/// The status filter the path-style `getorders` takes (`0` unpaid, `1` paid).
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for states epay orders never have: filtering on them would silently
/// return everything (path style) or nothing (act style).
fn status_filter(state: Option<PaymentState>) -> Result<Option<&'static str>, PaymentError> {
    match state {
        None => Ok(None),
        Some(PaymentState::Pending) => Ok(Some("0")),
        Some(PaymentState::Paid) => Ok(Some("1")),
        Some(other) => Err(PaymentError::new(
            ErrorKind::InvalidInput,
            format!(
                "Epay gateways only record orders as pending (unpaid) or paid, so they cannot filter by `{}`; filter by pending or paid, or not by state. Nothing was sent.",
                other.name()
            ),
        )),
    }
}

/// An order-list request, before the auth fields.
#[derive(Debug)]
pub(super) struct ListFields {
    /// The query as sent: page at least 1, limit within 1..=100.
    pub query: ListQuery,
    /// `page` and `limit`, then (path style only) the filters that are set.
    pub fields: Vec<(&'static str, String)>,
    /// Whether the filters are left to the client (act style, whose `act=orders` takes none).
    pub filter_here: bool,
}

/// The fields of an order-list request in `style`.
///
/// # Errors
/// [`ErrorKind::InvalidInput`] for a state epay orders never have, or a time that is not
/// `YYYY-MM-DD HH:MM:SS`; nothing is sent.
pub(super) fn list_fields(style: EpayApiStyle, query: &ListQuery) -> Result<ListFields, PaymentError> {
    let status = status_filter(query.state)?;
    for (name, value) in [("start_time", &query.start_time), ("end_time", &query.end_time)] {
        if let Some(v) = non_empty(value.as_deref())
            && china_time_to_unix(v).is_none()
        {
            return Err(PaymentError::new(
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
    let mut fields = vec![("page", page.to_string()), ("limit", limit.to_string())];
    let filter_here = style == EpayApiStyle::Act;
    if !filter_here {
        if let Some(status) = status {
            fields.push(("status", status.to_owned()));
        }
        let optional = [("type", &query.pay_type), ("start_time", &query.start_time), ("end_time", &query.end_time)];
        for (name, value) in optional {
            if let Some(v) = non_empty(value.as_deref()) {
                fields.push((name, v.to_owned()));
            }
        }
    }
    Ok(ListFields { query, fields, filter_here })
}

#[cfg(test)]
mod tests {
    use crate::money::Fen;

    use super::*;

    const KEY: &str = "k3yS3cr3tValue0123456789abcdefgh";
    const PID: &str = "1001";

    fn create_req(no: &str) -> CreateRequest {
        CreateRequest {
            merchant_order_no: no.into(),
            amount: Fen(1000),
            notify_url: Some("https://shop.example.com/notify?a=1&b=2".into()),
            return_url: Some("https://shop.example.com/return".into()),
            subject: Some("VIP 月卡 & more".into()),
            pay_type: None,
            order_time: 1_717_216_496,
            channel: crate::provider::PayChannel::Qr,
        }
    }

    fn get<'a>(fields: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        fields.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn create_form_is_signed_and_never_carries_the_key() {
        let fields = create_fields(&create_req("M-1001"), PID, KEY, "wxpay").unwrap();
        for (k, v) in [
            ("pid", PID),
            ("type", "wxpay"),
            ("out_trade_no", "M-1001"),
            ("notify_url", "https://shop.example.com/notify?a=1&b=2"),
            ("return_url", "https://shop.example.com/return"),
            ("name", "VIP 月卡 & more"),
            ("money", "10.00"),
            ("sign_type", "MD5"),
        ] {
            assert_eq!(get(&fields, k), Some(v), "{k}");
        }
        assert_eq!(get(&fields, "key"), None, "the key never travels to mapi.php");
        assert_eq!(get(&fields, "sign"), Some(sign::epay_sign(&fields, KEY).as_str()));

        // The request's own pay type wins, and the merchant number names the item when no subject.
        let req = CreateRequest { pay_type: Some("alipay".into()), subject: None, ..create_req("M-2") };
        let fields = create_fields(&req, PID, KEY, "wxpay").unwrap();
        assert_eq!((get(&fields, "type"), get(&fields, "name")), (Some("alipay"), Some("M-2")));
    }

    #[test]
    fn create_without_both_urls_is_refused_before_sending() {
        for req in [
            CreateRequest { notify_url: None, ..create_req("M-1") },
            CreateRequest { return_url: None, ..create_req("M-1") },
            CreateRequest { return_url: Some(" ".into()), ..create_req("M-1") },
        ] {
            let err = create_fields(&req, PID, KEY, "wxpay").unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInput);
            assert!(err.message.contains("PAYMENT_RETURN_URL") && err.message.contains("nothing was sent"));
        }
    }

    #[test]
    fn endpoints_per_style() {
        let label = |style, op| {
            let e = query_endpoint(style, op);
            (e.method, e.label())
        };
        assert_eq!(label(EpayApiStyle::Path, QueryOp::Order), (Method::Post, PATH_GETORDER.to_owned()));
        assert_eq!(label(EpayApiStyle::Path, QueryOp::Orders), (Method::Post, PATH_GETORDERS.to_owned()));
        assert_eq!(label(EpayApiStyle::Path, QueryOp::User), (Method::Post, PATH_GETUSER.to_owned()));
        assert_eq!(label(EpayApiStyle::Act, QueryOp::Order), (Method::Get, "/api.php?act=order".to_owned()));
        assert_eq!(label(EpayApiStyle::Act, QueryOp::Orders), (Method::Get, "/api.php?act=orders".to_owned()));
        assert_eq!(label(EpayApiStyle::Act, QueryOp::User), (Method::Get, "/api.php?act=query".to_owned()));
        assert_eq!(Endpoint::act(Method::Post, "refund").label(), "/api.php?act=refund");
        assert_eq!(Endpoint::post(PATH_CREATE).label(), "/mapi.php");
    }

    #[test]
    fn order_fields() {
        assert_eq!(order_field(&OrderRef::Platform(" T1 ".into())), ("trade_no", "T1".to_owned()));
        let by_merchant = OrderRef::Merchant { merchant_order_no: "M-1001".into(), order_time: Some(1) };
        assert_eq!(order_field(&by_merchant), ("out_trade_no", "M-1001".to_owned()));
    }

    #[test]
    fn list_fields_per_style() {
        let query = ListQuery {
            page: 2,
            limit: 2,
            state: Some(PaymentState::Paid),
            pay_type: Some("alipay".into()),
            start_time: Some("2024-06-01 00:00:00".into()),
            end_time: None,
        };
        let path = list_fields(EpayApiStyle::Path, &query).unwrap();
        assert!(!path.filter_here);
        let names: Vec<&str> = path.fields.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, ["page", "limit", "status", "type", "start_time"]);
        for (k, v) in [("page", "2"), ("limit", "2"), ("status", "1"), ("type", "alipay")] {
            assert_eq!(get(&path.fields, k), Some(v), "{k}");
        }
        assert_eq!(get(&path.fields, "start_time"), Some("2024-06-01 00:00:00"));
        let act = list_fields(EpayApiStyle::Act, &query).unwrap();
        assert!(act.filter_here);
        assert_eq!(act.fields, [("page", "2".to_owned()), ("limit", "2".to_owned())]);
        assert_eq!(act.query, query, "the filters are kept for the client to apply");

        let clamped = list_fields(EpayApiStyle::Path, &ListQuery { page: 0, limit: 500, ..ListQuery::default() });
        let clamped = clamped.unwrap();
        assert_eq!((clamped.query.page, clamped.query.limit), (1, 100));
        assert_eq!(clamped.fields, [("page", "1".to_owned()), ("limit", "100".to_owned())]);

        for style in [EpayApiStyle::Path, EpayApiStyle::Act] {
            let bad = ListQuery { state: Some(PaymentState::Closed), ..query.clone() };
            assert_eq!(list_fields(style, &bad).unwrap_err().kind, ErrorKind::InvalidInput);
            let bad = ListQuery { end_time: Some("yesterday".into()), ..query.clone() };
            let err = list_fields(style, &bad).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidInput);
            assert!(err.message.contains("end_time") && err.message.contains("Nothing was sent"), "{}", err.message);
        }
    }

    #[test]
    fn status_filters() {
        assert_eq!(status_filter(None).unwrap(), None);
        assert_eq!(status_filter(Some(PaymentState::Pending)).unwrap(), Some("0"));
        assert_eq!(status_filter(Some(PaymentState::Paid)).unwrap(), Some("1"));
        for s in [PaymentState::Failed, PaymentState::Closed, PaymentState::Unknown] {
            assert_eq!(status_filter(Some(s)).unwrap_err().kind, ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn only_transport_faults_are_retried() {
        assert!(worth_retrying(&Err(CallError::NotSent("refused".into()))));
        assert!(worth_retrying(&Err(CallError::NoReply("HTTP 502".into()))));
        assert!(!worth_retrying(&Err(CallError::Rejected("HTTP 404".into()))));
        assert!(!worth_retrying(&Reply::parse(r#"{"code":-1,"msg":"订单不存在"}"#)));
    }

    #[tokio::test]
    async fn transport_errors_lose_the_url_before_any_scrubbing() {
        // The scrubbing of finished messages is the second line of defence; this checks the first.
        // Nothing listens on port 9, so nothing is sent anywhere.
        let c = EpayClient::new(
            "http://127.0.0.1:9",
            PID,
            KEY.to_owned().into(),
            EpayApiStyle::Act,
            "wxpay",
            Duration::from_secs(2),
        )
        .unwrap();
        let fields = c.auth_fields();
        let err = c.send(c.query_endpoint(QueryOp::Order), &fields).await.unwrap_err();
        assert!(matches!(err, CallError::NotSent(_)), "{err:?}");
        assert!(!format!("{err:?}").contains(KEY), "{err:?}");
    }

    #[test]
    fn the_listable_states_are_exactly_those_the_filter_maps() {
        for state in [
            PaymentState::Pending,
            PaymentState::Paid,
            PaymentState::Failed,
            PaymentState::Closed,
            PaymentState::Unknown,
        ] {
            assert_eq!(status_filter(Some(state)).is_ok(), super::super::LISTABLE_STATES.contains(&state), "{state:?}");
        }
    }
}
