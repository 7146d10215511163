//! Wakes between instances: each instance keeps one connection that LISTENs on [`CHANNEL`], and
//! publishes its own wakes with `pg_notify`. A payload is the [`Wake`] as JSON with the sending
//! instance's id, so an instance skips the echo of its own wakes (it already sent them locally).
//!
//! When the listening connection drops, it is reopened with a growing pause; notifications sent
//! meanwhile are lost, so every wait is told to look again ([`Signal::Everything`]) once it is
//! back. The listener stops when the ledger is dropped.

use std::time::Duration;

use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio_postgres::{AsyncMessage, Client, NoTls};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::pool::describe_error;
use crate::ledger::{LedgerError, Signal, Wake, Wakes};

/// The NOTIFY channel every instance listens on.
pub(super) const CHANNEL: &str = "payment_mcp_wake";

/// The longest pause between attempts to reopen the listening connection.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// What travels in a notification.
#[derive(Serialize, Deserialize)]
pub(super) struct Payload {
    /// The sending instance ([`Wakes::instance`]).
    pub from: String,
    pub wake: Wake,
}

/// Opens the listening connection (so no wake sent after this returns is missed) and keeps it
/// open in a task until the returned guard is dropped.
///
/// # Errors
/// When the first connection or its LISTEN fails.
pub(super) async fn start(config: tokio_postgres::Config, wakes: Wakes) -> Result<DropGuard, LedgerError> {
    let cancel = CancellationToken::new();
    let first = open(&config, &wakes).await?;
    let stop = cancel.clone();
    tokio::spawn(async move {
        let mut session = Some(first);
        let mut pause = Duration::from_millis(250);
        loop {
            if let Some((client, driver)) = session.take() {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = driver => {}
                }
                drop(client);
                tracing::warn!("ledger: the PostgreSQL connection listening for wakes closed; reopening it");
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(pause) => {}
            }
            match open(&config, &wakes).await {
                Ok(reopened) => {
                    session = Some(reopened);
                    pause = Duration::from_millis(250);
                    // Wakes sent while it was closed are lost: every wait looks again.
                    wakes.send(Signal::Everything);
                }
                Err(e) => {
                    tracing::warn!("ledger: cannot listen for wakes: {e}");
                    pause = (pause * 2).min(MAX_PAUSE);
                }
            }
        }
    });
    Ok(cancel.drop_guard())
}

/// One listening session: the client (the connection closes when it is dropped) and the task
/// that drives the connection and hands each wake to `wakes`.
async fn open(
    config: &tokio_postgres::Config,
    wakes: &Wakes,
) -> Result<(Client, tokio::task::JoinHandle<()>), LedgerError> {
    let (client, mut connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| LedgerError(describe_error("cannot connect to PostgreSQL to listen for wakes", &e)))?;
    let hub = wakes.clone();
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => deliver(&hub, n.payload()),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("ledger: the listening PostgreSQL connection failed: {e}");
                    break;
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| LedgerError(describe_error("cannot LISTEN for wakes", &e)))?;
    Ok((client, driver))
}

/// Hands a wake another instance sent to this one's waits.
fn deliver(wakes: &Wakes, payload: &str) {
    match serde_json::from_str::<Payload>(payload) {
        Ok(p) if p.from == wakes.instance() => {}
        Ok(p) => {
            tracing::debug!(from = %p.from, "ledger: wake from another instance");
            wakes.send(Signal::Order(p.wake.into()));
        }
        Err(e) => tracing::warn!("ledger: ignored a wake that is not one ({e})"),
    }
}
