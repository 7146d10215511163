//! Wakes: "this order just changed, look again". A verified payment notification sends one, and
//! every `wait_for_payment` on that order queries at once instead of at its next poll.
//!
//! In a process, wakes go through a [`Wakes`] hub (a broadcast channel: each wait subscribes before
//! its first query, so a wake sent while it queries is not lost). Across instances on PostgreSQL
//! they travel as NOTIFY payloads (see `postgres/listen.rs`) and arrive on each instance's hub.
//! A wake is only ever a hint to query sooner: it never says an order is paid, the query does.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::Account;

/// How many wakes a slow subscriber may fall behind before it is told it missed some (and then
/// looks again anyway).
const CAPACITY: usize = 256;

/// An order that changed: its account and whichever numbers the notification named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wake {
    pub provider: String,
    pub merchant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_order_no: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_order_no: Option<String>,
}

impl Wake {
    /// A wake for an order of `account`.
    pub fn new(account: &Account, merchant_order_no: Option<&str>, platform_order_no: Option<&str>) -> Wake {
        Wake {
            provider: account.provider.clone(),
            merchant: account.merchant.clone(),
            merchant_order_no: merchant_order_no.map(str::to_owned),
            platform_order_no: platform_order_no.map(str::to_owned),
        }
    }

    /// Whether this wake concerns the order of `account` known by `merchant_order_no` or
    /// `platform_order_no` (either match is enough: a notification usually names both, a wait
    /// knows one).
    pub fn concerns(
        &self,
        account: &Account,
        merchant_order_no: Option<&str>,
        platform_order_no: Option<&str>,
    ) -> bool {
        if self.provider != account.provider || self.merchant != account.merchant {
            return false;
        }
        let same = |a: &Option<String>, b: Option<&str>| a.as_deref().zip(b).is_some_and(|(a, b)| a == b);
        same(&self.merchant_order_no, merchant_order_no) || same(&self.platform_order_no, platform_order_no)
    }
}

/// What a subscriber receives.
#[derive(Debug, Clone)]
pub enum Signal {
    /// This order changed.
    Order(Arc<Wake>),
    /// Wakes may have been missed (the PostgreSQL listener reconnected): every wait looks again.
    Everything,
}

/// The in-process hub wakes are sent through. Cloning shares the hub.
#[derive(Debug, Clone)]
pub struct Wakes {
    tx: broadcast::Sender<Signal>,
    /// Identifies this process in NOTIFY payloads, so it skips the echo of its own wakes.
    instance: Arc<str>,
}

impl Default for Wakes {
    fn default() -> Self {
        Wakes::new()
    }
}

impl Wakes {
    /// A new hub with a random instance id.
    pub fn new() -> Wakes {
        let mut bytes = [0u8; 8];
        // Without randomness the id is only less unique; the process id still tells most apart.
        let _ = getrandom::fill(&mut bytes);
        let id = bytes.iter().fold(format!("{:x}-", std::process::id()), |mut s, b| {
            s.push_str(&format!("{b:02x}"));
            s
        });
        Wakes { tx: broadcast::channel(CAPACITY).0, instance: id.into() }
    }

    /// Receives every signal sent from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.tx.subscribe()
    }

    /// Sends `signal` to this process's subscribers (none listening is fine).
    pub fn send(&self, signal: Signal) {
        let _ = self.tx.send(signal);
    }

    /// This process's id in NOTIFY payloads.
    pub fn instance(&self) -> &str {
        &self.instance
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_concerns_its_own_order_of_its_own_account_only() {
        let a = Account::new("lfwin", "https://x", "k");
        let other = Account::new("lfwin", "https://x", "other");
        let w = Wake::new(&a, Some("M1"), Some("P1"));
        assert!(w.concerns(&a, Some("M1"), None));
        assert!(w.concerns(&a, None, Some("P1")));
        assert!(!w.concerns(&a, Some("M2"), Some("P2")));
        assert!(!w.concerns(&other, Some("M1"), Some("P1")));
        assert!(!Wake::new(&a, None, None).concerns(&a, None, None));
    }
}
