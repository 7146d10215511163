//! The Alipay client's HTTP edge (`docs/alipay.md` §2): the signed parameters of one call, the
//! POST to `gateway.do`, and the signed GET URL of the page methods.
//!
//! Every call carries the common parameters (`app_id`, `method`, `format=JSON`, `charset=utf-8`,
//! `sign_type`, `timestamp` in Beijing time, `version=1.0`, optional `notify_url`/`return_url`) and
//! the business parameters as one JSON string, `biz_content`; the sign covers all of them. The
//! server-to-server methods are sent as one `application/x-www-form-urlencoded; charset=utf-8`
//! POST; the page methods are never sent by this server, their URL is handed to the payer.
//!
//! As with the other clients, redirects are refused rather than followed (a signed request is never
//! resent elsewhere; the error names only the target's origin), nothing here logs a request, and
//! read-only calls retry transport faults ([`transport::with_retries`]) while create, refund and
//! close are sent once. What a reply says is read in `reply.rs`.

use std::time::Duration;

use serde_json::{Map, Value};

use super::super::transport::{self, CallError, root_cause};
use super::AlipayKeys;
use crate::config::AlipaySettings;
use crate::error::{ErrorKind, PaymentError};
use crate::provider::ProviderKind;
use crate::time::{now_unix, unix_to_china_time};

/// An Alipay application at its gateway: `app_id`, both keys, and the HTTP client.
pub struct AlipayClient {
    pub(super) timeout: Duration,
    http: reqwest::Client,
    pub(super) gateway_url: String,
    pub(super) app_id: String,
    pub(super) keys: AlipayKeys,
    pub(super) kind: ProviderKind,
}

/// The parameters of one call, signed.
pub(super) type Params = Vec<(&'static str, String)>;

impl AlipayClient {
    /// A client for the configured application: its keys are parsed here (once, see
    /// [`AlipaySettings::keys`]); a whole-request `timeout`, a connect timeout of at most 5 s, no
    /// redirects.
    ///
    /// # Errors
    /// A `config` error naming `AP_APP_ID`, `AP_APP_KEY` or `AP_PUB_KEY`, or the TLS backend.
    pub fn new(settings: &AlipaySettings, timeout: Duration) -> Result<AlipayClient, PaymentError> {
        if settings.app_id.trim().is_empty() {
            return Err(PaymentError::new(
                ErrorKind::Config,
                "AP_APP_ID is not set; set it to the Alipay application's APPID.",
            )
            .with_code("AP_APP_ID"));
        }
        let keys = settings.keys()?;
        let http = transport::client_builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("payment-mcp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| transport::client_error(&e))?;
        Ok(AlipayClient {
            timeout,
            http,
            gateway_url: settings.gateway_url.trim_end_matches('/').to_owned(),
            app_id: settings.app_id.trim().to_owned(),
            keys,
            kind: ProviderKind::Alipay,
        })
    }

    /// The signed parameters of a call to `method` with business parameters `biz`, at `timestamp`
    /// (Unix seconds, written in Beijing time). Empty URLs are left out (and so not signed).
    ///
    /// # Errors
    /// A `config` error when signing fails (no randomness for RSA blinding).
    pub(super) fn signed_params_at(
        &self,
        method: &str,
        biz: &Map<String, Value>,
        notify_url: Option<&str>,
        return_url: Option<&str>,
        timestamp: i64,
    ) -> Result<Params, PaymentError> {
        let mut params: Params = vec![
            ("app_id", self.app_id.clone()),
            ("method", method.to_owned()),
            ("format", "JSON".to_owned()),
            ("charset", "utf-8".to_owned()),
            ("sign_type", self.keys.sign_type().as_str().to_owned()),
            ("timestamp", unix_to_china_time(timestamp).unwrap_or_default()),
            ("version", "1.0".to_owned()),
        ];
        for (name, url) in [("notify_url", notify_url), ("return_url", return_url)] {
            if let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) {
                params.push((name, url.to_owned()));
            }
        }
        params.push(("biz_content", Value::Object(biz.clone()).to_string()));
        let sign = self.keys.sign_params(&params).map_err(|e| {
            PaymentError::new(ErrorKind::Config, format!("The request could not be signed: {e}. Nothing was sent."))
                .with_code("AP_APP_KEY")
        })?;
        params.push(("sign", sign));
        Ok(params)
    }

    /// [`AlipayClient::signed_params_at`] now.
    pub(super) fn signed_params(
        &self,
        method: &str,
        biz: &Map<String, Value>,
        notify_url: Option<&str>,
        return_url: Option<&str>,
    ) -> Result<Params, PaymentError> {
        self.signed_params_at(method, biz, notify_url, return_url, now_unix())
    }

    /// The signed GET URL of a page method: the gateway URL, then every parameter percent-encoded.
    pub(super) fn page_url(&self, params: &Params) -> String {
        let query = serde_urlencoded::to_string(params).unwrap_or_default();
        let separator = if self.gateway_url.contains('?') { '&' } else { '?' };
        format!("{}{separator}{query}", self.gateway_url)
    }

    /// Sends a read-only call, retrying transport faults and Alipay's "service busy" (`20000`).
    pub(super) async fn post_query(&self, params: &Params) -> Result<String, CallError> {
        let label = params.iter().find(|(k, _)| *k == "method").map_or("alipay", |(_, m)| m.as_str());
        transport::with_retries(self.timeout, label, worth_retrying, || self.post(params)).await
    }

    /// Sends one call and returns the raw reply body (HTTP 200 only).
    pub(super) async fn post(&self, params: &Params) -> Result<String, CallError> {
        let method = params.iter().find(|(k, _)| *k == "method").map_or("alipay", |(_, m)| m.as_str());
        transport::timed("alipay", method, self.post_once(params)).await
    }

    async fn post_once(&self, params: &Params) -> Result<String, CallError> {
        let body = serde_urlencoded::to_string(params).unwrap_or_default();
        let sent = self
            .http
            .post(&self.gateway_url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded; charset=utf-8")
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) if e.is_connect() && !e.is_timeout() => {
                return Err(CallError::NotSent(format!(
                    "could not connect to Alipay's gateway at {}: {}",
                    self.origin(),
                    root_cause(&e)
                )));
            }
            Err(e) if e.is_timeout() => {
                return Err(CallError::NoReply("Alipay's gateway did not answer in time".into()));
            }
            Err(e) => return Err(CallError::NoReply(format!("the connection failed: {}", root_cause(&e)))),
        };
        let status = response.status();
        if let Some(target) = transport::redirect_target(&response) {
            return Err(CallError::Rejected(format!(
                "the gateway answered HTTP {status}, redirecting to {target}; redirects are not followed, since the request is signed. If that is where the gateway really is, set PAYMENT_API_BASE_URL to its full gateway.do URL (now {})",
                self.origin()
            )));
        }
        let (_, text) = transport::reply_body(response).await?;
        if !status.is_success() {
            return Err(CallError::Rejected(format!(
                "the gateway answered HTTP {status}; check PAYMENT_API_BASE_URL / AP_CURRENT_ENV (now {})",
                self.origin()
            )));
        }
        Ok(text)
    }

    /// The gateway's origin, for messages (never its path or query).
    fn origin(&self) -> String {
        reqwest::Url::parse(&self.gateway_url).map_or_else(|_| "?".to_owned(), |u| transport::origin_of(&u))
    }
}

/// Whether a read-only call's outcome is worth one more try: transport faults, or Alipay's
/// "service temporarily unavailable" (`20000`, e.g. `aop.ACQ.SYSTEM_ERROR`).
fn worth_retrying(outcome: &Result<String, CallError>) -> bool {
    match outcome {
        Err(CallError::NotSent(_) | CallError::NoReply(_)) => true,
        Ok(body) => body.contains("\"code\":\"20000\""),
        Err(CallError::Rejected(_) | CallError::BadSignature) => false,
    }
}
