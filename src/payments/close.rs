//! Closing an unpaid order (`close_payment_order`), where the gateway can (Alipay's
//! `alipay.trade.close`).
//!
//! A query comes first, so the answer never depends on how a gateway words a refusal: a paid order
//! is refused before anything is sent (it must be refunded), and an order already closed is
//! answered as it is (closing is idempotent). The closed state is recorded in the ledger, so lists
//! and later repeats know it.

use crate::error::{ErrorKind, PaymentError};
use crate::provider::{OrderRef, OrderStatus, PaymentState, unsupported};

use super::{Payments, logged};

/// The outcome of `close_payment_order`.
#[derive(Debug, Clone)]
pub struct CloseOutcome {
    /// The order's status after the call (`closed`, or `failed` for an order that can no longer be
    /// paid anyway).
    pub status: OrderStatus,
    /// The order was already closed (or failed): nothing was sent.
    pub already: bool,
}

impl Payments {
    /// Closes an unpaid order so that it can no longer be paid.
    ///
    /// # Errors
    /// `refused` for a paid order (code `ACQ.TRADE_HAS_SUCCESS`: refund it instead) or a gateway
    /// that cannot close; configuration, the gateway's answer, or transport faults.
    pub async fn close(&self, order: OrderRef) -> Result<CloseOutcome, PaymentError> {
        let gateway = self.gateway(true).await?;
        if !gateway.can_close() {
            return Err(unsupported(gateway.kind(), "closing orders"));
        }
        let current = match self.query(order.clone()).await {
            Ok(status) => Some(status),
            // No trade yet (or a number the gateway does not know): let the close call say so.
            Err(e) if e.kind == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if let Some(status) = current {
            match status.state {
                PaymentState::Paid => {
                    return Err(PaymentError::new(
                        ErrorKind::Refused,
                        "The order is already paid: refund it instead (refund_payment_order). Nothing was sent.",
                    )
                    .with_code("ACQ.TRADE_HAS_SUCCESS"));
                }
                PaymentState::Closed | PaymentState::Failed => return Ok(CloseOutcome { status, already: true }),
                PaymentState::Pending | PaymentState::Unknown => {}
            }
        }
        let closed = gateway.close_order(&order).await?;
        let merchant_no = closed.merchant_order_no.clone().or(match &order {
            OrderRef::Merchant { merchant_order_no, .. } => Some(merchant_order_no.clone()),
            OrderRef::Platform(_) => None,
        });
        if let (Ok(ledger), Some(no)) = (self.ledger().await, merchant_no) {
            logged(ledger.note_order_state(&self.account, &no, &closed)).await;
        }
        Ok(CloseOutcome { status: closed, already: false })
    }
}
