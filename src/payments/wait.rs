//! The polling loop of `wait_for_payment`: query an order every poll interval (2 s unless
//! `PAYMENT_POLL_INTERVAL_MS` says otherwise) until its state is final, the time is up, or the call
//! is cancelled. A verified payment notification for the order (received by this process, or on
//! PostgreSQL by another instance) wakes the wait, which queries at once instead of at its next
//! poll: the query, never the notification, says what the state is.
//!
//! The loop reports each non-final check through a callback; the MCP glue turns that into progress
//! notifications when the call carries a progress token, and this module knows nothing of MCP.

use std::future::Future;
use std::time::Duration;

use tokio::sync::broadcast::{Receiver, error::RecvError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{ErrorKind, PaymentError};
use crate::ledger::{Account, Signal};
use crate::provider::{OrderRef, OrderStatus, PaymentState};

use super::Payments;

/// How often `wait_for_payment` checks the order by default: LFWin advises about every 2 s.
pub const POLL_INTERVAL: Duration = crate::config::DEFAULT_POLL_INTERVAL;

/// Returns when a signal concerns the order known by `merchant_order_no` / `platform_order_no`
/// (or when wakes may have been missed); never when the hub is gone.
async fn woken(
    wakes: &mut Receiver<Signal>,
    account: &Account,
    merchant_order_no: Option<&str>,
    platform_order_no: Option<&str>,
) {
    loop {
        match wakes.recv().await {
            Ok(Signal::Order(wake)) if wake.concerns(account, merchant_order_no, platform_order_no) => return,
            Ok(Signal::Order(_)) => {}
            Ok(Signal::Everything) | Err(RecvError::Lagged(_)) => return,
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

/// One non-final check of a wait, as reported to the caller's progress callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitProgress {
    /// Checks made so far, this one included.
    pub polls: u32,
    /// The state this check saw; `None` when the gateway could not be reached.
    pub state: Option<PaymentState>,
    /// Time since the wait began.
    pub waited: Duration,
    /// The whole wait's length.
    pub timeout: Duration,
}

impl WaitProgress {
    /// `check N: <state> after S s of T s`, where the state is `pending`, `unknown` or
    /// `unreachable` (docs/tools.md, `wait_for_payment`).
    pub fn message(&self) -> String {
        let state = match self.state {
            None => "unreachable",
            Some(PaymentState::Pending) => "pending",
            Some(_) => "unknown",
        };
        format!("check {}: {state} after {} s of {} s", self.polls, self.waited.as_secs(), self.timeout.as_secs())
    }
}

impl Payments {
    /// Queries `order` until its state is final or `timeout` passes, reporting each non-final
    /// check to `on_progress`. Retryable errors do not end the wait; the last check is made at the
    /// deadline.
    ///
    /// # Errors
    /// A non-retryable query error; `transport` when the check at the deadline failed or the wait
    /// was cancelled.
    pub async fn wait<F, Fut>(
        &self,
        order: &OrderRef,
        timeout: Duration,
        mut on_progress: F,
        cancelled: &CancellationToken,
    ) -> Result<OrderStatus, PaymentError>
    where
        F: FnMut(WaitProgress) -> Fut,
        Fut: Future<Output = ()>,
    {
        let started = Instant::now();
        let deadline = started + timeout;
        let mut polls = 0u32;
        // Subscribed before the first query: a notification that arrives while it runs still wakes.
        let mut wakes = self.wakes.subscribe();
        let (merchant_no, mut platform_no) = match order {
            OrderRef::Merchant { merchant_order_no, .. } => (Some(merchant_order_no.clone()), None),
            OrderRef::Platform(no) => (None, Some(no.clone())),
        };
        loop {
            polls += 1;
            let last = match self.query(order.clone()).await {
                Ok(status) => Some(status),
                // Transient trouble while waiting: keep waiting, the next poll may succeed.
                Err(e) if e.retryable => None,
                Err(e) => return Err(e),
            };
            if platform_no.is_none() {
                platform_no = last.as_ref().and_then(|s| s.platform_order_no.clone());
            }
            let done = last.as_ref().is_some_and(|s| s.state.is_final());
            let now = Instant::now();
            if done || now >= deadline {
                return last.ok_or_else(|| {
                    PaymentError::new(
                        ErrorKind::Transport,
                        "The gateway could not be reached at the end of the wait; the order's state is unknown. Query it again shortly.",
                    )
                });
            }
            on_progress(WaitProgress {
                polls,
                state: last.as_ref().map(|s| s.state),
                waited: now.duration_since(started),
                timeout,
            })
            .await;
            tokio::select! {
                _ = cancelled.cancelled() => {
                    return Err(PaymentError::new(ErrorKind::Transport, "The wait was cancelled; the order's state did not change because of it."));
                }
                // The last sleep ends at the deadline, where one more check is made.
                _ = tokio::time::sleep(self.config.poll_interval.min(deadline - now)) => {}
                () = woken(&mut wakes, &self.account, merchant_no.as_deref(), platform_no.as_deref()) => {
                    tracing::debug!("wait_for_payment: woken by a payment notification; checking now");
                }
            }
        }
    }
}
