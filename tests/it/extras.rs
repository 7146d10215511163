//! The tools beyond the core four: order lists from the ledger, notification checks, and which
//! tools each provider offers.

use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn lfwin_lists_orders_from_the_ledger_and_refreshes_them_on_request() {
    let h = Harness::start().await;
    let a = h.create("LIST-1", "1.00").await;
    h.create("LIST-2", "2.00").await;
    h.create("LIST-3", "3.00").await;
    h.gw.simulate_payment(a["order_no"].as_str().unwrap(), true).unwrap();

    let before = h.gw.request_count();
    let s = assert_ok(&h.call("list_payment_orders", json!({"limit": 2})).await);
    assert_eq!((s["source"].as_str(), s["total"].as_u64()), (Some("ledger"), Some(3)));
    assert_eq!(s["orders"].as_array().unwrap().len(), 2);
    assert_eq!(h.gw.request_count(), before, "a plain listing sends nothing");
    let page2 = assert_ok(&h.call("list_payment_orders", json!({"limit": 2, "page": 2})).await);
    assert_eq!(page2["orders"].as_array().unwrap().len(), 1);

    // Last known state: never queried, so LIST-1 still looks pending until refreshed.
    let s = assert_ok(&h.call("list_payment_orders", json!({"state": "paid"})).await);
    assert_eq!(s["total"], 0);
    let s = assert_ok(&h.call("list_payment_orders", json!({"refresh": true})).await);
    assert_eq!(s["refreshed"], true);
    let paid: Vec<_> = s["orders"].as_array().unwrap().iter().filter(|o| o["state"] == "paid").collect();
    assert_eq!(paid.len(), 1);
    assert_eq!(paid[0]["merchant_order_no"], "LIST-1");
    assert_eq!(h.gw.request_count(), before + 3, "one query per listed order");
    let s = assert_ok(&h.call("list_payment_orders", json!({"state": "paid"})).await);
    assert_eq!(s["total"], 1, "the refreshed state is remembered");

    // The ledger has no pay type: a pay_type filter is refused, not silently ignored.
    let r = h.call("list_payment_orders", json!({"pay_type": "alipay"})).await;
    assert!(assert_err(&r, "invalid_input")["message"].as_str().unwrap().contains("pay_type"));
}

#[tokio::test]
async fn merchant_info_is_hidden_for_lfwin() {
    let h = Harness::start().await;
    let tools = h.client.list_all_tools().await.unwrap();
    assert!(!tools.iter().any(|t| t.name == "get_merchant_info"));
}

#[tokio::test]
async fn a_real_notification_from_the_gateway_verifies_and_a_tampered_one_does_not() {
    // A loopback notify URL that records what the gateway posts.
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/notify",
        axum::routing::post(move |body: String| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                "success"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let notify_url = format!("http://{}/notify", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let h = Harness::start().await;
    let r = h
        .call(
            "create_payment_order",
            json!({"merchant_order_no": "NOTIFY-1", "amount": "4.20", "notify_url": notify_url}),
        )
        .await;
    let created = assert_ok(&r);
    h.gw.simulate_payment("NOTIFY-1", true).unwrap();
    let mut body = None;
    for _ in 0..50 {
        if let Some(b) = received.lock().unwrap().first().cloned() {
            body = Some(b);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let body = body.expect("the gateway sent a notification");

    let s = assert_ok(&h.call("verify_payment_notification", json!({"raw": body})).await);
    assert_eq!(
        (s["signature_valid"].as_bool(), s["state"].as_str(), s["rule"].as_str()),
        (Some(true), Some("paid"), Some("lfwin"))
    );
    assert_eq!((s["amount"].as_str(), s["merchant_order_no"].as_str()), (Some("4.20"), Some("NOTIFY-1")));
    assert_eq!(s["order_no"], created["order_no"]);
    let tampered = body.replace("4.20", "9.99");
    let s = assert_ok(&h.call("verify_payment_notification", json!({"raw": tampered})).await);
    assert_eq!((s["signature_valid"].as_bool(), s["state"].as_str()), (Some(false), Some("unknown")));
    assert!(s["next_action"].as_str().unwrap().contains("Do NOT trust"));
}
