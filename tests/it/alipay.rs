//! The Alipay provider through MCP: the real binary on `PAYMENT_PROVIDER=alipay` (chosen by
//! `AP_APP_ID`), against the sandbox's Alipay wire, which verifies every request's RSA2 signature
//! and signs every reply as Alipay does. Every core tool, the page links, replies that must not be
//! trusted, refusals, notifications and configuration errors.

use std::time::Duration;

use payment_mcp::sandbox::{Fault, alipay_public_key, app_private_key};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

async fn alipay() -> Harness {
    Harness::start_with(alipay_options().await).await
}

/// Asserts that neither key appears in any result or in the server's stderr.
fn assert_keys_never_leave(h: &Harness, results: &[&rmcp::model::CallToolResult]) {
    let (app, public) = (app_private_key(), alipay_public_key());
    let (app, public) = (&app[60..120], &public[60..120]);
    for r in results {
        let all = serde_json::to_string(r).unwrap();
        assert!(!all.contains(app) && !all.contains(public), "a key leaked into a result");
    }
    let log = h.stderr();
    assert!(!log.contains(app) && !log.contains(public), "a key leaked to stderr");
}

#[tokio::test]
async fn every_core_tool_works_through_alipay() {
    let h = alipay().await;
    let create = h
        .call("create_payment_order", json!({"merchant_order_no": "AP-1001", "amount": "12.30", "subject": "咖啡"}))
        .await;
    let c = assert_ok(&create);
    assert_eq!(
        (c["provider"].as_str(), c["sandbox"].as_bool(), c["state"].as_str()),
        (Some("alipay"), Some(false), Some("pending"))
    );
    assert_eq!(c["order_no"], Value::Null, "Alipay gives a trade_no only once the payer scans");
    let qr = c["qrcode"].as_str().unwrap();
    assert!(qr.starts_with(&format!("{}/pay/", h.gw.base_url())), "{qr}");
    assert_eq!(decode_qr(&image_png(&create).unwrap()), qr);
    let sent = h.gw.requests();
    assert_eq!(alipay_methods(&h.gw), ["alipay.trade.precreate"]);
    assert!(sent[0].signature_ok, "RSA2-signed with AP_APP_KEY");
    let biz: Value = serde_json::from_str(sent[0].field("biz_content").unwrap()).unwrap();
    assert_eq!(biz, json!({"out_trade_no": "AP-1001", "total_amount": "12.30", "subject": "咖啡"}));
    assert!(sent[0].field("timestamp").is_some_and(|t| t.len() == 19));

    let q = assert_ok(&h.call("query_payment_order", json!({"merchant_order_no": "AP-1001"})).await);
    assert_eq!((q["state"].as_str(), q["raw_paystatus"].as_str()), (Some("pending"), Some("WAIT_BUYER_PAY")));

    h.gw.simulate_payment("AP-1001", true).unwrap();
    let w = assert_ok(&h.call("wait_for_payment", json!({"merchant_order_no": "AP-1001", "timeout_seconds": 5})).await);
    assert_eq!((w["state"].as_str(), w["paid_amount"].as_str()), (Some("paid"), Some("12.30")));
    assert!(w["paid_time"].as_str().is_some_and(|t| t.ends_with("+08:00")));
    assert!(w["message"].as_str().unwrap().contains("s***@example.com"), "the payer is masked: {w}");
    let trade_no = w["order_no"].as_str().unwrap().to_owned();
    let by_trade_no = assert_ok(&h.call("query_payment_order", json!({"order_no": trade_no})).await);
    assert_eq!(by_trade_no["merchant_order_no"], "AP-1001");

    let refund_args =
        json!({"order_no": trade_no, "refund_amount": "2.00", "reason": "破损", "mch_refund_no": "AP-1001-R1"});
    let refund = h.call("refund_payment_order", refund_args.clone()).await;
    let r = assert_ok(&refund);
    assert_eq!((r["state"].as_str(), r["replayed"].as_bool()), (Some("processing"), Some(false)));
    let sent = h.gw.requests();
    let last = sent.last().unwrap();
    assert_eq!(last.field("method"), Some("alipay.trade.refund"));
    let biz: Value = serde_json::from_str(last.field("biz_content").unwrap()).unwrap();
    assert_eq!(biz["out_request_no"], "AP-1001-R1", "mch_refund_no is Alipay's out_request_no");
    let count = h.gw.request_count();
    let again = assert_ok(&h.call("refund_payment_order", refund_args).await);
    assert_eq!(again["replayed"], true);
    assert_eq!(h.gw.request_count(), count, "a repeat is answered from the ledger");

    let query = json!({"order_no": trade_no, "mch_refund_no": "AP-1001-R1"});
    let rq = assert_ok(&h.call("query_refund_status", query.clone()).await);
    assert_eq!((rq["state"].as_str(), rq["refund_amount"].as_str()), (Some("processing"), Some("2.00")));
    h.gw.settle_refunds(true);
    let rq = h.call("query_refund_status", query).await;
    let done = assert_ok(&rq);
    assert_eq!(done["state"], "refunded");
    assert_eq!(done["refunds"][0]["raw_refund_status"], "REFUND_SUCCESS");
    let unknown = h.call("query_refund_status", json!({"order_no": trade_no, "mch_refund_no": "NOPE-1"})).await;
    assert_err(&unknown, "not_found");
    let missing = h.call("query_refund_status", json!({"order_no": trade_no})).await;
    assert_err(&missing, "invalid_input");

    let list = assert_ok(&h.call("list_payment_orders", json!({})).await);
    assert_eq!((list["source"].as_str(), list["orders"][0]["state"].as_str()), (Some("ledger"), Some("paid")));
    assert!(h.gw.requests().iter().all(|r| r.signature_ok));
    assert_keys_never_leave(&h, &[&create, &refund, &rq]);
}

#[tokio::test]
async fn wap_and_page_links_are_signed_urls_that_send_nothing() {
    let h = alipay().await;
    for (channel, method) in [("wap", "alipay.trade.wap.pay"), ("page", "alipay.trade.page.pay")] {
        let no = format!("AP-LINK-{channel}");
        let before = h.gw.request_count();
        let r = h
            .call("create_payment_order", json!({"merchant_order_no": no, "amount": "0.01", "channel": channel}))
            .await;
        let c = assert_ok(&r);
        assert_eq!(h.gw.request_count(), before, "a page link is built, not sent");
        let url = c["pay_url"].as_str().unwrap().to_owned();
        assert!(url.starts_with(&format!("{}?", h.gw.gateway_url())) && url.contains(method), "{url}");
        assert_eq!(decode_qr(&image_png(&r).unwrap()), url, "the QR encodes the link");
        // Not found until the payer opens the link: pending, as Alipay creates the trade then.
        let q = assert_ok(&h.call("query_payment_order", json!({"merchant_order_no": no})).await);
        assert!(q["pending_reason"].is_string(), "{q}");
        // The payer opens it: the sandbox checks the signature and shows the pay page.
        let client = payment_mcp::provider::transport::client_builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let opened = client.get(&url).send().await.unwrap();
        assert_eq!(opened.status(), 303, "{}", opened.text().await.unwrap());
        let q = assert_ok(&h.call("query_payment_order", json!({"merchant_order_no": no})).await);
        assert_eq!((q["state"].as_str(), q["pending_reason"].is_null()), (Some("pending"), true));
        let forged =
            client.get(url.replace("total_amount%22%3A%220.01", "total_amount%22%3A%229.99")).send().await.unwrap();
        assert_eq!(forged.status(), 400, "an altered link is refused");
    }
    let refused =
        h.call("create_payment_order", json!({"merchant_order_no": "X", "amount": "1", "pay_type": "wxpay"})).await;
    assert_err(&refused, "invalid_input");
}

#[tokio::test]
async fn a_tampered_reply_is_rejected_and_one_signed_with_another_key_is_auth() {
    let h = alipay().await;
    h.create("AP-T-1", "1.00").await;
    h.gw.fault_next(Fault::BadSignature);
    let r = h.call("query_payment_order", json!({"merchant_order_no": "AP-T-1"})).await;
    let e = assert_err(&r, "gateway");
    assert!(e["message"].as_str().unwrap().contains("altered"), "{e}");

    h.gw.fault_next(Fault::WrongSigningKey);
    let r = h.call("query_payment_order", json!({"merchant_order_no": "AP-T-1"})).await;
    let e = assert_err(&r, "auth");
    assert_eq!(e["code"], "AP_PUB_KEY");
    assert!(e["message"].as_str().unwrap().contains("支付宝公钥"), "{e}");

    h.gw.fault_next(Fault::WrongSigningKey);
    let r = h.call("create_payment_order", json!({"merchant_order_no": "AP-T-2", "amount": "1.00"})).await;
    let e = assert_err(&r, "auth");
    assert!(e["message"].as_str().unwrap().contains("check with a query"), "{e}");
}

#[tokio::test]
async fn refusals_carry_alipay_s_sub_code_and_a_fix() {
    let h = alipay().await;
    let r = h.call("query_payment_order", json!({"order_no": "2099010122001400000000000001"})).await;
    let e = assert_err(&r, "not_found");
    assert_eq!(e["code"], "ACQ.TRADE_NOT_EXIST");
    h.gw.fault_next(Fault::Status("ACQ.SELLER_BALANCE_NOT_ENOUGH".into()));
    let r = h
        .call("refund_payment_order", json!({"order_no": "2099", "refund_amount": "1.00", "mch_refund_no": "R-1"}))
        .await;
    let e = assert_err(&r, "refused");
    assert_eq!(e["code"], "ACQ.SELLER_BALANCE_NOT_ENOUGH");
    assert!(e["message"].as_str().unwrap().contains("balance"), "{e}");
    // Issue 13: Alipay's code, msg, sub_code and sub_msg all reach the error (code = sub_code; the
    // others in the message). Found by the independent acceptance suite (check E).
    let said = e["message"].as_str().unwrap();
    assert!(said.contains("40004") && said.contains("Business Failed"), "Alipay's code and msg: {said}");

    let opts = alipay_options().await.env("AP_APP_ID", "2021000000000000");
    let wrong_app = Harness::start_with(opts).await;
    let r = wrong_app.call("query_payment_order", json!({"merchant_order_no": "X-1"})).await;
    let e = assert_err(&r, "auth");
    assert_eq!(e["code"], "isv.invalid-app-id");
    assert!(e["message"].as_str().unwrap().contains("AP_CURRENT_ENV"), "{e}");
}

#[tokio::test]
async fn a_bad_key_is_a_config_error_naming_its_variable_and_listing_still_works() {
    let opts = alipay_options().await.env("AP_APP_KEY", "not-a-key");
    let h = Harness::start_with(opts).await;
    let tools = h.client.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "create_payment_order"));
    let r = h.call("query_payment_order", json!({"merchant_order_no": "X-1"})).await;
    let e = assert_err(&r, "config");
    assert_eq!(e["code"], "AP_APP_KEY");
    assert_eq!(h.gw.request_count(), 0);
}

/// Accepts one HTTP request on a loopback port and returns its body (answering `success`).
async fn capture_one_post() -> (String, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}/notify", listener.local_addr().unwrap().port());
    let task = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = stream.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= length || n == 0 {
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nsuccess").await;
                    return body.to_owned();
                }
            }
        }
    });
    (url, task)
}

#[tokio::test]
async fn notifications_are_verified_with_alipay_s_rules() {
    let h = alipay().await;
    let (notify_url, posted) = capture_one_post().await;
    let args = json!({"merchant_order_no": "AP-N-1", "amount": "3.50", "notify_url": notify_url});
    assert_ok(&h.call("create_payment_order", args).await);
    assert_eq!(h.gw.requests()[0].field("notify_url"), Some(notify_url.as_str()));
    h.gw.simulate_payment("AP-N-1", true).unwrap();
    let raw = tokio::time::timeout(Duration::from_secs(10), posted).await.unwrap().unwrap();
    let v = assert_ok(&h.call("verify_payment_notification", json!({"raw": raw})).await);
    assert_eq!(
        (v["signature_valid"].as_bool(), v["state"].as_str(), v["rule"].as_str()),
        (Some(true), Some("paid"), Some("alipay"))
    );
    assert_eq!((v["merchant_order_no"].as_str(), v["amount"].as_str()), (Some("AP-N-1"), Some("3.50")));
    let tampered = raw.replace("total_amount=3.50", "total_amount=0.01");
    let v = assert_ok(&h.call("verify_payment_notification", json!({"raw": tampered})).await);
    assert_eq!((v["signature_valid"].as_bool(), v["state"].as_str()), (Some(false), Some("unknown")));
}

/// A notification as Alipay would post it: `fields` signed with the sandbox's Alipay private key
/// (every field but `sign` and `sign_type`, sorted), form-encoded.
fn signed_notification(fields: &[(&str, &str)]) -> String {
    use payment_mcp::provider::alipay::{AppKey, SignType, notification_content};
    let pem = include_str!("../../fixtures/alipay/test_alipay_private_key.pem");
    let sign = AppKey::parse(pem, SignType::Rsa2).unwrap().sign(&notification_content(fields)).unwrap();
    let enc = |v: &str| v.replace('%', "%25").replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
    let mut form: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
    form.push(format!("sign_type=RSA2&sign={}", enc(&sign)));
    form.join("&")
}

/// Issue 13: after the signature, `app_id`, `out_trade_no` and `total_amount` are checked against
/// the ledger when it knows the order. A validly signed notification that disagrees with the
/// recorded order (another amount, another trade) must not read as paid. Found by the
/// independent acceptance suite (scripts/acceptance/alipay, check N).
#[tokio::test]
async fn a_notification_that_disagrees_with_the_ledger_is_not_paid() {
    use payment_mcp::sandbox::ALIPAY_APP_ID;
    let h = alipay().await;
    h.create("AP-N-2", "3.50").await;
    h.gw.simulate_payment("AP-N-2", true).unwrap();
    let q = assert_ok(&h.call("query_payment_order", json!({"merchant_order_no": "AP-N-2"})).await);
    let trade_no = q["order_no"].as_str().unwrap().to_owned();
    let note = |trade: &str, amount: &str| {
        let fields = [
            ("app_id", ALIPAY_APP_ID),
            ("out_trade_no", "AP-N-2"),
            ("trade_no", trade),
            ("total_amount", amount),
            ("trade_status", "TRADE_SUCCESS"),
        ];
        json!({"raw": signed_notification(&fields)})
    };
    let v = assert_ok(&h.call("verify_payment_notification", note(&trade_no, "3.50")).await);
    assert_eq!((v["signature_valid"].as_bool(), v["state"].as_str()), (Some(true), Some("paid")));

    let v = assert_ok(&h.call("verify_payment_notification", note(&trade_no, "0.01")).await);
    assert_eq!(v["signature_valid"], true, "the signature itself is Alipay's: {v}");
    assert_eq!(v["state"], "unknown", "0.01 is not the recorded 3.50: {v}");
    let next = v["next_action"].as_str().unwrap();
    assert!(next.contains("Do NOT deliver") && next.contains("0.01") && next.contains("3.50"), "{next}");

    let v = assert_ok(&h.call("verify_payment_notification", note("2099010122001400000000000009", "3.50")).await);
    assert_eq!(v["state"], "unknown", "another trade_no than the recorded one: {v}");
    assert!(v["next_action"].as_str().unwrap().contains(&trade_no), "{v}");

    let other = [
        ("app_id", ALIPAY_APP_ID),
        ("out_trade_no", "AP-N-UNKNOWN"),
        ("total_amount", "9.99"),
        ("trade_status", "TRADE_SUCCESS"),
    ];
    let v = assert_ok(&h.call("verify_payment_notification", json!({"raw": signed_notification(&other)})).await);
    assert_eq!(v["state"], "paid", "an order the ledger does not know is judged by its signature: {v}");
    assert_eq!(h.gw.requests().iter().filter(|r| r.field("method") == Some("alipay.trade.query")).count(), 1);
}

#[tokio::test]
async fn close_payment_order_closes_unpaid_orders_and_refuses_paid_ones() {
    let h = alipay().await;
    let tools = h.client.list_all_tools().await.unwrap();
    let close = tools.iter().find(|t| t.name == "close_payment_order").expect("listed for Alipay");
    let hints = close.annotations.as_ref().unwrap();
    assert_eq!(
        (hints.destructive_hint, hints.idempotent_hint, hints.read_only_hint),
        (Some(true), Some(true), Some(false))
    );

    h.create("AP-C-1", "1.00").await;
    let c = assert_ok(&h.call("close_payment_order", json!({"merchant_order_no": "AP-C-1"})).await);
    assert_eq!((c["state"].as_str(), c["already_closed"].as_bool()), (Some("closed"), Some(false)));
    assert_eq!(h.gw.order("AP-C-1").unwrap().paystatus, 3);
    let closes = |h: &Harness| alipay_methods(&h.gw).iter().filter(|m| *m == "alipay.trade.close").count();
    assert_eq!(closes(&h), 1);
    let again = assert_ok(&h.call("close_payment_order", json!({"merchant_order_no": "AP-C-1"})).await);
    assert_eq!((again["already_closed"].as_bool(), closes(&h)), (Some(true), 1), "idempotent, nothing sent");
    let q = assert_ok(&h.call("query_payment_order", json!({"merchant_order_no": "AP-C-1"})).await);
    assert_eq!((q["state"].as_str(), q["raw_paystatus"].as_str()), (Some("closed"), Some("TRADE_CLOSED")));
    let list = assert_ok(&h.call("list_payment_orders", json!({"state": "closed"})).await);
    assert_eq!(list["orders"][0]["merchant_order_no"], "AP-C-1", "recorded in the ledger");
    assert!(h.gw.simulate_payment("AP-C-1", true).is_err(), "a closed order cannot be paid");

    h.create("AP-C-2", "1.00").await;
    h.gw.simulate_payment("AP-C-2", true).unwrap();
    let r = h.call("close_payment_order", json!({"merchant_order_no": "AP-C-2"})).await;
    let e = assert_err(&r, "refused");
    assert_eq!(e["code"], "ACQ.TRADE_HAS_SUCCESS");
    assert!(e["message"].as_str().unwrap().contains("refund it instead"), "{e}");
    assert_eq!(closes(&h), 1, "nothing sent for a paid order");
    let r = h.call("close_payment_order", json!({})).await;
    assert_err(&r, "invalid_input");
}

/// Alipay creates a precreated trade only when the payer scans the code, so closing an order nobody
/// has scanned yet answers `ACQ.TRADE_NOT_EXIST`. For an order this server created that is not
/// "no such order" (which reads as a wrong number) but a refusal saying the code stays payable.
#[tokio::test]
async fn closing_an_order_nobody_scanned_says_the_code_stays_payable() {
    let lazy = payment_mcp::sandbox::SandboxConfig { lazy_platform_orders: true, ..gateway_config() };
    let h = Harness::start_with(alipay_options_with(lazy).await).await;
    h.create("AP-C-NS", "1.00").await;
    let r = h.call("close_payment_order", json!({"merchant_order_no": "AP-C-NS"})).await;
    let e = assert_err(&r, "refused");
    assert_eq!(e["code"], "ACQ.TRADE_NOT_EXIST");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("scanned") && message.contains("stays payable"), "{message}");
    let unknown = h.call("close_payment_order", json!({"merchant_order_no": "AP-NEVER-MADE"})).await;
    assert_err(&unknown, "not_found");
}

#[tokio::test]
async fn close_payment_order_is_listed_only_where_orders_can_be_closed() {
    let lfwin = Harness::start().await;
    let tools = lfwin.client.list_all_tools().await.unwrap();
    assert!(!tools.iter().any(|t| t.name == "close_payment_order"));
    assert!(!tools.iter().any(|t| t.name.contains("alipay")));
    let create = tools.iter().find(|t| t.name == "create_payment_order").unwrap();
    assert!(create.input_schema["properties"].get("channel").is_none(), "channel is Alipay's only");
    let r = lfwin
        .call("create_payment_order", json!({"merchant_order_no": "L-1", "amount": "1.00", "channel": "wap"}))
        .await;
    assert_err(&r, "invalid_input");
    assert_eq!(lfwin.gw.request_count(), 0);
}

#[tokio::test]
async fn alipay_s_own_tool_names_run_on_the_same_provider_code() {
    let h = alipay().await;
    let tools = h.client.list_all_tools().await.unwrap();
    for name in [
        "create-mobile-alipay-payment",
        "create-web-page-alipay-payment",
        "query-alipay-payment",
        "refund-alipay-payment",
        "query-alipay-refund",
    ] {
        let tool = tools.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("{name} listed"));
        assert!(tool.output_schema.is_some(), "{name}");
    }
    let create = tools.iter().find(|t| t.name == "create-mobile-alipay-payment").unwrap();
    assert_eq!(create.input_schema["required"], json!(["outTradeNo", "totalAmount", "orderTitle"]));
    assert_eq!(create.input_schema["properties"]["orderTitle"]["maxLength"], 256);

    let r = h
        .call("create-web-page-alipay-payment", json!({"outTradeNo": "AP-O-0", "totalAmount": 1, "orderTitle": "网页"}))
        .await;
    assert!(assert_ok(&r)["url"].as_str().unwrap().contains("alipay.trade.page.pay"));
    let r = h
        .call(
            "create-mobile-alipay-payment",
            json!({"outTradeNo": "AP-O-1", "totalAmount": "9.90", "orderTitle": "手机"}),
        )
        .await;
    let url = assert_ok(&r)["url"].as_str().unwrap().to_owned();
    let prefix = format!("[Pay ¥9.90]({}?", h.gw.gateway_url());
    assert!(url.starts_with(&prefix) && url.contains("alipay.trade.wap.pay") && url.ends_with(')'), "{url}");
    let link = url.trim_start_matches("[Pay ¥9.90](").trim_end_matches(')');
    let client = payment_mcp::provider::transport::client_builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert_eq!(client.get(link).send().await.unwrap().status(), 303);
    h.gw.simulate_payment("AP-O-1", true).unwrap();

    let q = assert_ok(&h.call("query-alipay-payment", json!({"outTradeNo": "AP-O-1"})).await);
    assert_eq!((q["tradeStatus"].as_str(), q["totalAmount"].as_str()), (Some("TRADE_SUCCESS"), Some("9.90")));
    let trade_no = q["tradeNo"].as_str().unwrap().to_owned();
    let native = assert_ok(&h.call("query_payment_order", json!({"merchant_order_no": "AP-O-1"})).await);
    assert_eq!(native["order_no"], trade_no.as_str(), "one order, seen by both tool sets");

    let request_no = format!("AP-O-1-{}", "R".repeat(57));
    let args = json!({"outTradeNo": "AP-O-1", "refundAmount": "1.00", "outRequestNo": request_no, "refundReason": "尺码不合适"});
    let r = assert_ok(&h.call("refund-alipay-payment", args.clone()).await);
    assert_eq!(r["tradeNo"], trade_no.as_str());
    assert!(r["refundResult"].as_str().unwrap().starts_with("processing"), "{r}");
    let again = assert_ok(&h.call("refund-alipay-payment", args).await);
    assert!(again["refundResult"].as_str().unwrap().contains("nothing was sent again"), "{again}");
    let refunds = h.gw.order("AP-O-1").unwrap().refunds;
    assert_eq!(refunds.len(), 1);

    let query = json!({"outRequestNo": request_no, "outTradeNo": "AP-O-1"});
    let rq = assert_ok(&h.call("query-alipay-refund", query.clone()).await);
    assert_eq!((rq["refundStatus"].as_str(), rq["refundAmount"].as_str()), (Some(""), Some("1.00")));
    h.gw.settle_refunds(true);
    let rq = assert_ok(&h.call("query-alipay-refund", query).await);
    assert_eq!(
        (rq["refundStatus"].as_str(), rq["tradeNo"].as_str()),
        (Some("REFUND_SUCCESS"), Some(trade_no.as_str()))
    );

    let snake = h.call("query-alipay-payment", json!({"out_trade_no": "AP-O-1"})).await;
    assert_err(&snake, "invalid_input");
    let unpaid = h
        .call("refund-alipay-payment", json!({"outTradeNo": "AP-NEVER", "refundAmount": "1", "outRequestNo": "X"}))
        .await;
    assert_err(&unpaid, "not_found");
}

#[tokio::test]
async fn ap_select_tools_hides_every_tool_not_selected() {
    let h =
        Harness::start_with(alipay_options().await.env("AP_SELECT_TOOLS", "queryPay, refundQuery,close_payment_order"))
            .await;
    let mut names: Vec<String> =
        h.client.list_all_tools().await.unwrap().into_iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(names, ["close_payment_order", "query-alipay-payment", "query-alipay-refund"]);
    let all = Harness::start_with(alipay_options().await.env("AP_SELECT_TOOLS", "all")).await;
    assert_eq!(
        all.client.list_all_tools().await.unwrap().len(),
        13,
        "8 of ours (no sandbox tool, no merchant info) and Alipay's 5"
    );
}

#[tokio::test]
async fn ap_log_enabled_writes_the_official_log_file_scrubbed() {
    let home = temp_ledger().parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&home).unwrap();
    let key = app_private_key();
    let opts = alipay_options()
        .await
        .env("HOME", home.to_str().unwrap())
        .env("AP_LOG_ENABLED", "true")
        .env("AP_SELECT_TOOLS", &key);
    let h = Harness::start_with(opts).await;
    let r = h.client.list_all_tools().await.unwrap();
    assert!(r.is_empty(), "a bad AP_SELECT_TOOLS selects nothing");
    let log = std::fs::read_to_string(home.join("mcp-server-alipay.log")).expect("the log file exists");
    assert!(log.contains("AP_SELECT_TOOLS names `[redacted]`"), "{log}");
    assert!(!log.contains(&key[60..120]), "the key never reaches the log file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(home.join("mcp-server-alipay.log")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "user-only");
    }
}

/// Runs `payment-mcp doctor` with the Alipay options' environment: (exit success, stdout).
async fn doctor(opts: &Options) -> (bool, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_payment-mcp"));
    cmd.arg("doctor").env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd.env("PAYMENT_LEDGER", temp_ledger());
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output()).await.unwrap().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test]
async fn doctor_tells_a_wrong_app_key_from_a_wrong_alipay_public_key() {
    let opts = alipay_options().await;
    let gw = opts.shared_gateway.clone().unwrap();
    let (ok, out) = doctor(&opts).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("provider        : alipay") && out.contains("AP_APP_KEY      : set (") && out.contains("all work"),
        "{out}"
    );
    assert!(!out.contains(&app_private_key()[60..120]), "no key printed");

    gw.set_fault(Some(Fault::WrongSigningKey));
    let (ok, out) = doctor(&opts).await;
    assert!(!ok && out.contains("PROBLEM AP_PUB_KEY") && out.contains("AP_APP_KEY are right"), "{out}");

    gw.set_fault(Some(Fault::Status("isv.invalid-signature".into())));
    let (ok, out) = doctor(&opts).await;
    assert!(!ok && out.contains("PROBLEM AP_APP_KEY"), "{out}");
    gw.set_fault(None);

    let (ok, out) = doctor(&opts.env("AP_PUB_KEY", "not a key")).await;
    assert!(!ok && out.contains("AP_PUB_KEY"), "{out}");
}
