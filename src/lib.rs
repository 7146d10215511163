//! payment-mcp: an MCP server that lets AI agents take payments through Chinese payment gateways.
//!
//! # Layout
//!
//! - [`config`]: environment variables → validated [`config::Config`]; secrets in redacting types.
//! - [`error`]: [`error::PaymentError`], the one error a tool call can end in, and its kinds.
//! - [`redact`]: every configured secret scrubbed from results, log lines and CLI output.
//! - [`html`]: HTML escaping for the pages the server renders (sandbox pay page, confirmation).
//! - [`time`]: China time (UTC+8): now, RFC 3339, the gateways' local timestamps.
//! - [`scope`]: what a caller may do (tools, read-only, order and refund caps): the server's
//!   guardrails and, over HTTP, each token's, narrowed per request.
//! - [`metrics`]: process-wide counters and histograms (tool calls, gateway latency,
//!   notifications), rendered for Prometheus by `serve --http`.
//! - [`money`]: exact amounts in fen, parsed from the literal text an agent sent.
//! - [`sign`]: MD5 signing and verification for the LFWin and epay wire protocols (pure).
//! - [`qr`]: QR content → small 1-bit PNG → base64 / data URL; terminal rendering for the demo.
//! - [`ledger`]: the order ledger, an embedded SQLite file or PostgreSQL for several instances
//!   (idempotency, leases and order times across restarts; wakes between instances).
//! - [`provider`]: the [`provider::Gateway`] trait, domain types, the shared HTTP transport, and one
//!   folder per gateway (`lfwin`, `epay`, `alipay`).
//! - [`payments`]: what the tools do, independent of MCP: validation results in, domain results out;
//!   the create and refund state machines and the wait loop, over any [`provider::Gateway`].
//! - [`notify`]: the payment notifications endpoint (`/notify/{provider}`), an axum router.
//! - [`tools`]: the rmcp tool router, the argument declarations (each argument type is both its
//!   JSON Schema and its parser), output schemas and result rendering (the MCP glue).
//! - [`sandbox`]: the embedded LFWin-compatible gateway used with no credentials and by the tests.
//! - [`stdio`]: line framing between stdin/stdout and rmcp: invalid messages get JSON-RPC errors,
//!   request ids are unique in flight, and work in flight is bounded.
//! - [`serve`]: `serve --http`: the same tools over MCP's streamable HTTP transport, with bearer
//!   tokens or OAuth, rate limits, health, readiness, metrics and graceful shutdown.
//! - [`card`]: the MCP Apps pay card: its `ui://` resource, `_meta` and capability negotiation.
//! - [`cli`]: the `demo`, `sandbox`, `doctor` and `token` commands.

// The layout of the MCP service's future (every tool's future, each awaiting the async ledger,
// inside rmcp's serve loop) is deeper than rustc's default query depth of 128.
#![recursion_limit = "256"]

pub mod card;
pub mod cli;
pub mod config;
pub mod error;
pub mod html;
pub mod ledger;
pub mod metrics;
pub mod money;
pub mod notify;
pub mod payments;
pub mod provider;
pub mod qr;
pub mod redact;
pub mod sandbox;
pub mod scope;
pub mod serve;
pub mod sign;
pub mod stdio;
pub mod time;
pub mod tools;
