//! The MCP glue: an rmcp tool router with one thin method per tool.
//!
//! Each method parses its raw arguments ([`args`]), calls [`Payments`], and renders the outcome
//! ([`render`]). Every failure the agent should read is a tool result with `isError: true`; a panic
//! anywhere below is caught and answered the same way, because rmcp sends no reply at all for a
//! handler that panics.

pub mod args;
pub mod confirm;
pub mod render;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt as _;
use rmcp::handler::server::common::{schema_for_empty_input, schema_for_input, schema_for_output};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::{InputResponses as ToolInputResponses, RequestState};
use rmcp::model::{
    CallToolResponse, CallToolResult, Implementation, JsonObject, ProgressNotificationParam, ServerCapabilities,
    ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use tokio_util::sync::CancellationToken;

use crate::payments::{Payments, now_unix};
use crate::provider::{CreateRequest, ErrorKind, GatewayError, RefundRequest};
use render::Origin;

/// What an agent reads first: how the tools fit together.
const INSTRUCTIONS: &str = "payment-mcp takes payments through a Chinese payment gateway. Amounts are yuan with at most two decimals (12.30). Flow: create_payment_order (your unique merchant_order_no + amount) returns a pay_url and a QR code image: show both to the payer. Then poll query_payment_order (order_no, or merchant_order_no) about every 2 s until state is paid, failed or closed; never tell the payer it is paid before state=paid. refund_payment_order only accepts a refund (state=processing); confirm it with query_refund_status. Reuse the same merchant_order_no / mch_refund_no to retry safely: a repeat never creates a second order or refund. Branch on `state` and on error.kind (outcome_unknown means: query before retrying; auth/config means: stop and ask the operator).";

const SANDBOX_INSTRUCTIONS: &str = " SANDBOX MODE: no credentials are configured, so every order goes to an embedded simulated gateway and no real money moves. Use sandbox_simulate_payment (or the pay page at pay_url) to act as the payer.";

/// How often `wait_for_payment` checks the order: LFWin advises about every 2 s.
const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Every tool's input and output schema as JSON, keyed by `input <type>` / `output <type>`: what
/// [`generate_input`] and [`generate_output`] make from the argument and result types, computed
/// ahead of time. Generating them at start-up (schemars reflection, a serde round trip per type,
/// a deep copy to drop integer formats) was most of what payment-mcp did before it could answer
/// `initialize`; parsing this text is several times cheaper. `schemas_snapshot_is_current` (a unit
/// test) fails when it is stale; `UPDATE_SCHEMAS=1 cargo test --lib schemas_snapshot` rewrites it.
const SCHEMAS_JSON: &str = include_str!("schemas.json");

/// Lookups that were not in `schemas.json` (and were generated instead); the snapshot test
/// checks this stays zero.
static SNAPSHOT_MISSES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn snapshot() -> &'static std::collections::HashMap<String, Arc<JsonObject>> {
    static PARSED: std::sync::OnceLock<std::collections::HashMap<String, Arc<JsonObject>>> = std::sync::OnceLock::new();
    PARSED.get_or_init(|| {
        serde_json::from_str::<std::collections::HashMap<String, JsonObject>>(SCHEMAS_JSON)
            .map(|m| m.into_iter().map(|(k, v)| (k, Arc::new(v))).collect())
            .unwrap_or_default()
    })
}

/// The schema stored under `key`, or `generate()` when it is missing.
fn from_snapshot(key: String, generate: fn() -> Arc<JsonObject>) -> Arc<JsonObject> {
    match snapshot().get(&key) {
        Some(schema) => schema.clone(),
        None => {
            SNAPSHOT_MISSES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            generate()
        }
    }
}

/// The input schema for a tool (from the snapshot).
fn input<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    from_snapshot(format!("input {}", std::any::type_name::<T>()), generate_input::<T>)
}

/// The output schema for a tool (from the snapshot).
fn output<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    from_snapshot(format!("output {}", std::any::type_name::<T>()), generate_output::<T>)
}

/// The input schema for a tool, without the panic rmcp's macro would raise on a bad one.
fn generate_input<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    without_int_formats(schema_for_input::<T>().unwrap_or_else(|_| schema_for_empty_input()))
}

/// The output schema for a tool: its success shape, or the error envelope that every tool answers
/// with `isError: true` (`success`, `provider`, `sandbox`, `error`).
///
/// Clients built on the TypeScript SDK (MCP Inspector, Claude Code, Cursor, Cline) validate
/// `structuredContent` against `outputSchema` even for error results, so a schema that only knew
/// the success shape would turn every tool error into a protocol error the agent never reads.
fn generate_output<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    without_int_formats(with_error_envelope(schema_for_output::<T>()))
}

/// Moves the success shape's `required` list into one branch of an `anyOf` whose other branch is
/// the error envelope, and declares the `error` property.
fn with_error_envelope(schema: Arc<JsonObject>) -> Arc<JsonObject> {
    let mut root = schema.as_ref().clone();
    let required = root.remove("required").unwrap_or_else(|| serde_json::json!([]));
    let error_schema = serde_json::to_value(schemars::schema_for!(render::ErrorBody)).unwrap_or_default();
    let mut error_schema = match error_schema {
        serde_json::Value::Object(map) => map,
        _ => JsonObject::new(),
    };
    // The error body's own definitions (ErrorKind) join the root's, where its `$ref`s point.
    if let Some(serde_json::Value::Object(defs)) = error_schema.remove("$defs") {
        let root_defs = root.entry("$defs").or_insert_with(|| serde_json::Value::Object(JsonObject::new()));
        if let serde_json::Value::Object(root_defs) = root_defs {
            root_defs.extend(defs);
        }
    }
    error_schema.remove("$schema");
    error_schema.remove("title");
    error_schema.insert("description".into(), "Present only on error results (isError: true).".into());
    if let Some(serde_json::Value::Object(props)) = root.get_mut("properties") {
        props.insert("error".into(), serde_json::Value::Object(error_schema));
    }
    root.insert(
        "anyOf".into(),
        serde_json::json!([
            {"required": required},
            {"required": ["success", "provider", "sandbox", "error"]},
        ]),
    );
    Arc::new(root)
}

/// Drops schemars' `"format": "uint32"`-style annotations: they are not JSON Schema formats, and
/// clients' validators (ajv in MCP Inspector and the TypeScript SDK) print a warning for each.
fn without_int_formats(schema: Arc<JsonObject>) -> Arc<JsonObject> {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                if map
                    .get("format")
                    .and_then(|f| f.as_str())
                    .is_some_and(|f| f.starts_with("uint") || f.starts_with("int"))
                {
                    map.remove("format");
                }
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut value = serde_json::Value::Object(schema.as_ref().clone());
    strip(&mut value);
    match value {
        serde_json::Value::Object(map) => Arc::new(map),
        _ => schema,
    }
}

/// The MCP server: the tool router plus the payment service behind it.
#[derive(Clone)]
pub struct PaymentServer {
    payments: Arc<Payments>,
    pending_confirmations: Arc<confirm::Pending>,
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl PaymentServer {
    /// Create a payment order and get a pay link plus a QR code image to show the payer. Amount in
    /// yuan (e.g. 12.30). The result's `state` is `pending`; poll query_payment_order until `paid`.
    /// Repeating the call with the same merchant_order_no and amount returns the same order.
    #[tool(
        title = "Create payment order",
        input_schema = input::<args::CreateArgs>(),
        output_schema = output::<render::CreateOutput>(),
        annotations(title = "Create payment order", read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn create_payment_order(&self, raw: JsonObject) -> CallToolResult {
        self.guard(true, async {
            let a = args::parse_create(&raw)?;
            let request = CreateRequest {
                merchant_order_no: a.merchant_order_no,
                amount: a.amount,
                notify_url: a.notify_url,
                return_url: a.return_url,
                subject: a.subject,
                pay_type: a.pay_type,
                order_time: now_unix(),
            };
            let outcome = self.payments.create(request).await?;
            Ok(render::create(self.origin(), &outcome))
        })
        .await
    }

    /// Check whether an order is paid: by order_no (from create), or by merchant_order_no. Branch on
    /// `state`: pending, paid, failed, closed, unknown.
    #[tool(
        title = "Query payment order",
        input_schema = input::<args::QueryArgs>(),
        output_schema = output::<render::QueryOutput>(),
        annotations(title = "Query payment order", read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn query_payment_order(&self, raw: JsonObject) -> CallToolResult {
        self.guard(false, async {
            let order = args::parse_query(&raw)?;
            let status = self.payments.query(order.clone()).await?;
            Ok(render::query(self.origin(), &order, &status))
        })
        .await
    }

    /// Wait until an order is paid, failed or closed, checking about every 2 s (LFWin's advice), for
    /// up to timeout_seconds (default 60, max 600). Returns the final state, or `pending` at the
    /// deadline. Sends progress notifications when the client asked for them; stops when cancelled.
    #[tool(
        title = "Wait for payment",
        input_schema = input::<args::WaitArgs>(),
        output_schema = output::<render::QueryOutput>(),
        annotations(title = "Wait for payment", read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn wait_for_payment(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
        cancelled: CancellationToken,
    ) -> CallToolResult {
        self.guard(false, async {
            let (order, timeout) = args::parse_wait(&raw)?;
            let progress = ctx.meta.get_progress_token();
            let started = tokio::time::Instant::now();
            let deadline = started + timeout;
            let mut polls = 0u32;
            loop {
                polls += 1;
                let last = match self.payments.query(order.clone()).await {
                    Ok(status) => Some(status),
                    // Transient trouble while waiting: keep waiting, the next poll may succeed.
                    Err(e) if e.retryable => None,
                    Err(e) => return Err(e),
                };
                let done = last.as_ref().is_some_and(|s| s.state.is_final());
                let now = tokio::time::Instant::now();
                if done || now >= deadline {
                    let Some(status) = last else {
                        return Err(GatewayError::new(
                            ErrorKind::Transport,
                            "The gateway could not be reached at the end of the wait; the order's state is unknown. Query it again shortly.",
                        ));
                    };
                    return Ok(render::query(self.origin(), &order, &status));
                }
                if let Some(token) = &progress {
                    let waited = now.duration_since(started).as_secs();
                    let state = last.as_ref().map_or("unreachable", |s| if s.state == crate::provider::PaymentState::Pending { "pending" } else { "unknown" });
                    let note = ProgressNotificationParam::new(token.clone(), f64::from(polls))
                        .with_message(format!("check {polls}: {state} after {waited} s of {} s", timeout.as_secs()));
                    let _ = ctx.peer.notify_progress(note).await;
                }
                tokio::select! {
                    _ = cancelled.cancelled() => {
                        return Err(GatewayError::new(ErrorKind::Transport, "The wait was cancelled; the order's state did not change because of it."));
                    }
                    // The last sleep ends at the deadline, where one more check is made.
                    _ = tokio::time::sleep(POLL_INTERVAL.min(deadline - now)) => {}
                }
            }
        })
        .await
    }

    /// List payment orders, newest first, with paging and filters (state, pay_type, time range).
    /// Gateways with a list API (epay) are asked directly; for LFWin the list is this server's order
    /// ledger with each order's last known state (refresh=true re-queries them).
    #[tool(
        title = "List payment orders",
        input_schema = input::<args::ListArgs>(),
        output_schema = output::<render::ListOutput>(),
        annotations(title = "List payment orders", read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn list_payment_orders(&self, raw: JsonObject) -> CallToolResult {
        self.guard(false, async {
            let (query, refresh) = args::parse_list(&raw)?;
            let (page, source) = self.payments.list_orders(query, refresh).await?;
            Ok(render::list(self.origin(), &page, source, refresh && source == "ledger"))
        })
        .await
    }

    /// Get the merchant account's balance and status from the gateway (epay gateways). The key is
    /// never part of the result.
    #[tool(
        title = "Get merchant info",
        input_schema = input::<args::NoArgs>(),
        output_schema = output::<render::MerchantOutput>(),
        annotations(title = "Get merchant info", read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn get_merchant_info(&self, raw: JsonObject) -> CallToolResult {
        self.guard(false, async {
            args::parse_none(&raw)?;
            let info = self.payments.merchant_info().await?;
            Ok(render::merchant(self.origin(), &info))
        })
        .await
    }

    /// Check a payment notification that a gateway sent to your notify URL: pass the raw query
    /// string or form body. Says whether the signature is valid under the configured provider's
    /// rules, and the order number, amount and state it claims. Sends nothing to the gateway.
    #[tool(
        title = "Verify payment notification",
        input_schema = input::<args::VerifyArgs>(),
        output_schema = output::<render::VerifyOutput>(),
        annotations(title = "Verify payment notification", read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn verify_payment_notification(&self, raw: JsonObject) -> CallToolResult {
        self.guard(false, async {
            let notification = args::parse_verify(&raw)?;
            let checked = self.payments.verify_notification(&notification).await?;
            Ok(render::verified(self.origin(), &checked))
        })
        .await
    }

    /// Refund all or part of a paid order. Moves money back to the payer. The gateway only accepts
    /// the refund (state `processing`); confirm with query_refund_status. Reusing mch_refund_no never
    /// refunds twice.
    #[tool(
        title = "Refund payment order",
        input_schema = input::<args::RefundArgs>(),
        output_schema = output::<render::RefundOutput>(),
        annotations(title = "Refund payment order", read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn refund_payment_order(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
        RequestState(state): RequestState,
        ToolInputResponses(responses): ToolInputResponses,
    ) -> CallToolResponse {
        let mut ask = None;
        let result = self
            .guard(true, async {
                let a = args::parse_refund(&raw)?;
                let derived = a.derived_refund_no;
                let request = RefundRequest {
                    order_no: a.order_no,
                    amount: a.amount,
                    reason: a.reason,
                    mch_refund_no: a.mch_refund_no,
                };
                self.payments.check_refund(&request).await?;
                if self.payments.config().confirm_refunds {
                    match confirm::refund(&ctx, &self.pending_confirmations, &request, state, responses).await {
                        confirm::Decision::Confirmed => {}
                        confirm::Decision::Ask(input) => {
                            ask = Some(input);
                            return Ok(CallToolResult::success(Vec::new()));
                        }
                        confirm::Decision::Refused(err) => return Err(err),
                    }
                }
                let outcome = self.payments.refund(request).await?;
                Ok(render::refund(self.origin(), &outcome, derived))
            })
            .await;
        match ask {
            Some(input) => input.into(),
            None => result.into(),
        }
    }

    /// Check a refund's state (processing, refunded, failed) by order_no and mch_refund_no, or list
    /// every refund of an order.
    #[tool(
        title = "Query refund status",
        input_schema = input::<args::RefundQueryArgs>(),
        output_schema = output::<render::RefundQueryOutput>(),
        annotations(title = "Query refund status", read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn query_refund_status(&self, raw: JsonObject) -> CallToolResult {
        self.guard(false, async {
            let query = args::parse_refund_query(&raw)?;
            let asked = query.mch_refund_no.clone();
            let status = self.payments.query_refund(query).await?;
            render::refund_query(self.origin(), asked.as_deref(), &status)
        })
        .await
    }

    /// SANDBOX ONLY: act as the payer. Marks a sandbox order paid or failed, as if the payer had
    /// paid (or failed) on the pay page.
    #[tool(
        title = "Simulate a sandbox payment",
        input_schema = input::<args::SimulateArgs>(),
        output_schema = output::<render::SimulateOutput>(),
        annotations(title = "Simulate a sandbox payment", read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false)
    )]
    async fn sandbox_simulate_payment(&self, raw: JsonObject) -> CallToolResult {
        self.guard(false, async {
            let (order_no, paid) = args::parse_simulate(&raw)?;
            self.payments.simulate_payment(&order_no, paid).await?;
            Ok(render::simulated(self.origin(), &order_no, paid))
        })
        .await
    }
}

impl PaymentServer {
    /// A server over `payments`, listing only the tools its configuration allows.
    pub fn new(payments: Arc<Payments>) -> Self {
        let mut tool_router = Self::tool_router();
        let config = payments.config();
        let names: Vec<String> = tool_router.map.keys().map(|k| k.to_string()).collect();
        for name in names {
            let sandbox_only = name.starts_with("sandbox_");
            let epay_only = name == "get_merchant_info";
            let kind = payments.kind();
            if !config.tool_enabled(&name)
                || (sandbox_only && !payments.is_sandbox())
                || (epay_only && kind != crate::provider::ProviderKind::Epay)
            {
                tool_router.remove_route(&name);
            }
        }
        if payments.is_sandbox() {
            for route in tool_router.map.values_mut() {
                if let Some(annotations) = route.attr.annotations.as_mut() {
                    annotations.open_world_hint = Some(false);
                }
            }
        }
        PaymentServer { payments, pending_confirmations: Arc::default(), tool_router }
    }

    fn origin(&self) -> Origin {
        Origin { provider: self.payments.kind() }
    }

    /// Runs a tool body: configuration first, then the body, with errors and panics as tool errors.
    async fn guard(
        &self,
        money_moving: bool,
        body: impl Future<Output = Result<CallToolResult, GatewayError>>,
    ) -> CallToolResult {
        let origin = self.origin();
        let outcome = AssertUnwindSafe(async {
            if let Some(err) = self.payments.config_error(money_moving) {
                return Err(err);
            }
            body.await
        })
        .catch_unwind()
        .await;
        match outcome {
            Ok(Ok(result)) => result,
            Ok(Err(err)) => render::error(origin, &err),
            Err(_) => {
                tracing::error!("a tool handler panicked; answered with an error");
                render::error(
                    origin,
                    &GatewayError::new(
                        ErrorKind::Gateway,
                        "payment-mcp hit an internal error while handling this call. If the call was a create or refund, query before retrying; please report this.",
                    ),
                )
            }
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for PaymentServer {
    fn get_info(&self) -> ServerConfig {
        let mut instructions = INSTRUCTIONS.to_owned();
        if self.payments.is_sandbox() {
            instructions.push_str(SANDBOX_INSTRUCTIONS);
        }
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("payment-mcp", env!("CARGO_PKG_VERSION")))
            .with_instructions(instructions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every type a tool's schema comes from.
    fn generated() -> std::collections::BTreeMap<String, Arc<JsonObject>> {
        fn i<T: JsonSchema + 'static>() -> (String, Arc<JsonObject>) {
            (format!("input {}", std::any::type_name::<T>()), generate_input::<T>())
        }
        fn o<T: JsonSchema + 'static>() -> (String, Arc<JsonObject>) {
            (format!("output {}", std::any::type_name::<T>()), generate_output::<T>())
        }
        [
            i::<args::CreateArgs>(),
            i::<args::QueryArgs>(),
            i::<args::WaitArgs>(),
            i::<args::ListArgs>(),
            i::<args::NoArgs>(),
            i::<args::VerifyArgs>(),
            i::<args::RefundArgs>(),
            i::<args::RefundQueryArgs>(),
            i::<args::SimulateArgs>(),
            o::<render::CreateOutput>(),
            o::<render::QueryOutput>(),
            o::<render::ListOutput>(),
            o::<render::MerchantOutput>(),
            o::<render::VerifyOutput>(),
            o::<render::RefundOutput>(),
            o::<render::RefundQueryOutput>(),
            o::<render::SimulateOutput>(),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn schemas_snapshot_is_current() {
        let generated = generated();
        if std::env::var_os("UPDATE_SCHEMAS").is_some() {
            let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
            std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/src/tools/schemas.json"), text).unwrap();
            return;
        }
        let stored: std::collections::BTreeMap<String, Arc<JsonObject>> = snapshot().clone().into_iter().collect();
        assert!(
            stored == generated,
            "src/tools/schemas.json is stale: run `UPDATE_SCHEMAS=1 cargo test --lib schemas_snapshot` and commit it"
        );
        // Every schema the router asks for is in the snapshot.
        let router = PaymentServer::tool_router();
        assert_eq!(router.map.len(), 9);
        assert_eq!(
            SNAPSHOT_MISSES.load(std::sync::atomic::Ordering::Relaxed),
            0,
            "a tool uses a type missing from tests::generated()"
        );
    }
}
