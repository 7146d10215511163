//! Renders the refund tools: `refund_payment_order` (accepted is not refunded) and
//! `query_refund_status` (every record, and the one asked for).

use rmcp::model::CallToolResult;

use super::{Origin, RefundItem, RefundOutput, RefundQueryOutput, success, to_value};
use crate::error::{ErrorKind, PaymentError};
use crate::money::Fen;
use crate::payments::RefundOutcome;
use crate::provider::RefundRequest;
use crate::provider::{RefundRecord, RefundState, RefundStatus};
use crate::time::rfc3339_china;

/// Renders a refund acceptance.
pub fn refund(origin: Origin, outcome: &RefundOutcome, derived_refund_no: bool) -> CallToolResult {
    let a = &outcome.accepted;
    let amount = outcome.amount.to_yuan();
    let mut message = match a.state {
        RefundState::Refunded => format!("Refund of ¥{amount} completed."),
        RefundState::Failed => format!("Refund of ¥{amount} failed."),
        _ => format!("Refund of ¥{amount} accepted and processing; it is not complete yet."),
    };
    if outcome.replayed {
        message.push_str(" This mch_refund_no was already requested; no second refund was sent.");
    }
    if derived_refund_no {
        message.push_str(" The server chose mch_refund_no from order, amount and reason; pass your own mch_refund_no for a second, separate refund of the same amount.");
    }
    let out = RefundOutput {
        success: true,
        state: a.state,
        is_final: a.state.is_final(),
        status: a.state.legacy_status(),
        platform_order_no: a.order_no.clone(),
        query_order_no: a.order_no.clone(),
        order_no: a.order_no.clone(),
        refund_no: a.refund_no.clone(),
        mch_refund_no: a.mch_refund_no.clone(),
        refund_amount: amount,
        replayed: outcome.replayed,
        next_action: if a.state.is_final() {
            "Nothing more to do for this refund.".into()
        } else {
            format!(
                "Call query_refund_status with order_no {} and mch_refund_no {} until state is refunded or failed. Tell the payer the refund is processing, not done.",
                a.order_no.as_deref().unwrap_or("?"),
                a.mch_refund_no
            )
        },
        message: if a.message.is_empty() { message } else { format!("{message} Gateway: {}", a.message) },
        raw_status: a.raw_status.clone(),
        provider: origin.provider.as_str(),
        sandbox: origin.sandbox(),
    };
    let v = to_value(&out);
    success(origin, v.clone(), v, None)
}

/// A refund waiting for the human's decision in the payment card: a `refused` error for the model
/// (nothing was sent, and it must not ask again), and, in `_meta` for the card only, the token its
/// Confirm and Decline buttons send with what they confirm.
pub fn awaiting_card(origin: Origin, req: &RefundRequest, token: &str) -> CallToolResult {
    let amount = req.amount.to_yuan();
    let err = PaymentError::new(
        ErrorKind::Refused,
        format!(
            "Nothing was refunded yet: the human must confirm this refund of ¥{amount} on order {} with the Confirm button in the payment card shown to them. Do not call refund_payment_order again for it. Once they have decided, check with query_refund_status (order_no {}, mch_refund_no {}).",
            req.order_no, req.order_no, req.mch_refund_no
        ),
    )
    .with_code("awaiting_confirmation");
    let mut result = super::error(origin, &err);
    result.meta = Some(crate::card::result_meta(serde_json::json!({"confirm": {
        "token": token,
        "order_no": req.order_no,
        "amount": amount,
        "reason": req.reason,
        "mch_refund_no": req.mch_refund_no,
    }})));
    result
}

fn item(r: &RefundRecord) -> RefundItem {
    RefundItem {
        state: r.state,
        is_final: r.state.is_final(),
        status: r.state.legacy_status(),
        refund_no: r.refund_no.clone(),
        mch_refund_no: r.mch_refund_no.clone(),
        refund_amount: r.amount.map(Fen::to_yuan),
        refund_time: r.refund_time.and_then(rfc3339_china),
        reason: r.reason.clone(),
        raw_refund_status: r.raw_refund_status.clone(),
    }
}

/// Renders a refund query; with `mch_refund_no`, only a matching record counts.
///
/// # Errors
/// `not_found` when `mch_refund_no` is not among the records.
pub fn refund_query(
    origin: Origin,
    asked: Option<&str>,
    status: &RefundStatus,
) -> Result<CallToolResult, PaymentError> {
    let refunds: Vec<RefundItem> = status.records.iter().map(item).collect();
    let (state, refund_no, amount, time) = match asked {
        Some(no) => {
            let Some(r) = status.records.iter().find(|r| r.mch_refund_no.as_deref() == Some(no)) else {
                return Err(PaymentError::new(
                    ErrorKind::NotFound,
                    format!("The gateway lists no refund with mch_refund_no {no} on order {} ({} other refund(s) listed). If it was just requested, query again in a few seconds.", status.order_no.as_deref().unwrap_or("?"), status.records.len()),
                )
                .retryable(true));
            };
            (r.state, r.refund_no.clone(), r.amount.map(Fen::to_yuan), r.refund_time.and_then(rfc3339_china))
        }
        None => {
            let states: Vec<RefundState> = status.records.iter().map(|r| r.state).collect();
            let state = if states.iter().any(|s| !s.is_final()) {
                RefundState::Processing
            } else if states.contains(&RefundState::Refunded) {
                RefundState::Refunded
            } else if states.is_empty() {
                RefundState::Unknown
            } else {
                RefundState::Failed
            };
            let total: u64 = status
                .records
                .iter()
                .filter(|r| r.state == RefundState::Refunded)
                .filter_map(|r| r.amount)
                .map(|a| a.0)
                .sum();
            (state, None, Some(Fen(total).to_yuan()), None)
        }
    };
    let out = RefundQueryOutput {
        success: true,
        state,
        is_final: state.is_final(),
        status: state.legacy_status(),
        order_no: status.order_no.clone(),
        platform_order_no: status.order_no.clone(),
        mch_refund_no: asked.map(str::to_owned),
        refund_no,
        refund_amount: amount,
        refund_time: time,
        next_action: if state.is_final() {
            "Nothing more to do.".into()
        } else {
            "Query again in a few seconds until state is refunded or failed.".into()
        },
        message: format!(
            "{} refund(s) on this order; {}.",
            refunds.len(),
            match state {
                RefundState::Refunded => "refunded",
                RefundState::Failed => "failed",
                RefundState::Processing => "still processing",
                RefundState::Unknown => "state unknown",
            }
        ),
        refunds,
        raw_status: status.raw_status.clone(),
        provider: origin.provider.as_str(),
        sandbox: origin.sandbox(),
    };
    let v = to_value(&out);
    Ok(success(origin, v.clone(), v, None))
}
