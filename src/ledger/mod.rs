//! The order ledger: a database that remembers every order and refund this server sent, so
//! idempotency and merchant-number queries survive the restarts MCP clients make all day, and so
//! several server instances can share one record of what was sent.
//!
//! Two backends keep the same schema, the same words and the same rules: an embedded SQLite file
//! (the default; several processes on one machine may share it) and PostgreSQL
//! (`PAYMENT_LEDGER=postgres://…`, for several instances on several machines). [`Ledger`] is an
//! enum over the two rather than a trait: there are exactly two, the payments code calls one type,
//! and nothing is boxed.
//!
//! Every create and refund is recorded as an *intent* before the request leaves, then updated with
//! its outcome. Orders and refunds go through the same begin step ([`Ledger::begin_order`],
//! [`Ledger::begin_refund`]): one transaction looks the number up and either records a new intent,
//! takes over an earlier attempt whose outcome is unknown, or reports what it found. The primary key
//! (provider, merchant, number) is what makes two racing instances send one request: exactly one
//! of them inserts the intent. An intent stores its lease, so every process judges it by the lease
//! of the call that made it ([`decide`] is that rule, shared by both backends). No secret is stored:
//! rows are keyed by provider and a one-way fingerprint of the merchant account. The schema is
//! versioned (`migrations.rs`) and migrated forward when a ledger is opened.
//!
//! The ledger also carries *wakes* ([`Wakes`]): a verified payment notification wakes every
//! `wait_for_payment` on its order at once; on PostgreSQL the wake reaches the other instances too
//! (LISTEN/NOTIFY).
//!
//! # Layout
//!
//! - this file: [`Ledger`], [`Account`], [`Begin`], the begin rule both backends share;
//! - `sqlite.rs`: the SQLite backend (file, WAL, migrations by version);
//! - `postgres/`: the PostgreSQL backend (a small connection pool, migrations under an advisory
//!   lock, LISTEN/NOTIFY for wakes);
//! - `migrations.rs`: the schema, as numbered migrations in both dialects;
//! - `records.rs`: what a row says and what a caller writes (stages, rows, updates);
//! - `list.rs`: the order list for gateways without a list API;
//! - `wake.rs`: the wake signals and their in-process hub;
//! - `files.rs`: a private directory and file on disk;
//! - `tests.rs`: the behaviour tests, run against both backends (`testing.rs` gives each test a
//!   fresh store); `sqlite_tests.rs`: files on disk and files written by earlier versions.

mod files;
mod list;
mod migrations;
mod postgres;
mod records;
mod sqlite;
mod wake;

pub use list::ListedOrder;
pub use postgres::PgLedger;
pub use records::{OrderRow, OrderSeen, OrderStage, OrderUpdate, RefundRow, RefundStage, RefundUpdate};
pub use sqlite::SqliteLedger;
pub use wake::{Signal, Wake, Wakes};

use records::Standing;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::money::Fen;
use crate::provider::{PaymentState, RefundState};

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
        Account { provider: provider.to_owned(), merchant: digest.chars().take(16).collect() }
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

/// An existing row as the begin step sees it: where it stands, when it was last attempted, and
/// when the lease its attempt recorded runs out.
pub(crate) struct Held {
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

/// What the begin step does with the row it found under a number.
enum Step<R> {
    /// Nothing there: record a new intent.
    Insert,
    /// Answer with what was found; nothing changes.
    Answer(Begin<R>),
    /// The same request, not in flight and not finished: this call takes the intent over.
    TakeOver(R),
}

/// The begin rule, the same for both backends: an intent within its lease is in flight; a
/// different request under the number is a conflict; a finished one is answered as it is; anything
/// else (an unknown outcome, an abandoned intent) is taken over by this call.
fn decide<R>(found: Option<(R, Held)>, now_ms: i64, lease: Duration, same_request: impl FnOnce(&R) -> bool) -> Step<R> {
    let Some((row, held)) = found else { return Step::Insert };
    if held.in_flight(now_ms, lease) {
        Step::Answer(Begin::InFlight(row))
    } else if !same_request(&row) {
        Step::Answer(Begin::Conflict(row))
    } else if held.standing == Standing::Finished {
        Step::Answer(Begin::Earlier(row))
    } else {
        Step::TakeOver(row)
    }
}

/// The clock readings one begin step records: now (seconds), now (milliseconds), and when the
/// lease of the intent it may record runs out (milliseconds).
fn stamps(lease: Duration) -> (i64, i64, i64) {
    let t_ms = crate::time::now_unix_ms();
    let lease_until_ms = t_ms.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
    (crate::time::now_unix(), t_ms, lease_until_ms)
}

/// What a verified gateway notification said about an order, for [`Ledger::note_notification`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notified<'a> {
    /// The final state it reported.
    pub state: PaymentState,
    pub merchant_order_no: Option<&'a str>,
    pub platform_order_no: Option<&'a str>,
}

/// The lowercase names of the final payment states: a notification never replaces one.
const FINAL_STATES: [PaymentState; 3] = [PaymentState::Paid, PaymentState::Failed, PaymentState::Closed];

/// The order ledger, on one of its two backends.
pub enum Ledger {
    Sqlite(SqliteLedger),
    /// Boxed: its pool, hub and listener make it several times the size of the SQLite variant.
    Postgres(Box<PgLedger>),
}

impl Ledger {
    /// The default location of the SQLite file: the platform's per-user data directory.
    pub fn default_path() -> Option<PathBuf> {
        SqliteLedger::default_path()
    }

    /// Opens (creating if needed, user-only) and migrates the SQLite ledger at `path`.
    ///
    /// # Errors
    /// See [`SqliteLedger::open`].
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        SqliteLedger::open(path).map(Ledger::Sqlite)
    }

    /// A ledger that lives in memory only (`PAYMENT_LEDGER=off`, and the sandbox).
    ///
    /// # Errors
    /// Only if SQLite cannot allocate.
    pub fn in_memory() -> Result<Ledger, LedgerError> {
        SqliteLedger::in_memory().map(Ledger::Sqlite)
    }

    /// Connects to PostgreSQL at `url`, migrates its schema, and starts listening for the wakes
    /// other instances send, which it passes on to `wakes`.
    ///
    /// # Errors
    /// See [`PgLedger::connect`].
    pub async fn postgres(url: &str, wakes: Wakes) -> Result<Ledger, LedgerError> {
        PgLedger::connect(url, wakes).await.map(|l| Ledger::Postgres(Box::new(l)))
    }

    /// Where the ledger lives, if in a file.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Ledger::Sqlite(l) => l.path(),
            Ledger::Postgres(_) => None,
        }
    }

    /// Where the ledger lives, for people: a file path, "memory", or the PostgreSQL server
    /// (host, port and database; never the user or password).
    pub fn describe(&self) -> String {
        match self {
            Ledger::Sqlite(l) => l.path().map_or_else(|| "memory".to_owned(), |p| p.display().to_string()),
            Ledger::Postgres(l) => l.describe(),
        }
    }

    /// The hub that wakes from other instances arrive on (PostgreSQL only).
    pub fn wakes(&self) -> Option<&Wakes> {
        match self {
            Ledger::Sqlite(_) => None,
            Ledger::Postgres(l) => Some(l.wakes()),
        }
    }

    /// Records the intent to create an order, atomically with the look-up of its merchant number
    /// (the shared begin step). The same request is the same amount.
    ///
    /// # Errors
    /// Database failures.
    pub async fn begin_order(
        &self,
        account: &Account,
        merchant_order_no: &str,
        amount: Fen,
        order_time: i64,
        lease: Duration,
    ) -> Result<Begin<OrderRow>, LedgerError> {
        match self {
            Ledger::Sqlite(l) => l.begin_order(account, merchant_order_no, amount, order_time, lease),
            Ledger::Postgres(l) => l.begin_order(account, merchant_order_no, amount, order_time, lease).await,
        }
    }

    /// Records what the gateway said about an order (or that its outcome is unknown).
    ///
    /// # Errors
    /// Database failures.
    pub async fn finish_order(
        &self,
        account: &Account,
        merchant_order_no: &str,
        update: OrderUpdate<'_>,
    ) -> Result<(), LedgerError> {
        match self {
            Ledger::Sqlite(l) => l.finish_order(account, merchant_order_no, update),
            Ledger::Postgres(l) => l.finish_order(account, merchant_order_no, update).await,
        }
    }

    /// Forgets an order whose only attempt the gateway refused for sure, so a corrected retry is
    /// not a "repeat". Only an intent is forgotten, never a created order or an unknown outcome.
    ///
    /// # Errors
    /// Database failures.
    pub async fn forget_order(&self, account: &Account, merchant_order_no: &str) -> Result<(), LedgerError> {
        match self {
            Ledger::Sqlite(l) => l.forget_order(account, merchant_order_no),
            Ledger::Postgres(l) => l.forget_order(account, merchant_order_no).await,
        }
    }

    /// The order recorded under a merchant number.
    ///
    /// # Errors
    /// Database failures.
    pub async fn order(&self, account: &Account, merchant_order_no: &str) -> Result<Option<OrderRow>, LedgerError> {
        match self {
            Ledger::Sqlite(l) => l.order(account, merchant_order_no),
            Ledger::Postgres(l) => l.order(account, merchant_order_no).await,
        }
    }

    /// Remembers what a query saw of an order: its state, when it was paid, and its platform
    /// number when the ledger did not have it (a create whose reply was lost), so the ledger knows
    /// the order exists.
    ///
    /// # Errors
    /// Database failures.
    pub async fn note_order_state<'a>(
        &self,
        account: &Account,
        merchant_order_no: &str,
        seen: impl Into<OrderSeen<'a>>,
    ) -> Result<(), LedgerError> {
        let seen = seen.into();
        match self {
            Ledger::Sqlite(l) => l.note_order_state(account, merchant_order_no, seen),
            Ledger::Postgres(l) => l.note_order_state(account, merchant_order_no, seen).await,
        }
    }

    /// Records the final state a verified gateway notification reported, found by merchant number
    /// (or by platform number when the notification names no merchant number). Gateways repeat a
    /// notification many times: only the first that finds the order without a final state changes
    /// it (and stamps `notified_at`); `true` when this call did.
    ///
    /// # Errors
    /// Database failures.
    pub async fn note_notification(&self, account: &Account, notified: Notified<'_>) -> Result<bool, LedgerError> {
        if !notified.state.is_final() {
            return Ok(false);
        }
        match self {
            Ledger::Sqlite(l) => l.note_notification(account, notified),
            Ledger::Postgres(l) => l.note_notification(account, notified).await,
        }
    }

    /// Remembers the state a refund query saw for a refund this server sent (nothing happens for
    /// refunds it did not send), so a repeated refund call reports it.
    ///
    /// # Errors
    /// Database failures.
    pub async fn note_refund_state(
        &self,
        account: &Account,
        mch_refund_no: &str,
        state: RefundState,
    ) -> Result<(), LedgerError> {
        match self {
            Ledger::Sqlite(l) => l.note_refund_state(account, mch_refund_no, state),
            Ledger::Postgres(l) => l.note_refund_state(account, mch_refund_no, state).await,
        }
    }

    /// Records the intent to refund, atomically with the look-up of the refund number (the shared
    /// begin step). The same request is the same order and amount.
    ///
    /// # Errors
    /// Database failures.
    pub async fn begin_refund(
        &self,
        account: &Account,
        mch_refund_no: &str,
        order_no: &str,
        amount: Fen,
        lease: Duration,
    ) -> Result<Begin<RefundRow>, LedgerError> {
        match self {
            Ledger::Sqlite(l) => l.begin_refund(account, mch_refund_no, order_no, amount, lease),
            Ledger::Postgres(l) => l.begin_refund(account, mch_refund_no, order_no, amount, lease).await,
        }
    }

    /// Records what the gateway said about a refund.
    ///
    /// # Errors
    /// Database failures.
    pub async fn finish_refund(
        &self,
        account: &Account,
        mch_refund_no: &str,
        update: RefundUpdate<'_>,
    ) -> Result<(), LedgerError> {
        match self {
            Ledger::Sqlite(l) => l.finish_refund(account, mch_refund_no, update),
            Ledger::Postgres(l) => l.finish_refund(account, mch_refund_no, update).await,
        }
    }

    /// Forgets a refund whose only attempt the gateway refused for sure (an intent, nothing else).
    ///
    /// # Errors
    /// Database failures.
    pub async fn forget_refund(&self, account: &Account, mch_refund_no: &str) -> Result<(), LedgerError> {
        match self {
            Ledger::Sqlite(l) => l.forget_refund(account, mch_refund_no),
            Ledger::Postgres(l) => l.forget_refund(account, mch_refund_no).await,
        }
    }

    /// A page of this account's orders, newest first, with optional filters; and how many match.
    /// A created order never queried counts as `pending`; one whose outcome is unknown, `unknown`.
    ///
    /// # Errors
    /// Database failures.
    pub async fn list_orders(
        &self,
        account: &Account,
        state: Option<PaymentState>,
        from: Option<i64>,
        to: Option<i64>,
        page: u32,
        limit: u32,
    ) -> Result<(u64, Vec<ListedOrder>), LedgerError> {
        let filter = list::Filter { state, from, to, page, limit };
        match self {
            Ledger::Sqlite(l) => l.list_orders(account, &filter),
            Ledger::Postgres(l) => l.list_orders(account, &filter).await,
        }
    }

    /// Tells the other instances on this ledger about `wake` (PostgreSQL NOTIFY; nothing to do
    /// for SQLite, whose processes serve separate clients on one machine and poll).
    ///
    /// # Errors
    /// Database failures.
    pub async fn publish(&self, wake: &Wake) -> Result<(), LedgerError> {
        match self {
            Ledger::Sqlite(_) => Ok(()),
            Ledger::Postgres(l) => l.publish(wake).await,
        }
    }
}

#[cfg(test)]
mod sqlite_tests;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
