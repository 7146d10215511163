//! The ledger's schema, as numbered migrations for both backends: version N of the SQLite list and
//! version N of the PostgreSQL list make the same tables, columns and words, in each database's
//! dialect (PostgreSQL's `INTEGER` is 32-bit, so its integers are `BIGINT`).
//!
//! Each database records what ran in `schema_migrations` (version, name, when). SQLite files also
//! keep `PRAGMA user_version` equal to the highest version, as every earlier payment-mcp wrote it:
//! a file migrated by this version is still refused by an older binary that does not know its
//! schema, and a file written by an older binary (no `schema_migrations` table yet) is recognised
//! by its `user_version` and carried forward. docs/ledger.md describes the schema.

/// One migration: its version (1-based, in order), a short name, and the SQL of each backend.
pub(super) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// The bookkeeping table, created before any numbered migration runs (same text in both dialects).
pub(super) const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
        version BIGINT PRIMARY KEY,
        name TEXT NOT NULL,
        applied_at BIGINT NOT NULL
    )";

/// Every migration, in order.
pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "orders and refunds",
        sqlite: "
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
        postgres: "
    CREATE TABLE orders (
        provider TEXT NOT NULL,
        merchant TEXT NOT NULL,
        merchant_order_no TEXT NOT NULL,
        amount_fen BIGINT NOT NULL,
        order_time BIGINT NOT NULL,
        outcome TEXT NOT NULL,
        platform_order_no TEXT,
        pay_url TEXT,
        qr_content TEXT,
        charged_fen BIGINT,
        raw_status TEXT,
        last_state TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (provider, merchant, merchant_order_no)
    );
    CREATE TABLE refunds (
        provider TEXT NOT NULL,
        merchant TEXT NOT NULL,
        mch_refund_no TEXT NOT NULL,
        order_no TEXT NOT NULL,
        amount_fen BIGINT NOT NULL,
        outcome TEXT NOT NULL,
        refund_no TEXT,
        raw_status TEXT,
        last_state TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (provider, merchant, mch_refund_no)
    );
",
    },
    Migration {
        version: 2,
        name: "lease stored with the intent",
        // The lease is stored with the intent (Unix milliseconds when it runs out), so a repeat
        // from a process with a shorter timeout of its own cannot take over a call still in
        // flight. NULL on rows written before: their lease is computed from updated_at, as then.
        sqlite: "
    ALTER TABLE orders ADD COLUMN lease_until_ms INTEGER;
    ALTER TABLE refunds ADD COLUMN lease_until_ms INTEGER;
",
        postgres: "
    ALTER TABLE orders ADD COLUMN lease_until_ms BIGINT;
    ALTER TABLE refunds ADD COLUMN lease_until_ms BIGINT;
",
    },
    Migration {
        version: 3,
        name: "payment time",
        // When a query saw the order paid (Unix seconds), so a list can say so.
        sqlite: "ALTER TABLE orders ADD COLUMN paid_at INTEGER;",
        postgres: "ALTER TABLE orders ADD COLUMN paid_at BIGINT;",
    },
    Migration {
        version: 4,
        name: "gateway notifications",
        // When the first verified notification from the gateway arrived for the order (Unix
        // seconds): a repeat of it changes nothing, and the operator can tell a notified order
        // from one only a query saw.
        sqlite: "ALTER TABLE orders ADD COLUMN notified_at INTEGER;",
        postgres: "ALTER TABLE orders ADD COLUMN notified_at BIGINT;",
    },
];

/// The highest version this build knows.
pub(super) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The refusal for a database a newer payment-mcp migrated further than this one knows.
pub(super) fn too_new(found: i64) -> String {
    format!("it was written by a newer payment-mcp (schema {found}, this one knows {})", latest())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_count_up_from_one_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.name);
        }
    }
}
