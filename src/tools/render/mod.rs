//! Domain results → MCP tool results: `structuredContent` matching each tool's `outputSchema`, a
//! compact JSON text block for clients that ignore structured content, and the QR image block.
//!
//! This file holds what every tool returns: the output types (their JSON Schemas are stored in
//! `../outputs.json` under each type's path, so they live here) and the envelope every result
//! shares (provider, sandbox banner, errors). The renderers that fill them in are split by tool
//! family: `orders.rs` (create, query, list), `refunds.rs` (refund, refund query) and `account.rs`
//! (merchant information, notifications, the sandbox's simulated payer); the results of the tools
//! named as Alipay's own MCP server names them, with their own output types, are in `compat.rs`.
//!
//! Tokens cost the agent money, so the text block carries the QR's base64 once (inside
//! `pay_qrcode_markdown`); the other copies live only in `structuredContent` and the image block.

mod account;
pub mod compat;
mod orders;
mod refunds;

pub use account::{merchant, simulated, verified};
pub use orders::{closed, create, list, query};
pub use refunds::{awaiting_card, refund, refund_query};

use crate::error::{ErrorKind, PaymentError};
use rmcp::model::{CallToolResult, ContentBlock};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};

use crate::provider::{PaymentState, ProviderKind, RefundState};

/// The first text block of every sandbox result.
pub const SANDBOX_BANNER: &str = "SANDBOX: no real money. This order lives in payment-mcp's embedded simulated gateway; set PAYMENT_API_KEY and PAYMENT_SIGN_KEY to take real payments.";

/// Which provider answered; on every result.
#[derive(Debug, Clone, Copy)]
pub struct Origin {
    pub provider: ProviderKind,
}

impl Origin {
    fn sandbox(self) -> bool {
        self.provider == ProviderKind::Sandbox
    }
}

/// The error body in `structuredContent.error`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorBody {
    /// What class of failure: invalid_input, config, auth, refused, not_found, rate_limited,
    /// gateway, transport or outcome_unknown.
    pub kind: ErrorKind,
    /// The gateway's status code or the configuration variable, when there is one.
    pub code: Option<String>,
    /// What happened and what to do next.
    pub message: String,
    /// Whether the same call may succeed later unchanged.
    pub retryable: bool,
}

/// A tool error: `isError: true`, a one-paragraph text, and `structuredContent.error`.
pub fn error(origin: Origin, err: &PaymentError) -> CallToolResult {
    let body = json!({
        "success": false,
        "provider": origin.provider.as_str(),
        "sandbox": origin.sandbox(),
        "error": ErrorBody { kind: err.kind, code: err.code.clone(), message: err.message.clone(), retryable: err.retryable },
    });
    let kind = serde_json::to_value(err.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let mut content = Vec::with_capacity(2);
    if origin.sandbox() {
        content.push(ContentBlock::text(SANDBOX_BANNER));
    }
    content.push(ContentBlock::text(format!("Error ({kind}): {}", err.message)));
    let mut result = CallToolResult::error(content);
    result.structured_content = Some(body);
    result
}

fn success(origin: Origin, structured: Value, text: Value, image: Option<ContentBlock>) -> CallToolResult {
    let mut content = Vec::with_capacity(3);
    if origin.sandbox() {
        content.push(ContentBlock::text(SANDBOX_BANNER));
    }
    content.push(ContentBlock::text(text.to_string()));
    content.extend(image);
    let mut result = CallToolResult::success(content);
    result.structured_content = Some(structured);
    result
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Ways to show the QR, for clients that render one format better than another.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DisplayExamples {
    /// A Markdown image.
    pub markdown: String,
    /// An HTML `<img>` tag.
    pub html: String,
    /// A Markdown link to the pay page.
    pub link_markdown: String,
}

/// The result of `create_payment_order`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CreateOutput {
    /// True when the order exists on the gateway.
    pub success: bool,
    /// `pending` for a new order (a replay carries the state its last query saw); the state to
    /// branch on.
    pub state: PaymentState,
    /// Whether `state` can no longer change.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// The platform order number, or null when the gateway gave none (never the pay URL).
    pub order_no: Option<String>,
    /// Same as order_no (compatibility alias).
    pub platform_order_no: Option<String>,
    /// The number to pass to query_payment_order as order_no (compatibility alias).
    pub query_order_no: Option<String>,
    /// Whether order_no is known; if false, query by merchant_order_no.
    pub order_no_available: bool,
    /// Your merchant order number.
    pub merchant_order_no: String,
    /// Creation time, Unix seconds as a string: pass it with merchant_order_no to query later.
    pub order_time: String,
    /// Always `unix_seconds`.
    pub order_time_format: &'static str,
    /// The order amount in yuan, two decimals.
    pub amount: String,
    /// What the payer will actually be charged, when the gateway changed the amount.
    pub charged_amount: Option<String>,
    /// Same as charged_amount, under the epay protocol's own name for it.
    pub price: Option<String>,
    /// The page where the payer pays; null only when a lost reply was recovered by a query.
    pub pay_url: Option<String>,
    /// The QR code's content (what a scanner reads).
    pub qrcode: Option<String>,
    /// The QR as a data URL (`data:image/png;base64,…`).
    pub pay_qrcode_image: Option<String>,
    /// The QR PNG as base64.
    pub pay_qrcode_base64: Option<String>,
    /// Always `image/png`.
    pub pay_qrcode_mime_type: &'static str,
    /// A Markdown image of the QR: `![Payment QR Code](data:…)`.
    pub pay_qrcode_markdown: Option<String>,
    /// Ready-made ways to show the QR.
    pub payment_display_examples: Option<DisplayExamples>,
    /// How to present this to the payer.
    pub display_instruction: String,
    /// What the agent should do next.
    pub next_action: String,
    /// A human-readable summary.
    pub message: String,
    /// The gateway's status code.
    pub raw_status: String,
    /// True when this order was created by an earlier call with the same merchant_order_no and
    /// amount; nothing new was sent.
    pub replayed: bool,
    /// Which gateway answered.
    pub provider: &'static str,
    /// True only in the sandbox (no real money).
    pub sandbox: bool,
}

/// The result of `query_payment_order`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct QueryOutput {
    /// True when the gateway answered (whatever the order's state).
    pub success: bool,
    /// pending, paid, failed, closed or unknown: the field to branch on.
    pub state: PaymentState,
    /// Whether the state can no longer change.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// LFWin-style status: PENDING, SUCCESS or FAILED (compatibility).
    pub status: &'static str,
    /// The platform order number, when known.
    pub order_no: Option<String>,
    /// Same as order_no (compatibility alias).
    pub platform_order_no: Option<String>,
    /// Same as order_no (compatibility alias).
    pub query_order_no: Option<String>,
    /// Whether order_no is known.
    pub order_no_available: bool,
    /// The merchant order number, when known.
    pub merchant_order_no: Option<String>,
    /// `order_no` or `merchant_order_no`: how the order was looked up.
    pub query_method: &'static str,
    /// The order amount in yuan.
    pub amount: Option<String>,
    /// The amount actually paid, in yuan; null unless paid.
    pub paid_amount: Option<String>,
    /// When it was paid (RFC 3339, China time); null unless paid.
    pub paid_time: Option<String>,
    /// Creation time, Unix seconds as a string, when known.
    pub order_time: Option<String>,
    /// Why a merchant-number query is pending without a platform order yet.
    pub pending_reason: Option<String>,
    /// What the agent should do next.
    pub next_action: String,
    /// A human-readable summary.
    pub message: String,
    /// The gateway's status code.
    pub raw_status: String,
    /// The gateway's paystatus (0 unpaid, 1 paid, 2 failed).
    pub raw_paystatus: Option<String>,
    /// Which gateway answered.
    pub provider: &'static str,
    /// True only in the sandbox.
    pub sandbox: bool,
}

/// The result of `close_payment_order`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CloseOutput {
    /// True when the order is closed (now, or already).
    pub success: bool,
    /// `closed` (or `failed` for an order that failed earlier): it can no longer be paid.
    pub state: PaymentState,
    /// Always true.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// LFWin-style status (compatibility).
    pub status: &'static str,
    /// The platform order number, when known.
    pub order_no: Option<String>,
    /// Same as order_no (compatibility alias).
    pub platform_order_no: Option<String>,
    /// Same as order_no (compatibility alias).
    pub query_order_no: Option<String>,
    /// The merchant order number, when known.
    pub merchant_order_no: Option<String>,
    /// True when the order was already closed: nothing was sent.
    pub already_closed: bool,
    /// What the agent should do next.
    pub next_action: String,
    /// A human-readable summary.
    pub message: String,
    /// The gateway's status code.
    pub raw_status: String,
    /// Which gateway answered.
    pub provider: &'static str,
    /// True only in the sandbox.
    pub sandbox: bool,
}

/// The result of `refund_payment_order`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RefundOutput {
    /// True when the gateway accepted the refund (accepted is not refunded: see state).
    pub success: bool,
    /// `processing` after acceptance; refunded or failed only when the gateway says so.
    pub state: RefundState,
    /// Whether the state can no longer change.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// LFWin-style status: REFUNDING, REFUNDED or FAILED (compatibility).
    pub status: &'static str,
    /// The refunded order's platform number.
    pub order_no: Option<String>,
    /// Same as order_no (compatibility alias).
    pub platform_order_no: Option<String>,
    /// Same as order_no (compatibility alias).
    pub query_order_no: Option<String>,
    /// The gateway's refund number, when given.
    pub refund_no: Option<String>,
    /// The merchant refund number: reuse it to retry, pass it to query_refund_status.
    pub mch_refund_no: String,
    /// The refund amount in yuan.
    pub refund_amount: String,
    /// True when this refund was requested earlier with the same mch_refund_no; nothing new was sent.
    pub replayed: bool,
    /// What the agent should do next.
    pub next_action: String,
    /// A human-readable summary.
    pub message: String,
    /// The gateway's status code.
    pub raw_status: String,
    /// Which gateway answered.
    pub provider: &'static str,
    /// True only in the sandbox.
    pub sandbox: bool,
}

/// One refund in `query_refund_status`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RefundItem {
    /// processing, refunded, failed or unknown.
    pub state: RefundState,
    /// Whether the state can no longer change.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// LFWin-style status (compatibility).
    pub status: &'static str,
    /// The gateway's refund number.
    pub refund_no: Option<String>,
    /// The merchant refund number.
    pub mch_refund_no: Option<String>,
    /// The refund amount in yuan.
    pub refund_amount: Option<String>,
    /// When it was refunded (RFC 3339, China time); null unless refunded.
    pub refund_time: Option<String>,
    /// The reason given.
    pub reason: Option<String>,
    /// The gateway's refund_status (0 pending, 1 refunded, 2 failed).
    pub raw_refund_status: Option<String>,
}

/// The result of `query_refund_status`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RefundQueryOutput {
    /// True when the gateway answered.
    pub success: bool,
    /// The asked refund's state; without mch_refund_no: processing while any refund is, else
    /// refunded if any refund succeeded, else failed.
    pub state: RefundState,
    /// Whether the state can no longer change.
    #[serde(rename = "final")]
    pub is_final: bool,
    /// LFWin-style status (compatibility).
    pub status: &'static str,
    /// The order's platform number.
    pub order_no: Option<String>,
    /// Same as order_no (compatibility alias).
    pub platform_order_no: Option<String>,
    /// The merchant refund number asked for, if any.
    pub mch_refund_no: Option<String>,
    /// The asked refund's gateway number.
    pub refund_no: Option<String>,
    /// The asked refund's amount; without mch_refund_no, the total refunded so far.
    pub refund_amount: Option<String>,
    /// When the asked refund completed (RFC 3339, China time).
    pub refund_time: Option<String>,
    /// Every refund the gateway reported for the order.
    pub refunds: Vec<RefundItem>,
    /// What the agent should do next.
    pub next_action: String,
    /// A human-readable summary.
    pub message: String,
    /// The gateway's status code.
    pub raw_status: String,
    /// Which gateway answered.
    pub provider: &'static str,
    /// True only in the sandbox.
    pub sandbox: bool,
}

/// One order in `list_payment_orders`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListedOrder {
    /// The platform order number, when known.
    pub order_no: Option<String>,
    /// The merchant order number, when known.
    pub merchant_order_no: Option<String>,
    /// The last known state (pending, paid, failed, closed, unknown).
    pub state: Option<PaymentState>,
    /// The order amount in yuan.
    pub amount: Option<String>,
    /// What the payer was charged, when it differs.
    pub charged_amount: Option<String>,
    /// The pay type (epay), when known.
    pub pay_type: Option<String>,
    /// The item name, when known.
    pub name: Option<String>,
    /// When it was created.
    pub created_at: Option<String>,
    /// When it was paid.
    pub paid_at: Option<String>,
}

/// The result of `list_payment_orders`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListOutput {
    /// True when the list could be read.
    pub success: bool,
    /// `gateway` (the gateway's own list) or `ledger` (the orders this server created, with their
    /// last known state).
    pub source: &'static str,
    /// Whether ledger states were refreshed by querying the gateway.
    pub refreshed: bool,
    /// All matching orders, when known.
    pub total: Option<u64>,
    /// This page's number.
    pub page: u32,
    /// Orders per page.
    pub limit: u32,
    /// The orders, newest first.
    pub orders: Vec<ListedOrder>,
    /// A human-readable summary.
    pub message: String,
    /// Which gateway answered.
    pub provider: &'static str,
    /// True only in the sandbox.
    pub sandbox: bool,
}

/// The result of `get_merchant_info`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MerchantOutput {
    /// True when the gateway answered.
    pub success: bool,
    /// The merchant id (epay pid).
    pub merchant_id: String,
    /// The account name.
    pub name: Option<String>,
    /// The account balance in yuan.
    pub balance: Option<String>,
    /// The account status as the gateway wrote it.
    pub status: Option<String>,
    /// Other non-secret fields the gateway returned.
    pub extra: std::collections::BTreeMap<String, String>,
    /// Which gateway answered.
    pub provider: &'static str,
    /// True only in the sandbox.
    pub sandbox: bool,
}

/// The result of `verify_payment_notification`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct VerifyOutput {
    /// True when the notification could be checked (see signature_valid for the verdict).
    pub success: bool,
    /// Whether the signature verifies with the configured key under the provider's rules.
    pub signature_valid: bool,
    /// paid only when the signature is valid and the notification says paid.
    pub state: PaymentState,
    /// The platform order number it names.
    pub order_no: Option<String>,
    /// The merchant order number it names.
    pub merchant_order_no: Option<String>,
    /// The paid amount in yuan it names: compare it with the order before trusting it.
    pub amount: Option<String>,
    /// The raw status field (trade_status or paystatus).
    pub raw_status: Option<String>,
    /// Which signing rules were applied: lfwin, epay or alipay.
    pub rule: &'static str,
    /// Every field received, decoded (without sign).
    pub fields: std::collections::BTreeMap<String, String>,
    /// What to do next.
    pub next_action: String,
    /// Which provider's rules were used.
    pub provider: &'static str,
    /// True only in the sandbox.
    pub sandbox: bool,
}

/// The result of `sandbox_simulate_payment`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SimulateOutput {
    /// True when the order's state changed.
    pub success: bool,
    /// The platform order number (also when the merchant order number was given).
    pub order_no: String,
    /// The state the order is now in.
    pub state: PaymentState,
    /// What the agent should do next.
    pub next_action: String,
    /// Always `sandbox`.
    pub provider: &'static str,
    /// Always true.
    pub sandbox: bool,
}

#[cfg(test)]
mod tests {
    use crate::time::rfc3339_china;

    #[test]
    fn china_time_has_an_offset() {
        assert_eq!(rfc3339_china(1_567_757_386).as_deref(), Some("2019-09-06T16:09:46+08:00"));
    }
}
