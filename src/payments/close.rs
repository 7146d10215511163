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
    /// `refused` for a paid order (code `ACQ.TRADE_HAS_SUCCESS`: refund it instead), for one nobody
    /// has scanned yet (no trade to close; the gateway's code kept), or a gateway that cannot close; configuration, the gateway's answer, or transport faults.
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
        // An order this server created that the gateway has no trade for yet (Alipay makes the
        // trade at the payer's first scan): the gateway's "no such trade" would read as a wrong
        // number, while what the agent must hear is that the code can still be paid.
        let awaiting_payer = current.as_ref().is_some_and(|s| s.pending_reason.is_some());
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
        let closed = match gateway.close_order(&order).await {
            Err(e) if e.kind == ErrorKind::NotFound && awaiting_payer => {
                let mut refusal = PaymentError::new(
                    ErrorKind::Refused,
                    "Nobody has scanned the QR code or opened the pay page yet, so the gateway has no trade to close (Alipay makes it at the first scan). The code stays payable until it expires. Nothing changed; query the order later, and close it once it shows a trade.",
                );
                refusal.code = e.code;
                return Err(refusal);
            }
            answer => answer?,
        };
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
