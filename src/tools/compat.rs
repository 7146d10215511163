//! Alipay's own MCP server's tools (`@alipay/mcp-server-alipay`), by their names and camelCase
//! inputs, listed when the Alipay provider is active, so that its users switch servers without
//! touching a prompt: `create-mobile-alipay-payment`, `create-web-page-alipay-payment`,
//! `query-alipay-payment`, `refund-alipay-payment`, `query-alipay-refund`.
//!
//! Each is a thin adapter over the same [`crate::payments::Payments`] calls the native tools make
//! (ledger, idempotency, guardrails, refund confirmation included): no second copy of the logic.
//! Alipay's refund and refund query by `outTradeNo` first find the order's `trade_no` with a query.
//! `create-alipay-payment-agent` is not offered: it calls an Alipay API that is not publicly
//! documented (see the README).

use rmcp::handler::server::tool::{InputResponses as ToolInputResponses, RequestState};
use rmcp::model::{CallToolResponse, CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};

use super::args::Arguments as _;
use super::render::compat as out;
use super::{PaymentServer, args, input, outputs};
use crate::error::{ErrorKind, PaymentError};
use crate::provider::{CreateRequest, OrderRef, PayChannel, RefundQuery, RefundRequest};
use crate::time::now_unix;

/// The tool names this module adds.
pub const NAMES: &[&str] = &[
    "create-mobile-alipay-payment",
    "create-web-page-alipay-payment",
    "query-alipay-payment",
    "refund-alipay-payment",
    "query-alipay-refund",
];

impl PaymentServer {
    /// A page link for a new order (or the one made earlier under the same `outTradeNo`).
    async fn pay_link(&self, raw: &JsonObject, channel: PayChannel) -> Result<CallToolResult, PaymentError> {
        let a = args::AlipayPayArgs::parse(raw)?;
        let request = CreateRequest {
            merchant_order_no: a.outTradeNo.0,
            amount: a.totalAmount.0,
            notify_url: None,
            return_url: None,
            subject: Some(a.orderTitle.0),
            pay_type: None,
            order_time: now_unix(),
            channel,
        };
        let outcome = self.payments.create(request).await?;
        Ok(out::pay_link(self.origin(), &outcome))
    }

    /// Alipay's `trade_no` of the order with merchant number `out_trade_no`.
    async fn trade_no(&self, out_trade_no: &str) -> Result<String, PaymentError> {
        let status = self
            .payments
            .query(OrderRef::Merchant { merchant_order_no: out_trade_no.to_owned(), order_time: None })
            .await?;
        status.platform_order_no.ok_or_else(|| {
            PaymentError::new(
                ErrorKind::NotFound,
                format!("Alipay has no trade for outTradeNo {out_trade_no} yet (the payer has not scanned or opened the link), so there is nothing to refund. Nothing was sent."),
            )
        })
    }
}

#[tool_router(router = compat_router, vis = "pub(super)")]
impl PaymentServer {
    /// Alipay mobile web payment (手机网站支付): a pay link to open on the payer's phone.
    #[tool(
        name = "create-mobile-alipay-payment",
        title = "Create Alipay mobile payment",
        input_schema = input::<args::AlipayPayArgs>(),
        output_schema = outputs::output::<out::AlipayPayOutput>(),
        annotations(title = "Create Alipay mobile payment", read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn create_mobile_alipay_payment(&self, raw: JsonObject) -> CallToolResult {
        self.guard(true, self.pay_link(&raw, PayChannel::Wap)).await
    }

    /// Alipay PC web payment (电脑网站支付): a pay link for a desktop browser (shows a QR code).
    #[tool(
        name = "create-web-page-alipay-payment",
        title = "Create Alipay web page payment",
        input_schema = input::<args::AlipayPayArgs>(),
        output_schema = outputs::output::<out::AlipayPayOutput>(),
        annotations(title = "Create Alipay web page payment", read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn create_web_page_alipay_payment(&self, raw: JsonObject) -> CallToolResult {
        self.guard(true, self.pay_link(&raw, PayChannel::Page)).await
    }

    /// An Alipay order's state by outTradeNo.
    #[tool(
        name = "query-alipay-payment",
        title = "Query Alipay payment",
        input_schema = input::<args::AlipayQueryArgs>(),
        output_schema = outputs::output::<out::AlipayQueryOutput>(),
        annotations(title = "Query Alipay payment", read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn query_alipay_payment(&self, raw: JsonObject) -> CallToolResult {
        self.guard(false, async {
            let a = args::AlipayQueryArgs::parse(&raw)?;
            let order = OrderRef::Merchant { merchant_order_no: a.outTradeNo.0, order_time: None };
            let status = self.payments.query(order).await?;
            Ok(out::trade(self.origin(), &status))
        })
        .await
    }

    /// Refund a paid Alipay order, fully or partly; the same outRequestNo never refunds twice.
    #[tool(
        name = "refund-alipay-payment",
        title = "Refund Alipay payment",
        input_schema = input::<args::AlipayRefundArgs>(),
        output_schema = outputs::output::<out::AlipayRefundOutput>(),
        annotations(title = "Refund Alipay payment", read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn refund_alipay_payment(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
        RequestState(state): RequestState,
        ToolInputResponses(responses): ToolInputResponses,
    ) -> CallToolResponse {
        let mut ask = None;
        let result = self
            .guard(true, async {
                let a = args::AlipayRefundArgs::parse(&raw)?;
                let request = RefundRequest {
                    order_no: self.trade_no(&a.outTradeNo.0).await?,
                    amount: a.refundAmount.0,
                    reason: a.refundReason.map(|r| r.0).unwrap_or_default(),
                    mch_refund_no: a.outRequestNo.0,
                };
                match self.confirmed_refund(request, false, false, &ctx, state, responses, &mut ask).await? {
                    super::RefundStep::Sent(outcome) => Ok(out::refunded(self.origin(), &outcome)),
                    super::RefundStep::InCard(result) => Ok(result),
                    super::RefundStep::Asked => Ok(CallToolResult::success(Vec::new())),
                }
            })
            .await;
        match ask {
            Some(input) => input.into(),
            None => result.into(),
        }
    }

    /// An Alipay refund's state by outRequestNo and outTradeNo.
    #[tool(
        name = "query-alipay-refund",
        title = "Query Alipay refund",
        input_schema = input::<args::AlipayRefundQueryArgs>(),
        output_schema = outputs::output::<out::AlipayRefundQueryOutput>(),
        annotations(title = "Query Alipay refund", read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn query_alipay_refund(&self, raw: JsonObject) -> CallToolResult {
        self.guard(false, async {
            let a = args::AlipayRefundQueryArgs::parse(&raw)?;
            let trade_no = self.trade_no(&a.outTradeNo.0).await?;
            let no = a.outRequestNo.0;
            let status = self
                .payments
                .query_refund(RefundQuery { order_no: trade_no.clone(), mch_refund_no: Some(no.clone()) })
                .await?;
            let record = status.records.iter().find(|r| r.mch_refund_no.as_deref() == Some(no.as_str())).ok_or_else(|| {
                PaymentError::new(
                    ErrorKind::NotFound,
                    format!("Alipay has no refund {no} for this order. A refund requested moments ago may not be listed yet: query again shortly."),
                )
                .retryable(true)
            })?;
            Ok(out::refund_state(self.origin(), status.order_no.clone().or(Some(trade_no)), record))
        })
        .await
    }
}
