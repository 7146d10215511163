//! What the tools do, independent of MCP: guardrails, idempotency, settling unknown outcomes, and
//! the memory of orders and refunds this server sent.
//!
//! Arguments arrive validated (see `tools::args`); results leave as domain types that
//! `tools::render` turns into MCP content. The gateway client is built on first use, so start-up
//! does no TLS or network work.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::OnceCell;

use crate::config::{Config, ProviderSettings};
use crate::money::Fen;
use crate::provider::lfwin::LfwinClient;
use crate::provider::{
    CreateRequest, CreatedOrder, ErrorKind, Gateway, GatewayError, OrderRef, OrderStatus, ProviderKind, RefundAccepted,
    RefundQuery, RefundRequest, RefundState, RefundStatus,
};
use crate::sandbox;

/// An order this server created (or tried to), remembered for merchant-number queries and
/// idempotent repeats.
#[derive(Debug, Clone)]
pub struct KnownOrder {
    pub order_time: i64,
    pub amount: Fen,
    /// The gateway's answer, once one arrived.
    pub created: Option<CreatedOrder>,
}

/// A refund this server sent, remembered so a repeat with the same `mch_refund_no` is never a
/// second refund.
#[derive(Debug, Clone)]
struct KnownRefund {
    order_no: String,
    amount: Fen,
    accepted: Option<RefundAccepted>,
}

/// The outcome of `create_payment_order`.
#[derive(Debug, Clone)]
pub struct CreateOutcome {
    pub request: CreateRequest,
    pub order: CreatedOrder,
    /// The order was created earlier (same merchant number and amount); nothing was sent now.
    pub replayed: bool,
    /// The create reply was lost and a query found the order: its pay link is unknown.
    pub recovered: Option<OrderStatus>,
}

/// The outcome of `refund_payment_order`.
#[derive(Debug, Clone)]
pub struct RefundOutcome {
    pub accepted: RefundAccepted,
    pub amount: Fen,
    pub replayed: bool,
}

/// The service behind the tools: configuration, the gateway, and what this process remembers.
pub struct Payments {
    config: Config,
    gateway: OnceCell<Result<Arc<dyn Gateway>, GatewayError>>,
    sandbox: OnceCell<Option<sandbox::Gateway>>,
    orders: Mutex<HashMap<String, KnownOrder>>,
    refunds: Mutex<HashMap<String, KnownRefund>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Unix seconds now.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

impl Payments {
    pub fn new(config: Config) -> Payments {
        Payments {
            config,
            gateway: OnceCell::new(),
            sandbox: OnceCell::new(),
            orders: Mutex::new(HashMap::new()),
            refunds: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn kind(&self) -> ProviderKind {
        self.config.provider.kind()
    }

    pub fn is_sandbox(&self) -> bool {
        self.kind() == ProviderKind::Sandbox
    }

    /// The configuration error that stops a tool, if any.
    pub fn config_error(&self, money_moving: bool) -> Option<GatewayError> {
        self.config
            .problem_for(money_moving)
            .map(|p| GatewayError::new(ErrorKind::Config, format!("Configuration problem: {} (variable {}). Fix it in the MCP client's server configuration and restart the server.", p.message, p.variable)).with_code(p.variable))
    }

    /// The embedded sandbox gateway, started on first use (sandbox provider only).
    pub async fn sandbox(&self) -> Option<&sandbox::Gateway> {
        if !self.is_sandbox() {
            return None;
        }
        self.sandbox
            .get_or_init(|| async {
                let config = sandbox::GatewayConfig {
                    refund_settle_delay: self.config.sandbox_refund_delay,
                    ..sandbox::GatewayConfig::random_keys()
                };
                match sandbox::Gateway::start(config).await {
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

    async fn gateway(&self, money_moving: bool) -> Result<Arc<dyn Gateway>, GatewayError> {
        if let Some(err) = self.config_error(money_moving) {
            return Err(err);
        }
        self.gateway.get_or_init(|| self.build_gateway()).await.clone()
    }

    async fn build_gateway(&self) -> Result<Arc<dyn Gateway>, GatewayError> {
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
                    return Err(GatewayError::new(
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
            ProviderSettings::Epay { .. } => Err(GatewayError::new(
                ErrorKind::Config,
                "PAYMENT_PROVIDER=epay is not supported by this version yet; use lfwin or sandbox.",
            )
            .with_code("PAYMENT_PROVIDER")),
        }
    }

    /// Creates an order, or returns the one created earlier under the same merchant number.
    ///
    /// # Errors
    /// Guardrails, configuration, the gateway's refusal, or an outcome that stays unknown.
    pub async fn create(&self, mut request: CreateRequest) -> Result<CreateOutcome, GatewayError> {
        if let Some(max) = self.config.max_order
            && request.amount > max
        {
            return Err(GatewayError::new(
                ErrorKind::InvalidInput,
                format!(
                    "The amount {} is above this server's limit of {} (PAYMENT_MAX_ORDER_AMOUNT); nothing was sent.",
                    request.amount, max
                ),
            ));
        }
        if request.notify_url.is_none() {
            request.notify_url = self.config.notify_url.clone();
        }
        if request.return_url.is_none() {
            request.return_url = self.config.return_url.clone();
        }
        let gateway = self.gateway(true).await?;
        {
            let mut orders = lock(&self.orders);
            if let Some(known) = orders.get(&request.merchant_order_no) {
                if known.amount != request.amount {
                    return Err(GatewayError::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "merchant_order_no {} was already used for an order of {}; this call asked for {}. Use a new merchant_order_no for a different sale, or the same amount to get the existing order back.",
                            request.merchant_order_no, known.amount, request.amount
                        ),
                    ));
                }
                if let Some(created) = &known.created {
                    let mut replay = request.clone();
                    replay.order_time = known.order_time;
                    return Ok(CreateOutcome {
                        request: replay,
                        order: created.clone(),
                        replayed: true,
                        recovered: None,
                    });
                }
                // An earlier attempt's outcome is unknown: reuse its order_time and ask again.
                request.order_time = known.order_time;
            } else {
                orders.insert(
                    request.merchant_order_no.clone(),
                    KnownOrder { order_time: request.order_time, amount: request.amount, created: None },
                );
            }
        }
        match gateway.create_order(&request).await {
            Ok(order) => {
                if let Some(known) = lock(&self.orders).get_mut(&request.merchant_order_no) {
                    known.created = Some(order.clone());
                }
                Ok(CreateOutcome { request, order, replayed: false, recovered: None })
            }
            Err(err) if err.kind == ErrorKind::OutcomeUnknown => {
                self.settle_create(gateway.as_ref(), request, err).await
            }
            Err(err) => {
                if !matches!(err.kind, ErrorKind::Gateway) {
                    // Refused for sure: forget it, so a corrected retry is not mistaken for a repeat.
                    lock(&self.orders).remove(&request.merchant_order_no);
                }
                Err(err)
            }
        }
    }

    /// A create whose reply was lost: ask the gateway whether the order exists.
    async fn settle_create(
        &self,
        gateway: &dyn Gateway,
        request: CreateRequest,
        original: GatewayError,
    ) -> Result<CreateOutcome, GatewayError> {
        let lookup = OrderRef::Merchant {
            merchant_order_no: request.merchant_order_no.clone(),
            order_time: Some(request.order_time),
        };
        match gateway.query_order(&lookup).await {
            Ok(status) if status.pending_reason.is_none() => {
                let order = CreatedOrder {
                    platform_order_no: status.platform_order_no.clone(),
                    raw_status: status.raw_status.clone(),
                    message: "The create reply was lost, but a query found the order on the gateway.".into(),
                    ..CreatedOrder::default()
                };
                Ok(CreateOutcome { request, order, replayed: false, recovered: Some(status) })
            }
            _ => Err(GatewayError {
                message: format!(
                    "{} A follow-up query by merchant_order_no {} (order_time {}) could not confirm the order either.",
                    original.message, request.merchant_order_no, request.order_time
                ),
                ..original
            }),
        }
    }

    /// Reads an order, filling in `order_time` for merchant-number queries of orders this server made.
    ///
    /// # Errors
    /// Configuration, the gateway's answer, or transport faults.
    pub async fn query(&self, mut order: OrderRef) -> Result<OrderStatus, GatewayError> {
        let gateway = self.gateway(false).await?;
        if let OrderRef::Merchant { merchant_order_no, order_time } = &mut order
            && order_time.is_none()
        {
            *order_time = lock(&self.orders).get(merchant_order_no.as_str()).map(|k| k.order_time);
        }
        gateway.query_order(&order).await
    }

    /// The merchant order this server created with that number, if any.
    pub fn known_order(&self, merchant_order_no: &str) -> Option<KnownOrder> {
        lock(&self.orders).get(merchant_order_no).cloned()
    }

    /// Asks for a refund; a repeat with the same `mch_refund_no` is never a second refund.
    ///
    /// # Errors
    /// Guardrails, configuration, the gateway's refusal, or an outcome that stays unknown.
    pub async fn refund(&self, request: RefundRequest) -> Result<RefundOutcome, GatewayError> {
        if let Some(max) = self.config.max_refund
            && request.amount > max
        {
            return Err(GatewayError::new(
                ErrorKind::InvalidInput,
                format!(
                    "The refund amount {} is above this server's limit of {} (PAYMENT_MAX_REFUND_AMOUNT); nothing was sent.",
                    request.amount, max
                ),
            ));
        }
        let gateway = self.gateway(true).await?;
        {
            let mut refunds = lock(&self.refunds);
            if let Some(known) = refunds.get(&request.mch_refund_no) {
                if known.order_no != request.order_no || known.amount != request.amount {
                    return Err(GatewayError::new(
                        ErrorKind::InvalidInput,
                        format!(
                            "mch_refund_no {} was already used for a refund of {} on order {}; use a new mch_refund_no for a different refund.",
                            request.mch_refund_no, known.amount, known.order_no
                        ),
                    ));
                }
                if let Some(accepted) = &known.accepted {
                    return Ok(RefundOutcome { accepted: accepted.clone(), amount: request.amount, replayed: true });
                }
            } else {
                refunds.insert(
                    request.mch_refund_no.clone(),
                    KnownRefund { order_no: request.order_no.clone(), amount: request.amount, accepted: None },
                );
            }
        }
        match gateway.refund(&request).await {
            Ok(accepted) => {
                if let Some(known) = lock(&self.refunds).get_mut(&request.mch_refund_no) {
                    known.accepted = Some(accepted.clone());
                }
                Ok(RefundOutcome { accepted, amount: request.amount, replayed: false })
            }
            Err(err) if err.kind == ErrorKind::OutcomeUnknown => {
                let query = RefundQuery {
                    order_no: request.order_no.clone(),
                    mch_refund_no: Some(request.mch_refund_no.clone()),
                };
                let found = gateway.query_refund(&query).await.ok().and_then(|status| {
                    status
                        .records
                        .into_iter()
                        .find(|r| r.mch_refund_no.as_deref() == Some(request.mch_refund_no.as_str()))
                });
                match found {
                    Some(record) => {
                        let accepted = RefundAccepted {
                            state: if record.state == RefundState::Unknown {
                                RefundState::Processing
                            } else {
                                record.state
                            },
                            refund_no: record.refund_no,
                            mch_refund_no: request.mch_refund_no.clone(),
                            order_no: Some(request.order_no.clone()),
                            raw_status: record.raw_refund_status.unwrap_or_default(),
                            message: "The refund reply was lost, but a refund query found the refund on the gateway."
                                .into(),
                        };
                        if let Some(known) = lock(&self.refunds).get_mut(&request.mch_refund_no) {
                            known.accepted = Some(accepted.clone());
                        }
                        Ok(RefundOutcome { accepted, amount: request.amount, replayed: false })
                    }
                    None => Err(GatewayError {
                        message: format!("{} A follow-up refund query could not confirm it either.", err.message),
                        ..err
                    }),
                }
            }
            Err(err) => {
                if !matches!(err.kind, ErrorKind::Gateway) {
                    lock(&self.refunds).remove(&request.mch_refund_no);
                }
                Err(err)
            }
        }
    }

    /// Reads the refunds of an order.
    ///
    /// # Errors
    /// Configuration, the gateway's answer, or transport faults.
    pub async fn query_refund(&self, query: RefundQuery) -> Result<RefundStatus, GatewayError> {
        let gateway = self.gateway(false).await?;
        gateway.query_refund(&query).await
    }

    /// Marks a sandbox order paid or failed, as if the payer had acted on the pay page.
    ///
    /// # Errors
    /// Outside the sandbox, or for an unknown or already final order.
    pub async fn simulate_payment(&self, order_no: &str, paid: bool) -> Result<(), GatewayError> {
        let Some(gw) = self.sandbox().await else {
            return Err(GatewayError::new(
                ErrorKind::Config,
                "sandbox_simulate_payment only works with the sandbox provider.",
            ));
        };
        gw.simulate_payment(order_no, paid).map_err(|m| GatewayError::new(ErrorKind::NotFound, m))
    }
}
