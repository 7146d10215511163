//! The SQLite backend's own tests: the file on disk (permissions, directories, corruption, many
//! processes opening a new file at once) and files written by earlier versions, migrated forward.
//! What a ledger does is tested on both backends in `tests.rs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, params};

use super::migrations::{MIGRATIONS, latest};
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

#[test]
fn an_order_is_remembered_across_reopening() {
    let path = temp_path("reopen");
    let a = account();
    {
        let l = SqliteLedger::open(&path).unwrap();
        assert_eq!(l.begin_order(&a, "M1", Fen(1230), 1_700_000_000, LEASE).unwrap(), Begin::New);
        l.finish_order(&a, "M1", created(Some("P1"), Some("https://pay/1"), Some("10000"))).unwrap();
    }
    let l = SqliteLedger::open(&path).unwrap();
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
fn a_corrupt_file_is_an_error_not_a_panic() {
    let path = temp_path("corrupt");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"this is not a sqlite database, not at all, no").unwrap();
    assert!(SqliteLedger::open(&path).is_err());
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
    conn.execute_batch(MIGRATIONS[0].sqlite).unwrap();
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
    let l = SqliteLedger::open(&path).unwrap();
    let version: i64 = l.lock().query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, latest(), "migrated forward");
    let recorded: Vec<i64> = {
        let conn = l.lock();
        let mut stmt = conn.prepare("SELECT version FROM schema_migrations ORDER BY version").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
    };
    assert_eq!(recorded, (1..=latest()).collect::<Vec<_>>(), "every version recorded, version 1 from user_version");

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
    l.note_order_state(&a, "OLD-UNKNOWN", PaymentState::Pending.into()).unwrap();
    let words: (String, String) = l
        .lock()
        .query_row("SELECT outcome, last_state FROM orders WHERE merchant_order_no = 'OLD-UNKNOWN'", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(words, ("created".to_owned(), "pending".to_owned()));
    let filter = list::Filter { state: Some(PaymentState::Paid), from: None, to: None, page: 1, limit: 10 };
    let (total, listed) = l.list_orders(&a, &filter).unwrap();
    assert_eq!(
        (total, listed[0].merchant_order_no.as_str(), listed[0].state()),
        (1, "OLD-CREATED", PaymentState::Paid)
    );
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
    SqliteLedger::open(&path).unwrap();
    assert_eq!((mode(dir), mode(&path)), (0o700, 0o600));
    // A directory others can only read is used as it is (it may be the user's own folder).
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    SqliteLedger::open(&path).unwrap();
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
    let Err(e) = SqliteLedger::open(&path) else { panic!("a shared directory is refused") };
    assert!(e.0.contains(&*dir.to_string_lossy()) && e.0.contains("other users"), "{e}");
    assert!(!path.exists());
    assert_eq!(mode(dir), 0o1777, "left as it is");
    // Root can give the directory away, to check a foreign owner too.
    if std::fs::metadata(dir).unwrap().uid() == 0 {
        std::os::unix::fs::chown(dir, Some(65534), None).unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let Err(e) = SqliteLedger::open(&path) else { panic!("a foreign directory is refused") };
        assert!(e.0.contains("owned by another user"), "{e}");
        assert!(!path.exists());
        assert_eq!(mode(dir), 0o777);
    }
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
                    SqliteLedger::open(&path).map(|_| ())
                })
            })
            .collect();
        for handle in opened {
            let result = handle.join().unwrap();
            assert!(result.is_ok(), "round {round}: {result:?}");
        }
    }
}

/// A file exactly as the previous release left it (schema 3 by `user_version`, no
/// `schema_migrations` table) is carried forward: versions 1-3 recorded from `user_version`,
/// version 4 run once, every row still read, and opening it again changes nothing.
#[test]
fn a_schema_3_file_from_the_previous_release_upgrades_cleanly() {
    let path = temp_path("schema-3");
    let a = account();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        let conn = Connection::open(&path).unwrap();
        for m in MIGRATIONS.iter().take(3) {
            conn.execute_batch(m.sqlite).unwrap();
        }
        conn.execute_batch("PRAGMA user_version = 3").unwrap();
        conn.execute(
            "INSERT INTO orders (provider, merchant, merchant_order_no, amount_fen, order_time, outcome, platform_order_no,
                last_state, paid_at, created_at, updated_at, lease_until_ms)
             VALUES (?1, ?2, 'V3-PAID', 900, 1700000000, 'created', 'P-V3', 'pending', NULL, 1700000000, 1700000000, NULL)",
            params![a.provider, a.merchant],
        )
        .unwrap();
    }
    for _ in 0..2 {
        let l = SqliteLedger::open(&path).unwrap();
        let (version, recorded): (i64, Vec<(i64, i64)>) = {
            let conn = l.lock();
            let version = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
            let mut stmt = conn.prepare("SELECT version, applied_at FROM schema_migrations ORDER BY version").unwrap();
            (version, stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap())
        };
        assert_eq!(version, 4);
        assert_eq!(recorded.iter().map(|(v, _)| *v).collect::<Vec<_>>(), [1, 2, 3, 4]);
        assert!(recorded[..3].iter().all(|(_, at)| *at == 0), "versions 1-3 were found, not run: {recorded:?}");
        assert!(recorded[3].1 > 0, "version 4 ran now");
        let row = l.order(&a, "V3-PAID").unwrap().unwrap();
        assert_eq!((row.amount, row.platform_order_no.as_deref()), (Fen(900), Some("P-V3")));
    }
    // The new column works on the upgraded file.
    let l = SqliteLedger::open(&path).unwrap();
    let paid = Notified { state: PaymentState::Paid, merchant_order_no: Some("V3-PAID"), platform_order_no: None };
    assert!(l.note_notification(&a, paid).unwrap());
    let notified: Option<i64> = l
        .lock()
        .query_row("SELECT notified_at FROM orders WHERE merchant_order_no = 'V3-PAID'", [], |r| r.get(0))
        .unwrap();
    assert!(notified.is_some_and(|t| t > 1_700_000_000));
}

/// A file whose `user_version` is beyond this build (written by a newer payment-mcp before it
/// had a `schema_migrations` row for it) is refused too.
#[test]
fn a_file_with_a_newer_user_version_is_refused() {
    let path = temp_path("newer");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    Connection::open(&path).unwrap().execute_batch("PRAGMA user_version = 42").unwrap();
    let Err(e) = SqliteLedger::open(&path) else { panic!("refused") };
    assert!(e.0.contains("newer payment-mcp"), "{e}");
}
