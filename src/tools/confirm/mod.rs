//! Asking the human to confirm a refund before it is sent (`PAYMENT_CONFIRM_REFUNDS=true`), in a
//! way the model cannot answer for them. Whatever the client offers, in this order:
//!
//! 1. **Form elicitation**: a yes/no form in the client.
//! 2. **URL elicitation** (SEP-1036), for clients that can open a link but show no form: a
//!    one-time, expiring confirmation page served on 127.0.0.1 ([`page`]).
//! 3. **The pay card's buttons** (MCP Apps): the refund result carries a token in its `_meta`
//!    (which hosts keep out of the model's context) and the card calls the app-only
//!    `payment_card_refund_decision` tool (`visibility: ["app"]`, which hosts never offer the
//!    model) with it.
//! 4. Otherwise a refusal that says how to enable one of the three.
//!
//! Two protocol generations: a 2025-era client gets `elicitation/create` requests on the same call;
//! a 2026-07-28 client, to which the server may not send requests, gets an `input_required`
//! result (MRTR) and calls again with the answer. The MRTR `requestState` is echoed by the client,
//! so it is untrusted: it is only a random handle to a confirmation kept here, bound to the exact
//! refund it was asked for. A decline, a cancel, no answer in time
//! (`PAYMENT_CONFIRM_TIMEOUT_SECONDS`), or a client that cannot ask means no refund.

pub mod page;

use crate::error::{ErrorKind, PaymentError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::RoleServer;
use rmcp::model::{
    ClientCapabilities, ElicitRequest, ElicitRequestParams, ElicitationAction, InputRequest, InputRequests,
    InputRequiredResult, InputResponses,
};
use rmcp::service::RequestContext;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::provider::RefundRequest;

/// The form shown to the human.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct RefundConfirmation {
    /// Tick to send this refund to the payer.
    pub confirm: bool,
}

rmcp::elicit_safe!(RefundConfirmation);

/// What to do with a refund that needs confirmation.
pub enum Decision {
    /// The human confirmed: send it.
    Confirmed,
    /// Ask the client for input and wait for it to call again (2026-07-28 clients).
    Ask(InputRequiredResult),
    /// Nothing is sent now: the card shows the refund with Confirm and Decline, and `token` (for
    /// the card only) is what its buttons send.
    InCard { token: String },
    /// No refund: declined, unanswered, or the client cannot ask.
    Refused(PaymentError),
}

/// How this client can be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    Form,
    Url,
    Card,
    None,
}

/// The first way, in the order, that these capabilities offer. An `elicitation` capability
/// naming neither mode means form (the 2025-06-18 shape); URL mode is used only when the client
/// says `url` and not `form`.
pub fn way(capabilities: Option<&ClientCapabilities>, pages_available: bool) -> Way {
    match capabilities.and_then(|c| c.elicitation.as_ref()) {
        Some(e) if e.form.is_some() || e.url.is_none() => Way::Form,
        Some(_) if pages_available => Way::Url,
        _ if crate::card::renders_apps(capabilities) => Way::Card,
        _ => Way::None,
    }
}

/// A refund the card may confirm.
struct CardRefund {
    request: RefundRequest,
    derived: bool,
    deadline: Instant,
}

/// A confirmation asked of a 2026-07-28 client and not yet answered.
struct Waiting {
    fingerprint: String,
    deadline: Instant,
    /// The page, when the client was sent to one (URL mode).
    page: Option<page::Ticket>,
}

/// Every confirmation in progress.
pub struct Confirmations {
    ttl: Duration,
    /// The loopback pages; `None` where a link on this machine would not reach the human.
    pages: Option<Arc<page::Pages>>,
    waiting: Mutex<HashMap<String, Waiting>>,
    cards: Mutex<HashMap<String, CardRefund>>,
}

fn fingerprint(req: &RefundRequest) -> String {
    format!("{}\n{}\n{}\n{}", req.order_no, req.amount.to_yuan(), req.mch_refund_no, req.reason)
}

fn question(req: &RefundRequest) -> String {
    let reason = if req.reason.is_empty() { "none given".to_owned() } else { req.reason.clone() };
    format!(
        "Refund ¥{} to the payer of order {}? (refund number {}, reason: {reason}). This sends real money back.",
        req.amount.to_yuan(),
        req.order_no,
        req.mch_refund_no
    )
}

fn refused(message: impl Into<String>) -> Decision {
    Decision::Refused(PaymentError::new(ErrorKind::Refused, message))
}

fn random_handle(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    let _ = getrandom::fill(&mut bytes);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos:x}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn page_outcome_decision(outcome: page::Outcome) -> Decision {
    match outcome {
        page::Outcome::Confirmed => Decision::Confirmed,
        page::Outcome::Declined => {
            refused("The human declined the refund on the confirmation page, so no refund was sent.")
        }
        page::Outcome::Expired => refused(
            "Nobody confirmed the refund on the confirmation page before its link expired (PAYMENT_CONFIRM_TIMEOUT_SECONDS), so no refund was sent. Call refund_payment_order again for a new link.",
        ),
    }
}

impl Confirmations {
    /// Confirmations that wait `ttl` for the human; `pages` serves URL-mode confirmation pages.
    pub fn new(ttl: Duration, pages: bool) -> Confirmations {
        Confirmations {
            ttl,
            pages: pages.then(|| page::Pages::new(ttl)),
            waiting: Mutex::new(HashMap::new()),
            cards: Mutex::new(HashMap::new()),
        }
    }

    /// How long a confirmation waits for the human.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Gets the human's confirmation for `req`, by whichever mechanism the client offers.
    #[allow(clippy::too_many_arguments, reason = "the refund, how it was named, and the call's whole context")]
    pub async fn refund(
        &self,
        ctx: &RequestContext<RoleServer>,
        req: &RefundRequest,
        derived: bool,
        card: bool,
        sandbox: bool,
        state: Option<String>,
        responses: Option<InputResponses>,
    ) -> Decision {
        let modern = ctx.protocol_version().is_some_and(|v| v.as_str() >= "2026-07-28");
        if let Some(handle) = state.filter(|_| modern) {
            return self.answered(req, &handle, responses).await;
        }
        let way = way(ctx.client_capabilities().as_ref(), self.pages.is_some());
        match (way, modern) {
            (Way::Form, false) => self.form_legacy(ctx, req).await,
            (Way::Form, true) => match form_request(req) {
                Some(params) => self.ask_modern(req, params, None),
                None => refused("payment-mcp could not build the confirmation form, so no refund was sent."),
            },
            (Way::Url, _) => self.url(ctx, req, sandbox, modern).await,
            (Way::Card, _) if card => self.card(req, derived),
            (Way::Card, _) => refused(cannot_ask()),
            (Way::None, _) => refused(cannot_ask()),
        }
    }

    async fn form_legacy(&self, ctx: &RequestContext<RoleServer>, req: &RefundRequest) -> Decision {
        match ctx.peer.elicit_with_timeout::<RefundConfirmation>(question(req), Some(self.ttl)).await {
            Ok(Some(RefundConfirmation { confirm: true })) => Decision::Confirmed,
            Ok(_) => refused("The human did not confirm the refund, so no refund was sent."),
            Err(e) => refused(format!("The human did not confirm the refund ({e}), so no refund was sent.")),
        }
    }

    async fn url(
        &self,
        ctx: &RequestContext<RoleServer>,
        req: &RefundRequest,
        sandbox: bool,
        modern: bool,
    ) -> Decision {
        let Some(pages) = &self.pages else { return refused(cannot_ask()) };
        let summary = page::Summary {
            order_no: req.order_no.clone(),
            amount: req.amount.to_yuan(),
            reason: req.reason.clone(),
            mch_refund_no: req.mch_refund_no.clone(),
            sandbox,
        };
        let ticket = match pages.open(summary).await {
            Ok(ticket) => ticket,
            Err(e) => {
                tracing::warn!("no refund confirmation page: {e}");
                return refused(
                    "payment-mcp could not start its local refund confirmation page, so no refund was sent.",
                );
            }
        };
        let message = format!("{} Open the link to confirm or decline.", question(req));
        let params = ElicitRequestParams::UrlElicitationParams {
            meta: None,
            message,
            url: ticket.url.clone(),
            elicitation_id: ticket.id.clone(),
        };
        if modern {
            return self.ask_modern(req, params, Some(ticket));
        }
        match ctx.peer.create_elicitation_with_timeout(params, Some(self.ttl)).await {
            Ok(answer) if answer.action == ElicitationAction::Accept => {
                page_outcome_decision(pages.outcome(&ticket).await)
            }
            Ok(_) => {
                pages.revoke(&ticket);
                refused("The human declined to open the confirmation page, so no refund was sent.")
            }
            Err(e) => {
                pages.revoke(&ticket);
                if ticket.expired() {
                    return page_outcome_decision(page::Outcome::Expired);
                }
                refused(format!("The human did not confirm the refund ({e}), so no refund was sent."))
            }
        }
    }

    fn ask_modern(&self, req: &RefundRequest, params: ElicitRequestParams, page: Option<page::Ticket>) -> Decision {
        let handle = random_handle("refund-confirm");
        let deadline = Instant::now() + self.ttl;
        {
            let mut waiting = lock(&self.waiting);
            waiting.retain(|_, w| w.deadline > Instant::now());
            waiting.insert(handle.clone(), Waiting { fingerprint: fingerprint(req), deadline, page });
        }
        let mut requests = InputRequests::new();
        requests.insert("confirm".into(), InputRequest::Elicitation(ElicitRequest::new(params)));
        Decision::Ask(InputRequiredResult::new(Some(requests), Some(handle)))
    }

    /// A 2026-07-28 client's second call: the answer to what [`Self::ask_modern`] asked.
    async fn answered(&self, req: &RefundRequest, handle: &str, responses: Option<InputResponses>) -> Decision {
        let found = lock(&self.waiting).remove(handle).filter(|w| w.deadline > Instant::now());
        let Some(waiting) = found else {
            return refused(
                "This confirmation is unknown or expired, so no refund was sent. Call refund_payment_order again to be asked anew.",
            );
        };
        if waiting.fingerprint != fingerprint(req) {
            if let (Some(ticket), Some(pages)) = (&waiting.page, &self.pages) {
                pages.revoke(ticket);
            }
            return refused(
                "The refund changed after the human was asked, so no refund was sent. Call refund_payment_order again to be asked about this one.",
            );
        }
        let answer = responses.as_ref().and_then(|r| r.get("confirm"));
        let accepted = answer.is_some_and(|a| a.get("action").and_then(serde_json::Value::as_str) == Some("accept"));
        match (waiting.page, &self.pages) {
            (Some(ticket), Some(pages)) => {
                if accepted {
                    page_outcome_decision(pages.outcome(&ticket).await)
                } else {
                    pages.revoke(&ticket);
                    refused("The human declined to open the confirmation page, so no refund was sent.")
                }
            }
            _ if accepted
                && answer.and_then(|a| a.pointer("/content/confirm")).and_then(serde_json::Value::as_bool)
                    == Some(true) =>
            {
                Decision::Confirmed
            }
            _ => refused(
                "The human did not confirm the refund (declined, cancelled or unticked), so no refund was sent.",
            ),
        }
    }

    fn card(&self, req: &RefundRequest, derived: bool) -> Decision {
        let token = random_handle("card");
        let mut cards = lock(&self.cards);
        cards.retain(|_, c| c.deadline > Instant::now());
        cards.insert(token.clone(), CardRefund { request: req.clone(), derived, deadline: Instant::now() + self.ttl });
        Decision::InCard { token }
    }

    /// Takes the refund behind a card's token (once): the request and whether its refund number was
    /// derived. `None` when the token is unknown, used or expired.
    pub fn take_card(&self, token: &str) -> Option<(RefundRequest, bool)> {
        lock(&self.cards).remove(token).filter(|c| c.deadline > Instant::now()).map(|c| (c.request, c.derived))
    }
}

fn form_request(req: &RefundRequest) -> Option<ElicitRequestParams> {
    let schema = json!({
        "type": "object",
        "properties": {"confirm": {"type": "boolean", "title": "Send this refund", "description": "Tick to send the refund to the payer."}},
        "required": ["confirm"]
    });
    Some(ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: question(req),
        requested_schema: serde_json::from_value(schema).ok()?,
    })
}

/// What a client that offers no way to ask is told.
pub fn cannot_ask() -> String {
    "Refunds need a human's confirmation here (PAYMENT_CONFIRM_REFUNDS=true), but this MCP client offers no way to ask one, so no refund was sent. Any of these works: a client with form elicitation; a client with URL elicitation (payment-mcp then opens a one-time confirmation page on this machine); or a client that renders MCP Apps (the payment card's Confirm button). Otherwise refund in the gateway's merchant console.".into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{ElicitationCapability, FormElicitationCapability, UrlElicitationCapability};

    fn caps(form: bool, url: bool, apps: bool, elicitation: bool) -> ClientCapabilities {
        let mut c = ClientCapabilities::default();
        if elicitation {
            let mut e = ElicitationCapability::default();
            if form {
                e = e.with_form(FormElicitationCapability::default());
            }
            if url {
                e = e.with_url(UrlElicitationCapability::default());
            }
            c.elicitation = Some(e);
        }
        if apps {
            let settings = json!({"mimeTypes": [crate::card::MIME_TYPE]});
            let mut map = rmcp::model::ExtensionCapabilities::new();
            map.insert(crate::card::EXTENSION_ID.into(), settings.as_object().cloned().unwrap_or_default());
            c.extensions = Some(map);
        }
        c
    }

    #[test]
    fn the_first_way_the_client_offers_wins() {
        assert_eq!(way(Some(&caps(true, true, true, true)), true), Way::Form);
        assert_eq!(way(Some(&caps(false, false, true, true)), true), Way::Form, "bare elicitation is form");
        assert_eq!(way(Some(&caps(false, true, true, true)), true), Way::Url);
        assert_eq!(way(Some(&caps(false, true, true, true)), false), Way::Card, "no pages: the card");
        assert_eq!(way(Some(&caps(false, false, true, false)), true), Way::Card);
        assert_eq!(way(Some(&caps(false, true, false, true)), false), Way::None);
        assert_eq!(way(Some(&caps(false, false, false, false)), true), Way::None);
        assert_eq!(way(None, true), Way::None);
    }

    #[test]
    fn a_card_token_works_once() {
        let c = Confirmations::new(Duration::from_secs(60), false);
        let req = RefundRequest {
            order_no: "P".into(),
            amount: crate::money::Fen(100),
            reason: String::new(),
            mch_refund_no: "R".into(),
        };
        let Decision::InCard { token } = c.card(&req, false) else { panic!("a card decision") };
        assert!(c.take_card("card-forged").is_none());
        assert_eq!(c.take_card(&token).map(|(r, _)| r.mch_refund_no), Some("R".to_owned()));
        assert!(c.take_card(&token).is_none(), "a used token is gone");
    }
}
