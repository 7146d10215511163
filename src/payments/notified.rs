//! Payment notifications as the gateway sends them to the notify URL (`/notify/{provider}`, see
//! `crate::notify`): checked with the same code as the `verify_payment_notification` tool
//! ([`Payments::verify_notification`]), recorded in the ledger once however often the gateway
//! repeats them, and turned into wakes for the waits on the order, in this process and, on
//! PostgreSQL, in every other instance.

use std::sync::Arc;

use crate::error::PaymentError;
use crate::ledger::{Notified, Signal, Wake};
use crate::provider::{Notification, PaymentState};

use super::{Payments, ledger_failed};

/// What became of a notification.
#[derive(Debug, Clone)]
pub enum Received {
    /// The signature verifies: acknowledge it, so the gateway stops repeating it.
    Accepted {
        notification: Notification,
        /// This notification changed the ledger (the first of its repeats to record the order's
        /// final state); `false` for a repeat, a non-final state, or an order the ledger does not
        /// have.
        recorded: bool,
    },
    /// Not trusted (bad or missing signature, no order named): nothing was recorded or woken.
    Rejected(&'static str),
}

impl Payments {
    /// Checks a notification, records a final state it reports, and wakes the waits on its order.
    ///
    /// # Errors
    /// Configuration problems (no gateway to check with), or a ledger that cannot record it: the
    /// gateway should then be told to try again later.
    pub async fn receive_notification(&self, raw: &str) -> Result<Received, PaymentError> {
        let notification = self.verify_notification(raw).await?;
        if !notification.signature_valid {
            return Ok(Received::Rejected("its signature does not verify with the configured key"));
        }
        let merchant_no = notification.merchant_order_no.as_deref();
        let platform_no = notification.platform_order_no.as_deref();
        if merchant_no.is_none() && platform_no.is_none() {
            return Ok(Received::Rejected("it names no order"));
        }
        if let Some(why) = &notification.disagreement {
            // Signed by the gateway, so acknowledged (refusing it would only make the gateway
            // repeat it), but not recorded and nothing woken: it disagrees with the order.
            tracing::warn!(
                order = merchant_no.or(platform_no).unwrap_or_default(),
                "payment notification not trusted: {why}"
            );
            return Ok(Received::Accepted { notification, recorded: false });
        }
        if !notification.state.is_final() {
            tracing::debug!(
                state = notification.state.name(),
                "payment notification without a final state; acknowledged"
            );
            return Ok(Received::Accepted { notification, recorded: false });
        }
        let ledger = self.ledger().await?;
        let noted =
            Notified { state: notification.state, merchant_order_no: merchant_no, platform_order_no: platform_no };
        let recorded = ledger
            .note_notification(&self.account, noted)
            .await
            .map_err(|e| ledger_failed(&format!("could not record a payment notification ({e})")))?;
        let order = merchant_no.or(platform_no).unwrap_or_default();
        if recorded {
            tracing::info!(
                order,
                state = notification.state.name(),
                "payment notification: order is now {}",
                notification.state.name()
            );
        } else {
            tracing::debug!(
                order,
                state = notification.state.name(),
                "payment notification repeated or for an order not in the ledger; nothing changed"
            );
        }
        if notification.state == PaymentState::Paid && notification.amount.is_none() {
            tracing::warn!(
                order,
                "a paid notification without an amount; compare the order's amount before delivering"
            );
        }
        let wake = Wake::new(&self.account, merchant_no, platform_no);
        if let Err(e) = ledger.publish(&wake).await {
            // The other instances' waits still see it at their next poll.
            tracing::warn!("could not tell the other instances about a payment notification: {e}");
        }
        self.wakes.send(Signal::Order(Arc::new(wake)));
        Ok(Received::Accepted { notification, recorded })
    }
}
