//! The PostgreSQL backend (`PAYMENT_LEDGER=postgres://…`): several instances, on several machines,
//! share one ledger with the same schema and the same rules as the SQLite file.
//!
//! - **Uniqueness.** The primary key (provider, merchant, number) decides races: the begin step
//!   first tries `INSERT … ON CONFLICT DO NOTHING`; exactly one of two racing instances inserts
//!   the intent and sends, and the other finds the row (`SELECT … FOR UPDATE`, waiting for the
//!   winner's transaction) and answers from it as SQLite does ([`decide`](super::decide)).
//! - **Leases** live in the row (`lease_until_ms`), so an instance judges another's intent by the
//!   lease that instance stored.
//! - **Migrations** run in one transaction under an advisory lock, so instances starting together
//!   migrate once; `schema_migrations` records each version.
//! - **Wakes** travel between instances by LISTEN/NOTIFY (`listen.rs`).
//! - **Bounded.** Every operation has [`OP_TIMEOUT`]: a ledger that stops answering fails the call
//!   (before anything is sent, for a begin step) instead of hanging it.
//!
//! The connection is plain TCP or a Unix socket (no TLS in this build): run PostgreSQL on the same
//! host or a private network, as README.md says.

mod listen;
mod ops;
mod pool;

use std::future::Future;
use std::time::Duration;

use tokio_postgres::Row;
use tokio_postgres::config::Host;
use tokio_util::sync::DropGuard;

use super::migrations::{MIGRATIONS, MIGRATIONS_TABLE, latest, too_new};
use super::{Account, Begin, Held, LedgerError, OrderRow, RefundRow, Step, Wakes, decide, stamps};
use crate::money::Fen;
use pool::{Pool, describe_error};

/// A statement parameter.
type Param<'a> = dyn tokio_postgres::types::ToSql + Sync + 'a;

/// The longest one ledger operation may take, waiting for a connection included.
const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long connecting may take when the URL does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The advisory lock migrations hold (any constant; this one spells "paymcp" in ASCII).
const MIGRATION_LOCK: i64 = 0x7061_796d_6370;

/// The PostgreSQL ledger.
pub struct PgLedger {
    pool: Pool,
    wakes: Wakes,
    describe: String,
    /// Stops the wake listener when the ledger goes.
    _listener: DropGuard,
}

fn db(what: &str) -> impl FnOnce(tokio_postgres::Error) -> LedgerError + '_ {
    move |e| LedgerError(describe_error(what, &e))
}

/// `op`, failed after [`OP_TIMEOUT`].
async fn timed<T>(op: impl Future<Output = Result<T, LedgerError>>) -> Result<T, LedgerError> {
    tokio::time::timeout(OP_TIMEOUT, op).await.unwrap_or_else(|_| {
        Err(LedgerError(format!("the PostgreSQL ledger did not answer within {} s", OP_TIMEOUT.as_secs())))
    })
}

fn amount(fen: Fen) -> i64 {
    i64::try_from(fen.0).unwrap_or(i64::MAX)
}

impl PgLedger {
    /// Connects to the PostgreSQL server at `url` (a `postgres://` or `postgresql://` URL, or a
    /// key=value connection string), migrates its schema, and starts listening for wakes, which
    /// arrive on `wakes`.
    ///
    /// # Errors
    /// A malformed URL, an unreachable server, a refused login, a schema newer than this build.
    pub async fn connect(url: &str, wakes: Wakes) -> Result<PgLedger, LedgerError> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| LedgerError(format!("PAYMENT_LEDGER is not a usable PostgreSQL URL ({e})")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("payment-mcp");
        }
        let describe = describe(&config);
        let pool = Pool::new(config.clone());
        timed(migrate(&pool)).await?;
        let listener = timed(listen::start(config, wakes.clone())).await?;
        Ok(PgLedger { pool, wakes, describe, _listener: listener })
    }

    /// `postgres://host:port/db` without user or password.
    pub fn describe(&self) -> String {
        self.describe.clone()
    }

    /// The hub wakes from other instances arrive on.
    pub fn wakes(&self) -> &Wakes {
        &self.wakes
    }

    /// Runs one statement that changes rows; how many it changed.
    async fn execute(&self, sql: &'static str, params: &[&Param<'_>]) -> Result<u64, LedgerError> {
        timed(async {
            let mut conn = self.pool.get().await?;
            let statement = conn.statement(sql).await?;
            let n = conn.conn()?.client.execute(&statement, params).await.map_err(db("ledger write failed"))?;
            conn.release();
            Ok(n)
        })
        .await
    }

    /// Runs one query; its rows.
    async fn query(&self, sql: &'static str, params: &[&Param<'_>]) -> Result<Vec<Row>, LedgerError> {
        timed(async {
            let mut conn = self.pool.get().await?;
            let statement = conn.statement(sql).await?;
            let rows = conn.conn()?.client.query(&statement, params).await.map_err(db("ledger read failed"))?;
            conn.release();
            Ok(rows)
        })
        .await
    }

    /// See [`Ledger::begin_order`](super::Ledger::begin_order).
    ///
    /// # Errors
    /// Database failures.
    pub async fn begin_order(
        &self,
        account: &Account,
        no: &str,
        amount_fen: Fen,
        order_time: i64,
        lease: Duration,
    ) -> Result<Begin<OrderRow>, LedgerError> {
        let (a, m) = (&account.provider, &account.merchant);
        let amount_fen = amount(amount_fen);
        let (t, t_ms, until) = stamps(lease);
        let sql = [ops::INSERT_ORDER, ops::SELECT_ORDER_LOCKED, ops::TAKE_OVER_ORDER];
        let insert: [&Param<'_>; 7] = [a, m, &no, &amount_fen, &order_time, &t, &until];
        let key: [&Param<'_>; 3] = [a, m, &no];
        let take_over: [&Param<'_>; 5] = [a, m, &no, &t, &until];
        let same = |row: &OrderRow| amount(row.amount) == amount_fen;
        timed(self.begin(sql, &insert, &key, &take_over, t_ms, lease, ops::order_row, same)).await
    }

    /// See [`Ledger::begin_refund`](super::Ledger::begin_refund).
    ///
    /// # Errors
    /// Database failures.
    pub async fn begin_refund(
        &self,
        account: &Account,
        no: &str,
        order_no: &str,
        amount_fen: Fen,
        lease: Duration,
    ) -> Result<Begin<RefundRow>, LedgerError> {
        let (a, m) = (&account.provider, &account.merchant);
        let amount_fen = amount(amount_fen);
        let (t, t_ms, until) = stamps(lease);
        let sql = [ops::INSERT_REFUND, ops::SELECT_REFUND_LOCKED, ops::TAKE_OVER_REFUND];
        let insert: [&Param<'_>; 7] = [a, m, &no, &order_no, &amount_fen, &t, &until];
        let key: [&Param<'_>; 3] = [a, m, &no];
        let take_over: [&Param<'_>; 5] = [a, m, &no, &t, &until];
        let same = |row: &RefundRow| row.order_no == order_no && amount(row.amount) == amount_fen;
        timed(self.begin(sql, &insert, &key, &take_over, t_ms, lease, ops::refund_row, same)).await
    }

    /// The begin step: in one transaction, insert the intent unless the number exists (the
    /// primary key decides between racing instances); otherwise lock the row, decide as SQLite
    /// does, and take the intent over when the rule says so. A row forgotten between the two
    /// statements (a refused intent deleted) is tried again.
    #[allow(clippy::too_many_arguments, reason = "the statements and parameters of one table, named")]
    async fn begin<R>(
        &self,
        [insert_sql, select_sql, take_over_sql]: [&'static str; 3],
        insert_params: &[&Param<'_>],
        key: &[&Param<'_>],
        take_over_params: &[&Param<'_>],
        now_ms: i64,
        lease: Duration,
        read: impl Fn(&Row) -> Result<(R, Held), LedgerError>,
        same_request: impl Fn(&R) -> bool,
    ) -> Result<Begin<R>, LedgerError> {
        let mut pooled = self.pool.get().await?;
        let insert = pooled.statement(insert_sql).await?;
        let select = pooled.statement(select_sql).await?;
        let take_over = pooled.statement(take_over_sql).await?;
        let conn = pooled.conn()?;
        for _ in 0..3 {
            let tx = conn.client.transaction().await.map_err(db("ledger transaction failed"))?;
            if tx.execute(&insert, insert_params).await.map_err(db("ledger write failed"))? == 1 {
                tx.commit().await.map_err(db("ledger commit failed"))?;
                pooled.release();
                return Ok(Begin::New);
            }
            let Some(row) = tx.query_opt(&select, key).await.map_err(db("ledger read failed"))? else {
                continue;
            };
            let begin = match decide(Some(read(&row)?), now_ms, lease, &same_request) {
                Step::Insert => continue,
                Step::Answer(begin) => begin,
                Step::TakeOver(found) => {
                    tx.execute(&take_over, take_over_params).await.map_err(db("ledger write failed"))?;
                    Begin::Retry(found)
                }
            };
            tx.commit().await.map_err(db("ledger commit failed"))?;
            pooled.release();
            return Ok(begin);
        }
        Err(LedgerError("the ledger row kept changing under the begin step; try again".into()))
    }
}

/// Runs the migrations this database lacks, in one transaction under [`MIGRATION_LOCK`].
async fn migrate(pool: &Pool) -> Result<(), LedgerError> {
    let mut pooled = pool.get().await?;
    let conn = pooled.conn()?;
    let tx = conn.client.transaction().await.map_err(db("ledger migration failed"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db("ledger migration lock failed"))?;
    tx.batch_execute(MIGRATIONS_TABLE).await.map_err(db("ledger migration failed"))?;
    let current: i64 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])
        .await
        .map_err(db("ledger migration failed"))?
        .try_get(0)
        .map_err(db("ledger migration failed"))?;
    if current > latest() {
        return Err(LedgerError(too_new(current)));
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        tx.batch_execute(m.postgres).await.map_err(db("ledger migration failed"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &crate::time::now_unix()],
        )
        .await
        .map_err(db("ledger migration failed"))?;
    }
    tx.commit().await.map_err(db("ledger migration failed"))?;
    pooled.release();
    Ok(())
}

/// Where the server is, for people: `postgres://host:port/db` (no user, no password).
fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("postgres://{host}:{port}/{}", config.get_dbname().unwrap_or(""))
}
