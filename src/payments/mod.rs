//! What the tools do, independent of MCP: guardrails, idempotency, settling unknown outcomes, and
//! recording orders and refunds in the [`Ledger`] before and after they are sent.
//!
//! # Layout
//!
//! - this file: [`Payments`] (the configuration, the gateway and the ledger behind every tool), the
//!   ledger-begin path that creates and refunds share, and the read-only calls (query, list,
//!   merchant information, notifications, the sandbox's simulated payer);
//! - `create.rs`: the create state machine (`create_payment_order`);
//! - `refund.rs`: the refund state machine (`refund_payment_order`) and refund queries;
//! - `wait.rs`: the polling loop of `wait_for_payment`;
//! - `close.rs`: closing an unpaid order (`close_payment_order`);
//! - `notified.rs`: payment notifications received on the notify URL (verified, recorded once,
//!   waking the waits on their order).
//!
//! Arguments arrive validated (see `tools::args`); results leave as domain types that
//! `tools::render` turns into MCP content. [`Payments::new`] builds its gateway client on first use,
//! so start-up does no TLS or network work; [`Payments::with_gateway`] runs over any [`Gateway`] and
//! ledger, which is how the state machines are unit-tested against a scripted gateway (`tests/`).

mod close;
mod create;
mod notified;
mod refund;
mod wait;

pub use close::CloseOutcome;
pub use create::CreateOutcome;
pub use notified::Received;
pub use refund::{CheckedRefund, RefundOutcome};
pub use wait::{POLL_INTERVAL, WaitProgress};

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OnceCell;

use crate::config::{Config, ExposeSecret, LedgerSetting, ProviderSettings};
use crate::error::{ErrorKind, PaymentError};
use crate::ledger::{Account, Begin, Ledger, LedgerError, Wakes};
use crate::provider::lfwin::LfwinClient;
use crate::provider::{
    Gateway, ListQuery, MerchantInfo, Notification, OrderPage, OrderRef, OrderStatus, OrderSummary, PaymentState,
    ProviderKind,
};
use crate::sandbox;
use crate::time::{china_time_to_unix, now_unix};

/// The service behind the tools: configuration, the gateway, and the ledger.
pub struct Payments {
    config: Config,
    gateway: OnceCell<Result<Arc<dyn Gateway>, PaymentError>>,
    sandbox: OnceCell<Option<sandbox::SandboxGateway>>,
    ledger: OnceCell<Result<Arc<Ledger>, PaymentError>>,
    account: Account,
    /// Where notifications wake the waits of this process (and, on PostgreSQL, where wakes from
    /// other instances arrive).
    wakes: Wakes,
}

/// A ledger failure before anything was sent: a `config` error naming `PAYMENT_LEDGER`.
fn ledger_failed(what: &str) -> PaymentError {
    PaymentError::new(ErrorKind::Config, format!("The order ledger {what}. Check PAYMENT_LEDGER."))
        .with_code("PAYMENT_LEDGER")
}

/// A ledger failure after a request was sent: logged, never allowed to hide the gateway's answer.
async fn logged<T>(write: impl std::future::Future<Output = Result<T, LedgerError>>) {
    if let Err(e) = write.await {
        tracing::error!("could not record the outcome in the order ledger: {e}");
    }
}

/// How long after its `order_time` an order this server has no record of may still be missing on
/// the gateway for the normal reason (LFWin creates the platform order when the payer opens the
/// cashier page), rather than because it does not exist.
const FRESH_ORDER_SECS: i64 = 30 * 60;

/// How far ahead of this machine's clock a gateway's or another machine's clock may run.
const CLOCK_SKEW_SECS: i64 = 5 * 60;

/// Which money-moving call is going through the ledger-begin path.
#[derive(Debug, Clone, Copy)]
enum Intent {
    Create,
    Refund,
}

impl Intent {
    fn noun(self) -> &'static str {
        match self {
            Intent::Create => "order",
            Intent::Refund => "refund",
        }
    }

    fn in_flight(self, no: &str) -> String {
        match self {
            Intent::Create => format!(
                "A create for merchant_order_no {no} is already in flight (another call, possibly from another window, sent it moments ago); nothing was sent again. Wait a few seconds, then repeat this call with the same merchant_order_no and amount to get that order, or query it with query_payment_order."
            ),
            Intent::Refund => format!(
                "A refund with mch_refund_no {no} is already in flight (another call sent it moments ago); nothing was sent again. Wait a few seconds, then check it with query_refund_status or repeat this call with the same mch_refund_no."
            ),
        }
    }
}

/// What the ledger-begin path found for a create or refund that may go on.
#[derive(Debug)]
enum Start<R> {
    /// No earlier attempt: this call recorded the intent and sends the request.
    First,
    /// An earlier attempt of the same request whose outcome is unknown (or whose sender died):
    /// this call now holds the intent.
    Retry(R),
    /// An earlier attempt of the same request that finished: its record is the answer.
    Done(R),
}

/// What to record when a create or refund ended in an error other than a lost reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterError {
    /// The gateway may have acted before the error (a gateway-side error, or a retry of an
    /// attempt whose outcome was already unknown): the record stays, as unknown.
    Unknown,
    /// The only attempt was refused for sure: forget it, so a corrected retry is not a "repeat".
    Forget,
}

impl AfterError {
    fn of(err: &PaymentError, first_attempt: bool) -> AfterError {
        if err.kind != ErrorKind::Gateway && first_attempt { AfterError::Forget } else { AfterError::Unknown }
    }
}

impl Payments {
    /// The service a server process runs (stdio or `serve --http`): the configuration from the
    /// environment, each problem in it and the sandbox (when no credentials are set) logged once.
    pub fn from_env() -> Arc<Payments> {
        let config = Config::from_env();
        for problem in &config.problems {
            tracing::warn!(variable = problem.variable, "configuration problem: {}", problem.message);
        }
        let payments = Arc::new(Payments::new(config));
        if payments.is_sandbox() {
            tracing::warn!(
                "SANDBOX: no credentials configured; payments go to an embedded simulated gateway (no real money)"
            );
        }
        payments
    }

    /// The service for `config`, building its gateway client and ledger on first use.
    pub fn new(config: Config) -> Payments {
        let account = match &config.provider {
            ProviderSettings::Lfwin { base_url, api_key, .. } => {
                Account::new("lfwin", base_url, api_key.expose_secret())
            }
            ProviderSettings::Epay { base_url, merchant_id, .. } => Account::new("epay", base_url, merchant_id),
            ProviderSettings::Alipay(alipay) => Account::new("alipay", &alipay.gateway_url, &alipay.app_id),
            ProviderSettings::Sandbox => Account::new("sandbox", "", ""),
            ProviderSettings::Unconfigured => Account::new("unconfigured", "", ""),
        };
        Payments {
            config,
            gateway: OnceCell::new(),
            sandbox: OnceCell::new(),
            ledger: OnceCell::new(),
            account,
            wakes: Wakes::new(),
        }
    }

    /// The service for `config` over a given gateway and ledger, instead of the ones the
    /// configuration names (the configuration still supplies guardrails, timeouts and the account).
    /// On PostgreSQL, the ledger's wake hub becomes this service's, so wakes from other
    /// instances reach its waits.
    pub fn with_gateway(config: Config, gateway: Arc<dyn Gateway>, ledger: Arc<Ledger>) -> Payments {
        let wakes = ledger.wakes().cloned().unwrap_or_default();
        Payments {
            gateway: OnceCell::new_with(Some(Ok(gateway))),
            ledger: OnceCell::new_with(Some(Ok(ledger))),
            wakes,
            ..Payments::new(config)
        }
    }

    /// The order ledger, opened on first use. The sandbox's orders vanish with the process, so its
    /// ledger does too.
    ///
    /// # Errors
    /// A `config` error naming `PAYMENT_LEDGER` when the ledger cannot be opened.
    pub async fn ledger(&self) -> Result<Arc<Ledger>, PaymentError> {
        self.ledger
            .get_or_init(|| async {
                let opened = match (&self.config.ledger, self.is_sandbox()) {
                    (LedgerSetting::Off, _) | (LedgerSetting::Default, true) => Ledger::in_memory(),
                    (LedgerSetting::Path(path), _) => Ledger::open(path),
                    (LedgerSetting::Postgres(url), _) => Ledger::postgres(url.expose_secret(), self.wakes.clone()).await,
                    (LedgerSetting::Default, false) => match Ledger::default_path() {
                        Some(path) => Ledger::open(&path),
                        None => Err(LedgerError("this platform has no per-user data directory".into())),
                    },
                };
                opened.map(Arc::new).map_err(|e| {
                    tracing::error!("order ledger unavailable: {e}");
                    PaymentError::new(
                        ErrorKind::Config,
                        format!("The order ledger cannot be used ({e}), so money-moving calls are refused: an unrecorded payment is worse than none. Set PAYMENT_LEDGER to a writable file path (or `off` to keep records in memory only) and restart the server."),
                    )
                    .with_code("PAYMENT_LEDGER")
                })
            })
            .await
            .clone()
    }

    /// The merchant account the ledger files this service's rows under.
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// Whether money-moving calls could be recorded now: the ledger opens and answers a query
    /// (`serve --http`'s `/readyz`; SQLite or PostgreSQL alike).
    ///
    /// # Errors
    /// Why not, without secrets (never the PostgreSQL URL's password).
    pub async fn ready(&self) -> Result<(), String> {
        let ledger = self.ledger().await.map_err(|e| e.message)?;
        ledger
            .order(&self.account, "-readyz-")
            .await
            .map(|_| ())
            .map_err(|e| format!("the order ledger does not answer: {e}"))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How long a create or refund may hold its ledger intent before a repeat may take it over:
    /// the request, a settling query with its retries, and a margin. A repeat within it is told
    /// the first call is in flight instead of sending a second request.
    fn lease(&self) -> Duration {
        self.config.timeout * 4 + Duration::from_secs(5)
    }

    pub fn kind(&self) -> ProviderKind {
        self.config.provider.kind()
    }

    pub fn is_sandbox(&self) -> bool {
        self.kind() == ProviderKind::Sandbox
    }

    /// The configuration error that stops a tool, if any.
    pub fn config_error(&self, money_moving: bool) -> Option<PaymentError> {
        self.config
            .problem_for(money_moving)
            .map(|p| PaymentError::new(ErrorKind::Config, format!("Configuration problem: {} (variable {}). Fix it in the MCP client's server configuration and restart the server.", p.message, p.variable)).with_code(p.variable))
    }

    /// The embedded sandbox gateway, started on first use (sandbox provider only).
    pub async fn sandbox(&self) -> Option<&sandbox::SandboxGateway> {
        if !self.is_sandbox() {
            return None;
        }
        self.sandbox
            .get_or_init(|| async {
                let config = sandbox::SandboxConfig {
                    refund_settle_delay: self.config.sandbox_refund_delay,
                    ..sandbox::SandboxConfig::random_keys()
                };
                match sandbox::SandboxGateway::start(config).await {
                    Ok(gw) => {
                        tracing::warn!(base_url = %gw.base_url(), "SANDBOX: no real money; payments go to an embedded simulated gateway");
                        Some(gw)
                    }
                    Err(e) => {
                        tracing::error!("cannot start the sandbox gateway: {e}");
                        None
                    }
                }
            })
            .await
            .as_ref()
    }

    async fn gateway(&self, money_moving: bool) -> Result<Arc<dyn Gateway>, PaymentError> {
        if let Some(err) = self.config_error(money_moving) {
            return Err(err);
        }
        self.gateway.get_or_init(|| self.build_gateway()).await.clone()
    }

    async fn build_gateway(&self) -> Result<Arc<dyn Gateway>, PaymentError> {
        let timeout = self.config.timeout;
        match &self.config.provider {
            ProviderSettings::Lfwin { base_url, api_key, sign_key } => Ok(Arc::new(LfwinClient::new(
                base_url,
                api_key.clone(),
                sign_key.clone(),
                timeout,
                ProviderKind::Lfwin,
            )?)),
            ProviderSettings::Sandbox => {
                let Some(gw) = self.sandbox().await else {
                    return Err(PaymentError::new(
                        ErrorKind::Config,
                        "The sandbox gateway could not start (see the server's stderr log). Set PAYMENT_API_KEY and PAYMENT_SIGN_KEY to use LFWin instead.",
                    ));
                };
                Ok(Arc::new(LfwinClient::new(
                    &gw.base_url(),
                    gw.api_key().to_owned().into(),
                    gw.sign_key().to_owned().into(),
                    timeout,
                    ProviderKind::Sandbox,
                )?))
            }
            // Unreachable in practice: its configuration problem stops every tool first.
            ProviderSettings::Unconfigured => Err(PaymentError::new(
                ErrorKind::Config,
                "No payment provider is configured: set PAYMENT_PROVIDER and its credentials, or unset every PAYMENT_* credential to use the sandbox.",
            )
            .with_code("PAYMENT_PROVIDER")),
            ProviderSettings::Alipay(alipay) => {
                Ok(Arc::new(crate::provider::alipay::AlipayClient::new(alipay, timeout)?))
            }
            ProviderSettings::Epay { base_url, merchant_id, key, api_style, pay_type } => {
                Ok(Arc::new(crate::provider::epay::EpayClient::new(
                    base_url,
                    merchant_id,
                    key.clone(),
                    *api_style,
                    pay_type,
                    timeout,
                )?))
            }
        }
    }

    /// The ledger-begin path creates and refunds share: records the intent under `no` with this
    /// process's lease (`record` is the ledger's begin step for the kind), and turns what the
    /// ledger found into the next step. A call in flight elsewhere is `outcome_unknown` and a
    /// number used for another request is refused (`conflict`), both before anything is sent.
    async fn begin<R>(
        &self,
        intent: Intent,
        no: &str,
        record: impl AsyncFnOnce(&Ledger, &Account, Duration) -> Result<Begin<R>, LedgerError>,
        conflict: impl FnOnce(R) -> PaymentError,
    ) -> Result<(Arc<Ledger>, Start<R>), PaymentError> {
        let ledger = self.ledger().await?;
        let begin = record(&ledger, &self.account, self.lease())
            .await
            .map_err(|e| ledger_failed(&format!("could not record this {} ({e}); nothing was sent", intent.noun())))?;
        let start = match begin {
            Begin::New => Start::First,
            Begin::Retry(row) => Start::Retry(row),
            Begin::Earlier(row) => Start::Done(row),
            Begin::Conflict(row) => return Err(conflict(row)),
            Begin::InFlight(_) => return Err(PaymentError::new(ErrorKind::OutcomeUnknown, intent.in_flight(no))),
        };
        Ok((ledger, start))
    }

    /// A `not_found` for an `order_no` the ledger knows as the merchant order number of an order
    /// this server created: says so, and gives the platform number to call `tool` with instead.
    /// Any other error is returned as it is.
    async fn merchant_number_hint(&self, order_no: &str, tool: &str, err: PaymentError) -> PaymentError {
        if err.kind != ErrorKind::NotFound {
            return err;
        }
        let row = match self.ledger().await {
            Ok(ledger) => ledger.order(&self.account, order_no).await.ok().flatten(),
            Err(_) => None,
        };
        let Some(row) = row else {
            return err;
        };
        if row.platform_order_no.as_deref() == Some(order_no) {
            return err;
        }
        let next = match &row.platform_order_no {
            Some(platform) => {
                format!("Its platform order number is {platform}: call {tool} again with order_no {platform}.")
            }
            None => format!(
                "Its platform order number is not known yet: call query_payment_order with merchant_order_no {order_no} to get order_no, then call {tool} with that."
            ),
        };
        PaymentError {
            message: format!(
                "{} order_no {order_no} is the merchant_order_no of an order this server created, not its platform order number, which {tool} needs. {next}",
                err.message
            ),
            ..err
        }
    }

    /// Reads an order, filling in `order_time` for merchant-number queries of orders this server made.
    ///
    /// # Errors
    /// Configuration, the gateway's answer, or transport faults.
    pub async fn query(&self, mut order: OrderRef) -> Result<OrderStatus, PaymentError> {
        let gateway = self.gateway(false).await?;
        // Read-only calls work without a ledger; they just cannot fill in order_time.
        let ledger = self.ledger().await.ok();
        let recorded = match (&order, &ledger) {
            (OrderRef::Merchant { merchant_order_no, .. }, Some(ledger)) => {
                ledger.order(&self.account, merchant_order_no).await.ok().flatten()
            }
            _ => None,
        };
        if let (OrderRef::Merchant { order_time: order_time @ None, .. }, Some(row)) = (&mut order, &recorded) {
            *order_time = Some(row.order_time);
        }
        let status = gateway.query_order(&order).await?;
        // "No platform order yet" (LFWin 3040 on a merchant-number query) means pending only for
        // an order this server created, or one created moments ago; otherwise it is not found.
        if status.pending_reason.is_some() && recorded.is_none() {
            // A creation time in the future (beyond clock skew) is not a recent order, it is a wrong one.
            let recent = status
                .order_time
                .is_some_and(|t| (-CLOCK_SKEW_SECS..FRESH_ORDER_SECS).contains(&now_unix().saturating_sub(t)));
            if !recent {
                return Err(PaymentError::new(
                    ErrorKind::NotFound,
                    format!(
                        "The gateway has no order with merchant_order_no {} for that order_time (status {}), and this server has no record of creating it. Check the merchant_order_no and order_time (Unix seconds of the order's creation, any second of its month works).",
                        status.merchant_order_no.as_deref().unwrap_or("?"),
                        status.raw_status
                    ),
                )
                .with_code(status.raw_status.clone()));
            }
        }
        let merchant_no = status.merchant_order_no.clone().or(match &order {
            OrderRef::Merchant { merchant_order_no, .. } => Some(merchant_order_no.clone()),
            OrderRef::Platform(_) => None,
        });
        if let (Some(ledger), Some(no)) = (ledger, merchant_no) {
            logged(ledger.note_order_state(&self.account, &no, &status)).await;
        }
        Ok(status)
    }

    /// Lists orders: from the gateway when it has a list API, else from the ledger (the orders this
    /// server created, with their last known state), optionally refreshed by querying each.
    ///
    /// # Errors
    /// Configuration, the gateway's answer, or an unusable ledger.
    pub async fn list_orders(
        &self,
        query: ListQuery,
        refresh: bool,
    ) -> Result<(OrderPage, &'static str), PaymentError> {
        let gateway = self.gateway(false).await?;
        if gateway.can_list_orders() {
            return Ok((gateway.list_orders(&query).await?, "gateway"));
        }
        if query.pay_type.is_some() {
            return Err(PaymentError::new(
                ErrorKind::InvalidInput,
                "This provider's orders are listed from this server's order ledger, which has no pay type (the LFWin cashier lets the payer choose); leave pay_type out. Nothing was sent.",
            ));
        }
        let ledger = self.ledger().await?;
        let from = query.start_time.as_deref().and_then(china_time_to_unix);
        let to = query.end_time.as_deref().and_then(china_time_to_unix);
        let (total, rows) = ledger
            .list_orders(&self.account, query.state, from, to, query.page, query.limit)
            .await
            .map_err(|e| ledger_failed(&format!("could not be read ({e})")))?;
        let mut orders: Vec<OrderSummary> = rows
            .into_iter()
            .map(|row| OrderSummary {
                state: Some(row.state()),
                platform_order_no: row.platform_order_no,
                merchant_order_no: Some(row.merchant_order_no),
                amount: Some(row.amount),
                created_at: crate::time::rfc3339_china(row.order_time),
                paid_at: row.paid_at.and_then(crate::time::rfc3339_china),
                ..OrderSummary::default()
            })
            .collect();
        if refresh {
            use futures::{FutureExt as _, StreamExt as _};
            let lookups: Vec<Option<OrderRef>> = orders
                .iter()
                .map(|o| match (&o.platform_order_no, &o.merchant_order_no) {
                    (Some(no), _) => Some(OrderRef::Platform(no.clone())),
                    (None, Some(m)) => Some(OrderRef::Merchant { merchant_order_no: m.clone(), order_time: None }),
                    (None, None) => None,
                })
                .collect();
            let mut futures = Vec::with_capacity(lookups.len());
            for lookup in lookups {
                futures.push(
                    async move {
                        match lookup {
                            Some(order) => self.query(order).await.ok(),
                            None => None,
                        }
                    }
                    .boxed(),
                );
            }
            let refreshed: Vec<Option<OrderStatus>> = futures::stream::iter(futures).buffered(8).collect().await;
            for (summary, status) in orders.iter_mut().zip(refreshed) {
                if let Some(status) = status {
                    summary.state = Some(status.state);
                    summary.platform_order_no = status.platform_order_no.or(summary.platform_order_no.take());
                    summary.paid_at = status.paid_time.and_then(crate::time::rfc3339_china).or(summary.paid_at.take());
                }
            }
        }
        Ok((OrderPage { total: Some(total), page: query.page, limit: query.limit, orders }, "ledger"))
    }

    /// The merchant account's balance and status, where the gateway offers it.
    ///
    /// # Errors
    /// Configuration, or the gateway's answer.
    pub async fn merchant_info(&self) -> Result<MerchantInfo, PaymentError> {
        self.gateway(false).await?.merchant_info().await
    }

    /// Checks a notification under the configured provider's signing rules; sends nothing.
    ///
    /// # Errors
    /// Configuration problems.
    pub async fn verify_notification(&self, raw: &str) -> Result<Notification, PaymentError> {
        let gateway = self.gateway(false).await?;
        let mut notification = gateway.verify_notification(raw);
        if gateway.kind() == ProviderKind::Alipay {
            self.check_notification_against_ledger(&mut notification).await;
        }
        Ok(notification)
    }

    /// Issue 13: an Alipay notification whose signature verified is then held against the order
    /// the ledger recorded under its `out_trade_no` (`app_id` was checked by the gateway). Another
    /// `total_amount`, or another `trade_no` than the one a query recorded, leaves the signature
    /// valid (it is Alipay's) but the state `unknown`, with the reason: a merchant must not deliver
    /// against it. Orders the ledger does not know (or no ledger) are judged by the signature alone.
    /// Scoped to Alipay: epay gateways may charge another amount than the order's (`price`).
    async fn check_notification_against_ledger(&self, n: &mut Notification) {
        if !n.signature_valid {
            return;
        }
        let Some(no) = n.merchant_order_no.clone() else {
            return;
        };
        let row = match self.ledger().await {
            Ok(ledger) => ledger.order(&self.account, &no).await.ok().flatten(),
            Err(_) => None,
        };
        let Some(row) = row else {
            return;
        };
        let mut reasons = Vec::new();
        if n.amount != Some(row.amount) {
            let said = n.amount.map_or_else(|| "no total_amount".to_owned(), |a| format!("total_amount {a}"));
            reasons.push(format!("it says {said}, but order {no} was created for {}", row.amount));
        }
        if let (Some(recorded), Some(named)) = (&row.platform_order_no, &n.platform_order_no)
            && recorded != named
        {
            reasons.push(format!("it names trade_no {named}, but order {no} is Alipay trade {recorded}"));
        }
        if !reasons.is_empty() {
            n.state = PaymentState::Unknown;
            n.disagreement = Some(reasons.join("; "));
        }
    }

    /// Marks a sandbox order paid or failed, as if the payer had acted on the pay page. The order
    /// is found by platform or merchant number; the platform number is returned.
    ///
    /// # Errors
    /// Outside the sandbox, or for an unknown or already final order.
    pub async fn simulate_payment(&self, order_no: &str, paid: bool) -> Result<String, PaymentError> {
        let Some(gw) = self.sandbox().await else {
            return Err(PaymentError::new(
                ErrorKind::Config,
                "sandbox_simulate_payment only works with the sandbox provider.",
            ));
        };
        gw.simulate_payment(order_no, paid).map_err(|m| PaymentError::new(ErrorKind::NotFound, m))?;
        Ok(gw.order(order_no).map_or_else(|| order_no.to_owned(), |order| order.orderid))
    }
}

#[cfg(test)]
mod tests;
