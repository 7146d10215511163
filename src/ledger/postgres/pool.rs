//! A small PostgreSQL connection pool: a few connections, each with the statements it prepared.
//!
//! Written here rather than taken from a crate because the ledger needs little: a bound on open
//! connections, reuse, prepared statements kept per connection, and a broken or interrupted
//! connection thrown away rather than reused. A connection is returned to the pool only by
//! [`Pooled::release`] after an operation finished; one whose operation failed or was abandoned
//! (a timeout drops its future mid-way) is closed, so the next call never inherits a half-done
//! transaction.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::{Client, NoTls, Statement};

use crate::ledger::LedgerError;

/// The most connections one instance opens: calls beyond it wait for one to be released. Each
/// ledger operation holds a connection for a few round trips, so a handful serves many calls.
const MAX_CONNECTIONS: usize = 8;

/// One connection and the statements prepared on it.
pub(super) struct Conn {
    pub client: Client,
    statements: HashMap<&'static str, Statement>,
}

/// The pool.
pub(super) struct Pool {
    config: tokio_postgres::Config,
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
}

/// A connection taken from the pool; closed on drop unless [`Pooled::release`]d.
pub(super) struct Pooled<'a> {
    conn: Option<Conn>,
    pool: &'a Pool,
    _permit: SemaphorePermit<'a>,
}

impl Pool {
    pub fn new(config: tokio_postgres::Config) -> Pool {
        Pool { config, idle: Mutex::new(Vec::new()), permits: Semaphore::new(MAX_CONNECTIONS) }
    }

    /// An idle connection, or a new one.
    ///
    /// # Errors
    /// When no connection can be made.
    pub async fn get(&self) -> Result<Pooled<'_>, LedgerError> {
        let permit = self.permits.acquire().await.map_err(|_| LedgerError("the ledger pool is closed".into()))?;
        let idle = loop {
            let next = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match next {
                Some(conn) if conn.client.is_closed() => continue,
                other => break other,
            }
        };
        let conn = match idle {
            Some(conn) => conn,
            None => Conn { client: connect(&self.config).await?, statements: HashMap::new() },
        };
        Ok(Pooled { conn: Some(conn), pool: self, _permit: permit })
    }
}

/// Opens one connection and drives it in its own task.
///
/// # Errors
/// When the server cannot be reached or refuses the login.
pub(super) async fn connect(config: &tokio_postgres::Config) -> Result<Client, LedgerError> {
    let (client, connection) =
        config.connect(NoTls).await.map_err(|e| LedgerError(describe_error("cannot connect to PostgreSQL", &e)))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!("ledger: a PostgreSQL connection ended: {e}");
        }
    });
    Ok(client)
}

/// A PostgreSQL error as one line: what was being done, the server's message and its SQLSTATE.
pub(super) fn describe_error(what: &str, e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{what}: {} (SQLSTATE {})", db.message(), db.code().code()),
        None => format!("{what}: {e}"),
    }
}

impl Pooled<'_> {
    /// The connection.
    pub fn conn(&mut self) -> Result<&mut Conn, LedgerError> {
        self.conn.as_mut().ok_or_else(|| LedgerError("the ledger connection was already released".into()))
    }

    /// `sql` prepared on this connection (once per connection).
    ///
    /// # Errors
    /// When the server refuses the statement.
    pub async fn statement(&mut self, sql: &'static str) -> Result<Statement, LedgerError> {
        let conn = self.conn()?;
        if let Some(statement) = conn.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement =
            conn.client.prepare(sql).await.map_err(|e| LedgerError(describe_error("ledger statement failed", &e)))?;
        conn.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// Gives the connection back for reuse: its operation finished.
    pub fn release(mut self) {
        if let Some(conn) = self.conn.take().filter(|c| !c.client.is_closed()) {
            self.pool.idle.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
        }
    }
}
