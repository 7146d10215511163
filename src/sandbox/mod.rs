//! An embedded, in-process HTTP gateway that speaks the LFWin wire protocol, or Alipay's
//! (`gateway.do`, [`Wire::Alipay`], in `alipay.rs`), server side.
//!
//! It serves three purposes:
//!
//! 1. **The default "sandbox" provider.** With no credentials, the MCP server starts one on
//!    `127.0.0.1` with an ephemeral port and random keys, and its ordinary LFWin HTTP client talks to
//!    it over real HTTP — so the sandbox exercises exactly the code that talks to production.
//! 2. **The fake gateway of the integration tests.** Tests start it in-process, point the server
//!    binary at [`Gateway::base_url`], and steer it: inject faults ([`Fault`]), change reply shapes
//!    ([`DataStyle`], [`Gateway::set_omit_orderid`]), pay orders and settle refunds by hand, and read
//!    back every request a client sent ([`Gateway::requests`]). It is strict on purpose: bad keys,
//!    bad signatures, missing fields and malformed amounts are refused as LFWin refuses them.
//! 3. **A standalone gateway** via `payment-mcp sandbox --port N`, for trying a client by hand.
//!
//! Every order also has an HTML pay page at [`Gateway::pay_url`] with a QR code and buttons that pay
//! or fail the order, standing in for LFWin's cashier. Only this machine's own pages can press
//! them: the sandbox answers only to its own `Host`, refuses cross-site posts, and each order's form
//! carries a random token (`http.rs`, `page.rs`).
//!
//! The server runs until [`Gateway::shutdown`] is called or its Tokio runtime ends; dropping the
//! handle does not stop it. It never writes to stdout (the MCP server's stdout is JSON-RPC); it logs
//! with `tracing`.

mod alipay;
pub(crate) mod http;
mod page;
mod routes;
mod state;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::money::Fen;

pub use alipay::{APP_ID as ALIPAY_APP_ID, GATEWAY_PATH as ALIPAY_GATEWAY_PATH, alipay_public_key, app_private_key};
pub use state::{DataStyle, Fault, OrderSnapshot, RecordedRequest, RefundSnapshot};
use state::{Order, State};

/// Which wire protocol a sandbox gateway speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Wire {
    /// The LFWin cashier API (MD5 keys `api_key` / `sign_key`).
    #[default]
    Lfwin,
    /// Alipay's OpenAPI v2 at `/gateway.do`, with the TEST-ONLY key pairs of `fixtures/alipay`:
    /// requests verified with the test application's public key, replies and notifications signed
    /// with the test "Alipay" key, application id [`ALIPAY_APP_ID`].
    Alipay,
}

/// How to run a sandbox gateway.
#[derive(Clone)]
pub struct SandboxConfig {
    /// The wire protocol it speaks.
    pub wire: Wire,
    /// The `apikey` field every request must carry.
    pub api_key: String,
    /// The MD5 sign key requests are checked with and replies signed with.
    pub sign_key: String,
    /// Port to listen on; `0` picks a free one. The address is always `127.0.0.1`.
    pub port: u16,
    /// Refunds go from pending (`refund_status` 0) to refunded (1) after this long.
    /// `Duration::MAX` means never: tests settle by hand with [`Gateway::settle_refunds`].
    pub refund_settle_delay: Duration,
    /// When true, a merchant-number query (`mch_orderid` + `order_time`) answers `3040` until the
    /// pay page was opened or a payment simulated, as LFWin creates the platform order only when
    /// the payer opens the cashier.
    pub lazy_platform_orders: bool,
    /// How many recent requests [`Gateway::requests`] keeps. The embedded sandbox lives all day
    /// beside an editor, so its log must stay bounded; tests want every request.
    pub request_log_limit: usize,
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("wire", &self.wire)
            .field("api_key", &self.api_key)
            .field("sign_key", &"<redacted>")
            .field("port", &self.port)
            .field("refund_settle_delay", &self.refund_settle_delay)
            .field("lazy_platform_orders", &self.lazy_platform_orders)
            .finish()
    }
}

impl SandboxConfig {
    /// A config with fresh random keys (8-digit `api_key`, 16-hex-digit `sign_key`), an ephemeral
    /// port, refunds settling after 3 s and eager platform orders: what the sandbox provider uses,
    /// so no two runs share keys.
    pub fn random_keys() -> Self {
        let mut bytes = [0u8; 16];
        if getrandom::fill(&mut bytes).is_err() {
            // No OS randomness: fall back to the clock. These keys guard a loopback sandbox only.
            let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            bytes = nanos.to_le_bytes();
        }
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes[..8]);
        let api_key = format!("{:08}", u64::from_le_bytes(first) % 100_000_000);
        let sign_key = bytes[8..].iter().map(|b| format!("{b:02x}")).collect();
        SandboxConfig {
            wire: Wire::Lfwin,
            api_key,
            sign_key,
            port: 0,
            refund_settle_delay: Duration::from_secs(3),
            lazy_platform_orders: false,
            request_log_limit: 256,
        }
    }
}

/// A running sandbox gateway. Cheap to clone; every clone controls the same server.
#[derive(Clone)]
pub struct SandboxGateway {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SandboxGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxGateway").field("base_url", &self.shared.base_url).finish_non_exhaustive()
    }
}

/// What the handle and the HTTP handlers share.
pub(crate) struct Shared {
    pub(crate) config: SandboxConfig,
    pub(crate) base_url: String,
    /// The port of `base_url`: requests must name it in `Host` (see `http.rs`).
    pub(crate) port: u16,
    state: Mutex<State>,
    cancel: CancellationToken,
    runtime: tokio::runtime::Handle,
    /// Built on first use: building an HTTP client costs more than starting the whole gateway.
    notifier: std::sync::OnceLock<Option<reqwest::Client>>,
    /// The Alipay wire's keys, parsed on its first request.
    alipay_keys: std::sync::OnceLock<Option<alipay::WireKeys>>,
}

impl Shared {
    /// The state, even if a panicking thread poisoned the mutex (the data stays usable).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn pay_url(&self, orderid: &str) -> String {
        format!("{}/pay/{orderid}", self.base_url)
    }

    /// See [`Gateway::simulate_payment`].
    pub(crate) fn simulate_payment(self: &Arc<Self>, order_no: &str, paid: bool) -> Result<(), String> {
        let order = self.lock().simulate_payment(order_no, paid, now())?;
        tracing::info!(orderid = %order.orderid, paid, "sandbox: payment simulated");
        self.notify(&order);
        Ok(())
    }

    /// Posts a signed payment notification to the order's `notify_url` when it is on this machine
    /// (the sandbox never calls out to the internet). Errors are logged and ignored.
    ///
    /// The notifier stays on this machine and within bounds: `localhost` resolves to 127.0.0.1
    /// without asking DNS, a redirect is never followed (its target could be anywhere), the whole
    /// exchange is limited to [`NOTIFY_TIMEOUT`], the body is bounded by [`MAX_NOTIFY_URL`] (the
    /// only field of unbounded length) and the reply's body is never read, only its status.
    fn notify(self: &Arc<Self>, order: &Order) {
        if !is_loopback_url(&order.notify_url) {
            return;
        }
        if order.notify_url.len() > MAX_NOTIFY_URL {
            tracing::warn!(len = order.notify_url.len(), "sandbox: notify_url too long; no notification sent");
            return;
        }
        let fields = match self.config.wire {
            Wire::Lfwin => self.lfwin_notification(order),
            Wire::Alipay => match alipay::notification(self, order) {
                Some(fields) => fields,
                None => return,
            },
        };
        let url = order.notify_url.clone();
        let shared = Arc::clone(self);
        self.runtime.spawn(async move {
            let client = shared.notifier.get_or_init(|| {
                crate::provider::transport::client_builder()
                    .no_proxy()
                    .redirect(reqwest::redirect::Policy::none())
                    .resolve("localhost", std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
                    .connect_timeout(NOTIFY_TIMEOUT.min(Duration::from_secs(2)))
                    .timeout(NOTIFY_TIMEOUT)
                    .build()
                    .map_err(|e| tracing::warn!(error = %e, "sandbox: no HTTP client for notifications"))
                    .ok()
            });
            let Some(client) = client.clone() else { return };
            match client.post(&url).form(&fields).send().await {
                Ok(r) if r.status().is_redirection() => {
                    tracing::warn!(%url, status = %r.status(), "sandbox: notification sent; the redirect it answered is not followed");
                }
                Ok(r) => tracing::debug!(%url, status = %r.status(), "sandbox: notification sent"),
                Err(e) => tracing::warn!(%url, error = %e, "sandbox: notification failed"),
            }
        });
    }

    /// An LFWin payment notification's fields, signed.
    fn lfwin_notification(&self, order: &Order) -> Vec<(String, String)> {
        let mut fields: Vec<(String, String)> = vec![
            ("buyer_account".into(), order.buyer_account.clone()),
            ("mch_orderid".into(), order.mch_orderid.clone()),
            ("notify_url".into(), order.notify_url.clone()),
            ("order_time".into(), order.order_time.to_string()),
            ("orderid".into(), order.orderid.clone()),
            ("paymoney".into(), order.money.to_yuan()),
            ("paystatus".into(), order.paystatus.to_string()),
            ("paytime".into(), order.paytime.map(|t| t.to_string()).unwrap_or_default()),
            ("pri_paymoney".into(), order.pri_paymoney().map(Fen::to_yuan).unwrap_or_default()),
            ("trade_no".into(), order.trade_no.clone()),
        ];
        let sign = crate::sign::lfwin_sign(&fields, &self.config.sign_key);
        fields.push(("sign".into(), sign));
        fields
    }

    /// Schedules a refund to settle as refunded after the configured delay (never for
    /// `Duration::MAX`).
    pub(crate) fn schedule_settle(self: &Arc<Self>, refund_no: String) {
        let delay = self.config.refund_settle_delay;
        if delay == Duration::MAX || tokio::time::Instant::now().checked_add(delay).is_none() {
            return;
        }
        let shared = Arc::clone(self);
        self.runtime.spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(delay) => {
                    shared.lock().settle_refund(&refund_no, true, now());
                }
                () = shared.cancel.cancelled() => {}
            }
        });
    }
}

/// The longest `notify_url` the sandbox notifies (it is repeated in the notification's body).
const MAX_NOTIFY_URL: usize = 2048;

/// How long one notification may take, connecting included.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether `url` points at this machine (`127.0.0.0/8`, `localhost`, `[::1]`).
fn is_loopback_url(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else { return false };
    if !matches!(parsed.scheme(), "http" | "https") {
        return false;
    }
    let Some(host) = parsed.host_str() else { return false };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare.eq_ignore_ascii_case("localhost"),
    }
}

pub(crate) use crate::time::now_unix as now;

impl SandboxGateway {
    /// Binds `127.0.0.1:port` and serves the gateway on a spawned task of the current Tokio runtime.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start(config: SandboxConfig) -> std::io::Result<SandboxGateway> {
        // Without a Tokio runtime, binding would panic; report it as an error instead.
        let runtime = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
        let addr = listener.local_addr()?;
        let wire = config.wire;
        let seed = {
            let mut b = [0u8; 8];
            let _ = getrandom::fill(&mut b);
            u64::from_le_bytes(b) ^ u64::from(addr.port())
        };
        let shared = Arc::new(Shared {
            base_url: format!("http://{addr}"),
            port: addr.port(),
            state: Mutex::new({
                let mut state = State::new(seed, config.lazy_platform_orders);
                if wire == Wire::Alipay {
                    state.refund_no_limit = 64;
                }
                state
            }),
            config,
            cancel: CancellationToken::new(),
            runtime,
            notifier: std::sync::OnceLock::new(),
            alipay_keys: std::sync::OnceLock::new(),
        });
        let app = routes::router(Arc::clone(&shared));
        let cancel = shared.cancel.clone();
        tokio::spawn(http::serve(listener, app, cancel));
        tracing::info!(base_url = %shared.base_url, ?wire, "sandbox gateway listening");
        Ok(SandboxGateway { shared })
    }

    /// `http://127.0.0.1:PORT`, the base URL to give an LFWin client.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The wire protocol it speaks.
    pub fn wire(&self) -> Wire {
        self.shared.config.wire
    }

    /// The Alipay wire's full gateway URL, `base_url + "/gateway.do"`: the `PAYMENT_API_BASE_URL`
    /// of an Alipay client.
    pub fn gateway_url(&self) -> String {
        format!("{}{ALIPAY_GATEWAY_PATH}", self.shared.base_url)
    }

    /// Closes an unpaid order (platform or merchant number), as a merchant's close call does.
    ///
    /// # Errors
    /// When the order is unknown or paid.
    pub fn close(&self, order_no: &str) -> Result<(), String> {
        self.shared.lock().close(order_no).map(|_| ()).map_err(|r| r.message)
    }

    /// The `apikey` the gateway expects.
    pub fn api_key(&self) -> &str {
        &self.shared.config.api_key
    }

    /// The sign key the gateway checks and signs with.
    pub fn sign_key(&self) -> &str {
        &self.shared.config.sign_key
    }

    /// The pay page of an order: `base_url + "/pay/" + orderid`.
    pub fn pay_url(&self, orderid: &str) -> String {
        self.shared.pay_url(orderid)
    }

    /// Pays (`paid`) or fails an order, found by platform or merchant order number, as if the payer
    /// acted on the cashier. A paid order gets `paystatus` 1, `paytime` now and `pri_paymoney` equal
    /// to the order amount. If the order's `notify_url` is on this machine, a signed notification
    /// is posted to it in the background (also for a failure, with `paystatus` 2).
    ///
    /// # Errors
    /// When the order is unknown or already paid or failed.
    pub fn simulate_payment(&self, order_no: &str, paid: bool) -> Result<(), String> {
        self.shared.simulate_payment(order_no, paid)
    }

    /// Settles every pending refund now, as refunded (`success`) or failed; returns how many.
    pub fn settle_refunds(&self, success: bool) -> usize {
        self.shared.lock().settle_all(success, now())
    }

    /// Injects `fault` into every LFWin request until called again with `None`.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.shared.lock().fault = fault;
    }

    /// Injects `fault` into the next LFWin request only (it wins over [`Gateway::set_fault`]).
    pub fn fault_next(&self, fault: Fault) {
        self.shared.lock().next_fault = Some(fault);
    }

    /// When on, create replies carry no top-level `orderid`, as some LFWin deployments do.
    pub fn set_omit_orderid(&self, omit: bool) {
        self.shared.lock().omit_orderid = omit;
    }

    /// Chooses the shape of the create reply's `data`.
    pub fn set_data_style(&self, style: DataStyle) {
        self.shared.lock().data_style = style;
    }

    /// When on, refund queries answer the flat `4001` "processing" form instead of a `10000` page.
    pub fn set_refund_query_flat_4001(&self, on: bool) {
        self.shared.lock().refund_query_flat_4001 = on;
    }

    /// Every request that reached an LFWin endpoint, in arrival order (not those dropped by
    /// [`Fault::DropBeforeRecord`], which "never arrived").
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// How many requests reached an LFWin endpoint (all of them, also those the log dropped).
    pub fn request_count(&self) -> usize {
        self.shared.lock().request_total
    }

    /// The signed payment notification this gateway would post for an order now (its form
    /// fields, `sign` included), in its wire's format; `None` for an unknown order. Tests post it
    /// themselves, repeat it, or tamper with it.
    pub fn notification_for(&self, order_no: &str) -> Option<Vec<(String, String)>> {
        let order = self.shared.lock().find(order_no)?.clone();
        match self.shared.config.wire {
            Wire::Lfwin => Some(self.shared.lfwin_notification(&order)),
            Wire::Alipay => alipay::notification(&self.shared, &order),
        }
    }

    /// A snapshot of an order, found by platform or merchant order number.
    pub fn order(&self, order_no: &str) -> Option<OrderSnapshot> {
        self.shared.lock().find(order_no).map(Order::snapshot)
    }

    /// Stops accepting connections and ends the server task once open requests finish. Returns at
    /// once.
    pub fn shutdown(&self) {
        self.shared.cancel.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_keys_have_the_documented_shape() {
        let a = SandboxConfig::random_keys();
        let b = SandboxConfig::random_keys();
        assert_eq!(a.api_key.len(), 8);
        assert!(a.api_key.bytes().all(|c| c.is_ascii_digit()));
        assert_eq!(a.sign_key.len(), 16);
        assert!(a.sign_key.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.sign_key, b.sign_key);
        assert_eq!(a.port, 0);
        assert_eq!(a.refund_settle_delay, Duration::from_secs(3));
        assert!(!a.lazy_platform_orders);
        assert!(!format!("{a:?}").contains(&a.sign_key));
    }

    #[test]
    fn only_loopback_notify_urls_are_called() {
        for yes in ["http://127.0.0.1:9/n", "http://localhost/x", "http://[::1]:80/", "https://127.0.0.2/"] {
            assert!(is_loopback_url(yes), "{yes}");
        }
        for no in [
            "http://example.com/",
            "http://10.0.0.1/",
            "",
            "ftp://127.0.0.1/",
            "not a url",
            "http://localhost.evil.com/",
        ] {
            assert!(!is_loopback_url(no), "{no}");
        }
    }
}
