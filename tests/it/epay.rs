//! The epay provider through MCP, against the strict fake epay gateway (both API styles).

use serde_json::json;

use crate::fake_epay::{FakeEpay, Style};
use crate::support::*;

const PID: &str = "1001";
const KEY: &str = "epay-merchant-key-7Q2";

async fn epay(style: Style, urls: bool) -> (FakeEpay, Harness) {
    let fake = FakeEpay::start(PID, KEY, style).await;
    let mut opts = Options { lfwin: false, ..Options::default() }
        .env("PAYMENT_MERCHANT_ID", PID)
        .env("PAYMENT_SIGN_KEY", KEY)
        .env("PAYMENT_API_BASE_URL", &fake.base_url())
        .env("PAYMENT_REQUEST_TIMEOUT_MS", "1500")
        .env("PAYMENT_EPAY_API_STYLE", if matches!(style, Style::Act) { "act" } else { "path" });
    if urls {
        opts = opts
            .env("PAYMENT_NOTIFY_URL", "https://shop.example.com/notify")
            .env("PAYMENT_RETURN_URL", "https://shop.example.com/return");
    }
    let h = Harness::start_with(opts).await;
    (fake, h)
}

fn assert_no_key(r: &rmcp::model::CallToolResult, h: &Harness) {
    assert!(!serde_json::to_string(r).unwrap().contains(KEY), "the merchant key leaked into a result");
    assert!(!h.stderr().contains(KEY), "the merchant key leaked to stderr");
}

#[tokio::test]
async fn epay_create_query_pay_list_and_notification_through_mcp() {
    for style in [Style::Path, Style::Act] {
        let (fake, h) = epay(style, true).await;
        let names: Vec<String> =
            h.client.list_all_tools().await.unwrap().into_iter().map(|t| t.name.to_string()).collect();
        assert!(names.contains(&"get_merchant_info".to_owned()), "{names:?}");
        assert!(names.contains(&"query_refund_status".to_owned()), "listed, answering a clear error: {names:?}");
        assert!(!names.contains(&"sandbox_simulate_payment".to_owned()));

        fake.set_price_offset_fen(1);
        let r = h
            .call(
                "create_payment_order",
                json!({"merchant_order_no": "EP-1", "amount": "10.00", "subject": "商品名称", "pay_type": "wxpay"}),
            )
            .await;
        let s = assert_ok(&r);
        assert_eq!(
            (s["provider"].as_str(), s["state"].as_str(), s["amount"].as_str()),
            (Some("epay"), Some("pending"), Some("10.00"))
        );
        assert_eq!(s["charged_amount"], "10.01", "the gateway's price is reported when it differs");
        assert_eq!(s["price"], "10.01");
        let qrcode = s["qrcode"].as_str().unwrap().to_owned();
        assert_eq!(decode_qr(&image_png(&r).unwrap()), qrcode);
        let order_no = s["order_no"].as_str().unwrap().to_owned();
        assert_no_key(&r, &h);

        let q = assert_ok(&h.call("query_payment_order", json!({"merchant_order_no": "EP-1"})).await);
        assert_eq!((q["state"].as_str(), q["order_no"].as_str()), (Some("pending"), Some(order_no.as_str())));
        assert!(fake.pay(&order_no));
        let q = assert_ok(&h.call("query_payment_order", json!({"order_no": order_no})).await);
        assert_eq!(q["state"], "paid");
        assert!(q["paid_time"].as_str().unwrap().ends_with("+08:00"));

        let l = h.call("list_payment_orders", json!({"limit": 10})).await;
        let ls = assert_ok(&l);
        assert_eq!(ls["source"], "gateway");
        assert!(
            ls["orders"].as_array().unwrap().iter().any(|o| o["order_no"] == order_no.as_str() && o["state"] == "paid")
        );
        assert_no_key(&l, &h);

        let m = h.call("get_merchant_info", json!({})).await;
        let ms = assert_ok(&m);
        assert_eq!(ms["merchant_id"], PID);
        assert_no_key(&m, &h);

        let raw = fake.notification(&order_no).expect("a signed notification");
        let v = assert_ok(&h.call("verify_payment_notification", json!({"raw": raw})).await);
        assert_eq!(
            (v["signature_valid"].as_bool(), v["state"].as_str(), v["rule"].as_str()),
            (Some(true), Some("paid"), Some("epay"))
        );
        let forged = raw.replace("TRADE_SUCCESS", "TRADE_SUCCESS&money=999.00");
        let v = assert_ok(&h.call("verify_payment_notification", json!({"raw": forged})).await);
        assert_eq!(v["signature_valid"], false);
    }
}

#[tokio::test]
async fn epay_needs_notify_and_return_urls_before_any_request() {
    let (fake, h) = epay(Style::Path, false).await;
    let r = h.call("create_payment_order", json!({"merchant_order_no": "EP-2", "amount": "1.00"})).await;
    let e = assert_err(&r, "invalid_input");
    assert!(e["message"].as_str().unwrap().contains("PAYMENT_NOTIFY_URL"));
    assert_eq!(fake.request_count(), 0);
    let r = h
        .call(
            "create_payment_order",
            json!({"merchant_order_no": "EP-2", "amount": "1.00", "notify_url": "https://s.example/n", "return_url": "https://s.example/r"}),
        )
        .await;
    assert_ok(&r);
}

#[tokio::test]
async fn epay_refunds_in_act_style_are_processing_and_path_style_has_none() {
    let (fake, h) = epay(Style::Act, true).await;
    let s = h.create("EP-3", "5.00").await;
    let order_no = s["order_no"].as_str().unwrap();
    fake.pay(order_no);
    let r = assert_ok(
        &h.call(
            "refund_payment_order",
            json!({"order_no": order_no, "refund_amount": "2.00", "mch_refund_no": "EP-RF-1"}),
        )
        .await,
    );
    assert_eq!((r["state"].as_str(), r["final"].as_bool()), (Some("processing"), Some(false)));
    let before = fake.request_count();
    let q = h.call("query_refund_status", json!({"order_no": order_no, "mch_refund_no": "EP-RF-1"})).await;
    assert!(assert_err(&q, "refused")["message"].as_str().unwrap().contains("no refund query"));
    assert_eq!(fake.request_count(), before, "no state is invented and nothing is sent");

    let (fake, h) = epay(Style::Path, true).await;
    let s = h.create("EP-4", "5.00").await;
    let order_no = s["order_no"].as_str().unwrap();
    fake.pay(order_no);
    let before = fake.request_count();
    let r = h
        .call(
            "refund_payment_order",
            json!({"order_no": order_no, "refund_amount": "2.00", "mch_refund_no": "EP-RF-2"}),
        )
        .await;
    assert!(assert_err(&r, "refused")["message"].as_str().unwrap().contains("refund"));
    assert_eq!(fake.request_count(), before, "nothing was sent");
}

#[tokio::test]
async fn a_wrong_epay_key_is_an_auth_error() {
    let fake = FakeEpay::start(PID, KEY, Style::Path).await;
    let opts = Options { lfwin: false, ..Options::default() }
        .env("PAYMENT_MERCHANT_ID", PID)
        .env("PAYMENT_SIGN_KEY", "wrong-epay-key")
        .env("PAYMENT_API_BASE_URL", &fake.base_url())
        .env("PAYMENT_NOTIFY_URL", "https://shop.example.com/notify")
        .env("PAYMENT_RETURN_URL", "https://shop.example.com/return");
    let h = Harness::start_with(opts).await;
    let r = h.call("create_payment_order", json!({"merchant_order_no": "EP-5", "amount": "1.00"})).await;
    assert_err(&r, "auth");
    let r = h.call("query_payment_order", json!({"order_no": "1"})).await;
    assert_eq!(r.is_error, Some(true));
    assert!(!h.stderr().contains("wrong-epay-key"));
}

/// Issue 6: a create whose reply was lost is settled by a query before answering. epay's
/// merchant-number lookup is authoritative, so "not there" is said plainly and the same call may
/// be repeated; an order the gateway did record is returned.
#[tokio::test]
async fn a_lost_epay_create_is_settled_by_querying_it() {
    let (fake, h) = epay(Style::Path, true).await;
    fake.fail_next(502, 1);
    let r = h.call("create_payment_order", json!({"merchant_order_no": "EP-LOST-1", "amount": "4.00"})).await;
    let e = assert_err(&r, "transport");
    assert!(e["message"].as_str().unwrap().contains("nothing was created"), "{e}");
    assert!(fake.orders().is_empty());
    let s = h.create("EP-LOST-1", "4.00").await;
    assert_eq!((s["replayed"].as_bool(), fake.orders().len()), (Some(false), 1), "the repeat creates it once");

    // Recorded by the gateway, but the reply came after the timeout: the query finds it.
    fake.delay_next(std::time::Duration::from_millis(2000));
    let r = h.call("create_payment_order", json!({"merchant_order_no": "EP-LOST-2", "amount": "5.00"})).await;
    let s = assert_ok(&r);
    let order = fake.order("EP-LOST-2").expect("the gateway recorded it");
    assert_eq!(s["order_no"].as_str(), Some(order.trade_no.as_str()));
    assert_eq!(fake.orders().len(), 2);
}

/// A refund the gateway cannot make is refused before the human is asked to confirm it.
#[tokio::test]
async fn a_refund_the_gateway_cannot_make_is_never_put_to_the_human() {
    let fake = FakeEpay::start(PID, KEY, Style::Path).await;
    let client = TestClient { confirm: Some(true), ..TestClient::default() };
    let opts = Options { lfwin: false, client: client.clone(), ..Options::default() }
        .env("PAYMENT_MERCHANT_ID", PID)
        .env("PAYMENT_SIGN_KEY", KEY)
        .env("PAYMENT_API_BASE_URL", &fake.base_url())
        .env("PAYMENT_CONFIRM_REFUNDS", "true");
    let h = Harness::start_with(opts).await;
    let r = h
        .call("refund_payment_order", json!({"order_no": "T1", "refund_amount": "1.00", "mch_refund_no": "EP-RF-9"}))
        .await;
    assert_err(&r, "refused");
    assert_eq!(client.asked.load(std::sync::atomic::Ordering::SeqCst), 0, "nobody was asked");
    assert_eq!(fake.request_count(), 0, "nothing was sent");
}
