//! The order ledger: an embedded SQLite file that remembers every order and refund this server
//! sent, so idempotency and merchant-number queries survive the restarts MCP clients make all day.
//!
//! Every create and refund is recorded as an *intent* before the request leaves, then updated with
//! its outcome. Orders and refunds go through the same begin step ([`Ledger::begin_order`],
//! [`Ledger::begin_refund`]): one transaction looks the number up and either records a new intent,
//! takes over an earlier attempt whose outcome is unknown, or reports what it found. Several server
//! processes may share one file (WAL mode, a busy timeout, short transactions); an intent stores
//! its lease, so every process judges it by the lease of the call that made it. No secret is
//! stored: rows are keyed by provider and a one-way fingerprint of the merchant account. The schema
//! is versioned with `PRAGMA user_version` and migrated forward.
//!
//! The ledger speaks enums ([`OrderStage`], [`RefundStage`], and the provider's
//! [`PaymentState`](crate::provider::PaymentState) and [`RefundState`]); on disk they are the
//! lowercase words schema 1 wrote (`intent`, `created`, `paid` …), so files written by earlier
//! versions keep working.
//!
//! # Layout
//!
//! - this file: [`Ledger`] (opening, migrations, the shared begin step, recording outcomes);
//! - `records.rs`: what a row says and what a caller writes (stages, rows, updates);
//! - `list.rs`: the order list for gateways without a list API;
//! - `files.rs`: a private directory and file on disk;
//! - `tests.rs`: its unit tests, including files written by earlier versions.

mod files;
mod list;
mod records;

pub use list::ListedOrder;
pub use records::{OrderRow, OrderSeen, OrderStage, OrderUpdate, RefundRow, RefundStage, RefundUpdate};
use records::{Standing, fen, payment_state, refund_state};

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::money::Fen;
use crate::provider::RefundState;

/// Migrations, in order; `user_version` counts how many have run.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE orders (
        provider TEXT NOT NULL,
        merchant TEXT NOT NULL,
        merchant_order_no TEXT NOT NULL,
        amount_fen INTEGER NOT NULL,
        order_time INTEGER NOT NULL,
        outcome TEXT NOT NULL,            -- intent | created | unknown
        platform_order_no TEXT,
        pay_url TEXT,
        qr_content TEXT,
        charged_fen INTEGER,
        raw_status TEXT,
        last_state TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (provider, merchant, merchant_order_no)
    );
    CREATE TABLE refunds (
        provider TEXT NOT NULL,
        merchant TEXT NOT NULL,
        mch_refund_no TEXT NOT NULL,
        order_no TEXT NOT NULL,
        amount_fen INTEGER NOT NULL,
        outcome TEXT NOT NULL,            -- intent | accepted | unknown
        refund_no TEXT,
        raw_status TEXT,
        last_state TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (provider, merchant, mch_refund_no)
    );
",
    "
    -- Schema 2: the lease is stored with the intent (Unix milliseconds when it runs out), so a
    -- repeat from a process with a shorter timeout of its own cannot take over a call still in
    -- flight. NULL on rows written before: their lease is computed from updated_at, as then.
    ALTER TABLE orders ADD COLUMN lease_until_ms INTEGER;
    ALTER TABLE refunds ADD COLUMN lease_until_ms INTEGER;
",
    "
    -- Schema 3: when a query saw the order paid (Unix seconds), so a list can say so.
    ALTER TABLE orders ADD COLUMN paid_at INTEGER;
",
];

/// Which merchant account rows belong to: the provider and a fingerprint of its identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub provider: String,
    pub merchant: String,
}

impl Account {
    /// An account identified by non-secret parts and a one-way fingerprint of the key material.
    pub fn new(provider: &str, base_url: &str, identity: &str) -> Account {
        let digest = crate::sign::md5_hex(&format!("payment-mcp ledger v1\n{base_url}\n{identity}"));
        Account { provider: provider.to_owned(), merchant: digest[..16].to_owned() }
    }
}

/// What [`Ledger::begin_order`] / [`Ledger::begin_refund`] found under the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin<R> {
    /// Nothing: an intent was recorded and belongs to this call, which sends the request.
    New,
    /// An earlier attempt of the same request whose outcome is unknown, or whose sender died
    /// holding its intent (the lease ran out): this call now holds the intent and may ask the
    /// gateway again under the same number.
    Retry(R),
    /// An earlier attempt of the same request that finished: nothing changed.
    Earlier(R),
    /// The number was used for a different request (another amount, another order): nothing
    /// changed, and nothing may be sent.
    Conflict(R),
    /// Another call (in this process or another one on the same ledger) recorded an intent within
    /// the lease and has not finished: sending now could create a second order or refund.
    InFlight(R),
}

/// Why the ledger cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LedgerError(pub String);

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

/// The ledger: one SQLite connection per process, used for short transactions.
pub struct Ledger {
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

/// An existing row as the begin step sees it: where it stands, when it was last attempted, and
/// when the lease its attempt recorded runs out.
struct Held {
    standing: Standing,
    updated_at: i64,
    lease_until_ms: Option<i64>,
}

impl Held {
    /// Whether an intent still belongs to the call that recorded it: until the lease that call
    /// stored runs out. For an intent written before leases were stored, the lease is `fallback`
    /// (the caller's own) counted from the attempt.
    fn in_flight(&self, now_ms: i64, fallback: Duration) -> bool {
        if self.standing != Standing::Intent {
            return false;
        }
        let until = self.lease_until_ms.unwrap_or_else(|| {
            let fallback = i64::try_from(fallback.as_millis()).unwrap_or(i64::MAX);
            self.updated_at.saturating_mul(1000).saturating_add(fallback)
        });
        now_ms < until
    }
}

impl Ledger {
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
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            files::private_dir(dir)?;
        }
        files::create_private_file(path)?;
        files::restrict_file(path)?;
        let conn = Connection::open(path)
            .map_err(|e| LedgerError(format!("cannot open the ledger {}: {e}", path.display())))?;
        let ledger = Ledger { conn: Mutex::new(conn), path: Some(path.to_owned()) };
        ledger.prepare().map_err(|e| LedgerError(format!("the ledger {} is not usable: {}", path.display(), e.0)))?;
        Ok(ledger)
    }

    /// A ledger that lives in memory only (`PAYMENT_LEDGER=off`, and the sandbox).
    ///
    /// # Errors
    /// Only if SQLite cannot allocate.
    pub fn in_memory() -> Result<Ledger, LedgerError> {
        let ledger = Ledger { conn: Mutex::new(Connection::open_in_memory()?), path: None };
        ledger.prepare()?;
        Ok(ledger)
    }

    /// Whether the ledger answers a trivial query (`serve --http`'s `/readyz`).
    ///
    /// # Errors
    /// The database does not answer.
    pub fn ping(&self) -> Result<(), LedgerError> {
        let conn = self.lock();
        conn.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    /// Where the ledger lives, if on disk.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
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
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let version = usize::try_from(version).unwrap_or(usize::MAX);
        if version > MIGRATIONS.len() {
            return Err(LedgerError(format!(
                "it was written by a newer payment-mcp (schema {version}, this one knows {})",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(sql)?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
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
        let t = now();
        let t_ms = crate::time::now_unix_ms();
        let lease_until_ms = t_ms.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let begin = match select(&tx)? {
            None => {
                insert(&tx, t, lease_until_ms)?;
                Begin::New
            }
            Some((row, held)) => {
                if held.in_flight(t_ms, lease) {
                    Begin::InFlight(row)
                } else if !same_request(&row) {
                    Begin::Conflict(row)
                } else if held.standing == Standing::Finished {
                    Begin::Earlier(row)
                } else {
                    tx.prepare_cached(&format!(
                        "UPDATE {} SET outcome = 'intent', updated_at = ?4, lease_until_ms = ?5
                         WHERE provider = ?1 AND merchant = ?2 AND {} = ?3",
                        table.name(),
                        table.key()
                    ))?
                    .execute(params![
                        account.provider,
                        account.merchant,
                        key,
                        t,
                        lease_until_ms
                    ])?;
                    Begin::Retry(row)
                }
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
    pub fn note_order_state<'a>(
        &self,
        account: &Account,
        merchant_order_no: &str,
        seen: impl Into<OrderSeen<'a>>,
    ) -> Result<(), LedgerError> {
        let seen = seen.into();
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

#[cfg(test)]
mod tests;
