//! The [`Gateway`] the tools use, on Alipay's methods (`docs/alipay.md` §4):
//!
//! | tool call | method |
//! |---|---|
//! | create (`channel` precreate, the default) | `alipay.trade.precreate`: its `qr_code` becomes the QR image |
//! | create (`channel` wap / page) | the signed `alipay.trade.wap.pay` / `alipay.trade.page.pay` GET URL, built here, nothing sent; the QR encodes it |
//! | query | `alipay.trade.query` by `trade_no` (order_no) or `out_trade_no` (merchant_order_no) |
//! | refund | `alipay.trade.refund`, `mch_refund_no` as `out_request_no`, so a retry is the same refund |
//! | refund query | `alipay.trade.fastpay.refund.query` |
//! | close | `alipay.trade.close` |
//! | notification | verified with Alipay's public key; `app_id` must be this application's |

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::client::{AlipayClient, Params};
use super::reply::{self, Answer, Unreadable, read_answer, trade_state};
use crate::error::{ErrorKind, PaymentError};
use crate::money::Fen;
use crate::provider::transport::CallError;
use crate::provider::{
    CreateRequest, CreatedOrder, Gateway, Notification, OrderRef, OrderStatus, PayChannel, PaymentState, ProviderKind,
    RefundAccepted, RefundQuery, RefundRequest, RefundStatus, notification_fields,
};

pub(super) const PRECREATE: &str = "alipay.trade.precreate";
pub(super) const WAP_PAY: &str = "alipay.trade.wap.pay";
pub(super) const PAGE_PAY: &str = "alipay.trade.page.pay";
pub(super) const QUERY: &str = "alipay.trade.query";
pub(super) const REFUND: &str = "alipay.trade.refund";
pub(super) const REFUND_QUERY: &str = "alipay.trade.fastpay.refund.query";
pub(super) const CLOSE: &str = "alipay.trade.close";

const CREATE_UNKNOWN_NEXT: &str = "Do not create a new order for this sale under another merchant_order_no. Query it with query_payment_order by merchant_order_no in a few seconds; repeat create_payment_order only with the same merchant_order_no and amount.";
const REFUND_UNKNOWN_NEXT: &str = "Check it with query_refund_status and the same mch_refund_no; repeating the refund with the same mch_refund_no is safe (Alipay treats it as the same refund).";
const CLOSE_UNKNOWN_NEXT: &str = "Query the order; repeating the close is safe.";

/// `out_trade_no` or `trade_no`, as the order is named.
fn order_biz(order: &OrderRef) -> Map<String, Value> {
    let mut biz = Map::new();
    match order {
        OrderRef::Platform(no) => biz.insert("trade_no".into(), no.trim().into()),
        OrderRef::Merchant { merchant_order_no, .. } => {
            biz.insert("out_trade_no".into(), merchant_order_no.as_str().into())
        }
    };
    biz
}

/// What the payer sees as the item: the subject, or the order number when none was given
/// (Alipay requires one).
fn subject(req: &CreateRequest) -> String {
    req.subject.clone().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| format!("Order {}", req.merchant_order_no))
}

impl AlipayClient {
    /// The signed parameters of a create by `channel`, and the method.
    pub(super) fn create_params(&self, req: &CreateRequest) -> Result<(&'static str, Params), PaymentError> {
        let mut biz = Map::new();
        biz.insert("out_trade_no".into(), req.merchant_order_no.as_str().into());
        biz.insert("total_amount".into(), req.amount.to_yuan().into());
        biz.insert("subject".into(), subject(req).into());
        let (method, product, return_url) = match req.channel {
            PayChannel::Qr => (PRECREATE, None, None),
            PayChannel::Wap => (WAP_PAY, Some("QUICK_WAP_WAY"), req.return_url.as_deref()),
            PayChannel::Page => (PAGE_PAY, Some("FAST_INSTANT_TRADE_PAY"), req.return_url.as_deref()),
        };
        if let Some(product) = product {
            biz.insert("product_code".into(), product.into());
        }
        Ok((method, self.signed_params(method, &biz, req.notify_url.as_deref(), return_url)?))
    }

    /// Reads a raw reply; `lost` turns a body that is no reply into the call's error.
    fn answer(
        &self,
        body: &str,
        method: &str,
        lost: impl FnOnce(CallError) -> PaymentError,
    ) -> Result<Answer, PaymentError> {
        match read_answer(&self.keys, body, method) {
            Ok(answer) => Ok(answer),
            Err(Unreadable::NotAReply(why)) => {
                Err(lost(CallError::NoReply(format!("Alipay's reply could not be read ({why})"))))
            }
            Err(Unreadable::Untrusted(err)) => Err(err),
        }
    }

    /// One read-only call: sent with retries, verified, read.
    async fn query_call(&self, method: &'static str, biz: &Map<String, Value>) -> Result<Answer, PaymentError> {
        let params = self.signed_params(method, biz, None, None)?;
        let body = self.post_query(&params).await.map_err(CallError::for_query)?;
        self.answer(&body, method, CallError::for_query)
    }

    /// One call that changes something: sent once, verified, read.
    async fn money_call(
        &self,
        method: &'static str,
        params: &Params,
        what: &str,
        next: &str,
    ) -> Result<Answer, PaymentError> {
        let body = self.post(params).await.map_err(|e| e.for_money(what, next))?;
        self.answer(&body, method, |e| e.for_money(what, next))
    }
}

#[async_trait]
impl Gateway for AlipayClient {
    fn kind(&self) -> ProviderKind {
        self.kind
    }

    async fn create_order(&self, req: &CreateRequest) -> Result<CreatedOrder, PaymentError> {
        let (method, params) = self.create_params(req)?;
        if req.channel != PayChannel::Qr {
            return Ok(CreatedOrder {
                platform_order_no: None,
                pay_url: Some(self.page_url(&params)),
                qr_content: None,
                charged_amount: None,
                raw_status: String::new(),
                message: format!(
                    "A signed {method} link was made (nothing was sent to Alipay): Alipay creates the trade when the payer opens it."
                ),
            });
        }
        let answer = self.money_call(method, &params, "order", CREATE_UNKNOWN_NEXT).await?;
        reply::read_precreate(&answer, req)
    }

    async fn query_order(&self, order: &OrderRef) -> Result<OrderStatus, PaymentError> {
        let answer = self.query_call(QUERY, &order_biz(order)).await?;
        reply::read_query(&answer, order)
    }

    async fn refund(&self, req: &RefundRequest) -> Result<RefundAccepted, PaymentError> {
        let mut biz = order_biz(&OrderRef::Platform(req.order_no.clone()));
        biz.insert("refund_amount".into(), req.amount.to_yuan().into());
        biz.insert("out_request_no".into(), req.mch_refund_no.as_str().into());
        if !req.reason.trim().is_empty() {
            biz.insert("refund_reason".into(), req.reason.as_str().into());
        }
        let params = self.signed_params(REFUND, &biz, None, None)?;
        let answer = self.money_call(REFUND, &params, "refund", REFUND_UNKNOWN_NEXT).await?;
        reply::read_refund(&answer, req)
    }

    async fn query_refund(&self, query: &RefundQuery) -> Result<RefundStatus, PaymentError> {
        let Some(no) = &query.mch_refund_no else {
            return Err(PaymentError::new(
                ErrorKind::InvalidInput,
                "Alipay's refund query finds one refund by its number: pass mch_refund_no (the number the refund was made with). Nothing was sent.",
            ));
        };
        let mut biz = order_biz(&OrderRef::Platform(query.order_no.clone()));
        biz.insert("out_request_no".into(), no.as_str().into());
        let answer = self.query_call(REFUND_QUERY, &biz).await?;
        reply::read_refund_query(&answer, query)
    }

    fn can_close(&self) -> bool {
        true
    }

    async fn close_order(&self, order: &OrderRef) -> Result<OrderStatus, PaymentError> {
        let params = self.signed_params(CLOSE, &order_biz(order), None, None)?;
        let answer = self.money_call(CLOSE, &params, "close", CLOSE_UNKNOWN_NEXT).await?;
        reply::read_close(&answer, order)
    }

    fn verify_notification(&self, raw: &str) -> Notification {
        let Ok(verified) = self.keys.verify_notification(raw) else {
            let fields = notification_fields(raw).into_iter().filter(|(k, _)| k != "sign").collect();
            return Notification {
                signature_valid: false,
                state: PaymentState::Unknown,
                fields,
                ..Notification::default()
            };
        };
        let get = |name: &str| verified.get(name).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        // A notification for another application is not about this merchant's orders.
        let ours = get("app_id").is_some_and(|id| id == self.app_id);
        let raw_status = get("trade_status");
        Notification {
            signature_valid: ours,
            platform_order_no: get("trade_no"),
            merchant_order_no: get("out_trade_no"),
            amount: get("total_amount").and_then(|a| Fen::from_gateway(&a)),
            state: if ours { trade_state(raw_status.as_deref()) } else { PaymentState::Unknown },
            raw_status,
            fields: verified.fields().to_vec(),
            disagreement: None,
        }
    }
}
