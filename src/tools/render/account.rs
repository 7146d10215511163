//! Renders the tools around the account: `get_merchant_info`, `verify_payment_notification`, and
//! the sandbox's `sandbox_simulate_payment`.

use rmcp::model::CallToolResult;

use super::{MerchantOutput, Origin, SimulateOutput, VerifyOutput, success, to_value};
use crate::money::Fen;
use crate::provider::{MerchantInfo, Notification, PaymentState, ProviderKind};

/// Renders merchant information.
pub fn merchant(origin: Origin, info: &MerchantInfo) -> CallToolResult {
    let out = MerchantOutput {
        success: true,
        merchant_id: info.merchant_id.clone(),
        name: info.name.clone(),
        balance: info.balance.map(Fen::to_yuan),
        status: info.status.clone(),
        extra: info.extra.iter().cloned().collect(),
        provider: origin.provider.as_str(),
        sandbox: origin.sandbox(),
    };
    let v = to_value(&out);
    success(origin, v.clone(), v, None)
}

/// Renders a notification check.
pub fn verified(origin: Origin, n: &Notification) -> CallToolResult {
    let next_action = if let Some(why) = &n.disagreement {
        format!(
            "Do NOT deliver: the signature is valid, but the notification disagrees with the order this server recorded ({why}). Query the order with query_payment_order and act on what the query says."
        )
    } else if !n.signature_valid {
        "Do NOT trust this notification: its signature does not verify with the configured key. Do not deliver goods; query the order with query_payment_order instead.".to_owned()
    } else if n.state == PaymentState::Paid {
        "The signature is valid and it says paid. Check that amount matches the order's amount, then deliver, and answer the gateway with the plain body `success` so it stops retrying.".to_owned()
    } else {
        "The signature is valid but it does not say paid; do not deliver. Query the order for its current state."
            .to_owned()
    };
    let out = VerifyOutput {
        success: true,
        signature_valid: n.signature_valid,
        state: n.state,
        order_no: n.platform_order_no.clone(),
        merchant_order_no: n.merchant_order_no.clone(),
        amount: n.amount.map(Fen::to_yuan),
        raw_status: n.raw_status.clone(),
        rule: match origin.provider {
            ProviderKind::Epay => "epay",
            ProviderKind::Alipay => "alipay",
            _ => "lfwin",
        },
        fields: n.fields.iter().cloned().collect(),
        next_action,
        provider: origin.provider.as_str(),
        sandbox: origin.sandbox(),
    };
    let v = to_value(&out);
    success(origin, v.clone(), v, None)
}

/// Renders a simulated payment of the order with platform number `order_no`.
pub fn simulated(origin: Origin, order_no: &str, paid: bool) -> CallToolResult {
    let out = SimulateOutput {
        success: true,
        order_no: order_no.to_owned(),
        state: if paid { PaymentState::Paid } else { PaymentState::Failed },
        next_action: "Call query_payment_order to see the new state through the gateway, as with a real payment."
            .into(),
        provider: origin.provider.as_str(),
        sandbox: origin.sandbox(),
    };
    let v = to_value(&out);
    success(origin, v.clone(), v, None)
}
