//! The MCP glue: an rmcp tool router with one thin method per tool.
//!
//! Each method parses its raw arguments ([`args`]), calls [`Payments`], and renders the outcome
//! ([`render`]). Every failure the agent should read is a tool result with `isError: true`; a panic
//! anywhere below is caught and answered the same way, because rmcp sends no reply at all for a
//! handler that panics.

pub mod args;
mod compat;
pub mod confirm;
mod handler;
mod outputs;
pub mod render;

use crate::error::{ErrorKind, PaymentError};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt as _;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::tool::{InputResponses as ToolInputResponses, RequestState};
use rmcp::model::{CallToolResponse, CallToolResult, JsonObject, ProgressNotificationParam};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use tokio_util::sync::CancellationToken;

use crate::payments::{Payments, WaitProgress};
use crate::provider::{CreateRequest, ProviderKind, RefundRequest};
use crate::scope::Scope;
use crate::time::now_unix;
use args::Arguments as _;
use render::Origin;

/// What an agent reads first: how the tools fit together.
const INSTRUCTIONS: &str = "Payments through a Chinese gateway. Amounts are yuan with at most two decimals (\"12.30\"). Flow: create_payment_order (unique merchant_order_no + amount) returns pay_url and a QR image: show both to the payer. Then wait_for_payment, or query_payment_order every 2 s, until state is paid, failed or closed; never call it paid before state=paid. refund_payment_order only starts a refund (state=processing); confirm with query_refund_status. Repeating a merchant_order_no or mch_refund_no is a safe retry, never a second order or refund. On error.kind outcome_unknown, query before retrying; on auth or config, stop and ask the operator.";

const SANDBOX_INSTRUCTIONS: &str = " SANDBOX MODE: no credentials, so orders go to a simulated gateway and no real money moves; act as the payer with sandbox_simulate_payment or the pay page.";

/// A tool's input schema, from its argument declaration (cheap: no reflection, no snapshot).
fn input<A: args::Arguments>() -> Arc<JsonObject> {
    Arc::new(A::schema())
}

/// The scope a tool call runs under: the server's guardrails narrowed by the HTTP caller's, put in
/// the request's extensions by `call_tool` (handler.rs) for the tools that check amounts.
pub type CallScope = Arc<Scope>;

/// The scope of a call, from its extensions; the server's own when absent (never wider than it).
fn call_scope(ctx: &RequestContext<RoleServer>, config: &crate::config::Config) -> CallScope {
    ctx.extensions.get::<CallScope>().cloned().unwrap_or_else(|| Arc::new(config.scope()))
}

/// The HTTP caller of a request, when it came over `serve --http` with credentials: the auth layer
/// puts it in the HTTP request's extensions, and rmcp hands those to the tool layer.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name or the JWT's subject, for logs (never the credential itself).
    pub name: String,
    /// What the credential allows; narrows the server's own scope.
    pub scope: Scope,
}

/// The HTTP caller of a request, if it carried credentials (`serve --http` with auth).
fn caller(extensions: &rmcp::model::Extensions) -> Option<&Arc<Caller>> {
    extensions.get::<axum::http::request::Parts>().and_then(|parts| parts.extensions.get::<Arc<Caller>>())
}

/// The caller's scope narrowed onto the server's: over stdio and unauthenticated loopback HTTP,
/// the server's own.
fn effective_scope(server: &Scope, extensions: &rmcp::model::Extensions) -> Scope {
    match caller(extensions) {
        Some(caller) => server.narrowed(&caller.scope),
        None => server.clone(),
    }
}

/// Who is calling, for the log: the HTTP caller's name, or `local` (stdio, unauthenticated loopback).
fn caller_name(extensions: &rmcp::model::Extensions) -> String {
    caller(extensions).map_or_else(|| "local".to_owned(), |c| c.name.clone())
}

/// The MCP server: the tool router plus the payment service behind it. Cheap to clone (the HTTP
/// transport makes one per session or stateless request; the clones share everything).
#[derive(Clone)]
pub struct PaymentServer {
    payments: Arc<Payments>,
    confirmations: Arc<confirm::Confirmations>,
    tool_router: Arc<ToolRouter<Self>>,
    /// The server-wide guardrails ([`crate::config::Config::scope`]), computed once.
    scope: Arc<Scope>,
}

#[tool_router]
impl PaymentServer {
    /// Create an order; show the payer its pay_url and QR image.
    #[tool(
        title = "Create payment order",
        input_schema = input::<args::CreateArgs>(),
        output_schema = outputs::output::<render::CreateOutput>(),
        annotations(title = "Create payment order", read_only_hint = false, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn create_payment_order(&self, raw: JsonObject, Extension(scope): Extension<CallScope>) -> CallToolResult {
        self.guard(true, async {
            let a = args::CreateArgs::parse(&raw)?;
            if a.channel.is_some() && self.payments.kind() != ProviderKind::Alipay {
                return Err(args::invalid(
                    "`channel` is taken only by the Alipay provider (this gateway has one way to pay); leave it out. Nothing was sent.",
                ));
            }
            if a.pay_type.is_some() && self.payments.kind() == ProviderKind::Alipay {
                return Err(args::invalid(
                    "`pay_type` is an epay argument; with Alipay, choose how the payer pays with `channel` (precreate, wap or page). Nothing was sent.",
                ));
            }
            let (notify_url, return_url) = a.urls();
            let request = CreateRequest {
                merchant_order_no: a.merchant_order_no.0,
                amount: a.amount.0,
                notify_url,
                return_url,
                subject: a.subject.map(|s| s.0),
                pay_type: a.pay_type.map(|p| p.0),
                order_time: now_unix(),
                channel: a.channel.map(|c| c.0).unwrap_or_default(),
            };
            let outcome = self.payments.create(request, &scope).await?;
            Ok(render::create(self.origin(), &outcome, self.payments.config().qr_text))
        })
        .await
    }

    /// An order's state, by order_no or merchant_order_no.
    #[tool(
        title = "Query payment order",
        input_schema = input::<args::QueryArgs>(),
        output_schema = outputs::output::<render::QueryOutput>(),
        annotations(title = "Query payment order", read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn query_payment_order(&self, raw: JsonObject) -> CallToolResult {
        self.guard(false, async {
            let order = args::QueryArgs::parse(&raw)?.order();
            let status = self.payments.query(order.clone()).await?;
            Ok(render::query(self.origin(), &order, &status))
        })
        .await
    }

    /// Check an order every 2 s until its state is final or timeout_seconds pass.
    #[tool(
        title = "Wait for payment",
        input_schema = input::<args::WaitArgs>(),
        output_schema = outputs::output::<render::QueryOutput>(),
        annotations(title = "Wait for payment", read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn wait_for_payment(
        &self,
        raw: JsonObject,
        ctx: RequestContext<RoleServer>,
        cancelled: CancellationToken,
    ) -> CallToolResult {
        self.guard(false, async {
            let a = args::WaitArgs::parse(&raw)?;
            let (order, timeout) = (a.order(), a.timeout());
            let progress = ctx.meta.get_progress_token();
            let notify = |step: WaitProgress| {
                let note = progress.clone().map(|token| {
                    ProgressNotificationParam::new(token, f64::from(step.polls)).with_message(step.message())
                });
                let peer = ctx.peer.clone();
                async move {
                    if let Some(note) = note {
                        let _ = peer.notify_progress(note).await;
                    }
                }
            };
            let status = self.payments.wait(&order, timeout, notify, &cancelled).await?;
            Ok(render::query(self.origin(), &order, &status))
        })
        .await
    }

    /// List orders, newest first (LFWin: from this server's ledger).
    #[tool(
        title = "List payment orders",
        input_schema = input::<args::ListArgs>(),
        output_schema = outputs::output::<render::ListOutput>(),
        annotations(title = "List payment orders", read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn list_payment_orders(&self, raw: JsonObject) -> CallToolResult {
        self.guard(false, async {
            let (query, refresh) = args::ListArgs::parse(&raw)?.query();
            let (page, source) = self.payments.list_orders(query, refresh).await?;
            Ok(render::list(self.origin(), &page, source, refresh && source == "ledger"))
        })
        .await
    }

    /// The merchant account's balance and status (epay). The key is never part of the result.
    #[tool(
        title = "Get merchant info",
        input_schema = input::<args::NoArgs>(),
        output_schema = outputs::output::<render::MerchantOutput>(),
        annotations(title = "Get merchant info", read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn get_merchant_info(&self, raw: JsonObject) -> CallToolResult {
        self.guard(false, async {
            args::NoArgs::parse(&raw)?;
            let info = self.payments.merchant_info().await?;
            Ok(render::merchant(self.origin(), &info))
        })
        .await
    }

    /// Check a notification your notify URL got: signature, order, amount, state. Sends nothing.
    #[tool(
        title = "Verify payment notification",
        input_schema = input::<args::VerifyArgs>(),
        output_schema = outputs::output::<render::VerifyOutput>(),
        annotations(title = "Verify payment notification", read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn verify_payment_notification(&self, raw: JsonObject) -> CallToolResult {
        self.guard(false, async {
            let notification = args::VerifyArgs::parse(&raw)?.raw.0;
            let checked = self.payments.verify_notification(&notification).await?;
            Ok(render::verified(self.origin(), &checked))
        })
        .await
    }

    /// Refund a paid order, fully or partly; accepted is processing, see query_refund_status.
    #[tool(
        title = "Refund payment order",
        input_schema = input::<args::RefundArgs>(),
        output_schema = outputs::output::<render::RefundOutput>(),
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
                let a = args::RefundArgs::parse(&raw)?;
                let (mch_refund_no, derived) = a.refund_no();
                let request = RefundRequest {
                    reason: a.reason_text().to_owned(),
                    order_no: a.order_no.0,
                    amount: a.refund_amount.0,
                    mch_refund_no,
                };
                match self.confirmed_refund(request, derived, true, &ctx, state, responses, &mut ask).await? {
                    RefundStep::Sent(outcome) => Ok(render::refund(self.origin(), &outcome, derived)),
                    RefundStep::InCard(result) => Ok(result),
                    RefundStep::Asked => Ok(CallToolResult::success(Vec::new())),
                }
            })
            .await;
        match ask {
            Some(input) => input.into(),
            None => result.into(),
        }
    }

    /// A refund's state, or every refund of an order.
    #[tool(
        title = "Query refund status",
        input_schema = input::<args::RefundQueryArgs>(),
        output_schema = outputs::output::<render::RefundQueryOutput>(),
        annotations(title = "Query refund status", read_only_hint = true, destructive_hint = false, idempotent_hint = true, open_world_hint = true)
    )]
    async fn query_refund_status(&self, raw: JsonObject) -> CallToolResult {
        self.guard(false, async {
            let a = args::RefundQueryArgs::parse(&raw)?;
            let query =
                crate::provider::RefundQuery { order_no: a.order_no.0, mch_refund_no: a.mch_refund_no.map(|n| n.0) };
            let asked = query.mch_refund_no.clone();
            let status = self.payments.query_refund(query).await?;
            render::refund_query(self.origin(), asked.as_deref(), &status)
        })
        .await
    }

    /// Close an unpaid order so it can no longer be paid (a paid one must be refunded).
    #[tool(
        title = "Close payment order",
        input_schema = input::<args::CloseArgs>(),
        output_schema = outputs::output::<render::CloseOutput>(),
        annotations(title = "Close payment order", read_only_hint = false, destructive_hint = true, idempotent_hint = true, open_world_hint = true)
    )]
    async fn close_payment_order(&self, raw: JsonObject) -> CallToolResult {
        self.guard(true, async {
            let order = args::CloseArgs::parse(&raw)?.order();
            let outcome = self.payments.close(order.clone()).await?;
            Ok(render::closed(self.origin(), &order, &outcome))
        })
        .await
    }

    /// SANDBOX ONLY: act as the payer; mark an order paid or failed.
    #[tool(
        title = "Simulate a sandbox payment",
        input_schema = input::<args::SimulateArgs>(),
        output_schema = outputs::output::<render::SimulateOutput>(),
        annotations(title = "Simulate a sandbox payment", read_only_hint = false, destructive_hint = false, idempotent_hint = false, open_world_hint = false)
    )]
    async fn sandbox_simulate_payment(&self, raw: JsonObject) -> CallToolResult {
        self.guard(false, async {
            let a = args::SimulateArgs::parse(&raw)?;
            let (order_no, paid) = (a.order_no.0, a.outcome == args::SimulatedOutcome::Paid);
            let platform_order_no = self.payments.simulate_payment(&order_no, paid).await?;
            Ok(render::simulated(self.origin(), &platform_order_no, paid))
        })
        .await
    }
}

/// What the configured provider adds to the tools' declared arguments: epay creates need both
/// callback URLs (from the call when no default is configured), epay lists filter only on the
/// states epay records, lists made from the ledger (LFWin, Alipay, sandbox) know no pay type, only
/// Alipay offers a `channel` (and has no pay type), and Alipay's refund query needs the refund's
/// number.
fn narrowings(kind: ProviderKind, config: &crate::config::Config) -> Vec<(&'static str, args::Narrowing)> {
    let mut create = args::Narrowing::default();
    let mut list = args::Narrowing::default();
    let mut refund_query = args::Narrowing::default();
    if kind == ProviderKind::Alipay {
        create.remove.push("pay_type");
        refund_query.require.push("mch_refund_no");
    } else {
        create.remove.push("channel");
    }
    if kind == ProviderKind::Epay {
        if config.notify_url.is_none() {
            create.require.push("notify_url");
        }
        if config.return_url.is_none() {
            create.require.push("return_url");
        }
    }
    match kind.listable_states() {
        Some(states) => list.only.push(("state", states.iter().map(|s| s.name()).collect())),
        None => list.remove.push("pay_type"),
    }
    vec![("create_payment_order", create), ("list_payment_orders", list), ("query_refund_status", refund_query)]
}

/// Where a refund stands after [`PaymentServer::confirmed_refund`].
enum RefundStep {
    /// Sent to the gateway (or answered from the ledger).
    Sent(crate::payments::RefundOutcome),
    /// The client was asked for input (2026-07-28): nothing was sent.
    Asked,
    /// The payment card asks the human: this result carries the card's token; nothing was sent.
    InCard(CallToolResult),
}

impl PaymentServer {
    /// Checks a refund, has a human confirm it when `PAYMENT_CONFIRM_REFUNDS` says so, and sends
    /// it. `card`: whether the calling tool is linked to the pay card (its buttons can confirm).
    #[allow(clippy::too_many_arguments, reason = "one call site per refund tool, each passing its own context")]
    async fn confirmed_refund(
        &self,
        request: RefundRequest,
        derived: bool,
        card: bool,
        ctx: &RequestContext<RoleServer>,
        state: Option<String>,
        responses: Option<rmcp::model::InputResponses>,
        ask: &mut Option<rmcp::model::InputRequiredResult>,
    ) -> Result<RefundStep, PaymentError> {
        let checked = self.payments.check_refund(request, &call_scope(ctx, self.payments.config())).await?;
        if self.payments.config().confirm_refunds {
            let sandbox = self.payments.is_sandbox();
            let decision =
                self.confirmations.refund(ctx, checked.request(), derived, card, sandbox, state, responses).await;
            match decision {
                confirm::Decision::Confirmed => {}
                confirm::Decision::Ask(input) => {
                    *ask = Some(input);
                    return Ok(RefundStep::Asked);
                }
                confirm::Decision::InCard { token } => {
                    return Ok(RefundStep::InCard(render::awaiting_card(self.origin(), checked.request(), &token)));
                }
                confirm::Decision::Refused(err) => return Err(err),
            }
        }
        self.payments.refund(checked).await.map(RefundStep::Sent)
    }

    /// The card's Confirm or Decline for a refund (the app-only tool): sends the refund its token
    /// stands for, once, after the same checks as any refund (under the deciding caller's `scope`).
    async fn card_decision(&self, raw: JsonObject, scope: &Scope) -> CallToolResult {
        self.guard(true, async {
            let token = raw.get("token").and_then(serde_json::Value::as_str).unwrap_or_default();
            let confirm = match raw.get("decision").and_then(serde_json::Value::as_str) {
                Some("confirm") => true,
                Some("decline") => false,
                _ => return Err(args::invalid("`decision` must be `confirm` or `decline`. Nothing was sent.")),
            };
            let Some((request, derived)) = self.confirmations.take_card(token) else {
                return Err(PaymentError::new(
                    ErrorKind::Refused,
                    "This confirmation is unknown, already used or expired (PAYMENT_CONFIRM_TIMEOUT_SECONDS), so no refund was sent. Ask for the refund again to get a new card.",
                ));
            };
            if !confirm {
                return Err(PaymentError::new(
                    ErrorKind::Refused,
                    format!("The human declined the refund of ¥{} on order {}, so no refund was sent.", request.amount.to_yuan(), request.order_no),
                ));
            }
            let checked = self.payments.check_refund(request, scope).await?;
            let outcome = self.payments.refund(checked).await?;
            Ok(render::refund(self.origin(), &outcome, derived))
        })
        .await
    }

    /// A server over `payments`, listing only the tools its configuration allows.
    pub fn new(payments: Arc<Payments>) -> Self {
        let mut tool_router = Self::tool_router() + Self::compat_router();
        let config = payments.config();
        let names: Vec<String> = tool_router.map.keys().map(|k| k.to_string()).collect();
        for name in names {
            let sandbox_only = name.starts_with("sandbox_");
            let epay_only = name == "get_merchant_info";
            let closing = name == "close_payment_order";
            let alipay_only = compat::NAMES.contains(&name.as_str());
            let kind = payments.kind();
            if !config.tool_enabled(&name)
                || (sandbox_only && !payments.is_sandbox())
                || (epay_only && kind != ProviderKind::Epay)
                || (closing && !kind.can_close())
                || (alipay_only && kind != ProviderKind::Alipay)
            {
                tool_router.remove_route(&name);
            }
        }
        for (name, narrowing) in narrowings(payments.kind(), config) {
            if let Some(route) = tool_router.map.get_mut(name) {
                let mut schema = route.attr.input_schema.as_ref().clone();
                narrowing.apply(&mut schema);
                route.attr.input_schema = Arc::new(schema);
            }
        }
        if payments.is_sandbox() {
            for route in tool_router.map.values_mut() {
                if let Some(annotations) = route.attr.annotations.as_mut() {
                    annotations.open_world_hint = Some(false);
                }
            }
        }
        let confirmations = Arc::new(confirm::Confirmations::new(config.confirm_timeout, true));
        let scope = Arc::new(config.scope());
        PaymentServer { payments, confirmations, tool_router: Arc::new(tool_router), scope }
    }

    /// Whether a refund may be confirmed on the server's loopback page (URL elicitation). On by
    /// default: stdio servers and `serve` on a loopback address run beside the human's browser.
    /// `serve` off loopback turns it off, since a `127.0.0.1` link would point at the human's own
    /// machine; those clients fall through to the card's button or the refusal.
    pub fn with_confirmation_pages(mut self, on: bool) -> Self {
        self.confirmations = Arc::new(confirm::Confirmations::new(self.confirmations.ttl(), on));
        self
    }

    fn origin(&self) -> Origin {
        Origin { provider: self.payments.kind() }
    }

    /// Runs a tool body: configuration first, then the body, with errors and panics as tool errors.
    async fn guard(
        &self,
        money_moving: bool,
        body: impl Future<Output = Result<CallToolResult, PaymentError>>,
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
        let mut result = match outcome {
            Ok(Ok(result)) => result,
            Ok(Err(err)) => render::error(origin, &err),
            Err(_) => {
                tracing::error!("a tool handler panicked; answered with an error");
                render::error(
                    origin,
                    &PaymentError::new(
                        ErrorKind::Gateway,
                        "payment-mcp hit an internal error while handling this call. If the call was a create or refund, query before retrying; please report this.",
                    ),
                )
            }
        };
        scrub(&mut result);
        result
    }
}

/// The `error.kind` of a failed result's structured content.
fn error_kind(result: &CallToolResult) -> Option<&str> {
    result.structured_content.as_ref()?.pointer("/error/kind")?.as_str()
}

/// Removes every configured secret from a result, whatever a gateway echoed into it.
fn scrub(result: &mut CallToolResult) {
    for block in &mut result.content {
        if let rmcp::model::ContentBlock::Text(text) = block
            && let std::borrow::Cow::Owned(clean) = crate::redact::scrub(&text.text)
        {
            text.text = clean;
        }
    }
    if let Some(structured) = result.structured_content.as_mut() {
        crate::redact::scrub_json(structured);
    }
}
