//! What the ledger records about each create and refund: how far it got ([`OrderStage`],
//! [`RefundStage`]), the rows as read back ([`OrderRow`], [`RefundRow`]), and what a caller writes
//! ([`OrderUpdate`], [`RefundUpdate`], [`OrderSeen`]).
//!
//! On disk every stage and state is the lowercase word schema 1 wrote (`intent`, `created`,
//! `paid` …), so files written by earlier versions read back the same.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::money::Fen;
use crate::provider::{OrderStatus, PaymentState, RefundState};

/// How far a create got (the `outcome` column of `orders`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStage {
    /// Recorded before the request left; the call that recorded it is sending it (or died).
    Intent,
    /// The gateway answered with the order (and its pay link).
    Created,
    /// The request was sent and no usable answer came, or a retry of such a request was refused:
    /// the order may or may not exist.
    Unknown,
}

/// How far a refund got (the `outcome` column of `refunds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundStage {
    /// Recorded before the request left; the call that recorded it is sending it (or died).
    Intent,
    /// The gateway accepted the refund (accepted is not refunded: see the row's `last_state`).
    Accepted,
    /// The request was sent and no usable answer came: the refund may or may not exist.
    Unknown,
}

/// What a stage means to the shared begin step: a live or abandoned intent, an unknown outcome
/// (a retry may take it over), or a finished attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Standing {
    Intent,
    Unknown,
    Finished,
}

/// The text of each stage on disk: the words schema 1 wrote.
macro_rules! stage_text {
    ($stage:ident { $($variant:ident => $text:literal, $standing:ident;)* }) => {
        impl $stage {
            /// The word stored in the ledger's `outcome` column.
            pub fn as_str(self) -> &'static str {
                match self { $($stage::$variant => $text,)* }
            }

            pub(super) fn standing(self) -> Standing {
                match self { $($stage::$variant => Standing::$standing,)* }
            }

            /// The stage a word in the `outcome` column stands for; an unknown word is an error,
            /// never a guess.
            pub(super) fn from_word(word: &str) -> Result<Self, super::LedgerError> {
                match word {
                    $($text => Ok($stage::$variant),)*
                    other => Err(super::LedgerError(format!("unrecognised outcome {other:?} in the ledger"))),
                }
            }
        }

        impl ToSql for $stage {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $stage {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                match value.as_str()? {
                    $($text => Ok($stage::$variant),)*
                    other => Err(FromSqlError::Other(format!("unrecognised outcome {other:?} in the ledger").into())),
                }
            }
        }
    };
}

stage_text!(OrderStage { Intent => "intent", Intent; Created => "created", Finished; Unknown => "unknown", Unknown; });
stage_text!(RefundStage { Intent => "intent", Intent; Accepted => "accepted", Finished; Unknown => "unknown", Unknown; });

/// An order as the ledger remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    pub amount: Fen,
    pub order_time: i64,
    pub stage: OrderStage,
    pub platform_order_no: Option<String>,
    pub pay_url: Option<String>,
    pub qr_content: Option<String>,
    pub charged: Option<Fen>,
    pub raw_status: Option<String>,
    /// The payment state the last query saw, if any.
    pub last_state: Option<PaymentState>,
}

impl OrderRow {
    /// Whether the ledger knows the order exists on the gateway: it has the platform number, or a
    /// query saw a final state. (A `pending` seen without a platform number proves nothing: LFWin
    /// answers a merchant-number query for an order it has not made yet as pending.)
    pub fn known_to_exist(&self) -> bool {
        self.platform_order_no.is_some() || self.last_state.is_some_and(PaymentState::is_final)
    }
}

/// A refund as the ledger remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRow {
    pub order_no: String,
    pub amount: Fen,
    pub stage: RefundStage,
    pub refund_no: Option<String>,
    pub raw_status: Option<String>,
    /// The refund state last recorded (`processing`, `refunded` …), if any.
    pub last_state: Option<RefundState>,
}

impl RefundRow {
    /// Whether the ledger knows the refund exists on the gateway: it has the gateway's refund
    /// number, or a refund query listed it (states are noted only for listed refunds).
    pub fn known_to_exist(&self) -> bool {
        self.refund_no.is_some() || self.last_state.is_some()
    }
}

/// What [`Ledger::finish_order`](super::Ledger::finish_order) records: the stage reached and what the gateway said. A `None`
/// field keeps what the row already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderUpdate<'a> {
    pub stage: OrderStage,
    pub platform_order_no: Option<&'a str>,
    pub pay_url: Option<&'a str>,
    pub qr_content: Option<&'a str>,
    pub charged: Option<Fen>,
    pub raw_status: Option<&'a str>,
}

impl OrderUpdate<'_> {
    /// Only the stage; every other field stays as recorded.
    pub fn stage(stage: OrderStage) -> Self {
        OrderUpdate { stage, platform_order_no: None, pay_url: None, qr_content: None, charged: None, raw_status: None }
    }
}

/// What a query saw of an order, for [`Ledger::note_order_state`](super::Ledger::note_order_state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderSeen<'a> {
    pub state: PaymentState,
    /// The platform order number, when the query named one.
    pub platform_order_no: Option<&'a str>,
    /// When it was paid (Unix seconds), when the query said.
    pub paid_at: Option<i64>,
}

impl From<PaymentState> for OrderSeen<'_> {
    fn from(state: PaymentState) -> Self {
        OrderSeen { state, platform_order_no: None, paid_at: None }
    }
}

impl<'a> From<&'a OrderStatus> for OrderSeen<'a> {
    fn from(status: &'a crate::provider::OrderStatus) -> Self {
        OrderSeen {
            state: status.state,
            platform_order_no: status.platform_order_no.as_deref(),
            paid_at: status.paid_time.filter(|_| status.state == PaymentState::Paid),
        }
    }
}

/// What [`Ledger::finish_refund`](super::Ledger::finish_refund) records. A `None` field keeps what the row already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundUpdate<'a> {
    pub stage: RefundStage,
    pub refund_no: Option<&'a str>,
    pub raw_status: Option<&'a str>,
    pub state: Option<RefundState>,
}

impl RefundUpdate<'_> {
    /// Only the stage; every other field stays as recorded.
    pub fn stage(stage: RefundStage) -> Self {
        RefundUpdate { stage, refund_no: None, raw_status: None, state: None }
    }
}

/// A state stored as its lowercase name; a name this version does not know reads as "not seen".
pub(super) fn payment_state(name: Option<String>) -> Option<PaymentState> {
    name.as_deref().and_then(PaymentState::from_name)
}

pub(super) fn refund_state(name: Option<String>) -> Option<RefundState> {
    name.as_deref().and_then(RefundState::from_name)
}

/// An amount column as [`Fen`] (a negative value, which this server never writes, reads as 0).
pub(super) fn fen(value: i64) -> Fen {
    Fen(value.max(0) as u64)
}
