//! Hostile configurations and gateways (issue 12): keys never reach a result or a log line, and a
//! machine that lacks what TLS needs is told what is missing.

use serde_json::json;

use crate::fake_epay::{FakeEpay, Scripted, Style};
use crate::support::*;

const PID: &str = "2002";
const KEY: &str = "Xk9epaySecretKey52155103";

async fn epay_with(fake: &FakeEpay, extra: &[(&str, &str)]) -> Harness {
    let mut opts = Options { lfwin: false, ..Options::default() }
        .env("PAYMENT_MERCHANT_ID", PID)
        .env("PAYMENT_SIGN_KEY", KEY)
        .env("PAYMENT_API_BASE_URL", &fake.base_url())
        .env("PAYMENT_REQUEST_TIMEOUT_MS", "1500")
        .env("PAYMENT_NOTIFY_URL", "https://shop.example/n")
        .env("PAYMENT_RETURN_URL", "https://shop.example/r");
    for (k, v) in extra {
        opts = opts.env(k, v);
    }
    Harness::start_with(opts).await
}

/// Issue 12.3: a base URL carrying a key in its query is refused without echoing the value.
#[tokio::test]
async fn a_base_url_with_a_key_in_it_is_refused_without_echoing_the_value() {
    let secret = "apikey-7731-do-not-echo";
    let url = format!("http://127.0.0.1:18080/?apikey={secret}#frag-{secret}");
    let opts = Options { lfwin: false, ..Options::default() }
        .env("PAYMENT_API_KEY", "ak-1234567")
        .env("PAYMENT_SIGN_KEY", "sk-1234567")
        .env("PAYMENT_API_BASE_URL", &url);
    let h = Harness::start_with(opts).await;
    let r = h.call("query_payment_order", json!({"order_no": "X1"})).await;
    let e = assert_err(&r, "config");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("PAYMENT_API_BASE_URL") && message.contains("query"), "{message}");
    assert!(message.contains("http://127.0.0.1:18080"), "names the origin: {message}");
    let everything = format!("{}{}", serde_json::to_string(&r).unwrap(), h.stderr());
    assert!(!everything.contains(secret), "the value leaked: {everything}");
}

/// Issue 12.2: replies and error pages that echo the key never reach a result or the log.
#[tokio::test]
async fn a_gateway_echoing_the_key_is_scrubbed_from_results_and_logs() {
    let fake = FakeEpay::start(PID, KEY, Style::Path).await;
    let h = epay_with(&fake, &[]).await;
    let encoded = KEY.replace('5', "%35");
    fake.script(
        "/api.php/getorder",
        vec![
            Scripted::json(&format!(r#"{{"code":-1,"msg":"key {KEY} is not valid for pid {PID}"}}"#)),
            Scripted::status(
                502,
                &format!("<html><body>Bad gateway: request was pid={PID}&key={encoded}</body></html>"),
            ),
            Scripted::status(
                502,
                &format!("<html><body>Bad gateway: request was pid={PID}&key={encoded}</body></html>"),
            ),
            Scripted::status(
                502,
                &format!("<html><body>Bad gateway: request was pid={PID}&key={encoded}</body></html>"),
            ),
        ],
    );
    let first = h.call("query_payment_order", json!({"order_no": "T1"})).await;
    assert!(first.is_error == Some(true));
    let second = h.call("query_payment_order", json!({"order_no": "T2"})).await;
    assert!(second.is_error == Some(true));
    let everything =
        format!("{}{}{}", serde_json::to_string(&first).unwrap(), serde_json::to_string(&second).unwrap(), h.stderr());
    assert!(!everything.contains(KEY), "the key leaked: {everything}");
    assert!(!everything.contains(&encoded), "the URL-encoded key leaked: {everything}");
}

/// Issue 12.18: with no CA certificates, the error says so and how to install them.
#[tokio::test]
async fn a_machine_without_ca_certificates_is_told_what_is_missing() {
    let dir =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("payment-mcp-nocerts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let fake = FakeEpay::start(PID, KEY, Style::Path).await;
    let h = epay_with(
        &fake,
        &[("SSL_CERT_FILE", empty.to_str().unwrap()), ("SSL_CERT_DIR", dir.join("none").to_str().unwrap())],
    )
    .await;
    let r = h.call("query_payment_order", json!({"order_no": "T1"})).await;
    let e = assert_err(&r, "config");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("CA certificates") && message.contains("ca-certificates"), "{message}");
    assert!(!message.contains("builder error"), "{message}");
}

/// Issue 12 items 11-13 through the real binary: amounts with whitespace, invisible or reordering
/// characters in text, and control characters in URLs are refused, naming what is wrong, and
/// nothing reaches the gateway.
#[tokio::test]
async fn malformed_amounts_text_and_urls_are_refused_before_anything_is_sent() {
    let h = Harness::start().await;
    let cases = [
        (json!({"merchant_order_no": "W-1", "amount": " 12.30 "}), "amount"),
        (json!({"merchant_order_no": "W-2", "amount": "12.30\n"}), "amount"),
        (json!({"merchant_order_no": "W-3", "amount": "\u{a0}12.30"}), "amount"),
        (json!({"merchant_order_no": "W-4", "amount": "1", "subject": "cup\u{202e}gnp.exe"}), "U+202E"),
        (json!({"merchant_order_no": "W-5", "amount": "1", "subject": "a\u{2028}b"}), "U+2028"),
        (json!({"merchant_order_no": "W-6", "amount": "1", "subject": "zero\u{200b}width"}), "U+200B"),
        (json!({"merchant_order_no": "W-7", "amount": "1", "notify_url": "https://x.example/n\r\nX: 1"}), "notify_url"),
        (json!({"merchant_order_no": "W-8", "amount": "1", "return_url": "https://x.example/\tr"}), "return_url"),
    ];
    for (args, names) in cases {
        let r = h.call("create_payment_order", args.clone()).await;
        let e = assert_err(&r, "invalid_input");
        assert!(e["message"].as_str().unwrap().contains(names), "{args}: {e}");
    }
    let r =
        h.call("refund_payment_order", json!({"order_no": "O-1", "refund_amount": "1", "reason": "x\u{2066}y"})).await;
    assert!(assert_err(&r, "invalid_input")["message"].as_str().unwrap().contains("U+2066"));
    assert_eq!(h.gw.request_count(), 0, "nothing reached the gateway");
}
