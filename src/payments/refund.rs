//! The refund state machine (`refund_payment_order`) and refund queries (`query_refund_status`).
//!
//! A refund is checked once ([`Payments::check_refund`]: the gateway can refund, the amount is
//! within `PAYMENT_MAX_REFUND_AMOUNT`), possibly confirmed by a human, then sent
//! ([`Payments::refund`], which takes the checked refund, so the checks cannot be skipped or run
//! twice). Idempotent per `mch_refund_no`: an accepted refund is answered from the ledger, and one
//! whose outcome is unknown is asked again under the same number only where the gateway treats
//! that as the same refund.

use std::sync::Arc;

use crate::error::{ErrorKind, PaymentError};
use crate::ledger::{Ledger, RefundRow, RefundStage, RefundUpdate};
use crate::money::Fen;
use crate::provider::{Gateway, RefundAccepted, RefundQuery, RefundRequest, RefundState, RefundStatus};
use crate::scope::Scope;

use super::{AfterError, Intent, Payments, Start, logged};

/// A refund whose outcome is unknown, with the gateway's code when there was one.
fn unknown(code: Option<&str>) -> RefundUpdate<'_> {
    RefundUpdate { raw_status: code, ..RefundUpdate::stage(RefundStage::Unknown) }
}

/// The outcome of `refund_payment_order`.
#[derive(Debug, Clone)]
pub struct RefundOutcome {
    pub accepted: RefundAccepted,
    pub amount: Fen,
    pub replayed: bool,
}

/// A refund that passed the checks made before anyone is asked to confirm it: the only way to
/// [`Payments::refund`].
pub struct CheckedRefund {
    request: RefundRequest,
    gateway: Arc<dyn Gateway>,
}

impl CheckedRefund {
    /// The refund that was checked.
    pub fn request(&self) -> &RefundRequest {
        &self.request
    }
}

impl Payments {
    /// Refuses, before anyone is asked to confirm it or anything is sent, a refund the gateway
    /// cannot make or one above the refund cap of `scope` (the server's `PAYMENT_MAX_REFUND_AMOUNT`, narrowed
    /// by an HTTP caller's token).
    ///
    /// # Errors
    /// `config` when the provider is misconfigured; `refused` when the gateway has no refund API;
    /// `invalid_input` naming the limit.
    pub async fn check_refund(&self, request: RefundRequest, scope: &Scope) -> Result<CheckedRefund, PaymentError> {
        let gateway = self.gateway(true).await?;
        if let Some(err) = gateway.refund_unsupported() {
            return Err(err);
        }
        scope.check_refund(request.amount)?;
        Ok(CheckedRefund { request, gateway })
    }

    /// Asks for a checked refund; a repeat with the same `mch_refund_no` is never a second refund.
    ///
    /// # Errors
    /// Configuration, the ledger, the gateway's refusal, or an outcome that stays unknown.
    pub async fn refund(&self, checked: CheckedRefund) -> Result<RefundOutcome, PaymentError> {
        let CheckedRefund { request, gateway } = checked;
        let no = request.mch_refund_no.clone();
        let (ledger, start) = self.begin(
            Intent::Refund,
            &no,
            async |ledger, account, lease| ledger.begin_refund(account, &no, &request.order_no, request.amount, lease).await,
            |row| {
                PaymentError::new(
                    ErrorKind::Refused,
                    format!(
                        "mch_refund_no {no} was already used for a refund of {} on order {}; use a new mch_refund_no for a different refund. Nothing was sent.",
                        row.amount, row.order_no
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
                let accepted = RefundAccepted {
                    state: row.last_state.unwrap_or(RefundState::Processing),
                    refund_no: row.refund_no,
                    mch_refund_no: no,
                    order_no: Some(row.order_no),
                    raw_status: row.raw_status.unwrap_or_default(),
                    message: String::new(),
                };
                return Ok(RefundOutcome { accepted, amount: request.amount, replayed: true });
            }
            // An earlier attempt's outcome is unknown. Where the same mch_refund_no is the same
            // refund to the gateway, asking again cannot refund twice; elsewhere it could.
            Start::Retry(_) if !gateway.refund_is_idempotent() => {
                logged(ledger.finish_refund(account, &no, RefundUpdate::stage(RefundStage::Unknown))).await;
                return Err(PaymentError::new(
                    ErrorKind::OutcomeUnknown,
                    format!(
                        "A refund with mch_refund_no {no} was sent before and its outcome is unknown. This gateway's refund API has no refund number, so sending it again could refund twice: it was not sent. Check the order's refunds in the gateway's merchant console."
                    ),
                ));
            }
            // The ledger knows the refund exists (a refund query listed it): settle it with a
            // refund query. Resending would report the gateway's answer to a refund request,
            // `processing`, even for a refund known to be refunded.
            Start::Retry(row) if row.known_to_exist() => {
                return self.settle_known_refund(gateway.as_ref(), &ledger, &request, row).await;
            }
            Start::Retry(_) => {}
        }
        match gateway.refund(&request).await {
            Ok(accepted) => {
                let update = RefundUpdate {
                    refund_no: accepted.refund_no.as_deref(),
                    raw_status: Some(&accepted.raw_status),
                    state: Some(RefundState::Processing),
                    ..RefundUpdate::stage(RefundStage::Accepted)
                };
                logged(ledger.finish_refund(account, &no, update)).await;
                Ok(RefundOutcome { accepted, amount: request.amount, replayed: false })
            }
            Err(err) if err.kind == ErrorKind::OutcomeUnknown && !gateway.refund_is_idempotent() => {
                // No refund query exists for such gateways: the outcome stays unknown.
                logged(ledger.finish_refund(account, &no, unknown(err.code.as_deref()))).await;
                Err(err)
            }
            Err(err) if err.kind == ErrorKind::OutcomeUnknown => {
                let query = RefundQuery { order_no: request.order_no.clone(), mch_refund_no: Some(no.clone()) };
                let found = gateway.query_refund(&query).await.ok().and_then(|status| {
                    status.records.into_iter().find(|r| r.mch_refund_no.as_deref() == Some(no.as_str()))
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
                            mch_refund_no: no.clone(),
                            order_no: Some(request.order_no.clone()),
                            raw_status: record.raw_refund_status.unwrap_or_default(),
                            message: "The refund reply was lost, but a refund query found the refund on the gateway."
                                .into(),
                        };
                        let update = RefundUpdate {
                            refund_no: accepted.refund_no.as_deref(),
                            state: Some(accepted.state),
                            ..RefundUpdate::stage(RefundStage::Accepted)
                        };
                        logged(ledger.finish_refund(account, &no, update)).await;
                        Ok(RefundOutcome { accepted, amount: request.amount, replayed: false })
                    }
                    None => {
                        logged(ledger.finish_refund(account, &no, unknown(err.code.as_deref()))).await;
                        Err(PaymentError {
                            message: format!("{} A follow-up refund query could not confirm it either.", err.message),
                            ..err
                        })
                    }
                }
            }
            Err(err) => {
                match AfterError::of(&err, first_attempt) {
                    // A gateway-side error, or a retry of a refund whose first attempt's outcome
                    // is unknown: its record stays.
                    AfterError::Unknown => {
                        logged(ledger.finish_refund(account, &no, unknown(err.code.as_deref()))).await
                    }
                    AfterError::Forget => logged(ledger.forget_refund(account, &no)).await,
                }
                Err(self.merchant_number_hint(&request.order_no, "refund_payment_order", err).await)
            }
        }
    }

    /// A repeat of a refund whose outcome was unknown but which the ledger knows exists: a
    /// refund query answers it, and nothing is sent. The state reported is never older than the
    /// one the ledger knows. This call holds the intent, and gives it back whatever the query says.
    async fn settle_known_refund(
        &self,
        gateway: &dyn Gateway,
        ledger: &Ledger,
        request: &RefundRequest,
        row: RefundRow,
    ) -> Result<RefundOutcome, PaymentError> {
        let no = &request.mch_refund_no;
        let query = RefundQuery { order_no: request.order_no.clone(), mch_refund_no: Some(no.clone()) };
        let queried = gateway.query_refund(&query).await;
        let found = match queried {
            Ok(status) => Ok(status.records.into_iter().find(|r| r.mch_refund_no.as_deref() == Some(no.as_str()))),
            Err(e) => Err(e),
        };
        match found {
            Ok(Some(record)) => {
                let state = match (row.last_state, record.state) {
                    (Some(known), seen) if known.is_final() && !seen.is_final() => known,
                    (known, RefundState::Unknown) => known.unwrap_or(RefundState::Processing),
                    (_, seen) => seen,
                };
                let accepted = RefundAccepted {
                    state,
                    refund_no: record.refund_no.or(row.refund_no),
                    mch_refund_no: no.clone(),
                    order_no: Some(row.order_no),
                    raw_status: record.raw_refund_status.unwrap_or_default(),
                    message: "An earlier refund under this mch_refund_no lost its reply; a refund query found it, so nothing was sent again.".into(),
                };
                let update = RefundUpdate {
                    refund_no: accepted.refund_no.as_deref(),
                    state: Some(state),
                    ..RefundUpdate::stage(RefundStage::Accepted)
                };
                logged(ledger.finish_refund(&self.account, no, update)).await;
                Ok(RefundOutcome { accepted, amount: request.amount, replayed: true })
            }
            answer => {
                logged(ledger.finish_refund(&self.account, no, RefundUpdate::stage(RefundStage::Unknown))).await;
                let (why, err) = match answer {
                    Err(e) => (e.message.clone(), e),
                    Ok(_) => (
                        "the gateway did not list it.".to_owned(),
                        PaymentError::new(ErrorKind::OutcomeUnknown, String::new()),
                    ),
                };
                let known = row.last_state.map_or(String::new(), |s| format!(", last seen {}", s.name()));
                Err(PaymentError {
                    message: format!(
                        "mch_refund_no {no} already has a refund on the gateway{known} whose reply was lost, and the refund query to settle it failed: {why} Nothing was sent. Check it with query_refund_status, or repeat this call in a few seconds."
                    ),
                    ..err
                })
            }
        }
    }

    /// Reads the refunds of an order.
    ///
    /// # Errors
    /// Configuration, the gateway's answer, or transport faults.
    pub async fn query_refund(&self, query: RefundQuery) -> Result<RefundStatus, PaymentError> {
        let gateway = self.gateway(false).await?;
        let status = match gateway.query_refund(&query).await {
            Ok(status) => status,
            Err(e) => return Err(self.merchant_number_hint(&query.order_no, "query_refund_status", e).await),
        };
        if let Ok(ledger) = self.ledger().await {
            for record in &status.records {
                if let Some(no) = &record.mch_refund_no
                    && record.state != RefundState::Unknown
                {
                    logged(ledger.note_refund_state(&self.account, no, record.state)).await;
                }
            }
        }
        Ok(status)
    }
}
