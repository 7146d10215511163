//! The notifications endpoint over real HTTP, against the sandbox gateway's own signed
//! notifications: what each notification is answered, that repeats are recorded once, and that a
//! notification wakes a `wait_for_payment` at once, in this process and (PostgreSQL) in another
//! instance. Waits use an hour-long poll interval, so only a wake can end them with `paid`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::{CancellationToken, DropGuard};

use super::*;
use crate::config::Config;
use crate::ledger::Ledger;
use crate::ledger::testing::Store;
use crate::money::Fen;
use crate::provider::lfwin::LfwinClient;
use crate::provider::{CreateRequest, OrderRef, PayChannel, PaymentState};
use crate::sandbox::{SandboxConfig, SandboxGateway};

/// One server instance: its service and the URL its notifications endpoint listens on.
struct Instance {
    payments: Arc<Payments>,
    url: String,
    _stop: DropGuard,
}

async fn instance(gw: &SandboxGateway, ledger: Ledger) -> Instance {
    let config = Config::from_lookup(|k| (k == "PAYMENT_POLL_INTERVAL_MS").then(|| "3600000".to_owned()));
    assert_eq!(config.poll_interval, Duration::from_secs(3600));
    let client = LfwinClient::new(
        &gw.base_url(),
        gw.api_key().to_owned().into(),
        gw.sign_key().to_owned().into(),
        Duration::from_secs(5),
        ProviderKind::Sandbox,
    )
    .unwrap();
    let payments = Arc::new(Payments::with_gateway(config, Arc::new(client), Arc::new(ledger)));
    let cancel = CancellationToken::new();
    let addr = serve("127.0.0.1:0".parse().unwrap(), payments.clone(), cancel.clone()).await.unwrap();
    Instance { payments, url: format!("http://{addr}/notify/sandbox"), _stop: cancel.drop_guard() }
}

async fn gateway() -> SandboxGateway {
    SandboxGateway::start(SandboxConfig { refund_settle_delay: Duration::MAX, ..SandboxConfig::random_keys() })
        .await
        .unwrap()
}

async fn create(p: &Payments, no: &str) -> String {
    let request = CreateRequest {
        merchant_order_no: no.to_owned(),
        amount: Fen(1234),
        notify_url: None,
        return_url: None,
        subject: None,
        pay_type: None,
        order_time: crate::time::now_unix(),
        channel: PayChannel::default(),
    };
    p.create(request, &p.config().scope()).await.unwrap().order.platform_order_no.unwrap()
}

/// Posts a form body; the status and the body of the reply.
async fn post(url: &str, fields: &[(String, String)]) -> (u16, String) {
    let client = crate::provider::transport::client_builder().no_proxy().build().unwrap();
    let reply = client.post(url).form(fields).send().await.unwrap();
    (reply.status().as_u16(), reply.text().await.unwrap())
}

fn set(fields: &mut [(String, String)], key: &str, value: &str) {
    fields.iter_mut().find(|(k, _)| k == key).unwrap().1 = value.to_owned();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_notification_is_acknowledged_and_a_bad_one_refused() {
    let gw = gateway().await;
    let node = instance(&gw, Ledger::in_memory().unwrap()).await;
    create(&node.payments, "NT-1").await;
    gw.simulate_payment("NT-1", true).unwrap();
    let good = gw.notification_for("NT-1").unwrap();

    let mut tampered = good.clone();
    set(&mut tampered, "pri_paymoney", "0.01");
    assert_eq!(post(&node.url, &tampered).await, (400, "fail".to_owned()), "an altered amount");

    let mut other_key = good.clone();
    other_key.retain(|(k, _)| k != "sign");
    let sign = crate::sign::lfwin_sign(&other_key, "not-the-merchant-key");
    other_key.push(("sign".into(), sign));
    assert_eq!(post(&node.url, &other_key).await, (400, "fail".to_owned()), "signed with another key");

    let unsigned: Vec<_> = good.iter().filter(|(k, _)| k != "sign").cloned().collect();
    assert_eq!(post(&node.url, &unsigned).await, (400, "fail".to_owned()), "no signature");
    assert_eq!(post(&node.url, &[]).await, (400, "fail".to_owned()), "empty");
    let wrong_provider = node.url.replace("/notify/sandbox", "/notify/alipay");
    assert_eq!(post(&wrong_provider, &good).await, (404, "fail".to_owned()));
    let ledger = node.payments.ledger().await.unwrap();
    let account = node.payments.account();
    assert_eq!(ledger.order(account, "NT-1").await.unwrap().unwrap().last_state, None, "nothing recorded yet");

    assert_eq!(post(&node.url, &good).await, (200, "success".to_owned()));
    assert_eq!(ledger.order(account, "NT-1").await.unwrap().unwrap().last_state, Some(PaymentState::Paid));
    // The same notification as a GET query string (epay's way) is read the same.
    let query = serde_urlencoded::to_string(&good).unwrap();
    let client = crate::provider::transport::client_builder().no_proxy().build().unwrap();
    let reply = client.get(format!("{}?{query}", node.url)).send().await.unwrap();
    assert_eq!((reply.status().as_u16(), reply.text().await.unwrap()), (200, "success".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_repeated_ten_times_changes_the_ledger_once_and_gets_the_same_reply() {
    let gw = gateway().await;
    let node = instance(&gw, Ledger::in_memory().unwrap()).await;
    create(&node.payments, "NT-2").await;
    gw.simulate_payment("NT-2", true).unwrap();
    let good = gw.notification_for("NT-2").unwrap();
    let raw = serde_urlencoded::to_string(&good).unwrap();
    let mut recorded = 0;
    for _ in 0..10 {
        match node.payments.receive_notification(&raw).await.unwrap() {
            Received::Accepted { recorded: r, .. } => recorded += usize::from(r),
            Received::Rejected(why) => panic!("rejected: {why}"),
        }
    }
    assert_eq!(recorded, 1, "one ledger transition");
    let mut replies = Vec::new();
    for _ in 0..10 {
        replies.push(post(&node.url, &good).await);
    }
    assert!(replies.iter().all(|r| *r == (200, "success".to_owned())), "{replies:?}");
}

/// Waits on `order` through `p` with a long timeout; a guard fails the test instead of hanging
/// it if no wake comes (the poll interval is an hour, the wait ten minutes).
async fn wait_paid(p: Arc<Payments>, order: OrderRef) -> tokio::task::JoinHandle<PaymentState> {
    tokio::spawn(async move {
        let never = CancellationToken::new();
        let waiting = p.wait(&order, Duration::from_secs(600), |_| async {}, &never);
        let status = tokio::time::timeout(Duration::from_secs(120), waiting).await.expect("woken").unwrap();
        status.state
    })
}

/// Lets a spawned wait make its first check (seen by the gateway) before the order is paid.
async fn until_queried(gw: &SandboxGateway, before: usize) {
    for _ in 0..1000 {
        if gw.request_count() > before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the wait never queried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_wakes_a_wait_at_once() {
    let gw = gateway().await;
    let node = instance(&gw, Ledger::in_memory().unwrap()).await;
    let platform = create(&node.payments, "NT-3").await;
    let before = gw.request_count();
    let waiting = wait_paid(node.payments.clone(), OrderRef::Platform(platform)).await;
    until_queried(&gw, before).await;
    gw.simulate_payment("NT-3", true).unwrap();
    assert_eq!(post(&node.url, &gw.notification_for("NT-3").unwrap()).await.1, "success");
    assert_eq!(waiting.await.unwrap(), PaymentState::Paid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_on_one_instance_wakes_a_wait_on_another_through_postgres() {
    let Some(store) = Store::postgres("notify::tests::a_notification_on_one_instance_wakes_a_wait_on_another").await
    else {
        return;
    };
    let gw = gateway().await;
    let a = instance(&gw, store.open().await).await;
    let b = instance(&gw, store.open().await).await;
    create(&a.payments, "NT-4").await;
    let before = gw.request_count();
    let waiting =
        wait_paid(a.payments.clone(), OrderRef::Merchant { merchant_order_no: "NT-4".into(), order_time: None }).await;
    until_queried(&gw, before).await;
    gw.simulate_payment("NT-4", true).unwrap();
    assert_eq!(post(&b.url, &gw.notification_for("NT-4").unwrap()).await.1, "success");
    assert_eq!(waiting.await.unwrap(), PaymentState::Paid);
    // The instance that received it recorded it, in the ledger both share.
    let row = a.payments.ledger().await.unwrap().order(a.payments.account(), "NT-4").await.unwrap().unwrap();
    assert_eq!(row.last_state, Some(PaymentState::Paid));
}
