//! Test support for both backends: a fresh store of each kind, and the PostgreSQL skip rule.
//!
//! PostgreSQL tests run when `PAYMENT_TEST_POSTGRES` names a server (scripts/pg-test-server.sh
//! starts one; `.ci/run` does). Each test gets a schema of its own in it. Without the variable they
//! skip with a message written straight to stderr (past the test harness's capture, so it shows in
//! every run); with `PAYMENT_TEST_POSTGRES_REQUIRED=1` (set by `.ci/run`) a skip is a failure.

use std::io::Write as _;
use std::path::PathBuf;

use super::{Ledger, Wakes};

/// Where a test's ledgers live: every [`Store::open`] opens another ledger on the same data, as
/// another process would.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Store {
    /// A fresh SQLite file.
    pub fn sqlite(test: &str) -> Store {
        let dir = std::env::temp_dir().join(format!("payment-mcp-ledger-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Store::Sqlite(dir.join("ledger.sqlite3"))
    }

    /// A fresh PostgreSQL schema, or `None` (with a loud message) when there is no server.
    pub async fn postgres(test: &str) -> Option<Store> {
        postgres_url(test).await.map(Store::Postgres)
    }

    /// Another ledger on this store.
    pub async fn open(&self) -> Ledger {
        self.open_with(Wakes::new()).await
    }

    /// Another ledger on this store, its wakes arriving on `wakes` (PostgreSQL).
    pub async fn open_with(&self, wakes: Wakes) -> Ledger {
        match self {
            Store::Sqlite(path) => Ledger::open(path).unwrap(),
            Store::Postgres(url) => Ledger::postgres(url, wakes).await.unwrap(),
        }
    }
}

/// Says loudly that a PostgreSQL test did not run (or fails, when CI requires them).
pub fn skip(test: &str) {
    let required = std::env::var("PAYMENT_TEST_POSTGRES_REQUIRED").is_ok_and(|v| v == "1");
    assert!(!required, "{test}: PAYMENT_TEST_POSTGRES_REQUIRED=1 but PAYMENT_TEST_POSTGRES is not set");
    let installed = std::path::Path::new("/usr/lib/postgresql").exists();
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! SKIPPED (no PostgreSQL) {test}: set PAYMENT_TEST_POSTGRES to run it{}: eval \"$(scripts/pg-test-server.sh start)\" !!!\n",
        if installed { " (PostgreSQL is installed)" } else { " (apt-get install postgresql first)" }
    );
}

/// A URL for a new, empty schema on the test server (its `search_path`), or `None` after a
/// loud skip message.
pub async fn postgres_url(test: &str) -> Option<String> {
    let Ok(admin) = std::env::var("PAYMENT_TEST_POSTGRES") else {
        skip(test);
        return None;
    };
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).unwrap();
    let schema = format!("t_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
    let sep = if admin.contains('?') { '&' } else { '?' };
    Some(format!("{admin}{sep}options=-csearch_path%3D{schema}"))
}

impl Ledger {
    /// Runs `sql` as it is (tests reach under the API to age or damage rows).
    pub async fn execute_raw(&self, sql: &str) {
        match self {
            Ledger::Sqlite(l) => l.lock().execute_batch(sql).unwrap(),
            Ledger::Postgres(l) => l.execute_raw(sql).await,
        }
    }

    /// The versions `schema_migrations` records.
    pub async fn recorded_migrations(&self) -> Vec<i64> {
        match self {
            Ledger::Sqlite(l) => {
                let conn = l.lock();
                let mut stmt = conn.prepare("SELECT version FROM schema_migrations ORDER BY version").unwrap();
                stmt.query_map([], |r| r.get(0)).unwrap().collect::<Result<_, _>>().unwrap()
            }
            Ledger::Postgres(l) => l.recorded_migrations().await,
        }
    }
}
