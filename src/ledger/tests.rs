//! The ledger's behaviour, tested on both backends: each test below runs once on a fresh SQLite
//! file and once on a fresh PostgreSQL schema (skipped loudly without a server, see `testing.rs`).
//! The same assertions on both are what "same semantics" means.

use std::time::Duration;

use super::testing::Store;
use super::*;
use crate::provider::PaymentState;

const LEASE: Duration = Duration::from_secs(60);

// Runs `$body(store)` on SQLite and on PostgreSQL, as two tests in a module named `$name`.
macro_rules! both {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$body(super::Store::sqlite(concat!(stringify!($name), "-sqlite"))).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(store) = super::Store::postgres(concat!("ledger::tests::", stringify!($name))).await {
                    super::$body(store).await;
                }
            }
        }
    };
}

fn account() -> Account {
    Account::new("lfwin", "https://api2.lfwin.com", "key")
}

fn created<'a>(platform_order_no: Option<&'a str>, pay_url: Option<&'a str>, raw: Option<&'a str>) -> OrderUpdate<'a> {
    OrderUpdate { platform_order_no, pay_url, raw_status: raw, ..OrderUpdate::stage(OrderStage::Created) }
}

// Makes every intent's lease run out, as if its sender had died long ago.
async fn expire_leases(l: &Ledger) {
    l.execute_raw(
        "UPDATE orders SET updated_at = 0, lease_until_ms = 0; UPDATE refunds SET updated_at = 0, lease_until_ms = 0;",
    )
    .await;
}

both!(an_order_is_remembered_across_reopening, remembered);
async fn remembered(store: Store) {
    let a = account();
    {
        let l = store.open().await;
        assert_eq!(l.begin_order(&a, "M1", Fen(1230), 1_700_000_000, LEASE).await.unwrap(), Begin::New);
        l.finish_order(&a, "M1", created(Some("P1"), Some("https://pay/1"), Some("10000"))).await.unwrap();
    }
    let l = store.open().await;
    let Begin::Conflict(row) = l.begin_order(&a, "M1", Fen(999), 1, LEASE).await.unwrap() else { panic!("conflict") };
    assert_eq!((row.amount, row.order_time, row.stage), (Fen(1230), 1_700_000_000, OrderStage::Created));
    assert_eq!((row.platform_order_no.as_deref(), row.raw_status.as_deref()), (Some("P1"), Some("10000")));
    let Begin::Earlier(row) = l.begin_order(&a, "M1", Fen(1230), 1, LEASE).await.unwrap() else { panic!("earlier") };
    assert_eq!(row.pay_url.as_deref(), Some("https://pay/1"));
    let other = Account::new("lfwin", "https://api2.lfwin.com", "other-key");
    assert_eq!(l.order(&other, "M1").await.unwrap(), None, "accounts are separate");
}

both!(refused_intents_are_forgotten_but_created_orders_are_not, forgetting);
async fn forgetting(store: Store) {
    let l = store.open().await;
    let a = account();
    l.begin_order(&a, "M2", Fen(1), 1, LEASE).await.unwrap();
    l.forget_order(&a, "M2").await.unwrap();
    assert_eq!(l.order(&a, "M2").await.unwrap(), None);
    assert_eq!(l.begin_order(&a, "M2", Fen(2), 1, LEASE).await.unwrap(), Begin::New, "a forgotten number is new");
    l.begin_order(&a, "M3", Fen(1), 1, LEASE).await.unwrap();
    l.finish_order(&a, "M3", OrderUpdate::stage(OrderStage::Created)).await.unwrap();
    l.forget_order(&a, "M3").await.unwrap();
    assert!(l.order(&a, "M3").await.unwrap().is_some());
    l.begin_order(&a, "M4", Fen(1), 1, LEASE).await.unwrap();
    l.finish_order(&a, "M4", OrderUpdate::stage(OrderStage::Unknown)).await.unwrap();
    l.forget_order(&a, "M4").await.unwrap();
    assert!(l.order(&a, "M4").await.unwrap().is_some(), "an order whose outcome is unknown is never forgotten");
    l.begin_refund(&a, "RF0", "P1", Fen(1), LEASE).await.unwrap();
    l.forget_refund(&a, "RF0").await.unwrap();
    assert_eq!(l.begin_refund(&a, "RF0", "P2", Fen(5), LEASE).await.unwrap(), Begin::New);
}

both!(refunds_are_recorded_once_per_number, refunds_once);
async fn refunds_once(store: Store) {
    let l = store.open().await;
    let a = account();
    assert_eq!(l.begin_refund(&a, "RF1", "P1", Fen(100), LEASE).await.unwrap(), Begin::New);
    assert!(matches!(l.begin_refund(&a, "RF1", "P1", Fen(100), LEASE).await.unwrap(), Begin::InFlight(_)));
    let accepted = RefundUpdate {
        refund_no: Some("R1"),
        raw_status: Some("4001"),
        state: Some(RefundState::Processing),
        ..RefundUpdate::stage(RefundStage::Accepted)
    };
    l.finish_refund(&a, "RF1", accepted).await.unwrap();
    l.note_refund_state(&a, "RF1", RefundState::Refunded).await.unwrap();
    let Begin::Earlier(row) = l.begin_refund(&a, "RF1", "P1", Fen(100), LEASE).await.unwrap() else {
        panic!("earlier")
    };
    assert_eq!((row.stage, row.refund_no.as_deref()), (RefundStage::Accepted, Some("R1")));
    assert_eq!((row.last_state, row.raw_status.as_deref()), (Some(RefundState::Refunded), Some("4001")));
}

both!(listing_pages_newest_first_with_filters, listing);
async fn listing(store: Store) {
    let l = store.open().await;
    let a = account();
    for i in 0..5i64 {
        l.begin_order(&a, &format!("L{i}"), Fen(100 + i as u64), 1_700_000_000 + i, LEASE).await.unwrap();
        l.finish_order(&a, &format!("L{i}"), created(Some(&format!("P{i}")), None, None)).await.unwrap();
    }
    l.note_order_state(&a, "L1", PaymentState::Paid).await.unwrap();
    let (total, page) = l.list_orders(&a, None, None, None, 1, 2).await.unwrap();
    assert_eq!(total, 5);
    assert_eq!(page.iter().map(|o| o.merchant_order_no.as_str()).collect::<Vec<_>>(), ["L4", "L3"]);
    let (_, page2) = l.list_orders(&a, None, None, None, 2, 2).await.unwrap();
    assert_eq!(page2.iter().map(|o| o.merchant_order_no.as_str()).collect::<Vec<_>>(), ["L2", "L1"]);
    let (total, paid) = l.list_orders(&a, Some(PaymentState::Paid), None, None, 1, 10).await.unwrap();
    assert_eq!((total, paid[0].merchant_order_no.as_str(), paid[0].amount), (1, "L1", Fen(101)));
    let (total, _) = l.list_orders(&a, Some(PaymentState::Pending), Some(1_700_000_002), None, 1, 10).await.unwrap();
    assert_eq!(total, 3);
    let (total, _) = l.list_orders(&a, None, None, Some(1_700_000_001), 1, 10).await.unwrap();
    assert_eq!(total, 2);
}

both!(an_intent_in_flight_blocks_a_repeat_until_its_lease_runs_out, in_flight);
async fn in_flight(store: Store) {
    let l = store.open().await;
    let a = account();
    assert_eq!(l.begin_order(&a, "F1", Fen(100), 1, LEASE).await.unwrap(), Begin::New);
    assert!(matches!(l.begin_order(&a, "F1", Fen(100), 1, LEASE).await.unwrap(), Begin::InFlight(_)));
    // The sender died holding the intent: after the lease, one repeat takes it over, and a
    // third call sees the repeat's fresh intent.
    expire_leases(&l).await;
    let Begin::Retry(row) = l.begin_order(&a, "F1", Fen(100), 1, LEASE).await.unwrap() else {
        panic!("a stale intent is taken over")
    };
    assert_eq!(row.stage, OrderStage::Intent);
    assert!(matches!(l.begin_order(&a, "F1", Fen(100), 1, LEASE).await.unwrap(), Begin::InFlight(_)));
    // An unknown outcome is taken over at once by the same request; never by a different one.
    l.finish_order(&a, "F1", OrderUpdate::stage(OrderStage::Unknown)).await.unwrap();
    let Begin::Conflict(row) = l.begin_order(&a, "F1", Fen(999), 1, LEASE).await.unwrap() else { panic!("conflict") };
    assert_eq!((row.stage, row.amount), (OrderStage::Unknown, Fen(100)), "a different amount changes nothing");
    let Begin::Retry(row) = l.begin_order(&a, "F1", Fen(100), 1, LEASE).await.unwrap() else { panic!("retry") };
    assert_eq!(row.stage, OrderStage::Unknown);
    assert!(matches!(l.begin_order(&a, "F1", Fen(100), 1, LEASE).await.unwrap(), Begin::InFlight(_)));
}

both!(a_refund_number_on_another_order_or_amount_is_a_conflict_that_changes_nothing, refund_conflict);
async fn refund_conflict(store: Store) {
    let l = store.open().await;
    let a = account();
    l.begin_refund(&a, "RF2", "P1", Fen(100), LEASE).await.unwrap();
    l.finish_refund(&a, "RF2", RefundUpdate::stage(RefundStage::Unknown)).await.unwrap();
    assert!(matches!(l.begin_refund(&a, "RF2", "P2", Fen(100), LEASE).await.unwrap(), Begin::Conflict(_)));
    assert!(matches!(l.begin_refund(&a, "RF2", "P1", Fen(101), LEASE).await.unwrap(), Begin::Conflict(_)));
    let Begin::Retry(row) = l.begin_refund(&a, "RF2", "P1", Fen(100), LEASE).await.unwrap() else { panic!("retry") };
    assert_eq!(row.stage, RefundStage::Unknown);
}

both!(an_unrecognised_outcome_is_an_error_not_a_guess, unrecognised);
async fn unrecognised(store: Store) {
    let l = store.open().await;
    let a = account();
    l.begin_order(&a, "X1", Fen(1), 1, LEASE).await.unwrap();
    l.execute_raw("UPDATE orders SET outcome = 'teleported'").await;
    assert!(l.order(&a, "X1").await.is_err());
    assert!(l.begin_order(&a, "X1", Fen(1), 1, LEASE).await.is_err());
}

// Item 10 (issue 12): the lease belongs to the intent. A second process whose own lease is
// shorter (a shorter PAYMENT_REQUEST_TIMEOUT_MS) must still see the first one's intent in flight.
both!(an_intent_keeps_the_lease_its_sender_recorded, own_lease);
async fn own_lease(store: Store) {
    let a = account();
    let first = store.open().await;
    let second = store.open().await;
    assert_eq!(first.begin_order(&a, "L1", Fen(100), 1, LEASE).await.unwrap(), Begin::New);
    assert!(matches!(second.begin_order(&a, "L1", Fen(100), 1, Duration::ZERO).await.unwrap(), Begin::InFlight(_)));
    assert_eq!(first.begin_refund(&a, "LRF1", "P1", Fen(100), LEASE).await.unwrap(), Begin::New);
    assert!(matches!(
        second.begin_refund(&a, "LRF1", "P1", Fen(100), Duration::ZERO).await.unwrap(),
        Begin::InFlight(_)
    ));
    // And a long lease asked by the retry does not stretch a short one that ran out.
    assert_eq!(first.begin_order(&a, "L2", Fen(100), 1, Duration::ZERO).await.unwrap(), Begin::New);
    assert!(matches!(second.begin_order(&a, "L2", Fen(100), 1, LEASE).await.unwrap(), Begin::Retry(_)));
}

// Item 20 (issue 12): the payment time a query saw is kept and listed.
both!(a_payment_time_seen_by_a_query_is_listed, payment_time);
async fn payment_time(store: Store) {
    let l = store.open().await;
    let a = account();
    l.begin_order(&a, "T1", Fen(100), 1_700_000_000, LEASE).await.unwrap();
    l.finish_order(&a, "T1", OrderUpdate::stage(OrderStage::Unknown)).await.unwrap();
    let seen = OrderSeen { state: PaymentState::Paid, platform_order_no: Some("P-T1"), paid_at: Some(1_700_000_100) };
    l.note_order_state(&a, "T1", seen).await.unwrap();
    // A later query that says nothing of the time keeps it.
    l.note_order_state(&a, "T1", PaymentState::Paid).await.unwrap();
    let (_, listed) = l.list_orders(&a, None, None, None, 1, 10).await.unwrap();
    assert_eq!((listed[0].paid_at, listed[0].platform_order_no.as_deref()), (Some(1_700_000_100), Some("P-T1")));
    assert!(l.order(&a, "T1").await.unwrap().unwrap().known_to_exist());
}

// Many ledgers (instances) racing one merchant order number and one refund number: exactly one
// records the intent; every other sees it in flight. The database's uniqueness decides.
both!(racing_instances_record_one_intent_per_number, racing);
async fn racing(store: Store) {
    let a = account();
    let mut ledgers = Vec::new();
    for _ in 0..6 {
        ledgers.push(std::sync::Arc::new(store.open().await));
    }
    for round in 0..5 {
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(ledgers.len() * 2));
        let mut calls = Vec::new();
        for l in &ledgers {
            for refund in [false, true] {
                let (l, a, barrier) = (l.clone(), a.clone(), barrier.clone());
                calls.push(tokio::spawn(async move {
                    barrier.wait().await;
                    if refund {
                        matches!(
                            l.begin_refund(&a, &format!("RR{round}"), "P", Fen(1), LEASE).await.unwrap(),
                            Begin::New
                        )
                    } else {
                        matches!(l.begin_order(&a, &format!("RO{round}"), Fen(1), 1, LEASE).await.unwrap(), Begin::New)
                    }
                }));
            }
        }
        let mut firsts = 0;
        for call in calls {
            firsts += usize::from(call.await.unwrap());
        }
        assert_eq!(firsts, 2, "round {round}: one order intent and one refund intent");
    }
}

// Gateways repeat a notification many times: the first records the final state (once), every
// repeat changes nothing, and it is found by the platform number when it names no merchant number.
both!(a_notification_is_recorded_once_however_often_it_is_repeated, notified_once);
async fn notified_once(store: Store) {
    let l = store.open().await;
    let a = account();
    l.begin_order(&a, "N1", Fen(100), 1, LEASE).await.unwrap();
    l.finish_order(&a, "N1", created(Some("PN1"), None, None)).await.unwrap();
    l.note_order_state(&a, "N1", PaymentState::Pending).await.unwrap();
    let paid = Notified { state: PaymentState::Paid, merchant_order_no: Some("N1"), platform_order_no: Some("PN1") };
    let mut recorded = Vec::new();
    for _ in 0..10 {
        recorded.push(l.note_notification(&a, paid).await.unwrap());
    }
    assert_eq!(recorded.iter().filter(|r| **r).count(), 1, "{recorded:?}");
    assert!(recorded[0]);
    assert_eq!(l.order(&a, "N1").await.unwrap().unwrap().last_state, Some(PaymentState::Paid));
    // A later "failed" for a paid order does not undo it; a pending one is not recorded at all.
    let failed = Notified { state: PaymentState::Failed, ..paid };
    assert!(!l.note_notification(&a, failed).await.unwrap());
    assert_eq!(l.order(&a, "N1").await.unwrap().unwrap().last_state, Some(PaymentState::Paid));
    l.begin_order(&a, "N2", Fen(100), 1, LEASE).await.unwrap();
    l.finish_order(&a, "N2", created(Some("PN2"), None, None)).await.unwrap();
    let pending = Notified { state: PaymentState::Pending, merchant_order_no: Some("N2"), platform_order_no: None };
    assert!(!l.note_notification(&a, pending).await.unwrap());
    let by_platform = Notified { state: PaymentState::Paid, merchant_order_no: None, platform_order_no: Some("PN2") };
    assert!(l.note_notification(&a, by_platform).await.unwrap());
    assert_eq!(l.order(&a, "N2").await.unwrap().unwrap().last_state, Some(PaymentState::Paid));
    // An order the ledger does not have: nothing to record, no error.
    let stranger = Notified { state: PaymentState::Paid, merchant_order_no: Some("N9"), platform_order_no: None };
    assert!(!l.note_notification(&a, stranger).await.unwrap());
}

// Opening a ledger twice (or by many instances at once) migrates it once: every version recorded
// once, and nothing fails.
both!(migrations_run_once_and_are_idempotent, migrations_once);
async fn migrations_once(store: Store) {
    let opened: Vec<Ledger> = futures::future::join_all((0..6).map(|_| store.open())).await;
    let all: Vec<i64> = (1..=migrations::latest()).collect();
    for l in &opened {
        assert_eq!(l.recorded_migrations().await, all);
    }
    drop(opened);
    let again = store.open().await;
    assert_eq!(again.recorded_migrations().await, all);
}

// A database a newer payment-mcp migrated further is refused, not used.
both!(a_schema_newer_than_this_build_is_refused, too_new_refused);
async fn too_new_refused(store: Store) {
    let l = store.open().await;
    l.execute_raw("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'from the future', 0)").await;
    drop(l);
    let refused = match &store {
        Store::Sqlite(path) => Ledger::open(path).err(),
        Store::Postgres(url) => Ledger::postgres(url, Wakes::new()).await.err(),
    };
    let e = refused.expect("refused");
    assert!(e.0.contains("newer payment-mcp") && e.0.contains("99"), "{e}");
}

// A wake published by one instance reaches the other instances' hubs, and not its own twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wake_published_on_postgres_reaches_the_other_instances() {
    let Some(store) = Store::postgres("ledger::tests::a_wake_published_on_postgres_reaches_the_other_instances").await
    else {
        return;
    };
    let (hub_a, hub_b) = (Wakes::new(), Wakes::new());
    let a = store.open_with(hub_a.clone()).await;
    let _b = store.open_with(hub_b.clone()).await;
    let (mut rx_a, mut rx_b) = (hub_a.subscribe(), hub_b.subscribe());
    let wake = Wake::new(&account(), Some("W1"), Some("PW1"));
    a.publish(&wake).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), rx_b.recv()).await.unwrap().unwrap();
    let Signal::Order(got) = got else { panic!("an order wake") };
    assert_eq!(*got, wake);
    // The sender skips its own echo: nothing arrives on its hub from the database.
    a.publish(&Wake::new(&account(), Some("W2"), None)).await.unwrap();
    let Signal::Order(second) = tokio::time::timeout(Duration::from_secs(10), rx_b.recv()).await.unwrap().unwrap()
    else {
        panic!("an order wake")
    };
    assert_eq!(second.merchant_order_no.as_deref(), Some("W2"));
    assert!(rx_a.try_recv().is_err(), "no echo of its own wakes");
}
