//! The LFWin cashier API client (also the sandbox's client: the sandbox speaks the same protocol).
//!
//! Builds MD5-signed form requests exactly as `docs/lfwin.md` says and sends them
//! ([`LfwinClient::post`]); what the replies mean is read in [`reply`], which is pure and unit
//! tested against fixtures.

mod reply;
#[cfg(test)]
mod tests;

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use super::transport::{self, CallError, random_bytes, root_cause};
use super::{
    CreateRequest, CreatedOrder, Gateway, Notification, OrderRef, OrderStatus, PaymentState, ProviderKind,
    RefundAccepted, RefundQuery, RefundRequest, RefundStatus,
};
use crate::error::{ErrorKind, PaymentError};
use crate::money::Fen;
use crate::sign;
pub use reply::{
    CREATE_UNKNOWN_NEXT, REFUND_UNKNOWN_NEXT, Reply, StatusClass, classify, read_create, read_query, read_refund,
    read_refund_query,
};

const PATH_CREATE: &str = "/index/Payment/pre_order";
const PATH_QUERY: &str = "/payapi/pay/query_order";
const PATH_REFUND: &str = "/payapi/pay/refund_order";
const PATH_REFUND_QUERY: &str = "/payapi/pay/query_refund";

/// Whether a read-only call's outcome is worth one more try: transport faults, HTTP 5xx, an
/// unparseable reply, upstream timeout (9000) or "too frequent" (3050).
fn worth_retrying(outcome: &Result<Reply, CallError>) -> bool {
    match outcome {
        Err(CallError::NotSent(_) | CallError::NoReply(_)) => true,
        Ok(reply) => matches!(classify(&reply.status), StatusClass::UpstreamTimeout | StatusClass::TooFrequent),
        Err(CallError::Rejected(_) | CallError::BadSignature) => false,
    }
}

/// An LFWin gateway at `base_url` with one merchant's keys.
pub struct LfwinClient {
    timeout: Duration,
    http: reqwest::Client,
    base_url: String,
    api_key: SecretString,
    sign_key: SecretString,
    kind: ProviderKind,
}

impl LfwinClient {
    /// A client with a whole-request `timeout` (and a connect timeout of at most 5 s).
    ///
    /// # Errors
    /// When the TLS backend cannot be initialised.
    pub fn new(
        base_url: &str,
        api_key: SecretString,
        sign_key: SecretString,
        timeout: Duration,
        kind: ProviderKind,
    ) -> Result<Self, PaymentError> {
        let http = crate::provider::transport::client_builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            // Never re-send a signed request (API key included) to wherever a reply points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("payment-mcp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| transport::client_error(&e))?;
        Ok(LfwinClient { timeout, http, base_url: base_url.trim_end_matches('/').to_owned(), api_key, sign_key, kind })
    }

    /// Adds `apikey`, `sign_type` and `sign` to a request's own fields.
    fn signed_form(&self, mut fields: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
        fields.push(("apikey", self.api_key.expose_secret().to_owned()));
        fields.push(("sign_type", "MD5".to_owned()));
        let signature = sign::lfwin_sign(&fields, self.sign_key.expose_secret());
        fields.push(("sign", signature));
        fields
    }

    /// Sends a read-only request, retrying with jittered backoff while the outcome is worth it, at
    /// most [`QUERY_ATTEMPTS`] times and not after the whole-request timeout has been spent. Never
    /// used for create or refund, which must not be sent blindly twice.
    async fn post_query(&self, path: &str, fields: Vec<(&'static str, String)>) -> Result<Reply, CallError> {
        transport::with_retries(self.timeout, path, worth_retrying, || {
            // A fresh nonce per attempt: gateways may refuse a repeated one.
            let fields: Vec<(&'static str, String)> =
                fields.iter().map(|(k, v)| (*k, if *k == "nonce_str" { nonce() } else { v.clone() })).collect();
            self.post(path, fields)
        })
        .await
    }

    /// Sends one signed request and returns the verified reply fields.
    async fn post(&self, path: &str, fields: Vec<(&'static str, String)>) -> Result<Reply, CallError> {
        let form = self.signed_form(fields);
        let url = format!("{}{}", self.base_url, path);
        let response = match self.http.post(&url).form(&form).send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() && !e.is_timeout() => {
                return Err(CallError::NotSent(format!(
                    "could not connect to the gateway at {}: {}",
                    self.base_url,
                    root_cause(&e)
                )));
            }
            Err(e) if e.is_timeout() => return Err(CallError::NoReply("the gateway did not answer in time".into())),
            Err(e) => return Err(CallError::NoReply(format!("the connection failed: {}", root_cause(&e)))),
        };
        let status = response.status();
        if let Some(target) = transport::redirect_target(&response) {
            return Err(CallError::Rejected(format!(
                "the gateway answered HTTP {status} at {path}, redirecting to {target}; redirects are not followed, since the request is signed and carries the API key. If that is where the gateway really is, set PAYMENT_API_BASE_URL to {target} instead (now {})",
                self.base_url
            )));
        }
        let (_, body) = transport::reply_body(response).await?;
        if !status.is_success() {
            return Err(CallError::Rejected(format!(
                "the gateway answered HTTP {status} at {path}; check PAYMENT_API_BASE_URL ({})",
                self.base_url
            )));
        }
        Reply::parse(&body, self.sign_key.expose_secret())
    }
}

/// 16 random hex characters for `nonce_str`.
fn nonce() -> String {
    random_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Verifies an LFWin payment notification with `sign_key`: the LFWin rule over every field
/// received except `sign` (`notify_url` percent-decoded once more for signing). Paid only with a
/// valid signature and `paystatus = 1`.
pub fn verify_lfwin_notification(raw: &str, sign_key: &str) -> Notification {
    let fields = super::notification_fields(raw);
    let given = fields.iter().find(|(k, _)| k == "sign").map(|(_, v)| v.clone()).unwrap_or_default();
    let signature_valid = !given.is_empty() && sign::signatures_match(&sign::lfwin_sign(&fields, sign_key), &given);
    let get = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let raw_status = get("paystatus");
    let state = match (signature_valid, raw_status.as_deref()) {
        (false, _) => PaymentState::Unknown,
        (true, Some("1")) => PaymentState::Paid,
        (true, Some("2")) => PaymentState::Failed,
        (true, Some("0")) => PaymentState::Pending,
        (true, _) => PaymentState::Unknown,
    };
    Notification {
        signature_valid,
        platform_order_no: get("orderid"),
        merchant_order_no: get("mch_orderid"),
        amount: get("pri_paymoney").or_else(|| get("paymoney")).and_then(|m| Fen::from_gateway(&m)),
        state,
        raw_status,
        fields: fields.into_iter().filter(|(k, _)| k != "sign").collect(),
        disagreement: None,
    }
}

#[async_trait]
impl Gateway for LfwinClient {
    fn verify_notification(&self, raw: &str) -> Notification {
        verify_lfwin_notification(raw, self.sign_key.expose_secret())
    }

    fn kind(&self) -> ProviderKind {
        self.kind
    }

    fn merchant_query_needs_order_time(&self) -> bool {
        true
    }

    async fn create_order(&self, req: &CreateRequest) -> Result<CreatedOrder, PaymentError> {
        let mut fields = vec![
            ("money", req.amount.to_yuan()),
            ("nonce_str", nonce()),
            ("mch_orderid", req.merchant_order_no.clone()),
            ("notify_url", req.notify_url.clone().unwrap_or_default()),
        ];
        if let Some(url) = &req.return_url {
            fields.push(("succ_url", url.clone()));
        }
        if let Some(subject) = &req.subject {
            fields.push(("goods_info", subject.clone()));
        }
        let reply = self.post(PATH_CREATE, fields).await.map_err(|e| e.for_money("order", CREATE_UNKNOWN_NEXT))?;
        read_create(&reply)
    }

    async fn query_order(&self, order: &OrderRef) -> Result<OrderStatus, PaymentError> {
        let mut fields = vec![("service", "pay.comm.query_order".to_owned()), ("nonce_str", nonce())];
        match order {
            OrderRef::Platform(no) => fields.push(("orderid", no.clone())),
            OrderRef::Merchant { merchant_order_no, order_time } => {
                // Not a refusal of the arguments (the schema rightly calls order_time optional):
                // this server has no record of the order, and without its month LFWin cannot look.
                let Some(t) = order_time else {
                    return Err(PaymentError::new(
                        ErrorKind::NotFound,
                        format!(
                            "This server has no record of merchant order {merchant_order_no}, and LFWin finds an order by merchant number only with its order_time (Unix seconds of the order's creation; any second of that month works): pass order_time, or query by order_no. Nothing was sent."
                        ),
                    ));
                };
                fields.push(("mch_orderid", merchant_order_no.clone()));
                fields.push(("order_time", t.to_string()));
            }
        }
        let reply = self.post_query(PATH_QUERY, fields).await.map_err(CallError::for_query)?;
        read_query(&reply, order)
    }

    async fn refund(&self, req: &RefundRequest) -> Result<RefundAccepted, PaymentError> {
        let fields = vec![
            ("service", "pay.comm.refund_order".to_owned()),
            ("orderid", req.order_no.clone()),
            ("refundmoney", req.amount.to_yuan()),
            ("version", "4.0".to_owned()),
            ("nonce_str", nonce()),
            ("reason", req.reason.clone()),
            ("mch_refund_no", req.mch_refund_no.clone()),
        ];
        let reply = self.post(PATH_REFUND, fields).await.map_err(|e| e.for_money("refund", REFUND_UNKNOWN_NEXT))?;
        read_refund(&reply, req)
    }

    async fn query_refund(&self, query: &RefundQuery) -> Result<RefundStatus, PaymentError> {
        let mut fields = vec![
            ("service", "pay.comm.query_refund".to_owned()),
            ("orderid", query.order_no.clone()),
            ("version", "4.0".to_owned()),
            ("nonce_str", nonce()),
        ];
        if let Some(no) = &query.mch_refund_no {
            fields.push(("mch_refund_no", no.clone()));
        }
        let reply = self.post_query(PATH_REFUND_QUERY, fields).await.map_err(CallError::for_query)?;
        read_refund_query(&reply, query)
    }
}
