//! The SQLite backend: one file per user (or memory), shared by the processes of one machine.
//!
//! One connection per process, used for short transactions; several processes may share one file
//! (WAL mode, a busy timeout, and the begin step in an IMMEDIATE transaction, so of two concurrent
//! calls exactly one records the intent). Migrations run by version (`migrations.rs`): the
//! `schema_migrations` table records them, and `PRAGMA user_version` still says the highest, as
//! every earlier version wrote it, so a file from before the table existed is carried forward.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::list::{Filter, ListedOrder, SHOWN_STATE};
use super::migrations::{MIGRATIONS, MIGRATIONS_TABLE, latest, too_new};
use super::records::{fen, payment_state, refund_state};
use super::{
    Account, Begin, FINAL_STATES, Held, LedgerError, Notified, OrderRow, OrderSeen, OrderStage, OrderUpdate, RefundRow,
    RefundStage, RefundUpdate, Step, decide, files, stamps,
};
use crate::money::Fen;
use crate::provider::RefundState;

/// How long a statement waits for another connection's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether SQLite said another connection holds the lock.
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseBusy)
}

impl From<rusqlite::Error> for LedgerError {
    fn from(e: rusqlite::Error) -> Self {
        LedgerError(format!("ledger database error: {e}"))
    }
}

/// The SQLite ledger: one connection per process, used for short transactions.
pub struct SqliteLedger {
    conn: Mutex<Connection>,
    path: Option<PathBuf>,
}

fn now() -> i64 {
    crate::time::now_unix()
}

/// The two tables the begin step serves.
#[derive(Debug, Clone, Copy)]
enum Table {
    Orders,
    Refunds,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Orders => "orders",
            Table::Refunds => "refunds",
        }
    }

    /// The column holding the number the intent is recorded under.
    fn key(self) -> &'static str {
        match self {
            Table::Orders => "merchant_order_no",
            Table::Refunds => "mch_refund_no",
        }
    }
}

/// The number an intent is recorded under: its table, its account and the number itself.
#[derive(Debug, Clone, Copy)]
struct Number<'a> {
    table: Table,
    account: &'a Account,
    key: &'a str,
}

impl SqliteLedger {
    /// The default location: the platform's per-user data directory.
    pub fn default_path() -> Option<PathBuf> {
        dirs::data_dir().map(|d| d.join("payment-mcp").join("ledger.sqlite3"))
    }

    /// Opens (creating if needed, with user-only permissions) and migrates the ledger at `path`.
    /// Its directory must be one only this user can write to (see `files.rs`).
    ///
    /// # Errors
    /// When the directory is shared with other users, or the file cannot be created, opened, made
    /// user-only, or migrated (read-only disk, corrupt file).
    pub fn open(path: &Path) -> Result<SqliteLedger, LedgerError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            files::private_dir(dir)?;
        }
        files::create_private_file(path)?;
        files::restrict_file(path)?;
        let conn = Connection::open(path)
            .map_err(|e| LedgerError(format!("cannot open the ledger {}: {e}", path.display())))?;
        let ledger = SqliteLedger { conn: Mutex::new(conn), path: Some(path.to_owned()) };
        ledger.prepare().map_err(|e| LedgerError(format!("the ledger {} is not usable: {}", path.display(), e.0)))?;
        Ok(ledger)
    }

    /// A ledger that lives in memory only (`PAYMENT_LEDGER=off`, and the sandbox).
    ///
    /// # Errors
    /// Only if SQLite cannot allocate.
    pub fn in_memory() -> Result<SqliteLedger, LedgerError> {
        let ledger = SqliteLedger { conn: Mutex::new(Connection::open_in_memory()?), path: None };
        ledger.prepare()?;
        Ok(ledger)
    }

    /// Where the ledger lives, if on disk.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn prepare(&self) -> Result<(), LedgerError> {
        let mut conn = self.lock();
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Switching a new file to WAL takes the exclusive lock, and SQLite answers a concurrent
        // switch with SQLITE_BUSY at once, without its busy handler: several windows starting on one
        // new ledger together saw "database is locked". So that step waits here, within the same
        // bound the busy handler keeps.
        let started = std::time::Instant::now();
        loop {
            match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)) {
                Ok(_) => break,
                Err(e) if is_busy(&e) && started.elapsed() < BUSY_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e.into()),
            }
        }
        // WAL + synchronous=NORMAL: a commit is a write() to the WAL, no fsync. Durable against a
        // crash of this process (what matters for an MCP server); the last commits can be lost on
        // power loss or an OS crash. A 256 KiB page cache (SQLite's default is 2 MiB): lookups are
        // by primary key, and the default cache grew RSS by ~270 bytes per order until it filled.
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-256;")?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let user_version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        tx.execute_batch(MIGRATIONS_TABLE)?;
        let recorded: i64 =
            tx.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
        let current = user_version.max(recorded);
        if current > latest() {
            return Err(LedgerError(too_new(current)));
        }
        // A file from before the table: its user_version says which migrations ran.
        for m in MIGRATIONS.iter().filter(|m| m.version > recorded && m.version <= current) {
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, 0)",
                params![m.version, m.name],
            )?;
        }
        for m in MIGRATIONS.iter().filter(|m| m.version > current) {
            tx.execute_batch(m.sqlite)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
                params![m.version, m.name, now()],
            )?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", m.version))?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The begin step orders and refunds share. In one immediate transaction (so that of two
    /// concurrent calls, even in two processes, exactly one sends): look the number up; record a
    /// new intent when there is none; otherwise decide from the row. The intent this call records
    /// (new or taken over) stores its lease, `lease` from now: until then it belongs to a call in
    /// flight, afterwards to a call that died. Another process's intent is judged by the lease it
    /// stored, never by this call's `lease`.
    fn begin<R>(
        &self,
        Number { table, account, key }: Number<'_>,
        lease: Duration,
        select: impl FnOnce(&Connection) -> Result<Option<(R, Held)>, LedgerError>,
        same_request: impl FnOnce(&R) -> bool,
        insert: impl FnOnce(&Connection, i64, i64) -> Result<(), LedgerError>,
    ) -> Result<Begin<R>, LedgerError> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (t, t_ms, lease_until_ms) = stamps(lease);
        let begin = match decide(select(&tx)?, t_ms, lease, same_request) {
            Step::Insert => {
                insert(&tx, t, lease_until_ms)?;
                Begin::New
            }
            Step::Answer(begin) => begin,
            Step::TakeOver(row) => {
                tx.prepare_cached(&format!(
                    "UPDATE {} SET outcome = 'intent', updated_at = ?4, lease_until_ms = ?5
                     WHERE provider = ?1 AND merchant = ?2 AND {} = ?3",
                    table.name(),
                    table.key()
                ))?
                .execute(params![account.provider, account.merchant, key, t, lease_until_ms])?;
                Begin::Retry(row)
            }
        };
        tx.commit()?;
        Ok(begin)
    }

    /// Records the intent to create an order, atomically with the look-up of its merchant number
    /// (the shared begin step). The same request is the same amount.
    ///
    /// # Errors
    /// Database failures.
    pub fn begin_order(
        &self,
        account: &Account,
        merchant_order_no: &str,
        amount: Fen,
        order_time: i64,
        lease: Duration,
    ) -> Result<Begin<OrderRow>, LedgerError> {
        self.begin(
            Number { table: Table::Orders, account, key: merchant_order_no },
            lease,
            |conn| select_order(conn, account, merchant_order_no),
            |row| row.amount == amount,
            |conn, t, lease_until_ms| {
                conn.prepare_cached(
                    "INSERT INTO orders (provider, merchant, merchant_order_no, amount_fen, order_time, outcome, created_at, updated_at,
                        lease_until_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
                )?
                .execute(params![
                    account.provider,
                    account.merchant,
                    merchant_order_no,
                    amount.0 as i64,
                    order_time,
                    OrderStage::Intent,
                    t,
                    lease_until_ms
                ])?;
                Ok(())
            },
        )
    }

    /// Records what the gateway said about an order (or that its outcome is unknown).
    ///
    /// # Errors
    /// Database failures.
    pub fn finish_order(
        &self,
        account: &Account,
        merchant_order_no: &str,
        update: OrderUpdate<'_>,
    ) -> Result<(), LedgerError> {
        self.lock()
            .prepare_cached(
                "UPDATE orders SET outcome = ?4, platform_order_no = COALESCE(?5, platform_order_no),
                 pay_url = COALESCE(?6, pay_url), qr_content = COALESCE(?7, qr_content),
                 charged_fen = COALESCE(?8, charged_fen), raw_status = COALESCE(?9, raw_status), updated_at = ?10
             WHERE provider = ?1 AND merchant = ?2 AND merchant_order_no = ?3",
            )?
            .execute(params![
                account.provider,
                account.merchant,
                merchant_order_no,
                update.stage,
                update.platform_order_no,
                update.pay_url,
                update.qr_content,
                update.charged.map(|c| c.0 as i64),
                update.raw_status,
                now()
            ])?;
        Ok(())
    }

    /// Forgets an order whose only attempt the gateway refused for sure, so a corrected retry is
    /// not a "repeat". Only an intent is forgotten, never a created order or an unknown outcome.
    ///
    /// # Errors
    /// Database failures.
    pub fn forget_order(&self, account: &Account, merchant_order_no: &str) -> Result<(), LedgerError> {
        self.lock().execute(
            "DELETE FROM orders WHERE provider = ?1 AND merchant = ?2 AND merchant_order_no = ?3 AND outcome = ?4",
            params![account.provider, account.merchant, merchant_order_no, OrderStage::Intent],
        )?;
        Ok(())
    }

    /// The order recorded under a merchant number.
    ///
    /// # Errors
    /// Database failures.
    pub fn order(&self, account: &Account, merchant_order_no: &str) -> Result<Option<OrderRow>, LedgerError> {
        let conn = self.lock();
        Ok(select_order(&conn, account, merchant_order_no)?.map(|(row, _)| row))
    }

    /// Remembers what a query saw of an order: its state, when it was paid, and its platform
    /// number when the ledger did not have it (a create whose reply was lost), so the ledger knows
    /// the order exists.
    ///
    /// # Errors
    /// Database failures.
    pub fn note_order_state(
        &self,
        account: &Account,
        merchant_order_no: &str,
        seen: OrderSeen<'_>,
    ) -> Result<(), LedgerError> {
        // `updated_at` stays: it dates the last attempt, which is what an intent's lease runs from.
        self.lock()
            .prepare_cached(
                "UPDATE orders SET last_state = ?4, platform_order_no = COALESCE(platform_order_no, ?5),
                 paid_at = COALESCE(?6, paid_at)
                 WHERE provider = ?1 AND merchant = ?2 AND merchant_order_no = ?3",
            )?
            .execute(params![
                account.provider,
                account.merchant,
                merchant_order_no,
                seen.state.name(),
                seen.platform_order_no,
                seen.paid_at
            ])?;
        Ok(())
    }

    /// Remembers the state a refund query saw for a refund this server sent (nothing happens for
    /// refunds it did not send), so a repeated refund call reports it.
    ///
    /// # Errors
    /// Database failures.
    pub fn note_refund_state(
        &self,
        account: &Account,
        mch_refund_no: &str,
        state: RefundState,
    ) -> Result<(), LedgerError> {
        self.lock().execute(
            "UPDATE refunds SET last_state = ?4 WHERE provider = ?1 AND merchant = ?2 AND mch_refund_no = ?3",
            params![account.provider, account.merchant, mch_refund_no, state.name()],
        )?;
        Ok(())
    }

    /// Records the intent to refund, atomically with the look-up of the refund number (the shared
    /// begin step). The same request is the same order and amount.
    ///
    /// # Errors
    /// Database failures.
    pub fn begin_refund(
        &self,
        account: &Account,
        mch_refund_no: &str,
        order_no: &str,
        amount: Fen,
        lease: Duration,
    ) -> Result<Begin<RefundRow>, LedgerError> {
        self.begin(
            Number { table: Table::Refunds, account, key: mch_refund_no },
            lease,
            |conn| select_refund(conn, account, mch_refund_no),
            |row| row.order_no == order_no && row.amount == amount,
            |conn, t, lease_until_ms| {
                conn.execute(
                    "INSERT INTO refunds (provider, merchant, mch_refund_no, order_no, amount_fen, outcome, created_at, updated_at,
                        lease_until_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
                    params![
                        account.provider,
                        account.merchant,
                        mch_refund_no,
                        order_no,
                        amount.0 as i64,
                        RefundStage::Intent,
                        t,
                        lease_until_ms
                    ],
                )?;
                Ok(())
            },
        )
    }

    /// Records what the gateway said about a refund.
    ///
    /// # Errors
    /// Database failures.
    pub fn finish_refund(
        &self,
        account: &Account,
        mch_refund_no: &str,
        update: RefundUpdate<'_>,
    ) -> Result<(), LedgerError> {
        self.lock().execute(
            "UPDATE refunds SET outcome = ?4, refund_no = COALESCE(?5, refund_no), raw_status = COALESCE(?6, raw_status),
                 last_state = COALESCE(?7, last_state), updated_at = ?8
             WHERE provider = ?1 AND merchant = ?2 AND mch_refund_no = ?3",
            params![
                account.provider,
                account.merchant,
                mch_refund_no,
                update.stage,
                update.refund_no,
                update.raw_status,
                update.state.map(RefundState::name),
                now()
            ],
        )?;
        Ok(())
    }

    /// Forgets a refund whose only attempt the gateway refused for sure (an intent, nothing else).
    ///
    /// # Errors
    /// Database failures.
    pub fn forget_refund(&self, account: &Account, mch_refund_no: &str) -> Result<(), LedgerError> {
        self.lock().execute(
            "DELETE FROM refunds WHERE provider = ?1 AND merchant = ?2 AND mch_refund_no = ?3 AND outcome = ?4",
            params![account.provider, account.merchant, mch_refund_no, RefundStage::Intent],
        )?;
        Ok(())
    }
    /// See [`Ledger::note_notification`](super::Ledger::note_notification).
    ///
    /// # Errors
    /// Database failures.
    pub fn note_notification(&self, account: &Account, n: Notified<'_>) -> Result<bool, LedgerError> {
        let [paid, failed, closed] = FINAL_STATES.map(|s| s.name());
        let changed = self
            .lock()
            .prepare_cached(
                "UPDATE orders SET last_state = ?5, platform_order_no = COALESCE(platform_order_no, ?4),
                     notified_at = ?6
                 WHERE provider = ?1 AND merchant = ?2
                   AND (merchant_order_no = ?3 OR (?3 IS NULL AND platform_order_no = ?4))
                   AND (last_state IS NULL OR last_state NOT IN (?7, ?8, ?9))",
            )?
            .execute(params![
                account.provider,
                account.merchant,
                n.merchant_order_no,
                n.platform_order_no,
                n.state.name(),
                now(),
                paid,
                failed,
                closed
            ])?;
        Ok(changed > 0)
    }

    /// See [`Ledger::list_orders`](super::Ledger::list_orders).
    ///
    /// # Errors
    /// Database failures.
    pub(super) fn list_orders(&self, account: &Account, f: &Filter) -> Result<(u64, Vec<ListedOrder>), LedgerError> {
        let conn = self.lock();
        let state = f.state.map(crate::provider::PaymentState::name);
        let filter = format!(
            "provider = ?1 AND merchant = ?2 AND (?3 IS NULL OR {SHOWN_STATE} = ?3)
             AND (?4 IS NULL OR order_time >= ?4) AND (?5 IS NULL OR order_time <= ?5)"
        );
        let total: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM orders WHERE {filter}"),
            params![account.provider, account.merchant, state, f.from, f.to],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare(&format!(
            "SELECT merchant_order_no, platform_order_no, amount_fen, order_time, last_state, outcome, paid_at FROM orders
             WHERE {filter} ORDER BY order_time DESC, merchant_order_no DESC LIMIT ?6 OFFSET ?7"
        ))?;
        let rows = stmt
            .query_map(
                params![account.provider, account.merchant, state, f.from, f.to, i64::from(f.limit), f.offset()],
                |r| {
                    Ok(ListedOrder {
                        merchant_order_no: r.get(0)?,
                        platform_order_no: r.get(1)?,
                        amount: fen(r.get(2)?),
                        order_time: r.get(3)?,
                        last_state: payment_state(r.get(4)?),
                        stage: r.get(5)?,
                        paid_at: r.get(6)?,
                    })
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok((total.max(0) as u64, rows))
    }
}

fn select_order(
    conn: &Connection,
    account: &Account,
    merchant_order_no: &str,
) -> Result<Option<(OrderRow, Held)>, LedgerError> {
    Ok(conn
        .prepare_cached(
            "SELECT amount_fen, order_time, outcome, platform_order_no, pay_url, qr_content, charged_fen, raw_status,
                    last_state, updated_at, lease_until_ms
             FROM orders WHERE provider = ?1 AND merchant = ?2 AND merchant_order_no = ?3",
        )?
        .query_row(params![account.provider, account.merchant, merchant_order_no], |r| {
            let stage: OrderStage = r.get(2)?;
            Ok((
                OrderRow {
                    amount: fen(r.get(0)?),
                    order_time: r.get(1)?,
                    stage,
                    platform_order_no: r.get(3)?,
                    pay_url: r.get(4)?,
                    qr_content: r.get(5)?,
                    charged: r.get::<_, Option<i64>>(6)?.map(fen),
                    raw_status: r.get(7)?,
                    last_state: payment_state(r.get(8)?),
                },
                Held { standing: stage.standing(), updated_at: r.get(9)?, lease_until_ms: r.get(10)? },
            ))
        })
        .optional()?)
}

fn select_refund(
    conn: &Connection,
    account: &Account,
    mch_refund_no: &str,
) -> Result<Option<(RefundRow, Held)>, LedgerError> {
    Ok(conn
        .prepare_cached(
            "SELECT order_no, amount_fen, outcome, refund_no, raw_status, last_state, updated_at, lease_until_ms
             FROM refunds WHERE provider = ?1 AND merchant = ?2 AND mch_refund_no = ?3",
        )?
        .query_row(params![account.provider, account.merchant, mch_refund_no], |r| {
            let stage: RefundStage = r.get(2)?;
            Ok((
                RefundRow {
                    order_no: r.get(0)?,
                    amount: fen(r.get(1)?),
                    stage,
                    refund_no: r.get(3)?,
                    raw_status: r.get(4)?,
                    last_state: refund_state(r.get(5)?),
                },
                Held { standing: stage.standing(), updated_at: r.get(6)?, lease_until_ms: r.get(7)? },
            ))
        })
        .optional()?)
}
