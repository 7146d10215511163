//! Integration tests: the real `payment-mcp` binary, spoken to over stdio by rmcp's MCP client,
//! against the embedded gateway started in-process as a strict fake (it verifies every signature).
//! `hostile` and `rawio` serve the adversarial tests: a gateway that misbehaves on purpose and a
//! raw JSON-lines client that does.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test and example code: a failure should stop it loudly"
)]

mod hostile;
mod http_support;
mod rawio;
mod support;

mod adversarial;
mod adversarial_keys;
mod adversarial_ledger;
mod alipay;
mod bad_input;
mod card;
mod cli;
mod confirm;
mod contract;
mod epay;
mod epay_client;
mod extras;
mod fake_epay;
mod faults;
mod flows;
mod http;
mod http_auth;
mod http_oauth;
mod http_postgres;
mod ledger;
mod postgres;
mod protocol;
