//! The ledger's own tests: recording, the shared begin step and its lease, listing, the files on
//! disk, and files written by earlier versions.

use super::*;
use crate::provider::PaymentState;

const LEASE: Duration = Duration::from_secs(60);

fn account() -> Account {
    Account::new("lfwin", "https://api2.lfwin.com", "key")
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("payment-mcp-ledger-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.join("ledger.sqlite3")
}

fn created<'a>(platform_order_no: Option<&'a str>, pay_url: Option<&'a str>, raw: Option<&'a str>) -> OrderUpdate<'a> {
    OrderUpdate { platform_order_no, pay_url, raw_status: raw, ..OrderUpdate::stage(OrderStage::Created) }
}

/// Makes every intent's lease run out, as if its sender had died long ago.
fn expire_leases(l: &Ledger) {
    l.lock()
        .execute_batch(
            "UPDATE orders SET updated_at = 0, lease_until_ms = 0; UPDATE refunds SET updated_at = 0, lease_until_ms = 0;",
        )
        .unwrap();
}

#[test]
fn an_order_is_remembered_across_reopening() {
    let path = temp_path("reopen");
    let a = account();
    {
        let l = Ledger::open(&path).unwrap();
        assert_eq!(l.begin_order(&a, "M1", Fen(1230), 1_700_000_000, LEASE).unwrap(), Begin::New);
        l.finish_order(&a, "M1", created(Some("P1"), Some("https://pay/1"), Some("10000"))).unwrap();
    }
    let l = Ledger::open(&path).unwrap();
    let Begin::Conflict(row) = l.begin_order(&a, "M1", Fen(999), 1, LEASE).unwrap() else { panic!("earlier") };
    assert_eq!((row.amount, row.order_time, row.stage), (Fen(1230), 1_700_000_000, OrderStage::Created));
    assert_eq!(row.platform_order_no.as_deref(), Some("P1"));
    let other = Account::new("lfwin", "https://api2.lfwin.com", "other-key");
    assert_eq!(l.order(&other, "M1").unwrap(), None, "accounts are separate");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

#[test]
fn refused_intents_are_forgotten_but_created_orders_are_not() {
    let l = Ledger::in_memory().unwrap();
    let a = account();
    l.begin_order(&a, "M2", Fen(1), 1, LEASE).unwrap();
    l.forget_order(&a, "M2").unwrap();
    assert_eq!(l.order(&a, "M2").unwrap(), None);
    l.begin_order(&a, "M3", Fen(1), 1, LEASE).unwrap();
    l.finish_order(&a, "M3", OrderUpdate::stage(OrderStage::Created)).unwrap();
    l.forget_order(&a, "M3").unwrap();
    assert!(l.order(&a, "M3").unwrap().is_some());
    l.begin_order(&a, "M4", Fen(1), 1, LEASE).unwrap();
    l.finish_order(&a, "M4", OrderUpdate::stage(OrderStage::Unknown)).unwrap();
    l.forget_order(&a, "M4").unwrap();
    assert!(l.order(&a, "M4").unwrap().is_some(), "an order whose outcome is unknown is never forgotten");
}

#[test]
fn refunds_are_recorded_once_per_number() {
    let l = Ledger::in_memory().unwrap();
    let a = account();
    assert_eq!(l.begin_refund(&a, "RF1", "P1", Fen(100), LEASE).unwrap(), Begin::New);
    assert!(matches!(l.begin_refund(&a, "RF1", "P1", Fen(100), LEASE).unwrap(), Begin::InFlight(_)));
    let accepted = RefundUpdate {
        refund_no: Some("R1"),
        raw_status: Some("4001"),
        state: Some(RefundState::Processing),
        ..RefundUpdate::stage(RefundStage::Accepted)
    };
    l.finish_refund(&a, "RF1", accepted).unwrap();
    l.note_refund_state(&a, "RF1", RefundState::Refunded).unwrap();
    let Begin::Earlier(row) = l.begin_refund(&a, "RF1", "P1", Fen(100), LEASE).unwrap() else { panic!("earlier") };
    assert_eq!((row.stage, row.refund_no.as_deref()), (RefundStage::Accepted, Some("R1")));
    assert_eq!(row.last_state, Some(RefundState::Refunded));
}

#[test]
fn listing_pages_newest_first_with_filters() {
    let l = Ledger::in_memory().unwrap();
    let a = account();
    for i in 0..5i64 {
        l.begin_order(&a, &format!("L{i}"), Fen(100 + i as u64), 1_700_000_000 + i, LEASE).unwrap();
        l.finish_order(&a, &format!("L{i}"), created(Some(&format!("P{i}")), None, None)).unwrap();
    }
    l.note_order_state(&a, "L1", PaymentState::Paid).unwrap();
    let (total, page) = l.list_orders(&a, None, None, None, 1, 2).unwrap();
    assert_eq!(total, 5);
    assert_eq!(page.iter().map(|o| o.merchant_order_no.as_str()).collect::<Vec<_>>(), ["L4", "L3"]);
    let (total, paid) = l.list_orders(&a, Some(PaymentState::Paid), None, None, 1, 10).unwrap();
    assert_eq!((total, paid[0].merchant_order_no.as_str()), (1, "L1"));
    let (total, _) = l.list_orders(&a, Some(PaymentState::Pending), Some(1_700_000_002), None, 1, 10).unwrap();
    assert_eq!(total, 3);
}

#[test]
fn an_intent_in_flight_blocks_a_repeat_until_its_lease_runs_out() {
    let l = Ledger::in_memory().unwrap();
    let a = account();
    assert_eq!(l.begin_order(&a, "F1", Fen(100), 1, LEASE).unwrap(), Begin::New);
    assert!(matches!(l.begin_order(&a, "F1", Fen(100), 1, LEASE).unwrap(), Begin::InFlight(_)));
    // The sender died holding the intent: after the lease, one repeat takes it over, and a
    // third call sees the repeat's fresh intent.
    expire_leases(&l);
    let Begin::Retry(row) = l.begin_order(&a, "F1", Fen(100), 1, LEASE).unwrap() else {
        panic!("a stale intent is taken over")
    };
    assert_eq!(row.stage, OrderStage::Intent);
    assert!(matches!(l.begin_order(&a, "F1", Fen(100), 1, LEASE).unwrap(), Begin::InFlight(_)));
    // An unknown outcome is taken over at once by the same request; never by a different one.
    l.finish_order(&a, "F1", OrderUpdate::stage(OrderStage::Unknown)).unwrap();
    let Begin::Conflict(row) = l.begin_order(&a, "F1", Fen(999), 1, LEASE).unwrap() else { panic!("earlier") };
    assert_eq!((row.stage, row.amount), (OrderStage::Unknown, Fen(100)), "a different amount changes nothing");
    let Begin::Retry(row) = l.begin_order(&a, "F1", Fen(100), 1, LEASE).unwrap() else { panic!("earlier") };
    assert_eq!(row.stage, OrderStage::Unknown);
    assert!(matches!(l.begin_order(&a, "F1", Fen(100), 1, LEASE).unwrap(), Begin::InFlight(_)));
}

#[test]
fn a_refund_number_on_another_order_or_amount_is_a_conflict_that_changes_nothing() {
    let l = Ledger::in_memory().unwrap();
    let a = account();
    l.begin_refund(&a, "RF2", "P1", Fen(100), LEASE).unwrap();
    l.finish_refund(&a, "RF2", RefundUpdate::stage(RefundStage::Unknown)).unwrap();
    assert!(matches!(l.begin_refund(&a, "RF2", "P2", Fen(100), LEASE).unwrap(), Begin::Conflict(_)));
    assert!(matches!(l.begin_refund(&a, "RF2", "P1", Fen(101), LEASE).unwrap(), Begin::Conflict(_)));
    let Begin::Retry(row) = l.begin_refund(&a, "RF2", "P1", Fen(100), LEASE).unwrap() else { panic!("retry") };
    assert_eq!(row.stage, RefundStage::Unknown);
}

#[test]
fn a_corrupt_file_is_an_error_not_a_panic() {
    let path = temp_path("corrupt");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"this is not a sqlite database, not at all, no").unwrap();
    assert!(Ledger::open(&path).is_err());
}

#[test]
fn an_unrecognised_outcome_is_an_error_not_a_guess() {
    let l = Ledger::in_memory().unwrap();
    let a = account();
    l.begin_order(&a, "X1", Fen(1), 1, LEASE).unwrap();
    l.lock().execute("UPDATE orders SET outcome = 'teleported'", []).unwrap();
    assert!(l.order(&a, "X1").is_err());
    assert!(l.begin_order(&a, "X1", Fen(1), 1, LEASE).is_err());
}

#[test]
fn the_fingerprint_never_contains_the_key() {
    let a = Account::new("lfwin", "https://x", "supersecretkey");
    assert!(!a.merchant.contains("supersecret"));
    assert_eq!(a.merchant.len(), 16);
}

/// A file as schema 1 (every version up to this one) wrote it: the same SQL, the same words.
fn write_schema_1_file(path: &Path, a: &Account) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(MIGRATIONS[0]).unwrap();
    conn.execute_batch("PRAGMA user_version = 1").unwrap();
    let order = "INSERT INTO orders (provider, merchant, merchant_order_no, amount_fen, order_time, outcome,
        platform_order_no, pay_url, qr_content, charged_fen, raw_status, last_state, created_at, updated_at)
        VALUES (?1, ?2, ?3, ?4, 1700000000, ?5, ?6, ?7, NULL, NULL, '10000', ?8, 1700000000, 1700000000)";
    for (no, amount, outcome, platform, url, state) in [
        ("OLD-CREATED", 500, "created", Some("P-OLD-1"), Some("https://pay/old-1"), Some("paid")),
        ("OLD-UNKNOWN", 600, "unknown", None, None, None),
        ("OLD-INTENT", 700, "intent", None, None, None),
    ] {
        conn.execute(order, params![a.provider, a.merchant, no, amount, outcome, platform, url, state]).unwrap();
    }
    conn.execute(
        "INSERT INTO refunds (provider, merchant, mch_refund_no, order_no, amount_fen, outcome, refund_no,
            raw_status, last_state, created_at, updated_at)
         VALUES (?1, ?2, 'OLD-RF', 'P-OLD-1', 100, 'accepted', 'R-OLD', '4001', 'refunded', 1700000000, 1700000000)",
        params![a.provider, a.merchant],
    )
    .unwrap();
}

#[test]
fn a_ledger_written_with_schema_1_words_still_reads_and_works() {
    let path = temp_path("schema-1");
    let a = account();
    write_schema_1_file(&path, &a);
    let l = Ledger::open(&path).unwrap();
    let version: i64 = l.lock().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version as usize, MIGRATIONS.len(), "migrated forward");

    let row = l.order(&a, "OLD-CREATED").unwrap().unwrap();
    assert_eq!((row.stage, row.last_state, row.amount), (OrderStage::Created, Some(PaymentState::Paid), Fen(500)));
    assert_eq!(
        (row.platform_order_no.as_deref(), row.pay_url.as_deref()),
        (Some("P-OLD-1"), Some("https://pay/old-1"))
    );
    let Begin::Earlier(row) = l.begin_order(&a, "OLD-CREATED", Fen(500), 1, LEASE).unwrap() else { panic!("replay") };
    assert_eq!(row.raw_status.as_deref(), Some("10000"));
    let Begin::Retry(row) = l.begin_order(&a, "OLD-UNKNOWN", Fen(600), 1, LEASE).unwrap() else { panic!("retry") };
    assert_eq!(row.stage, OrderStage::Unknown);
    // An intent written long ago by a sender that is gone (no stored lease: counted from its
    // attempt with the caller's lease): taken over, and the take-over stores its own lease.
    assert!(matches!(l.begin_order(&a, "OLD-INTENT", Fen(700), 1, LEASE).unwrap(), Begin::Retry(_)));
    assert!(matches!(l.begin_order(&a, "OLD-INTENT", Fen(700), 1, Duration::ZERO).unwrap(), Begin::InFlight(_)));
    let Begin::Earlier(refund) = l.begin_refund(&a, "OLD-RF", "P-OLD-1", Fen(100), LEASE).unwrap() else {
        panic!("refund replay")
    };
    assert_eq!((refund.stage, refund.last_state), (RefundStage::Accepted, Some(RefundState::Refunded)));

    // What this version writes is read back as the same words.
    l.finish_order(&a, "OLD-UNKNOWN", created(Some("P-OLD-2"), Some("https://pay/old-2"), None)).unwrap();
    l.note_order_state(&a, "OLD-UNKNOWN", PaymentState::Pending).unwrap();
    let words: (String, String) = l
        .lock()
        .query_row("SELECT outcome, last_state FROM orders WHERE merchant_order_no = 'OLD-UNKNOWN'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(words, ("created".to_owned(), "pending".to_owned()));
    let (total, listed) = l.list_orders(&a, Some(PaymentState::Paid), None, None, 1, 10).unwrap();
    assert_eq!(
        (total, listed[0].merchant_order_no.as_str(), listed[0].state()),
        (1, "OLD-CREATED", PaymentState::Paid)
    );
}

/// Item 10 (issue 12): the lease belongs to the intent. A second process whose own lease is
/// shorter (a shorter PAYMENT_REQUEST_TIMEOUT_MS) must still see the first one's intent in flight.
#[test]
fn an_intent_keeps_the_lease_its_sender_recorded() {
    let path = temp_path("lease");
    let a = account();
    let first = Ledger::open(&path).unwrap();
    let second = Ledger::open(&path).unwrap();
    assert_eq!(first.begin_order(&a, "L1", Fen(100), 1, LEASE).unwrap(), Begin::New);
    assert!(matches!(second.begin_order(&a, "L1", Fen(100), 1, Duration::ZERO).unwrap(), Begin::InFlight(_)));
    assert_eq!(first.begin_refund(&a, "LRF1", "P1", Fen(100), LEASE).unwrap(), Begin::New);
    assert!(matches!(second.begin_refund(&a, "LRF1", "P1", Fen(100), Duration::ZERO).unwrap(), Begin::InFlight(_)));
    // And a long lease asked by the retry does not stretch a short one that ran out.
    assert_eq!(first.begin_order(&a, "L2", Fen(100), 1, Duration::ZERO).unwrap(), Begin::New);
    assert!(matches!(second.begin_order(&a, "L2", Fen(100), 1, LEASE).unwrap(), Begin::Retry(_)));
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Item 4 (issue 12): a directory others can write to is made user-only when this user owns it.
#[cfg(unix)]
#[test]
fn a_loose_ledger_directory_this_user_owns_is_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let path = temp_path("loose-dir");
    let dir = path.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    Ledger::open(&path).unwrap();
    assert_eq!((mode(dir), mode(&path)), (0o700, 0o600));
    // A directory others can only read is used as it is (it may be the user's own folder).
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    Ledger::open(&path).unwrap();
    assert_eq!((mode(dir), mode(&path)), (0o755, 0o600));
}

/// Item 4 (issue 12): a directory that cannot be made private is refused, naming it, and no file
/// is made there: a shared sticky directory (like /tmp), or one another user owns.
#[cfg(unix)]
#[test]
fn a_loose_ledger_directory_that_cannot_be_made_private_is_refused() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let path = temp_path("shared-dir");
    let dir = path.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let Err(e) = Ledger::open(&path) else { panic!("a shared directory is refused") };
    assert!(e.0.contains(&*dir.to_string_lossy()) && e.0.contains("other users"), "{e}");
    assert!(!path.exists());
    assert_eq!(mode(dir), 0o1777, "left as it is");
    // Root can give the directory away, to check a foreign owner too.
    if std::fs::metadata(dir).unwrap().uid() == 0 {
        std::os::unix::fs::chown(dir, Some(65534), None).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let Err(e) = Ledger::open(&path) else { panic!("a foreign directory is refused") };
        assert!(e.0.contains("owned by another user"), "{e}");
        assert!(!path.exists());
        assert_eq!(mode(dir), 0o777);
    }
}

/// Item 20 (issue 12): the payment time a query saw is kept and listed.
#[test]
fn a_payment_time_seen_by_a_query_is_listed() {
    let l = Ledger::in_memory().unwrap();
    let a = account();
    l.begin_order(&a, "T1", Fen(100), 1_700_000_000, LEASE).unwrap();
    l.finish_order(&a, "T1", OrderUpdate::stage(OrderStage::Unknown)).unwrap();
    let seen = OrderSeen { state: PaymentState::Paid, platform_order_no: Some("P-T1"), paid_at: Some(1_700_000_100) };
    l.note_order_state(&a, "T1", seen).unwrap();
    // A later query that says nothing of the time keeps it.
    l.note_order_state(&a, "T1", PaymentState::Paid).unwrap();
    let (_, listed) = l.list_orders(&a, None, None, None, 1, 10).unwrap();
    assert_eq!((listed[0].paid_at, listed[0].platform_order_no.as_deref()), (Some(1_700_000_100), Some("P-T1")));
    assert!(l.order(&a, "T1").unwrap().unwrap().known_to_exist());
}

/// Several processes (MCP clients start one per window) opening one new ledger at the same moment
/// all get a usable ledger: seen failing as "database is locked" while another connection switched
/// the fresh file to WAL or ran the migrations.
#[test]
fn many_connections_opening_one_new_ledger_at_once_all_succeed() {
    for round in 0..20 {
        let path = temp_path(&format!("race-{round}"));
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let opened: Vec<_> = (0..8)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    Ledger::open(&path).map(|_| ())
                })
            })
            .collect();
        for handle in opened {
            let result = handle.join().unwrap();
            assert!(result.is_ok(), "round {round}: {result:?}");
        }
    }
}
