//! The gateway abstraction: domain types every provider speaks, and the [`Gateway`] trait.
//!
//! The tools never see a wire format. Each provider (one module each: `lfwin.rs`, `epay/`, …) turns
//! these requests into its protocol and its replies back into these types, mapping every status code
//! to a [`PaymentState`], [`RefundState`] or [`PaymentError`]. Adding a provider means implementing
//! [`Gateway`]; the tools and the rendering stay as they are.

pub mod alipay;
pub mod epay;
pub mod lfwin;
pub mod transport;

use std::fmt;

use async_trait::async_trait;
use serde::Serialize;

use crate::error::{ErrorKind, PaymentError};
use crate::money::Fen;

/// Which gateway family serves the tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// The LFWin cashier API.
    Lfwin,
    /// "易支付"-protocol aggregators.
    Epay,
    /// The Alipay Open Platform (OpenAPI v2, `gateway.do`).
    Alipay,
    /// The embedded simulated gateway (LFWin wire protocol, no real money).
    Sandbox,
    /// Credentials are partly set, ambiguous, or `PAYMENT_PROVIDER` is unknown: every tool answers
    /// with a `config` error naming the variable. Never a silent fall-back to the sandbox, whose
    /// results would look like a working setup.
    Unconfigured,
}

impl ProviderKind {
    /// The name used in `PAYMENT_PROVIDER` and in every result's `provider` field.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Lfwin => "lfwin",
            ProviderKind::Epay => "epay",
            ProviderKind::Alipay => "alipay",
            ProviderKind::Sandbox => "sandbox",
            ProviderKind::Unconfigured => "unconfigured",
        }
    }
}

impl ProviderKind {
    /// For providers whose order list comes from the gateway, the states it can filter on; `None`
    /// for providers listed from this server's ledger (every state, but no pay type).
    pub fn listable_states(self) -> Option<&'static [PaymentState]> {
        match self {
            ProviderKind::Epay => Some(epay::LISTABLE_STATES),
            ProviderKind::Lfwin | ProviderKind::Alipay | ProviderKind::Sandbox | ProviderKind::Unconfigured => None,
        }
    }

    /// Whether this provider's gateway can close an unpaid order (`close_payment_order` is listed
    /// only then); the same answer as its client's [`Gateway::can_close`].
    pub fn can_close(self) -> bool {
        self == ProviderKind::Alipay
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lifecycle of a payment, as an agent should branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaymentState {
    /// Created, not (yet) paid.
    Pending,
    /// Paid: the money arrived.
    Paid,
    /// The payment failed.
    Failed,
    /// Closed or expired without payment.
    Closed,
    /// The gateway's answer did not say.
    #[default]
    Unknown,
}

impl PaymentState {
    /// Parses the lowercase name used in results and filters.
    pub fn from_name(name: &str) -> Option<PaymentState> {
        match name {
            "pending" => Some(PaymentState::Pending),
            "paid" => Some(PaymentState::Paid),
            "failed" => Some(PaymentState::Failed),
            "closed" => Some(PaymentState::Closed),
            "unknown" => Some(PaymentState::Unknown),
            _ => None,
        }
    }

    /// The lowercase name used in results and filters.
    pub fn name(self) -> &'static str {
        match self {
            PaymentState::Pending => "pending",
            PaymentState::Paid => "paid",
            PaymentState::Failed => "failed",
            PaymentState::Closed => "closed",
            PaymentState::Unknown => "unknown",
        }
    }

    /// Whether this state can still change.
    pub fn is_final(self) -> bool {
        matches!(self, PaymentState::Paid | PaymentState::Failed | PaymentState::Closed)
    }

    /// The LFWin-style uppercase status kept for compatibility with the older servers.
    pub fn legacy_status(self) -> &'static str {
        match self {
            PaymentState::Paid => "SUCCESS",
            PaymentState::Failed | PaymentState::Closed => "FAILED",
            PaymentState::Pending | PaymentState::Unknown => "PENDING",
        }
    }
}

/// The lifecycle of a refund. Accepted is `Processing`, never `Refunded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RefundState {
    /// Accepted by the gateway, not yet settled.
    Processing,
    /// The money went back to the payer.
    Refunded,
    /// The refund failed.
    Failed,
    /// The gateway's answer did not say.
    Unknown,
}

impl RefundState {
    /// The lowercase name used in results and in the ledger.
    pub fn name(self) -> &'static str {
        match self {
            RefundState::Processing => "processing",
            RefundState::Refunded => "refunded",
            RefundState::Failed => "failed",
            RefundState::Unknown => "unknown",
        }
    }

    /// Parses [`RefundState::name`].
    pub fn from_name(name: &str) -> Option<RefundState> {
        [RefundState::Processing, RefundState::Refunded, RefundState::Failed, RefundState::Unknown]
            .into_iter()
            .find(|s| s.name() == name)
    }

    /// Whether this state can still change.
    pub fn is_final(self) -> bool {
        matches!(self, RefundState::Refunded | RefundState::Failed)
    }

    /// The LFWin-style uppercase status kept for compatibility.
    pub fn legacy_status(self) -> &'static str {
        match self {
            RefundState::Refunded => "REFUNDED",
            RefundState::Failed => "FAILED",
            RefundState::Processing | RefundState::Unknown => "REFUNDING",
        }
    }
}

/// How the payer pays an order (Alipay's `channel` argument; other gateways have one way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PayChannel {
    /// A QR code the payer scans (Alipay `alipay.trade.precreate`, face-to-face).
    #[default]
    Qr,
    /// A mobile web pay page (Alipay `alipay.trade.wap.pay`).
    Wap,
    /// A PC web pay page (Alipay `alipay.trade.page.pay`).
    Page,
}

impl PayChannel {
    /// The name the `channel` argument takes.
    pub fn name(self) -> &'static str {
        match self {
            PayChannel::Qr => "precreate",
            PayChannel::Wap => "wap",
            PayChannel::Page => "page",
        }
    }
}

/// A validated request to create an order.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub merchant_order_no: String,
    pub amount: Fen,
    pub notify_url: Option<String>,
    pub return_url: Option<String>,
    pub subject: Option<String>,
    pub pay_type: Option<String>,
    /// Unix seconds; remembered so the order can be queried by merchant number later.
    pub order_time: i64,
    /// How the payer pays (only Alipay offers a choice).
    pub channel: PayChannel,
}

/// What a gateway said about a new order.
#[derive(Debug, Clone, Default)]
pub struct CreatedOrder {
    /// The platform order number, when the gateway gave one (never the pay URL).
    pub platform_order_no: Option<String>,
    /// Where the payer pays.
    pub pay_url: Option<String>,
    /// What the QR code should encode, when it differs from `pay_url` (epay's `qrcode`).
    pub qr_content: Option<String>,
    /// What the payer will actually be charged, when the gateway changed the amount.
    pub charged_amount: Option<Fen>,
    pub raw_status: String,
    pub message: String,
}

/// How to find an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderRef {
    /// By the platform's order number.
    Platform(String),
    /// By the merchant's order number (LFWin also needs the creation time, Unix seconds).
    Merchant { merchant_order_no: String, order_time: Option<i64> },
}

/// What a gateway said about an order.
#[derive(Debug, Clone)]
pub struct OrderStatus {
    pub state: PaymentState,
    pub platform_order_no: Option<String>,
    pub merchant_order_no: Option<String>,
    pub amount: Option<Fen>,
    pub paid_amount: Option<Fen>,
    /// Unix seconds.
    pub paid_time: Option<i64>,
    pub order_time: Option<i64>,
    pub raw_status: String,
    pub raw_paystatus: Option<String>,
    pub message: String,
    /// The platform order does not exist yet (LFWin creates it when the payer opens the cashier).
    pub pending_reason: Option<String>,
}

impl OrderStatus {
    /// An order asked for by merchant number that the gateway has no platform order for yet: pending,
    /// with `reason`, since LFWin and Alipay create it only when the payer opens the cashier or scans.
    pub fn awaiting_platform(
        merchant_order_no: &str,
        order_time: Option<i64>,
        raw_status: String,
        message: String,
        reason: &str,
    ) -> OrderStatus {
        OrderStatus {
            state: PaymentState::Pending,
            platform_order_no: None,
            merchant_order_no: Some(merchant_order_no.to_owned()),
            amount: None,
            paid_amount: None,
            paid_time: None,
            order_time,
            raw_status,
            raw_paystatus: None,
            message,
            pending_reason: Some(reason.to_owned()),
        }
    }
}

/// A validated refund request.
#[derive(Debug, Clone)]
pub struct RefundRequest {
    pub order_no: String,
    pub amount: Fen,
    pub reason: String,
    pub mch_refund_no: String,
}

/// What a gateway said when asked to refund: at best, accepted.
#[derive(Debug, Clone)]
pub struct RefundAccepted {
    pub state: RefundState,
    pub refund_no: Option<String>,
    pub mch_refund_no: String,
    pub order_no: Option<String>,
    pub raw_status: String,
    pub message: String,
}

/// How to find refunds: every refund of an order, or the one with a merchant refund number.
#[derive(Debug, Clone)]
pub struct RefundQuery {
    pub order_no: String,
    pub mch_refund_no: Option<String>,
}

/// One refund of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRecord {
    pub state: RefundState,
    pub refund_no: Option<String>,
    pub mch_refund_no: Option<String>,
    pub amount: Option<Fen>,
    /// Unix seconds.
    pub refund_time: Option<i64>,
    pub reason: Option<String>,
    pub raw_refund_status: Option<String>,
}

/// The refunds a gateway reported for an order.
#[derive(Debug, Clone)]
pub struct RefundStatus {
    pub order_no: Option<String>,
    pub records: Vec<RefundRecord>,
    pub raw_status: String,
    pub message: String,
}

/// Filters and paging for `list_payment_orders`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// 1-based page number.
    pub page: u32,
    /// Orders per page (1..=100).
    pub limit: u32,
    /// Only orders in this state (gateways that filter: `pending` and `paid`).
    pub state: Option<PaymentState>,
    /// Only this pay type (epay `type`).
    pub pay_type: Option<String>,
    /// Only orders created at or after this time, `YYYY-MM-DD HH:MM:SS` in China time.
    pub start_time: Option<String>,
    /// Only orders created at or before this time, `YYYY-MM-DD HH:MM:SS` in China time.
    pub end_time: Option<String>,
}

/// One order in a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderSummary {
    pub platform_order_no: Option<String>,
    pub merchant_order_no: Option<String>,
    pub pay_type: Option<String>,
    /// Item name.
    pub name: Option<String>,
    pub amount: Option<Fen>,
    /// What the payer was charged, when it differs from `amount`.
    pub charged_amount: Option<Fen>,
    pub state: Option<PaymentState>,
    /// Creation time as the gateway wrote it (`YYYY-MM-DD HH:MM:SS`, China time).
    pub created_at: Option<String>,
    /// Payment time as the gateway wrote it.
    pub paid_at: Option<String>,
}

/// A page of orders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderPage {
    /// All matching orders, when the gateway says.
    pub total: Option<u64>,
    pub page: u32,
    pub limit: u32,
    pub orders: Vec<OrderSummary>,
}

/// The merchant account as the gateway describes it. Never carries the key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerchantInfo {
    pub merchant_id: String,
    pub name: Option<String>,
    /// Account balance.
    pub balance: Option<Fen>,
    /// The gateway's account status, as it wrote it (e.g. `1` = active).
    pub status: Option<String>,
    /// Other non-secret fields the gateway returned (e.g. `vip_time`, `create_time`).
    pub extra: Vec<(String, String)>,
}

/// What a payment notification (the gateway's call to the merchant's notify URL) says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notification {
    /// Whether the signature verifies with the configured key under this provider's rules.
    pub signature_valid: bool,
    pub platform_order_no: Option<String>,
    pub merchant_order_no: Option<String>,
    pub amount: Option<Fen>,
    /// `paid` only when the signature is valid AND the notification says paid.
    pub state: PaymentState,
    /// The raw status field (`trade_status` for epay, `paystatus` for LFWin).
    pub raw_status: Option<String>,
    /// Every field received (decoded), except `sign`.
    pub fields: Vec<(String, String)>,
    /// Why a validly signed notification is still not to be acted on: it disagrees with the order
    /// the ledger recorded (another amount or trade). `state` is then `unknown`.
    pub disagreement: Option<String>,
}

/// A payment gateway. Implementations must not panic on any reply and must keep secrets out of every
/// message they return.
#[async_trait]
pub trait Gateway: Send + Sync {
    /// Which provider this is.
    fn kind(&self) -> ProviderKind;

    /// Whether `query_order` needs the creation time to find an order by merchant number.
    fn merchant_query_needs_order_time(&self) -> bool {
        false
    }

    /// Creates an order. A reply that never arrived is [`ErrorKind::OutcomeUnknown`].
    async fn create_order(&self, req: &CreateRequest) -> Result<CreatedOrder, PaymentError>;

    /// Reads an order's state.
    async fn query_order(&self, order: &OrderRef) -> Result<OrderStatus, PaymentError>;

    /// Asks for a refund. A reply that never arrived is [`ErrorKind::OutcomeUnknown`].
    async fn refund(&self, req: &RefundRequest) -> Result<RefundAccepted, PaymentError>;

    /// Reads refunds of an order.
    async fn query_refund(&self, query: &RefundQuery) -> Result<RefundStatus, PaymentError>;

    /// Why this gateway cannot refund at all, if it cannot: checked before a human is asked to
    /// confirm a refund, and before anything is recorded.
    fn refund_unsupported(&self) -> Option<PaymentError> {
        None
    }

    /// Whether repeating a refund with the same merchant refund number is safe (the gateway treats
    /// it as the same refund). Where it is not, a refund whose outcome is unknown is never resent.
    fn refund_is_idempotent(&self) -> bool {
        true
    }

    /// Whether "not found" from a merchant-number query proves the order does not exist. LFWin's
    /// does not (its platform order appears only when the payer opens the cashier page); epay's
    /// does (the order exists from the moment `mapi.php` accepted it).
    fn order_lookup_is_authoritative(&self) -> bool {
        false
    }

    /// Whether the gateway has an order-list API ([`Gateway::list_orders`]).
    fn can_list_orders(&self) -> bool {
        false
    }

    /// Lists orders from the gateway.
    async fn list_orders(&self, _query: &ListQuery) -> Result<OrderPage, PaymentError> {
        Err(unsupported(self.kind(), "listing orders"))
    }

    /// Whether the gateway has a merchant-info API ([`Gateway::merchant_info`]).
    fn can_describe_merchant(&self) -> bool {
        false
    }

    /// Reads the merchant account (balance, status).
    async fn merchant_info(&self) -> Result<MerchantInfo, PaymentError> {
        Err(unsupported(self.kind(), "merchant information"))
    }

    /// Whether the gateway can close an unpaid order ([`Gateway::close_order`]); the same answer
    /// as [`ProviderKind::can_close`] for its kind.
    fn can_close(&self) -> bool {
        false
    }

    /// Closes an unpaid order so that it can no longer be paid: its status, `closed`.
    async fn close_order(&self, _order: &OrderRef) -> Result<OrderStatus, PaymentError> {
        Err(unsupported(self.kind(), "closing orders"))
    }

    /// Checks a notification's raw query string or form body under this provider's signing rules.
    /// Pure: no request is sent.
    fn verify_notification(&self, raw: &str) -> Notification;
}

/// Decodes a notification as received: a query string (with or without the URL before `?`) or a
/// form body. Values are percent-decoded once, as a web framework would.
pub fn notification_fields(raw: &str) -> Vec<(String, String)> {
    let raw = raw.trim();
    let query = match raw.split_once('?') {
        Some((before, after)) if !before.contains('=') => after,
        _ => raw,
    };
    serde_urlencoded::from_str::<Vec<(String, String)>>(query.trim_start_matches('?')).unwrap_or_default()
}

/// The error for an operation a gateway does not offer.
pub fn unsupported(kind: ProviderKind, what: &str) -> PaymentError {
    PaymentError::new(ErrorKind::Refused, format!("The {kind} gateway offers no API for {what}."))
}
