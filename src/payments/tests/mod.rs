//! Unit tests of the payments logic over a scripted in-memory gateway ([`scripted::Scripted`]) and
//! an in-memory ledger: the create and refund state machines and the wait loop, each call and
//! each request checked, with no HTTP and no MCP.

mod create;
mod refund;
mod scripted;
mod wait;

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Config;
use crate::ledger::{Account, Ledger};

use super::Payments;
use scripted::Scripted;

/// The service over a scripted gateway, with the LFWin account and the guardrails in `vars`.
struct Setup {
    payments: Payments,
    gateway: Arc<Scripted>,
    ledger: Arc<Ledger>,
}

impl Setup {
    fn new(vars: &[(&str, &str)]) -> Setup {
        Setup::over(Scripted::default(), vars)
    }

    fn over(gateway: Scripted, vars: &[(&str, &str)]) -> Setup {
        let mut all: HashMap<String, String> =
            [("PAYMENT_API_KEY", "ak-unit"), ("PAYMENT_SIGN_KEY", "sk-unit"), ("PAYMENT_REQUEST_TIMEOUT_MS", "1000")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        all.extend(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let config = Config::from_lookup(|name| all.get(name).cloned());
        assert!(config.problems.is_empty(), "{:?}", config.problems);
        let gateway = Arc::new(gateway);
        let ledger = Arc::new(Ledger::in_memory().unwrap());
        let payments = Payments::with_gateway(config, gateway.clone(), ledger.clone());
        Setup { payments, gateway, ledger }
    }

    fn account(&self) -> &Account {
        &self.payments.account
    }
}

/// The layers import downwards only (tools → payments → ledger → provider), so a newcomer can
/// read each one without the ones above it.
#[test]
fn the_layers_import_downwards_only() {
    let ledger = [
        include_str!("../../ledger/mod.rs"),
        include_str!("../../ledger/records.rs"),
        include_str!("../../ledger/list.rs"),
        include_str!("../../ledger/files.rs"),
        include_str!("../../ledger/sqlite.rs"),
        include_str!("../../ledger/migrations.rs"),
        include_str!("../../ledger/wake.rs"),
        include_str!("../../ledger/postgres/mod.rs"),
        include_str!("../../ledger/postgres/ops.rs"),
        include_str!("../../ledger/postgres/pool.rs"),
        include_str!("../../ledger/postgres/listen.rs"),
    ];
    for text in ledger {
        assert!(!text.contains("crate::payments") && !text.contains("crate::tools"), "the ledger imports upwards");
    }
    let payments = [
        include_str!("../mod.rs"),
        include_str!("../create.rs"),
        include_str!("../refund.rs"),
        include_str!("../wait.rs"),
        include_str!("../notified.rs"),
    ];
    for text in payments {
        assert!(!text.contains("crate::tools") && !text.contains("rmcp"), "payments imports the MCP layer");
    }
}
