//! Verification of the epay gateway's payment notifications (its signed call to the merchant's
//! `notify_url`).
//!
//! Kept apart from reply parsing because a notification is not an answer to a request this client
//! sent: it arrives by way of the merchant, as a query string or form body, and only its MD5
//! signature (the same rule as requests, see [`crate::sign::epay_sign`]) says whether to believe it.
//! Pure, so tested here against the signing vector of `docs/epay.md`.

use super::super::{Notification, PaymentState};
use crate::money::Fen;
use crate::sign;

/// Verifies an epay payment notification with the merchant `key`: the epay rule (every field except
/// `sign` and `sign_type`, empty values dropped, sorted, key appended) over the decoded fields. Paid
/// only with a valid signature and `trade_status = TRADE_SUCCESS`; `WAIT_BUYER_PAY` reads as pending
/// and `TRADE_CLOSED` as closed, anything else (or an invalid signature) as unknown.
pub fn verify_epay_notification(raw: &str, key: &str) -> Notification {
    let fields = super::super::notification_fields(raw);
    let given = fields.iter().find(|(k, _)| k == "sign").map(|(_, v)| v.clone()).unwrap_or_default();
    let signature_valid =
        !key.is_empty() && !given.is_empty() && sign::signatures_match(&sign::epay_sign(&fields, key), &given);
    let get =
        |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_owned()).filter(|v| !v.is_empty());
    let raw_status = get("trade_status");
    let state = match (signature_valid, raw_status.as_deref()) {
        (true, Some("TRADE_SUCCESS")) => PaymentState::Paid,
        (true, Some("WAIT_BUYER_PAY")) => PaymentState::Pending,
        (true, Some("TRADE_CLOSED")) => PaymentState::Closed,
        _ => PaymentState::Unknown,
    };
    Notification {
        signature_valid,
        platform_order_no: get("trade_no"),
        merchant_order_no: get("out_trade_no"),
        amount: get("money").and_then(|m| Fen::from_gateway(&m)),
        state,
        raw_status,
        fields: fields.into_iter().filter(|(k, _)| k != "sign").collect(),
        disagreement: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_vector() -> Vec<(&'static str, &'static str)> {
        vec![
            ("pid", "1001"),
            ("type", "alipay"),
            ("out_trade_no", "20231229120000"),
            ("notify_url", "https://example.com/notify.php"),
            ("return_url", "https://example.com/return.php"),
            ("name", "商品名称"),
            ("money", "10.00"),
            ("sitename", ""),
        ]
    }

    #[test]
    fn spec_signing_vector() {
        assert_eq!(sign::epay_sign(&spec_vector(), "YourSecretKey"), "aa71266d9ceb6683b419601d0df58bcf");
    }

    fn notification(extra: &[(&'static str, &'static str)], key: &str) -> String {
        let mut fields: Vec<(&str, &str)> = spec_vector();
        fields.retain(|(k, _)| !matches!(*k, "notify_url" | "return_url"));
        fields.extend_from_slice(extra);
        let signature = sign::epay_sign(&fields, key);
        let mut all: Vec<(&str, String)> = fields.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        all.push(("sign", signature));
        all.push(("sign_type", "MD5".to_owned()));
        serde_urlencoded::to_string(&all).unwrap()
    }

    #[test]
    fn notifications_are_paid_only_when_signed_and_successful() {
        let paid = [("trade_no", "2023122912000012345"), ("trade_status", "TRADE_SUCCESS"), ("param", "")];
        let raw = notification(&paid, "YourSecretKey");
        let n = verify_epay_notification(&raw, "YourSecretKey");
        assert!(n.signature_valid);
        assert_eq!(n.state, PaymentState::Paid);
        assert_eq!(n.amount, Some(Fen(1000)));
        assert_eq!(n.platform_order_no.as_deref(), Some("2023122912000012345"));
        assert_eq!(n.merchant_order_no.as_deref(), Some("20231229120000"));
        assert_eq!(n.raw_status.as_deref(), Some("TRADE_SUCCESS"));
        assert!(n.fields.iter().all(|(k, _)| k != "sign"));
        assert!(n.fields.iter().any(|(k, v)| k == "name" && v == "商品名称"));
        assert!(
            verify_epay_notification(&format!("https://shop.example/notify.php?{raw}"), "YourSecretKey")
                .signature_valid
        );

        let tampered = raw.replace("money=10.00", "money=0.01");
        assert_ne!(tampered, raw);
        let n = verify_epay_notification(&tampered, "YourSecretKey");
        assert!(!n.signature_valid);
        assert_eq!(n.state, PaymentState::Unknown, "never paid without a valid signature");
        assert!(!verify_epay_notification(&raw, "OtherKey").signature_valid);
        assert!(!verify_epay_notification(&raw, "").signature_valid);
        let unsigned = raw.split("&sign=").next().unwrap().to_owned();
        assert!(!verify_epay_notification(&unsigned, "YourSecretKey").signature_valid);

        let waiting = notification(&[("trade_status", "WAIT_BUYER_PAY")], "YourSecretKey");
        assert_eq!(verify_epay_notification(&waiting, "YourSecretKey").state, PaymentState::Pending);
        let odd = notification(&[("trade_status", "TRADE_FINISHED_MAYBE")], "YourSecretKey");
        let n = verify_epay_notification(&odd, "YourSecretKey");
        assert_eq!((n.signature_valid, n.state), (true, PaymentState::Unknown));
        let none = notification(&[], "YourSecretKey");
        assert_eq!(verify_epay_notification(&none, "YourSecretKey").state, PaymentState::Unknown);
        let closed = notification(&[("trade_status", "TRADE_CLOSED")], "YourSecretKey");
        assert_eq!(verify_epay_notification(&closed, "YourSecretKey").state, PaymentState::Closed);
    }
}
