//! Renders the order tools: `create_payment_order` (with its QR image), `query_payment_order` and
//! `wait_for_payment`, `list_payment_orders`, and `close_payment_order`.

use rmcp::model::{CallToolResult, ContentBlock};

use super::{
    CloseOutput, CreateOutput, DisplayExamples, ListOutput, ListedOrder, Origin, QueryOutput, success, to_value,
};
use crate::money::Fen;
use crate::payments::{CloseOutcome, CreateOutcome};
use crate::provider::{OrderPage, OrderRef, OrderStatus, PaymentState};
use crate::qr;
use crate::time::rfc3339_china;

/// The line after the JSON text of a payable order, for clients that show neither images nor the
/// pay card (and models that skim JSON): a Markdown link to the pay page and a one-line instruction
/// to show it; with `PAYMENT_QR_TEXT=true`, also the QR drawn in Unicode half blocks for terminals.
pub fn pay_link_text(amount: &str, merchant_order_no: &str, pay_url: &str, qr_text: Option<&str>) -> String {
    let mut text = format!(
        "Show the payer this pay link (and the QR code, where it is displayed): [Pay ¥{amount} · order {merchant_order_no}]({pay_url})"
    );
    if let Some(drawing) = qr_text.and_then(|content| qr::to_terminal(content).ok()) {
        text.push_str("\nOr let them scan this QR code (show it unchanged, in a code block):\n```\n");
        text.push_str(&drawing);
        text.push_str("```");
    }
    text
}

/// Renders a created order: structured content, a compact text, the pay link line (see
/// [`pay_link_text`]) and the QR image block.
pub fn create(origin: Origin, outcome: &CreateOutcome, qr_text: bool) -> CallToolResult {
    let CreateOutcome { request, order, replayed, recovered, known_state } = outcome;
    let qr_content = order.qr_content.clone().or_else(|| order.pay_url.clone());
    let qr = qr_content.as_deref().and_then(|c| match qr::render(c) {
        Ok(q) => Some(q),
        Err(e) => {
            tracing::warn!("no QR for this pay target: {e}");
            None
        }
    });
    let data_url = qr.as_ref().map(qr::QrImage::data_url);
    let markdown = data_url.as_ref().map(|u| format!("![Payment QR Code]({u})"));
    let order_no = order.platform_order_no.clone();
    let amount = request.amount.to_yuan();
    let state = recovered.as_ref().map(|s| s.state).or(*known_state).unwrap_or(PaymentState::Pending);
    let next_action = match (&order_no, recovered) {
        _ if state.is_final() => format!(
            "This order was already {} when last queried: do not show its QR code to the payer again. Confirm with query_payment_order if needed; a new sale needs a new merchant_order_no.",
            state.name()
        ),
        (_, Some(_)) => format!(
            "The order exists but its pay link was lost with the create reply. Query it with query_payment_order (merchant_order_no {}, order_time {}); if the payer still needs to pay, create a new order under a new merchant_order_no only after confirming this one is not paid.",
            request.merchant_order_no, request.order_time
        ),
        (Some(no), None) => format!(
            "Show the payer the QR code or pay_url, then call query_payment_order with order_no {no} about every 2 seconds (or wait_for_payment) until state is paid, failed or closed. Do not treat the order as paid before that."
        ),
        (None, None) => format!(
            "Show the payer the QR code or pay_url, then call query_payment_order with merchant_order_no {} (order_time {}) about every 2 seconds until state is paid, failed or closed. A not-found answer right after creation is normal: the platform order appears when the payer opens the page.",
            request.merchant_order_no, request.order_time
        ),
    };
    let out = CreateOutput {
        success: true,
        state,
        is_final: state.is_final(),
        order_no_available: order_no.is_some(),
        platform_order_no: order_no.clone(),
        query_order_no: order_no.clone(),
        order_no,
        merchant_order_no: request.merchant_order_no.clone(),
        order_time: request.order_time.to_string(),
        order_time_format: "unix_seconds",
        amount: amount.clone(),
        charged_amount: order.charged_amount.filter(|c| *c != request.amount).map(Fen::to_yuan),
        price: order.charged_amount.filter(|c| *c != request.amount).map(Fen::to_yuan),
        pay_url: order.pay_url.clone(),
        qrcode: qr.as_ref().and(qr_content.clone()),
        pay_qrcode_image: data_url.clone(),
        pay_qrcode_base64: qr.as_ref().map(|q| q.base64.clone()),
        pay_qrcode_mime_type: "image/png",
        pay_qrcode_markdown: markdown.clone(),
        payment_display_examples: data_url.as_ref().map(|u| DisplayExamples {
            markdown: format!("![Payment QR Code]({u})"),
            html: format!("<img src=\"{u}\" alt=\"Payment QR Code\" width=\"240\" height=\"240\">"),
            link_markdown: format!("[Pay ¥{amount}]({})", order.pay_url.clone().unwrap_or_default()),
        }),
        display_instruction: "Show the QR image (the image block, or pay_qrcode_markdown) so the payer can scan it with Alipay or WeChat, and give pay_url as a clickable link for paying on this device. Show the amount. Never claim the payment succeeded until a query says state=paid.".into(),
        next_action,
        message: if *replayed {
            "This merchant_order_no was already used for the same amount; this is the existing order (nothing new was created).".into()
        } else if order.message.is_empty() {
            format!("Order created: ¥{amount}, waiting for the payer.")
        } else {
            format!("Order created: ¥{amount}, waiting for the payer. Gateway: {}", order.message)
        },
        raw_status: order.raw_status.clone(),
        replayed: *replayed,
        provider: origin.provider.as_str(),
        sandbox: origin.sandbox(),
    };
    let structured = to_value(&out);
    let mut text = structured.clone();
    if let Some(map) = text.as_object_mut() {
        for heavy in ["pay_qrcode_image", "pay_qrcode_base64", "payment_display_examples"] {
            map.remove(heavy);
        }
    }
    let link = order.pay_url.as_deref().filter(|_| !state.is_final()).map(|url| {
        let drawn = qr_content.as_deref().filter(|_| qr_text && qr.is_some());
        pay_link_text(&amount, &request.merchant_order_no, url, drawn)
    });
    let image = qr.map(|q| ContentBlock::image(q.base64, "image/png"));
    let has_image = image.is_some();
    let mut result = success(origin, structured, text, image);
    if let Some(link) = link {
        let at = result.content.len().saturating_sub(usize::from(has_image));
        result.content.insert(at, ContentBlock::text(link));
    }
    result
}

/// Renders an order query.
pub fn query(origin: Origin, asked: &OrderRef, status: &OrderStatus) -> CallToolResult {
    let order_no = status.platform_order_no.clone().or_else(|| match asked {
        OrderRef::Platform(no) => Some(no.clone()),
        OrderRef::Merchant { .. } => None,
    });
    let merchant_order_no = status.merchant_order_no.clone().or_else(|| match asked {
        OrderRef::Merchant { merchant_order_no, .. } => Some(merchant_order_no.clone()),
        OrderRef::Platform(_) => None,
    });
    let order_time = status.order_time.or(match asked {
        OrderRef::Merchant { order_time, .. } => *order_time,
        OrderRef::Platform(_) => None,
    });
    let amount_text = status.amount.map(Fen::to_yuan);
    let (message, next_action) = match status.state {
        PaymentState::Paid => (
            format!("Paid{}.", status.paid_amount.map(|a| format!(": ¥{a}")).unwrap_or_default()),
            "The payment is complete. Deliver the goods or service; check paid_amount against what you expected.".to_owned(),
        ),
        PaymentState::Failed => ("The payment failed.".to_owned(), "Tell the payer the payment failed; create a new order (new merchant_order_no) to try again.".to_owned()),
        PaymentState::Closed => ("The order is closed.".to_owned(), "Create a new order (new merchant_order_no) if the payer still wants to pay.".to_owned()),
        PaymentState::Pending => (
            "Not paid yet.".to_owned(),
            "Query again in about 2 seconds while the payer is paying (or use wait_for_payment); after a few minutes without payment, stop and ask the payer.".to_owned(),
        ),
        PaymentState::Unknown => (
            "The gateway did not say whether the order is paid.".to_owned(),
            "Query again shortly; do not treat the order as paid.".to_owned(),
        ),
    };
    let out = QueryOutput {
        success: true,
        state: status.state,
        is_final: status.state.is_final(),
        status: status.state.legacy_status(),
        order_no_available: order_no.is_some(),
        platform_order_no: order_no.clone(),
        query_order_no: order_no.clone(),
        order_no,
        merchant_order_no,
        query_method: match asked {
            OrderRef::Platform(_) => "order_no",
            OrderRef::Merchant { .. } => "merchant_order_no",
        },
        amount: amount_text,
        paid_amount: status.paid_amount.map(Fen::to_yuan),
        paid_time: status.paid_time.and_then(rfc3339_china),
        order_time: order_time.map(|t| t.to_string()),
        pending_reason: status.pending_reason.clone(),
        next_action,
        message: if status.message.is_empty() { message } else { format!("{message} Gateway: {}", status.message) },
        raw_status: status.raw_status.clone(),
        raw_paystatus: status.raw_paystatus.clone(),
        provider: origin.provider.as_str(),
        sandbox: origin.sandbox(),
    };
    let v = to_value(&out);
    success(origin, v.clone(), v, None)
}

/// Renders an order list.
pub fn list(origin: Origin, page: &OrderPage, source: &'static str, refreshed: bool) -> CallToolResult {
    let orders: Vec<ListedOrder> = page
        .orders
        .iter()
        .map(|o| ListedOrder {
            order_no: o.platform_order_no.clone(),
            merchant_order_no: o.merchant_order_no.clone(),
            state: o.state,
            amount: o.amount.map(Fen::to_yuan),
            charged_amount: o.charged_amount.filter(|c| Some(*c) != o.amount).map(Fen::to_yuan),
            pay_type: o.pay_type.clone(),
            name: o.name.clone(),
            created_at: o.created_at.clone(),
            paid_at: o.paid_at.clone(),
        })
        .collect();
    let message = match source {
        "ledger" => format!(
            "{} order(s) on this page, from this server's order ledger ({}). The gateway offers no list API; pass refresh=true to re-query each order's state.",
            orders.len(),
            if refreshed { "states refreshed just now" } else { "last known states" }
        ),
        _ => format!("{} order(s) on this page, from the gateway.", orders.len()),
    };
    let out = ListOutput {
        success: true,
        source,
        refreshed,
        total: page.total,
        page: page.page,
        limit: page.limit,
        orders,
        message,
        provider: origin.provider.as_str(),
        sandbox: origin.sandbox(),
    };
    let v = to_value(&out);
    success(origin, v.clone(), v, None)
}

/// Renders a closed order.
pub fn closed(origin: Origin, asked: &OrderRef, outcome: &CloseOutcome) -> CallToolResult {
    let status = &outcome.status;
    let order_no = status.platform_order_no.clone().or_else(|| match asked {
        OrderRef::Platform(no) => Some(no.clone()),
        OrderRef::Merchant { .. } => None,
    });
    let merchant_order_no = status.merchant_order_no.clone().or_else(|| match asked {
        OrderRef::Merchant { merchant_order_no, .. } => Some(merchant_order_no.clone()),
        OrderRef::Platform(_) => None,
    });
    let message = if outcome.already {
        format!("The order was already {}; nothing was sent.", status.state.name())
    } else {
        "The order is closed: it can no longer be paid.".to_owned()
    };
    let out = CloseOutput {
        success: true,
        state: status.state,
        is_final: status.state.is_final(),
        status: status.state.legacy_status(),
        platform_order_no: order_no.clone(),
        query_order_no: order_no.clone(),
        order_no,
        merchant_order_no,
        already_closed: outcome.already,
        next_action: "Tell the payer this order can no longer be paid. If they still want to buy, create a new order under a new merchant_order_no.".into(),
        message,
        raw_status: status.raw_status.clone(),
        provider: origin.provider.as_str(),
        sandbox: origin.sandbox(),
    };
    let v = to_value(&out);
    success(origin, v.clone(), v, None)
}
