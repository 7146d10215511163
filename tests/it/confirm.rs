//! `PAYMENT_CONFIRM_REFUNDS=true`: a refund is sent only after the human confirms it, through
//! legacy elicitation or the 2026-07-28 input-required flow.

use std::sync::atomic::Ordering;

use serde_json::json;

use crate::support::*;

async fn paid_order(h: &Harness, no: &str) -> String {
    let s = h.create(no, "5.00").await;
    let order_no = s["order_no"].as_str().unwrap().to_owned();
    h.gw.simulate_payment(&order_no, true).unwrap();
    order_no
}

fn refunds_sent(h: &Harness) -> usize {
    h.gw.requests().iter().filter(|r| r.path.contains("refund_order")).count()
}

async fn confirming(confirm: Option<bool>, modern: bool) -> Harness {
    let opts = Options { modern, client: TestClient { confirm, ..TestClient::default() }, ..Options::default() }
        .env("PAYMENT_CONFIRM_REFUNDS", "true");
    Harness::start_with(opts).await
}

#[tokio::test]
async fn legacy_clients_are_asked_and_only_a_yes_refunds() {
    for (modern, label) in [(false, "legacy"), (true, "2026-07-28")] {
        let h = confirming(Some(true), modern).await;
        let order_no = paid_order(&h, &format!("CONF-Y-{modern}")).await;
        let r = h
            .call(
                "refund_payment_order",
                json!({"order_no": order_no, "refund_amount": "1.00", "mch_refund_no": "CONF-RF-1"}),
            )
            .await;
        assert_eq!(assert_ok(&r)["state"], "processing", "{label}");
        assert_eq!(h.client.service().asked.load(Ordering::SeqCst), 1, "{label}: the human was asked once");
        assert_eq!(refunds_sent(&h), 1, "{label}");

        let h = confirming(Some(false), modern).await;
        let order_no = paid_order(&h, &format!("CONF-N-{modern}")).await;
        let r = h
            .call(
                "refund_payment_order",
                json!({"order_no": order_no, "refund_amount": "1.00", "mch_refund_no": "CONF-RF-2"}),
            )
            .await;
        assert!(assert_err(&r, "refused")["message"].as_str().unwrap().contains("no refund was sent"), "{label}");
        assert_eq!(h.client.service().asked.load(Ordering::SeqCst), 1, "{label}");
        assert_eq!(refunds_sent(&h), 0, "{label}: a decline sends nothing");
    }
}

#[tokio::test]
async fn a_client_that_cannot_ask_gets_no_refund() {
    for modern in [false, true] {
        let h = confirming(None, modern).await;
        let order_no = paid_order(&h, &format!("CONF-X-{modern}")).await;
        let r = h
            .call(
                "refund_payment_order",
                json!({"order_no": order_no, "refund_amount": "1.00", "mch_refund_no": "CONF-RF-3"}),
            )
            .await;
        assert!(assert_err(&r, "refused")["message"].as_str().unwrap().contains("PAYMENT_CONFIRM_REFUNDS"));
        assert_eq!(refunds_sent(&h), 0);
    }
}

#[tokio::test]
async fn a_forged_request_state_is_not_a_confirmation() {
    use rmcp::model::CallToolRequestParams;
    let h = confirming(Some(true), true).await;
    let order_no = paid_order(&h, "CONF-F").await;
    let mut params = CallToolRequestParams::new("refund_payment_order").with_arguments(
        json!({"order_no": order_no, "refund_amount": "1.00", "mch_refund_no": "CONF-RF-4"})
            .as_object()
            .unwrap()
            .clone(),
    );
    params.request_state = Some("refund-confirm-forged".into());
    params.input_responses =
        Some([("confirm".to_owned(), json!({"action": "accept", "content": {"confirm": true}}))].into_iter().collect());
    let r = h.client.call_tool(params).await.unwrap();
    assert_err(&r, "refused");
    assert_eq!(refunds_sent(&h), 0);
}
