//! Two `serve --http` instances on one PostgreSQL ledger, spoken to over HTTP as a load balancer
//! would spread one team's agents: racing duplicate creates and refunds send one gateway request
//! per number, and a gateway notification posted to one instance wakes a `wait_for_payment` running
//! on the other at once. Skips loudly without `PAYMENT_TEST_POSTGRES` (see `postgres.rs`).

use std::time::Duration;

use payment_mcp::sandbox::SandboxGateway;
use serde_json::{Value, json};

use crate::http_support::*;
use crate::postgres::pg_url;
use crate::support::{assert_ok, gateway_config};

fn count(gw: &SandboxGateway, path: &str, field: &str, value: &str) -> usize {
    gw.requests().iter().filter(|r| r.path.ends_with(path) && r.field(field) == Some(value)).count()
}

#[tokio::test]
async fn two_http_instances_on_one_postgres_ledger_act_as_one_server() {
    let Some(url) = pg_url("http_postgres::two_http_instances_on_one_postgres_ledger_act_as_one_server").await else {
        return;
    };
    let gw = SandboxGateway::start(gateway_config()).await.unwrap();
    // Instance a polls only once an hour: its wait can only end early through a notification.
    let start = |poll: &str| {
        Start { gateway: Some(gw.clone()), ..Start::default() }
            .env("PAYMENT_LEDGER", &url)
            .env("PAYMENT_POLL_INTERVAL_MS", poll)
    };
    let (a, b) = tokio::join!(HttpServer::start(start("3600000")), HttpServer::start(start("2000")));
    let (ca, cb) = (a.connect(None, true).await.unwrap(), b.connect(None, false).await.unwrap());

    for i in 0..6 {
        let no = format!("HTTP-PG-{i}");
        let args = json!({"merchant_order_no": no, "amount": "3.00"});
        let (ra, rb) =
            tokio::join!(call(&ca, "create_payment_order", args.clone()), call(&cb, "create_payment_order", args));
        assert_eq!(count(&gw, "pre_order", "mch_orderid", &no), 1, "{no}: exactly one create was sent");
        let oks: Vec<Value> =
            [ra.unwrap(), rb.unwrap()].iter().filter(|r| r.is_error != Some(true)).map(assert_ok).collect();
        assert!(!oks.is_empty() && oks.iter().all(|o| o["order_no"] == oks[0]["order_no"]), "{no}: one order");
    }

    let created = assert_ok(
        &call(
            &ca,
            "create_payment_order",
            json!({"merchant_order_no": "HTTP-PG-NF", "amount": "4.00", "notify_url": format!("{}/notify/lfwin", b.base)}),
        )
        .await
        .unwrap(),
    );
    let order_no = created["order_no"].as_str().unwrap().to_owned();
    let wait = call(&ca, "wait_for_payment", json!({"order_no": order_no, "timeout_seconds": 20}));
    let pay = async {
        // Once a's wait has made its first query, the payer pays; the sandbox notifies b.
        while !gw.requests().iter().any(|r| r.path.ends_with("query_order")) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        gw.simulate_payment(&order_no, true).unwrap();
    };
    let started = std::time::Instant::now();
    let (waited, ()) = tokio::join!(wait, pay);
    assert_eq!(assert_ok(&waited.unwrap())["state"], "paid");
    assert!(started.elapsed() < Duration::from_secs(15), "woken by the notification, not by a poll");

    let args = json!({"order_no": order_no, "refund_amount": "1.00", "mch_refund_no": "HTTP-PG-RF"});
    let (ra, rb) =
        tokio::join!(call(&ca, "refund_payment_order", args.clone()), call(&cb, "refund_payment_order", args));
    let (_, _) = (ra.unwrap(), rb.unwrap());
    assert_eq!(count(&gw, "refund_order", "mch_refund_no", "HTTP-PG-RF"), 1, "exactly one refund was sent");
    assert!(b.stderr().contains("path=/notify/lfwin status=200"), "{}", b.stderr());
}
