//! The create state machine (`create_payment_order`): guardrails, the ledger intent, one request,
//! and a lost reply settled by a query.
//!
//! Idempotent per merchant order number: a finished create is answered from the ledger (nothing is
//! sent), the same number with another amount is refused, and an attempt whose outcome is unknown
//! is asked again under the same number and creation time, which the gateway treats as the same
//! order.

use crate::error::{ErrorKind, PaymentError};
use crate::ledger::{Ledger, OrderRow, OrderStage, OrderUpdate};
use crate::provider::{CreateRequest, CreatedOrder, Gateway, OrderRef, OrderStatus, PaymentState};
use crate::scope::Scope;

use super::{AfterError, Intent, Payments, Start, logged};

/// The outcome of `create_payment_order`.
#[derive(Debug, Clone)]
pub struct CreateOutcome {
    pub request: CreateRequest,
    pub order: CreatedOrder,
    /// The order was created earlier (same merchant number and amount); nothing was sent now.
    pub replayed: bool,
    /// The create reply was lost and a query found the order: its pay link is unknown.
    pub recovered: Option<OrderStatus>,
    /// For a replay: the state the last query of this order saw, if any.
    pub known_state: Option<PaymentState>,
}

/// The state to report when the ledger knew `known` and a query now says `seen`: a final state
/// the ledger knows is never replaced by a non-final one.
fn never_older(known: Option<PaymentState>, seen: PaymentState) -> PaymentState {
    match known {
        Some(known) if known.is_final() && !seen.is_final() => known,
        _ => seen,
    }
}

/// A finished create, answered from its ledger record.
fn replay(request: CreateRequest, row: OrderRow) -> CreateOutcome {
    let order = CreatedOrder {
        platform_order_no: row.platform_order_no,
        pay_url: row.pay_url,
        qr_content: row.qr_content,
        charged_amount: row.charged,
        raw_status: row.raw_status.unwrap_or_default(),
        message: String::new(),
    };
    CreateOutcome { request, order, replayed: true, recovered: None, known_state: row.last_state }
}

impl Payments {
    /// Creates an order, or returns the one created earlier under the same merchant number. `scope`
    /// is the caller's (the server's guardrails, narrowed by an HTTP caller's token): its order cap is
    /// checked before anything is recorded or sent.
    ///
    /// # Errors
    /// Guardrails, configuration, the gateway's refusal, or an outcome that stays unknown.
    pub async fn create(&self, mut request: CreateRequest, scope: &Scope) -> Result<CreateOutcome, PaymentError> {
        scope.check_order(request.amount)?;
        if request.notify_url.is_none() {
            request.notify_url = self.config.notify_url.clone();
        }
        if request.return_url.is_none() {
            request.return_url = self.config.return_url.clone();
        }
        let gateway = self.gateway(true).await?;
        let no = request.merchant_order_no.clone();
        let (ledger, start) = self.begin(
            Intent::Create,
            &no,
            async |ledger, account, lease| ledger.begin_order(account, &no, request.amount, request.order_time, lease).await,
            |row| {
                PaymentError::new(
                    ErrorKind::Refused,
                    format!(
                        "merchant_order_no {no} was already used for an order of {}; this call asked for {}. Use a new merchant_order_no for a different sale, or the same amount to get the existing order back.",
                        row.amount, request.amount
                    ),
                )
            },
        )
        .await?;
        let account = &self.account;
        let first_attempt = matches!(start, Start::First);
        match start {
            Start::First => {}
            Start::Done(row) => {
                request.order_time = row.order_time;
                return Ok(replay(request, row));
            }
            // An earlier attempt's outcome is unknown, but the ledger knows the order exists (a
            // query saw it): settle it with a query. Resending would report the gateway's answer
            // to a create, `pending` with a QR code to show, even for an order known to be paid.
            Start::Retry(row) if row.known_to_exist() => {
                request.order_time = row.order_time;
                return self.settle_known_create(gateway.as_ref(), &ledger, request, row).await;
            }
            // An earlier attempt's outcome is unknown and this call now holds the intent: ask
            // again under the same number and time; the gateway answers a repeated mch_orderid
            // with the existing order.
            Start::Retry(row) => request.order_time = row.order_time,
        }
        match gateway.create_order(&request).await {
            Ok(order) => {
                let update = OrderUpdate {
                    platform_order_no: order.platform_order_no.as_deref(),
                    pay_url: order.pay_url.as_deref(),
                    qr_content: order.qr_content.as_deref(),
                    charged: order.charged_amount,
                    raw_status: Some(&order.raw_status),
                    ..OrderUpdate::stage(OrderStage::Created)
                };
                logged(ledger.finish_order(account, &no, update)).await;
                Ok(CreateOutcome { request, order, replayed: false, recovered: None, known_state: None })
            }
            Err(err) if err.kind == ErrorKind::OutcomeUnknown => {
                let settled = self.settle_create(gateway.as_ref(), request, err).await;
                match &settled {
                    Ok(outcome) => {
                        let update = OrderUpdate {
                            platform_order_no: outcome.order.platform_order_no.as_deref(),
                            raw_status: Some(&outcome.order.raw_status),
                            ..OrderUpdate::stage(OrderStage::Unknown)
                        };
                        logged(ledger.finish_order(account, &no, update)).await;
                        if let Some(status) = &outcome.recovered {
                            logged(ledger.note_order_state(account, &no, status)).await;
                        }
                    }
                    // Proven never created: forgotten, so the same call may simply be repeated.
                    Err(e) if e.kind == ErrorKind::Transport => logged(ledger.forget_order(account, &no)).await,
                    Err(_) => logged(ledger.finish_order(account, &no, OrderUpdate::stage(OrderStage::Unknown))).await,
                }
                settled
            }
            Err(err) => {
                match AfterError::of(&err, first_attempt) {
                    // A retry of an order whose first attempt's outcome is unknown was refused (or
                    // the gateway failed on its side): that order may still exist, so its record
                    // (and order_time) stays.
                    AfterError::Unknown => {
                        let update =
                            OrderUpdate { raw_status: err.code.as_deref(), ..OrderUpdate::stage(OrderStage::Unknown) };
                        logged(ledger.finish_order(account, &no, update)).await;
                    }
                    AfterError::Forget => logged(ledger.forget_order(account, &no)).await,
                }
                Err(err)
            }
        }
    }

    /// A repeat of a create whose outcome was unknown but whose order the ledger knows exists:
    /// a query answers it (by platform number when known), and nothing is sent. The state
    /// reported is never older than the one the ledger knows. This call holds the intent, and
    /// gives it back whatever the query says.
    async fn settle_known_create(
        &self,
        gateway: &dyn Gateway,
        ledger: &Ledger,
        request: CreateRequest,
        row: OrderRow,
    ) -> Result<CreateOutcome, PaymentError> {
        let no = request.merchant_order_no.clone();
        let lookup = match &row.platform_order_no {
            Some(platform) => OrderRef::Platform(platform.clone()),
            None => OrderRef::Merchant { merchant_order_no: no.clone(), order_time: Some(row.order_time) },
        };
        match gateway.query_order(&lookup).await {
            Ok(mut status) if status.pending_reason.is_none() => {
                status.state = never_older(row.last_state, status.state);
                let update = OrderUpdate {
                    platform_order_no: status.platform_order_no.as_deref(),
                    raw_status: Some(&status.raw_status),
                    ..OrderUpdate::stage(OrderStage::Unknown)
                };
                logged(ledger.finish_order(&self.account, &no, update)).await;
                logged(ledger.note_order_state(&self.account, &no, &status)).await;
                let order = CreatedOrder {
                    platform_order_no: status.platform_order_no.clone().or(row.platform_order_no),
                    raw_status: status.raw_status.clone(),
                    message: "An earlier create under this merchant_order_no lost its reply; a query found the order, so nothing was sent again.".into(),
                    ..CreatedOrder::default()
                };
                Ok(CreateOutcome {
                    request,
                    order,
                    replayed: true,
                    recovered: Some(status),
                    known_state: row.last_state,
                })
            }
            answer => {
                logged(ledger.finish_order(&self.account, &no, OrderUpdate::stage(OrderStage::Unknown))).await;
                let (why, err) = match answer {
                    Err(e) => (e.message.clone(), e),
                    Ok(_) => (
                        "the gateway does not list it yet.".to_owned(),
                        PaymentError::new(ErrorKind::OutcomeUnknown, String::new()),
                    ),
                };
                let known = match (&row.platform_order_no, row.last_state) {
                    (Some(p), Some(state)) => format!("platform order {p}, last seen {}", state.name()),
                    (Some(p), None) => format!("platform order {p}"),
                    (None, Some(state)) => format!("last seen {}", state.name()),
                    (None, None) => "no details".to_owned(),
                };
                Err(PaymentError {
                    message: format!(
                        "merchant_order_no {no} already has an order on the gateway ({known}) whose create reply was lost, and the query to settle it failed: {why} Nothing was sent. Query it with query_payment_order, or repeat this call in a few seconds."
                    ),
                    ..err
                })
            }
        }
    }

    /// A create whose reply was lost: ask the gateway whether the order exists.
    async fn settle_create(
        &self,
        gateway: &dyn Gateway,
        request: CreateRequest,
        original: PaymentError,
    ) -> Result<CreateOutcome, PaymentError> {
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
                Ok(CreateOutcome { request, order, replayed: false, recovered: Some(status), known_state: None })
            }
            Err(e) if e.kind == ErrorKind::NotFound && gateway.order_lookup_is_authoritative() => {
                Err(PaymentError::new(
                    ErrorKind::Transport,
                    format!(
                        "The create request failed before its reply arrived ({}), and a follow-up query shows the gateway has no order with merchant_order_no {}: nothing was created and no money can be taken for it. Call create_payment_order again with the same merchant_order_no and amount.",
                        original.code.as_deref().unwrap_or("no reply"),
                        request.merchant_order_no
                    ),
                ))
            }
            _ => Err(PaymentError {
                message: format!(
                    "{} A follow-up query by merchant_order_no {} (order_time {}) could not confirm the order either.",
                    original.message, request.merchant_order_no, request.order_time
                ),
                ..original
            }),
        }
    }
}
