//! The PostgreSQL ledger's statements and the operations other than the begin step, each the
//! same SQL as the SQLite backend's in PostgreSQL's dialect (`$n` parameters, typed NULL checks).

use std::sync::LazyLock;

use tokio_postgres::Row;

use super::{PgLedger, db, listen};
use crate::ledger::list::{Filter, ListedOrder, SHOWN_STATE};
use crate::ledger::records::{fen, payment_state, refund_state};
use crate::ledger::{
    Account, FINAL_STATES, Held, LedgerError, Notified, OrderRow, OrderSeen, OrderStage, OrderUpdate, RefundRow,
    RefundStage, RefundUpdate, Wake,
};
use crate::provider::RefundState;

pub(super) const INSERT_ORDER: &str =
    "INSERT INTO orders (provider, merchant, merchant_order_no, amount_fen, order_time,
        outcome, created_at, updated_at, lease_until_ms)
    VALUES ($1, $2, $3, $4, $5, 'intent', $6, $6, $7)
    ON CONFLICT (provider, merchant, merchant_order_no) DO NOTHING";

const ORDER_COLUMNS: &str =
    "amount_fen, order_time, outcome, platform_order_no, pay_url, qr_content, charged_fen, raw_status,
        last_state, updated_at, lease_until_ms";

pub(super) const SELECT_ORDER_LOCKED: &str =
    "SELECT amount_fen, order_time, outcome, platform_order_no, pay_url, qr_content,
        charged_fen, raw_status, last_state, updated_at, lease_until_ms
    FROM orders WHERE provider = $1 AND merchant = $2 AND merchant_order_no = $3 FOR UPDATE";

pub(super) const TAKE_OVER_ORDER: &str = "UPDATE orders SET outcome = 'intent', updated_at = $4, lease_until_ms = $5
    WHERE provider = $1 AND merchant = $2 AND merchant_order_no = $3";

pub(super) const INSERT_REFUND: &str = "INSERT INTO refunds (provider, merchant, mch_refund_no, order_no, amount_fen,
        outcome, created_at, updated_at, lease_until_ms)
    VALUES ($1, $2, $3, $4, $5, 'intent', $6, $6, $7)
    ON CONFLICT (provider, merchant, mch_refund_no) DO NOTHING";

pub(super) const SELECT_REFUND_LOCKED: &str = "SELECT order_no, amount_fen, outcome, refund_no, raw_status, last_state,
        updated_at, lease_until_ms
    FROM refunds WHERE provider = $1 AND merchant = $2 AND mch_refund_no = $3 FOR UPDATE";

pub(super) const TAKE_OVER_REFUND: &str = "UPDATE refunds SET outcome = 'intent', updated_at = $4, lease_until_ms = $5
    WHERE provider = $1 AND merchant = $2 AND mch_refund_no = $3";

static SELECT_ORDER: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {ORDER_COLUMNS} FROM orders WHERE provider = $1 AND merchant = $2 AND merchant_order_no = $3")
});

const LIST_FILTER: &str = "provider = $1 AND merchant = $2 AND ($3::text IS NULL OR {SHOWN} = $3::text)
    AND ($4::bigint IS NULL OR order_time >= $4::bigint) AND ($5::bigint IS NULL OR order_time <= $5::bigint)";

static COUNT_ORDERS: LazyLock<String> =
    LazyLock::new(|| format!("SELECT COUNT(*) FROM orders WHERE {}", LIST_FILTER.replace("{SHOWN}", SHOWN_STATE)));

static LIST_ORDERS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT merchant_order_no, platform_order_no, amount_fen, order_time, last_state, outcome, paid_at FROM orders
         WHERE {} ORDER BY order_time DESC, merchant_order_no DESC LIMIT $6 OFFSET $7",
        LIST_FILTER.replace("{SHOWN}", SHOWN_STATE)
    )
});

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T, LedgerError> {
    row.try_get(i).map_err(db("ledger row unreadable"))
}

/// An order row as [`SELECT_ORDER_LOCKED`] / `SELECT_ORDER` read it.
pub(super) fn order_row(r: &Row) -> Result<(OrderRow, Held), LedgerError> {
    let stage = OrderStage::from_word(get(r, 2)?)?;
    Ok((
        OrderRow {
            amount: fen(get(r, 0)?),
            order_time: get(r, 1)?,
            stage,
            platform_order_no: get(r, 3)?,
            pay_url: get(r, 4)?,
            qr_content: get(r, 5)?,
            charged: get::<Option<i64>>(r, 6)?.map(fen),
            raw_status: get(r, 7)?,
            last_state: payment_state(get(r, 8)?),
        },
        Held { standing: stage.standing(), updated_at: get(r, 9)?, lease_until_ms: get(r, 10)? },
    ))
}

/// A refund row as [`SELECT_REFUND_LOCKED`] reads it.
pub(super) fn refund_row(r: &Row) -> Result<(RefundRow, Held), LedgerError> {
    let stage = RefundStage::from_word(get(r, 2)?)?;
    Ok((
        RefundRow {
            order_no: get(r, 0)?,
            amount: fen(get(r, 1)?),
            stage,
            refund_no: get(r, 3)?,
            raw_status: get(r, 4)?,
            last_state: refund_state(get(r, 5)?),
        },
        Held { standing: stage.standing(), updated_at: get(r, 6)?, lease_until_ms: get(r, 7)? },
    ))
}

fn now() -> i64 {
    crate::time::now_unix()
}

impl PgLedger {
    /// See [`Ledger::finish_order`](crate::ledger::Ledger::finish_order).
    ///
    /// # Errors
    /// Database failures.
    pub async fn finish_order(&self, a: &Account, no: &str, u: OrderUpdate<'_>) -> Result<(), LedgerError> {
        let charged = u.charged.map(super::amount);
        self.execute(
            "UPDATE orders SET outcome = $4, platform_order_no = COALESCE($5, platform_order_no),
                 pay_url = COALESCE($6, pay_url), qr_content = COALESCE($7, qr_content),
                 charged_fen = COALESCE($8, charged_fen), raw_status = COALESCE($9, raw_status), updated_at = $10
             WHERE provider = $1 AND merchant = $2 AND merchant_order_no = $3",
            &[
                &a.provider,
                &a.merchant,
                &no,
                &u.stage.as_str(),
                &u.platform_order_no,
                &u.pay_url,
                &u.qr_content,
                &charged,
                &u.raw_status,
                &now(),
            ],
        )
        .await
        .map(drop)
    }

    /// See [`Ledger::forget_order`](crate::ledger::Ledger::forget_order).
    ///
    /// # Errors
    /// Database failures.
    pub async fn forget_order(&self, a: &Account, no: &str) -> Result<(), LedgerError> {
        self.execute(
            "DELETE FROM orders WHERE provider = $1 AND merchant = $2 AND merchant_order_no = $3 AND outcome = 'intent'",
            &[&a.provider, &a.merchant, &no],
        )
        .await
        .map(drop)
    }

    /// See [`Ledger::order`](crate::ledger::Ledger::order).
    ///
    /// # Errors
    /// Database failures.
    pub async fn order(&self, a: &Account, no: &str) -> Result<Option<OrderRow>, LedgerError> {
        let rows = self.query(&SELECT_ORDER, &[&a.provider, &a.merchant, &no]).await?;
        rows.first().map(|r| order_row(r).map(|(row, _)| row)).transpose()
    }

    /// See [`Ledger::note_order_state`](crate::ledger::Ledger::note_order_state).
    ///
    /// # Errors
    /// Database failures.
    pub async fn note_order_state(&self, a: &Account, no: &str, seen: OrderSeen<'_>) -> Result<(), LedgerError> {
        // `updated_at` stays: it dates the last attempt, which is what an intent's lease runs from.
        self.execute(
            "UPDATE orders SET last_state = $4, platform_order_no = COALESCE(platform_order_no, $5),
                 paid_at = COALESCE($6, paid_at)
             WHERE provider = $1 AND merchant = $2 AND merchant_order_no = $3",
            &[&a.provider, &a.merchant, &no, &seen.state.name(), &seen.platform_order_no, &seen.paid_at],
        )
        .await
        .map(drop)
    }

    /// See [`Ledger::note_notification`](crate::ledger::Ledger::note_notification).
    ///
    /// # Errors
    /// Database failures.
    pub async fn note_notification(&self, a: &Account, n: Notified<'_>) -> Result<bool, LedgerError> {
        let [paid, failed, closed] = FINAL_STATES.map(|s| s.name());
        let changed = self
            .execute(
                "UPDATE orders SET last_state = $5, platform_order_no = COALESCE(platform_order_no, $4),
                     notified_at = $6
                 WHERE provider = $1 AND merchant = $2
                   AND (merchant_order_no = $3::text OR ($3::text IS NULL AND platform_order_no = $4::text))
                   AND (last_state IS NULL OR last_state NOT IN ($7, $8, $9))",
                &[
                    &a.provider,
                    &a.merchant,
                    &n.merchant_order_no,
                    &n.platform_order_no,
                    &n.state.name(),
                    &now(),
                    &paid,
                    &failed,
                    &closed,
                ],
            )
            .await?;
        Ok(changed > 0)
    }

    /// See [`Ledger::note_refund_state`](crate::ledger::Ledger::note_refund_state).
    ///
    /// # Errors
    /// Database failures.
    pub async fn note_refund_state(&self, a: &Account, no: &str, state: RefundState) -> Result<(), LedgerError> {
        self.execute(
            "UPDATE refunds SET last_state = $4 WHERE provider = $1 AND merchant = $2 AND mch_refund_no = $3",
            &[&a.provider, &a.merchant, &no, &state.name()],
        )
        .await
        .map(drop)
    }

    /// See [`Ledger::finish_refund`](crate::ledger::Ledger::finish_refund).
    ///
    /// # Errors
    /// Database failures.
    pub async fn finish_refund(&self, a: &Account, no: &str, u: RefundUpdate<'_>) -> Result<(), LedgerError> {
        self.execute(
            "UPDATE refunds SET outcome = $4, refund_no = COALESCE($5, refund_no), raw_status = COALESCE($6, raw_status),
                 last_state = COALESCE($7, last_state), updated_at = $8
             WHERE provider = $1 AND merchant = $2 AND mch_refund_no = $3",
            &[
                &a.provider,
                &a.merchant,
                &no,
                &u.stage.as_str(),
                &u.refund_no,
                &u.raw_status,
                &u.state.map(RefundState::name),
                &now(),
            ],
        )
        .await
        .map(drop)
    }

    /// See [`Ledger::forget_refund`](crate::ledger::Ledger::forget_refund).
    ///
    /// # Errors
    /// Database failures.
    pub async fn forget_refund(&self, a: &Account, no: &str) -> Result<(), LedgerError> {
        self.execute(
            "DELETE FROM refunds WHERE provider = $1 AND merchant = $2 AND mch_refund_no = $3 AND outcome = 'intent'",
            &[&a.provider, &a.merchant, &no],
        )
        .await
        .map(drop)
    }

    /// See [`Ledger::list_orders`](crate::ledger::Ledger::list_orders).
    ///
    /// # Errors
    /// Database failures.
    pub(in crate::ledger) async fn list_orders(
        &self,
        a: &Account,
        f: &Filter,
    ) -> Result<(u64, Vec<ListedOrder>), LedgerError> {
        let state = f.state.map(crate::provider::PaymentState::name);
        let total: i64 =
            match self.query(&COUNT_ORDERS, &[&a.provider, &a.merchant, &state, &f.from, &f.to]).await?.first() {
                Some(row) => get(row, 0)?,
                None => 0,
            };
        let limit = i64::from(f.limit);
        let rows =
            self.query(&LIST_ORDERS, &[&a.provider, &a.merchant, &state, &f.from, &f.to, &limit, &f.offset()]).await?;
        let listed = rows
            .iter()
            .map(|r| {
                Ok(ListedOrder {
                    merchant_order_no: get(r, 0)?,
                    platform_order_no: get(r, 1)?,
                    amount: fen(get(r, 2)?),
                    order_time: get(r, 3)?,
                    last_state: payment_state(get(r, 4)?),
                    stage: OrderStage::from_word(get(r, 5)?)?,
                    paid_at: get(r, 6)?,
                })
            })
            .collect::<Result<Vec<_>, LedgerError>>()?;
        Ok((total.max(0) as u64, listed))
    }

    /// Tells the other instances about `wake` (NOTIFY on the wake channel).
    ///
    /// # Errors
    /// Database failures.
    pub async fn publish(&self, wake: &Wake) -> Result<(), LedgerError> {
        let payload =
            serde_json::to_string(&listen::Payload { from: self.wakes.instance().to_owned(), wake: wake.clone() })
                .map_err(|e| LedgerError(format!("cannot encode a wake: {e}")))?;
        self.query("SELECT pg_notify($1, $2)", &[&listen::CHANNEL, &payload]).await.map(drop)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test helpers")]
impl PgLedger {
    /// Runs `sql` as it is, on a connection of the pool.
    pub async fn execute_raw(&self, sql: &str) {
        let mut pooled = self.pool.get().await.unwrap();
        pooled.conn().unwrap().client.batch_execute(sql).await.unwrap();
        pooled.release();
    }

    /// The versions `schema_migrations` records.
    pub async fn recorded_migrations(&self) -> Vec<i64> {
        let rows = self.query("SELECT version FROM schema_migrations ORDER BY version", &[]).await.unwrap();
        rows.iter().map(|r| r.get(0)).collect()
    }
}
