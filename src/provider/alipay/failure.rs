//! What a refused Alipay call means: `code`, `msg`, `sub_code` and `sub_msg` → the
//! [`PaymentError`] the agent sees, with `code` = `sub_code`, Alipay's `code` and `msg` beside
//! `sub_msg` in the message and, for the refusals people actually run into, a fix in plain words.
//!
//! Pure, and kept apart from reply reading because it is the table most likely to grow: a new
//! `sub_code` is one row in [`hint`].

use super::reply::Answer;
use crate::error::{ErrorKind, PaymentError};

/// Which call a refusal answered: the same `sub_code` means different things to each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Create,
    Query,
    Refund,
    RefundQuery,
    Close,
}

impl Call {
    fn noun(self) -> &'static str {
        match self {
            Call::Create => "order creation",
            Call::Query => "order query",
            Call::Refund => "refund",
            Call::RefundQuery => "refund query",
            Call::Close => "close",
        }
    }
}

/// The kind of error and the fix for a known `sub_code` on `call`.
fn hint(sub_code: &str, call: Call) -> Option<(ErrorKind, &'static str)> {
    use ErrorKind::{Auth, InvalidInput, NotFound, Refused};
    Some(match sub_code {
        "isv.invalid-signature" => (
            Auth,
            "Alipay could not verify this server's signature. The usual cause: AP_APP_KEY is not the private key whose public half (应用公钥) is uploaded for this AP_APP_ID, i.e. the application private key is paired with the wrong public key on the open platform; also check AP_ENCRYPTION_ALGO, and that sandbox keys are not used with production (AP_CURRENT_ENV).",
        ),
        "isv.missing-signature-config" | "isv.missing-signature-key" => (
            Auth,
            "The application has no signing key set up on the open platform (接口加签方式). Set one up in public-key mode (公钥模式) for this AP_APP_ID (for a restricted key: in its own settings), then put its private key in AP_APP_KEY and Alipay's public key in AP_PUB_KEY.",
        ),
        "isv.invalid-app-id" => (
            Auth,
            "Alipay does not know AP_APP_ID in this environment. Check the APPID, and AP_CURRENT_ENV: a sandbox APPID works only with sandbox, a production one only with prod.",
        ),
        "isv.insufficient-isv-permissions" => (
            Auth,
            "This application may not call this API. Usual causes: the application is not online yet (上线), sandbox and production are mixed up (AP_CURRENT_ENV against the APPID and keys), or the product is not signed for it (当面付 for QR codes, 手机网站支付 for wap, 电脑网站支付 for page, and refunds).",
        ),
        "isv.invalid-cloud-app-permission" => (
            Auth,
            "The restricted key's payment MCP switch is off: on the open platform, open the application's restricted key (受限密钥) settings and turn on 开启支付 MCP Server.",
        ),
        "isv.invalid-open-scene-api-permission" => (
            Auth,
            "This API is not ticked for the restricted key: on the open platform, tick it in the restricted key's (受限密钥) API list, or use a key that may call it.",
        ),
        "ACQ.TRADE_NOT_EXIST" => (
            NotFound,
            "Alipay has no such trade. Check the number (order_no is Alipay's trade_no; merchant_order_no is your out_trade_no). A trade exists only once the payer has scanned the code or opened the pay page.",
        ),
        "ACQ.TRADE_HAS_SUCCESS" => match call {
            Call::Create => (
                Refused,
                "This merchant_order_no was already paid: it is a finished sale. Use a new merchant_order_no for a new sale.",
            ),
            _ => (Refused, "The order is already paid: refund it instead."),
        },
        "ACQ.TRADE_STATUS_ERROR" => match call {
            Call::Close => (Refused, "The order is already paid (or finished): refund it instead of closing it."),
            Call::Refund => (
                Refused,
                "The trade's state does not allow a refund: it is not paid yet, closed, or finished (past its refund period).",
            ),
            _ => (Refused, "The trade's state does not allow this operation."),
        },
        "ACQ.TRADE_HAS_CLOSE" => (Refused, "The trade is closed: create a new order under a new merchant_order_no."),
        "ACQ.SELLER_BALANCE_NOT_ENOUGH" => (
            Refused,
            "The merchant's Alipay account balance is too low for this refund. Top the account up, then repeat the refund with the same mch_refund_no.",
        ),
        "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL" => (
            InvalidInput,
            "The refund amount exceeds what is left to refund on this trade (or this mch_refund_no was used with another amount). Check the amount; a new refund needs a new mch_refund_no.",
        ),
        "ACQ.ACCESS_FORBIDDEN" => (
            Auth,
            "Alipay forbids this application this operation on this trade: the trade belongs to another application or merchant, or the product's contract is not in effect.",
        ),
        "ACQ.CONTEXT_INCONSISTENT" => (
            InvalidInput,
            "This merchant_order_no was used before with other details (amount or subject). Use a new merchant_order_no, or the original details.",
        ),
        _ => return None,
    })
}

/// The error for a refused call: `code` is `sub_code` (or `code` when there is none).
pub fn failure(answer: &Answer, call: Call) -> PaymentError {
    let code = answer.code();
    let msg = answer.get("msg");
    let sub_code = answer.get("sub_code");
    let said = answer.get("sub_msg").or(msg).unwrap_or("no message");
    let shown = sub_code.unwrap_or(code);
    // All four of Alipay's fields reach the agent (issue 13): `sub_code` as `code`, and `code` with
    // `msg` (unless `msg` is already what was said) next to it in the message.
    let alipay_code = match msg.filter(|m| *m != said) {
        Some(m) => format!("Alipay code {code} {m}"),
        None => format!("Alipay code {code}"),
    };
    let detail = if sub_code.is_some() { format!("{shown}; {alipay_code}") } else { alipay_code };
    let system_error = code == "20000"
        || sub_code.is_some_and(|s| s.ends_with("SYSTEM_ERROR") || s.starts_with("isp.") || s == "aop.unknow-error");
    let (kind, fix, retryable) = match sub_code.and_then(|s| hint(s, call)) {
        Some((kind, fix)) => (kind, fix.to_owned(), kind == ErrorKind::NotFound && call == Call::RefundQuery),
        None if system_error => match call {
            Call::Create | Call::Refund | Call::Close => (
                ErrorKind::OutcomeUnknown,
                "Alipay had an internal error, so it is unknown whether this went through: query first, then repeat with the same number."
                    .to_owned(),
                true,
            ),
            _ => (ErrorKind::Gateway, "Alipay had an internal error; try again shortly.".to_owned(), true),
        },
        None => match code {
            "40001" | "40002" => (ErrorKind::InvalidInput, "Alipay refused the parameters.".to_owned(), false),
            "20001" | "40006" => (
                ErrorKind::Auth,
                "Alipay refused this application's authorization or permissions for this API.".to_owned(),
                false,
            ),
            _ => (ErrorKind::Refused, String::new(), false),
        },
    };
    let nothing = match kind {
        ErrorKind::OutcomeUnknown => "",
        _ if matches!(call, Call::Query | Call::RefundQuery) => "",
        _ => " Nothing changed.",
    };
    PaymentError::new(
        kind,
        format!("Alipay refused the {}: {said} ({detail}).{nothing} {fix}", call.noun()).trim_end().to_owned(),
    )
    .with_code(shown)
    .retryable(retryable)
}
