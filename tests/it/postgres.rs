//! Several server processes on one PostgreSQL ledger (`PAYMENT_LEDGER=postgres://…`), and payment
//! notifications received by the real binary (`PAYMENT_NOTIFY_ADDR`).
//!
//! The PostgreSQL tests need a server: `PAYMENT_TEST_POSTGRES` names one (scripts/pg-test-server.sh
//! starts one; `.ci/run` does) and each test gets a schema of its own. Without it they skip with a
//! message written straight to stderr, past the test harness's capture; with
//! `PAYMENT_TEST_POSTGRES_REQUIRED=1` (`.ci/run`) a skip fails instead.

use std::io::Write as _;
use std::time::Duration;

use payment_mcp::sandbox::SandboxGateway;
use serde_json::{Value, json};

use crate::support::*;

const PRE_ORDER: &str = "/index/Payment/pre_order";
const REFUND_ORDER: &str = "/payapi/pay/refund_order";

/// A URL for a fresh schema on the test server, or `None` after a loud skip message.
pub async fn pg_url(test: &str) -> Option<String> {
    let Ok(admin) = std::env::var("PAYMENT_TEST_POSTGRES") else {
        let required = std::env::var("PAYMENT_TEST_POSTGRES_REQUIRED").is_ok_and(|v| v == "1");
        assert!(!required, "{test}: PAYMENT_TEST_POSTGRES_REQUIRED=1 but PAYMENT_TEST_POSTGRES is not set");
        let _ = writeln!(
            std::io::stderr(),
            "\n!!! SKIPPED (no PostgreSQL) {test}: set PAYMENT_TEST_POSTGRES to run it: eval \"$(scripts/pg-test-server.sh start)\" !!!\n"
        );
        return None;
    };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let schema = format!("it_{}_{nanos}", std::process::id());
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
    let sep = if admin.contains('?') { '&' } else { '?' };
    Some(format!("{admin}{sep}options=-csearch_path%3D{schema}"))
}

/// A server on `gw` with its ledger at `ledger` (a file path or a PostgreSQL URL).
fn on(gw: &SandboxGateway, ledger: &str) -> Options {
    Options { shared_gateway: Some(gw.clone()), ledger: Some(ledger.into()), ..Options::default() }
}

fn count(gw: &SandboxGateway, path: &str, field: &str, value: &str) -> usize {
    gw.requests().iter().filter(|r| r.path == path && r.field(field) == Some(value)).count()
}

/// Two processes on one PostgreSQL ledger, each sent the same create (then the same refund) at the
/// same moment, many times over: the gateway gets exactly one request per merchant_order_no and
/// per mch_refund_no. The other call answers from the ledger (a replay) or says the first is in
/// flight; never a second request.
#[tokio::test]
async fn two_servers_on_one_postgres_ledger_send_one_request_per_number() {
    let Some(url) = pg_url("postgres::two_servers_on_one_postgres_ledger_send_one_request_per_number").await else {
        return;
    };
    let gw = SandboxGateway::start(gateway_config()).await.unwrap();
    let (a, b) = tokio::join!(Harness::start_with(on(&gw, &url)), Harness::start_with(on(&gw, &url)));
    let mut orders = Vec::new();
    for i in 0..12 {
        let no = format!("PG-RACE-{i}");
        let args = json!({"merchant_order_no": no, "amount": "3.00"});
        let (ra, rb) = tokio::join!(a.call("create_payment_order", args.clone()), b.call("create_payment_order", args));
        assert_eq!(count(&gw, PRE_ORDER, "mch_orderid", &no), 1, "{no}: exactly one create was sent");
        let oks: Vec<Value> = [&ra, &rb].iter().filter(|r| r.is_error != Some(true)).map(|r| assert_ok(r)).collect();
        for r in [&ra, &rb].into_iter().filter(|r| r.is_error == Some(true)) {
            assert_err(r, "outcome_unknown");
            assert!(texts(r).contains("in flight"), "{}", texts(r));
        }
        assert!(!oks.is_empty(), "{no}: at least the sender succeeded");
        let order_no = oks[0]["order_no"].as_str().unwrap().to_owned();
        assert!(oks.iter().all(|o| o["order_no"] == order_no.as_str()), "{no}: one order");
        orders.push(order_no);
    }
    // Either server repeats it later from the shared ledger.
    assert_eq!(b.create("PG-RACE-0", "3.00").await["replayed"], true);
    assert_eq!(count(&gw, PRE_ORDER, "mch_orderid", "PG-RACE-0"), 1);

    for (i, order_no) in orders.iter().enumerate() {
        gw.simulate_payment(order_no, true).unwrap();
        let no = format!("PG-RF-{i}");
        let args = json!({"order_no": order_no, "refund_amount": "1.00", "mch_refund_no": no});
        let (ra, rb) = tokio::join!(a.call("refund_payment_order", args.clone()), b.call("refund_payment_order", args));
        assert_eq!(count(&gw, REFUND_ORDER, "mch_refund_no", &no), 1, "{no}: exactly one refund was sent");
        for r in [&ra, &rb] {
            if r.is_error == Some(true) {
                assert_err(r, "outcome_unknown");
            }
        }
        assert_eq!(gw.order(order_no).unwrap().refunds.len(), 1);
    }
}

/// Waits until the server logs the address its notifications endpoint listens on.
async fn notify_url(h: &Harness) -> String {
    for _ in 0..400 {
        if let Some(at) = h.stderr().lines().find_map(|l| l.split("listening on ").nth(1).map(str::to_owned)) {
            return at.trim().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no notifications endpoint in the log:\n{}", h.stderr());
}

/// Options for a server that receives notifications on a free loopback port and polls only once
/// an hour, so a wait can only end `paid` early when a notification wakes it.
fn notified(opts: Options) -> Options {
    opts.env("PAYMENT_NOTIFY_ADDR", "127.0.0.1:0").env("PAYMENT_POLL_INTERVAL_MS", "3600000")
}

/// The stdio server receives the gateway's notifications on PAYMENT_NOTIFY_ADDR: a signed one is
/// answered `success` every time it is repeated and recorded once; a tampered one is refused; and
/// it wakes a wait_for_payment at once (the poll interval is an hour; the wait would otherwise end
/// `pending` at its timeout).
#[tokio::test]
async fn the_stdio_server_receives_notifications_and_they_wake_a_wait() {
    let gw = SandboxGateway::start(gateway_config()).await.unwrap();
    let h = Harness::start_with(notified(Options { shared_gateway: Some(gw.clone()), ..Options::default() })).await;
    let url = notify_url(&h).await;
    assert!(url.ends_with("/notify/lfwin"), "{url}");
    let created = assert_ok(
        &h.call("create_payment_order", json!({"merchant_order_no": "NF-1", "amount": "2.50", "notify_url": url}))
            .await,
    );
    let order_no = created["order_no"].as_str().unwrap().to_owned();
    let wait = h.call("wait_for_payment", json!({"order_no": order_no, "timeout_seconds": 15}));
    let pay = async {
        // The sandbox posts its signed notification to notify_url once the payer has paid.
        while !gw.requests().iter().any(|r| r.path.contains("query_order")) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        gw.simulate_payment(&order_no, true).unwrap();
    };
    let (waited, ()) = tokio::join!(wait, pay);
    let waited = assert_ok(&waited);
    assert_eq!(waited["state"], "paid", "{waited}");

    // The gateway repeats it: the same reply each time, one ledger transition (one log line).
    let fields = gw.notification_for("NF-1").unwrap();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for _ in 0..10 {
        let reply = client.post(&url).form(&fields).send().await.unwrap();
        assert_eq!((reply.status().as_u16(), reply.text().await.unwrap()), (200, "success".to_owned()));
    }
    let mut tampered = fields.clone();
    tampered.iter_mut().find(|(k, _)| k == "pri_paymoney").unwrap().1 = "0.01".into();
    let reply = client.post(&url).form(&tampered).send().await.unwrap();
    assert_eq!((reply.status().as_u16(), reply.text().await.unwrap()), (400, "fail".to_owned()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = h.stderr();
    assert_eq!(log.matches("payment notification: order is now paid").count(), 1, "{log}");
    assert!(log.contains("payment notification refused"), "{log}");
    assert_no_secrets(&h, &[]);
}

/// Two instances on one PostgreSQL ledger: the gateway notifies instance B, and the
/// wait_for_payment running on instance A returns `paid` at once (LISTEN/NOTIFY).
#[tokio::test]
async fn a_notification_on_one_instance_wakes_a_wait_on_another() {
    let Some(url) = pg_url("postgres::a_notification_on_one_instance_wakes_a_wait_on_another").await else {
        return;
    };
    let gw = SandboxGateway::start(gateway_config()).await.unwrap();
    let a = Harness::start_with(on(&gw, &url).env("PAYMENT_POLL_INTERVAL_MS", "3600000")).await;
    let b = Harness::start_with(notified(on(&gw, &url))).await;
    let b_url = notify_url(&b).await;
    let created = assert_ok(
        &a.call("create_payment_order", json!({"merchant_order_no": "NF-PG-1", "amount": "4.00", "notify_url": b_url}))
            .await,
    );
    let order_no = created["order_no"].as_str().unwrap().to_owned();
    let wait = a.call("wait_for_payment", json!({"merchant_order_no": "NF-PG-1", "timeout_seconds": 15}));
    let pay = async {
        while !gw.requests().iter().any(|r| r.path.contains("query_order")) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        gw.simulate_payment(&order_no, true).unwrap();
    };
    let (waited, ()) = tokio::join!(wait, pay);
    let waited = assert_ok(&waited);
    assert_eq!(waited["state"], "paid", "{waited}");
    assert!(b.stderr().contains("payment notification: order is now paid"), "{}", b.stderr());
}

/// A PostgreSQL ledger that cannot be reached refuses money-moving calls with a `config` error
/// naming PAYMENT_LEDGER, before anything is sent, and the URL's password appears nowhere.
#[tokio::test]
async fn an_unreachable_postgres_ledger_refuses_creates_and_never_shows_its_password() {
    let gw = SandboxGateway::start(gateway_config()).await.unwrap();
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let h = Harness::start_with(on(&gw, "postgres://payments:hunter22-secret@127.0.0.1:1/payments")).await;
    let r = h.call("create_payment_order", json!({"merchant_order_no": "PG-DOWN-1", "amount": "1.00"})).await;
    let e = assert_err(&r, "config");
    assert_eq!(e["code"], "PAYMENT_LEDGER");
    assert_eq!(gw.requests().len(), 0, "nothing was sent");
    let everything = format!("{}\n{}", serde_json::to_string(&r).unwrap(), h.stderr());
    assert!(!everything.contains("hunter22-secret"), "{everything}");
    assert!(h.stderr().contains("cannot connect to PostgreSQL"), "{}", h.stderr());
}
