//! The ledger's order list, for `list_payment_orders` on gateways without a list API: the orders
//! this server created, newest first, with the last state and payment time a query saw.

use super::OrderStage;
use crate::money::Fen;
use crate::provider::PaymentState;

/// One order in a ledger listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedOrder {
    pub merchant_order_no: String,
    pub platform_order_no: Option<String>,
    pub amount: Fen,
    pub order_time: i64,
    /// The last state a query saw, if any.
    pub last_state: Option<PaymentState>,
    pub stage: OrderStage,
    /// When a query saw it paid (Unix seconds), if one did.
    pub paid_at: Option<i64>,
}

impl ListedOrder {
    /// The state to show: the last one a query saw; else `pending` for a created order and
    /// `unknown` for the others (the same rule as the `state` filter of [`Ledger::list_orders`](super::Ledger::list_orders)).
    pub fn state(&self) -> PaymentState {
        match (self.last_state, self.stage) {
            (Some(state), _) => state,
            (None, OrderStage::Created) => PaymentState::Pending,
            (None, _) => PaymentState::Unknown,
        }
    }
}

/// The filters and page of a listing.
#[derive(Debug, Clone, Copy)]
pub(super) struct Filter {
    pub state: Option<PaymentState>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub page: u32,
    pub limit: u32,
}

impl Filter {
    /// The row offset of the page (pages count from 1).
    pub fn offset(&self) -> i64 {
        i64::from(self.page.saturating_sub(1)) * i64::from(self.limit)
    }
}

/// The state a listed row counts as, in SQL (both dialects): the last one a query saw, else
/// `pending` for a created order and `unknown` for the others (as [`ListedOrder::state`]).
pub(super) const SHOWN_STATE: &str =
    "COALESCE(last_state, CASE outcome WHEN 'created' THEN 'pending' ELSE 'unknown' END)";
