//! What a caller may do: which tools it sees and calls, whether it may move money, and the largest
//! order and refund it may ask for.
//!
//! One type for both places such limits come from: the server-wide `PAYMENT_TOOLS`,
//! `AP_SELECT_TOOLS`, `PAYMENT_READ_ONLY`, `PAYMENT_MAX_ORDER_AMOUNT` and
//! `PAYMENT_MAX_REFUND_AMOUNT` ([`crate::config::Config::scope`]), and, over HTTP, each caller's
//! bearer token or JWT ([`Scope::parse`]). Every tool call runs under the server's scope narrowed by
//! its caller's ([`Scope::narrowed`]), so a token can only take rights away, never add any. The
//! tool layer hides and refuses tools with [`Scope::allows`]; the create and refund state machines
//! check amounts with [`Scope::check_order`] and [`Scope::check_refund`]: one copy of each rule.
//!
//! # The scope language
//!
//! A scope is a list of items separated by spaces (or commas): the same text in the token file and
//! in an OAuth access token's `scope` claim.
//!
//! | item | grants or limits |
//! | --- | --- |
//! | `payments:read` | every tool that moves no money (query, wait, list, refund status, verify, merchant info, sandbox payer) |
//! | `payments:create` | the create tools (`create_payment_order` and Alipay's create tools) |
//! | `payments:refund` | the refund tools (`refund_payment_order`, `refund-alipay-payment`) |
//! | `payments:close` | `close_payment_order` |
//! | `payments:all` | every tool |
//! | `tool:NAME` | one tool by name |
//! | `read-only` | hides every money-moving tool, whatever else is granted |
//! | `max_order=YUAN` | no order above this amount (`max_order=500.00`) |
//! | `max_refund=YUAN` | no refund above this amount |
//!
//! The token file is checked strictly (an unknown item is an error: a typo must not widen or
//! narrow a token silently); a JWT's scope is read leniently, since identity providers add items of
//! their own (`openid`, `profile`, ...).

use std::collections::BTreeSet;

use crate::config::{ALL_TOOLS, MONEY_MOVING_TOOLS};
use crate::error::{ErrorKind, PaymentError};
use crate::money::Fen;

/// The create tools (`payments:create`).
const CREATE_TOOLS: &[&str] =
    &["create_payment_order", "create-mobile-alipay-payment", "create-web-page-alipay-payment"];
/// The refund tools (`payments:refund`).
const REFUND_TOOLS: &[&str] = &["refund_payment_order", "refund-alipay-payment"];
/// The close tool (`payments:close`).
const CLOSE_TOOLS: &[&str] = &["close_payment_order"];

/// The scope items that grant tools, for messages and the protected-resource metadata.
pub const GRANT_ITEMS: &[&str] =
    &["payments:read", "payments:create", "payments:refund", "payments:close", "payments:all"];

/// An amount limit and where it comes from, for the refusal's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cap {
    pub amount: Fen,
    /// Whose limit it is: "this server" or "this caller".
    pub owner: &'static str,
    /// The setting that holds it: `PAYMENT_MAX_ORDER_AMOUNT`, or the caller's scope item.
    pub source: String,
}

impl Cap {
    /// The smaller of two optional caps (the one that binds), keeping its source.
    fn tighter(a: &Option<Cap>, b: &Option<Cap>) -> Option<Cap> {
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.amount < a.amount { b.clone() } else { a.clone() }),
            (Some(c), None) | (None, Some(c)) => Some(c.clone()),
            (None, None) => None,
        }
    }
}

/// What a caller may do. The default allows everything (no limits).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The tools allowed; `None` = every tool.
    tools: Option<BTreeSet<String>>,
    /// Money-moving tools are hidden and refused.
    read_only: bool,
    max_order: Option<Cap>,
    max_refund: Option<Cap>,
}

impl Scope {
    /// A scope from its parts (the server's own, from the environment).
    pub fn new(
        tools: Option<BTreeSet<String>>,
        read_only: bool,
        max_order: Option<Cap>,
        max_refund: Option<Cap>,
    ) -> Scope {
        Scope { tools, read_only, max_order, max_refund }
    }

    /// Parses the scope language (see the module doc). `owner` names the caller in refusals
    /// (`token shop-bot`). `strict`: an unknown item is an error (the token file); otherwise it is
    /// ignored (a JWT's `scope` claim, where identity providers add items of their own).
    ///
    /// # Errors
    /// A sentence naming the bad item: unknown (when strict), an unknown tool, or a bad amount.
    pub fn parse(text: &str, owner: &str, strict: bool) -> Result<Scope, String> {
        let mut tools = BTreeSet::new();
        let mut all = false;
        let mut scope = Scope::default();
        let mut grant = |names: &[&str]| tools.extend(names.iter().map(|n| (*n).to_owned()));
        for item in text.split([' ', ',', '\t', '\n']).map(str::trim).filter(|i| !i.is_empty()) {
            match item {
                "payments:all" => all = true,
                "payments:read" => {
                    let read: Vec<&str> =
                        ALL_TOOLS.iter().copied().filter(|t| !MONEY_MOVING_TOOLS.contains(t)).collect();
                    grant(&read);
                }
                "payments:create" => grant(CREATE_TOOLS),
                "payments:refund" => grant(REFUND_TOOLS),
                "payments:close" => grant(CLOSE_TOOLS),
                "read-only" => scope.read_only = true,
                _ => {
                    if let Some(name) = item.strip_prefix("tool:") {
                        if !ALL_TOOLS.contains(&name) {
                            return Err(format!("`{item}` names no tool; known tools: {}", ALL_TOOLS.join(", ")));
                        }
                        grant(&[name]);
                    } else if let Some((key, value)) = item.split_once('=')
                        && matches!(key, "max_order" | "max_refund")
                    {
                        let amount = Fen::parse_yuan(value).map_err(|why| format!("`{item}`: {why}"))?;
                        let cap =
                            Cap { amount, owner: "this caller", source: format!("{key} in the scope of {owner}") };
                        if key == "max_order" {
                            scope.max_order = Some(cap);
                        } else {
                            scope.max_refund = Some(cap);
                        }
                    } else if strict {
                        return Err(format!(
                            "`{item}` is not a scope item; use {}, tool:NAME, read-only, max_order=YUAN or max_refund=YUAN",
                            GRANT_ITEMS.join(", ")
                        ));
                    }
                }
            }
        }
        scope.tools = if all { None } else { Some(tools) };
        Ok(scope)
    }

    /// Whether the scope grants at least one tool.
    pub fn grants_any(&self) -> bool {
        ALL_TOOLS.iter().any(|t| self.allows(t))
    }

    /// This scope with `other`'s limits added: tools both allow, read-only if either is, and the
    /// tighter of each cap.
    pub fn narrowed(&self, other: &Scope) -> Scope {
        let tools = match (&self.tools, &other.tools) {
            (Some(a), Some(b)) => Some(a.intersection(b).cloned().collect()),
            (Some(t), None) | (None, Some(t)) => Some(t.clone()),
            (None, None) => None,
        };
        Scope {
            tools,
            read_only: self.read_only || other.read_only,
            max_order: Cap::tighter(&self.max_order, &other.max_order),
            max_refund: Cap::tighter(&self.max_refund, &other.max_refund),
        }
    }

    /// Whether the tool `name` is offered and may be called.
    pub fn allows(&self, name: &str) -> bool {
        if self.read_only && MONEY_MOVING_TOOLS.contains(&name) {
            return false;
        }
        self.tools.as_ref().is_none_or(|t| t.contains(name))
    }

    /// Refuses an order above the order cap, before anything is sent.
    ///
    /// # Errors
    /// `invalid_input` naming the limit and where it is set.
    pub fn check_order(&self, amount: Fen) -> Result<(), PaymentError> {
        check(&self.max_order, amount, "amount")
    }

    /// Refuses a refund above the refund cap, before anyone is asked to confirm it or anything is sent.
    ///
    /// # Errors
    /// `invalid_input` naming the limit and where it is set.
    pub fn check_refund(&self, amount: Fen) -> Result<(), PaymentError> {
        check(&self.max_refund, amount, "refund amount")
    }

    /// The scope written back in the scope language (for `token list`).
    pub fn describe(&self) -> String {
        let mut items: Vec<String> = match &self.tools {
            None => vec!["payments:all".into()],
            Some(tools) => tools.iter().map(|t| format!("tool:{t}")).collect(),
        };
        if self.read_only {
            items.push("read-only".into());
        }
        if let Some(cap) = &self.max_order {
            items.push(format!("max_order={}", cap.amount));
        }
        if let Some(cap) = &self.max_refund {
            items.push(format!("max_refund={}", cap.amount));
        }
        items.join(" ")
    }
}

fn check(cap: &Option<Cap>, amount: Fen, what: &str) -> Result<(), PaymentError> {
    match cap {
        Some(cap) if amount > cap.amount => Err(PaymentError::new(
            ErrorKind::InvalidInput,
            format!(
                "The {what} {amount} is above {}'s limit of {} ({}); nothing was sent.",
                cap.owner, cap.amount, cap.source
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_grant_their_tools_and_nothing_else() {
        let s = Scope::parse("payments:read", "token t", true).unwrap();
        assert!(s.allows("query_payment_order") && s.allows("wait_for_payment"));
        assert!(
            !s.allows("create_payment_order") && !s.allows("refund_payment_order") && !s.allows("close_payment_order")
        );
        let s = Scope::parse("payments:read,payments:refund", "token t", true).unwrap();
        assert!(
            s.allows("refund_payment_order") && s.allows("refund-alipay-payment") && !s.allows("create_payment_order")
        );
        let s = Scope::parse("tool:query_payment_order", "token t", true).unwrap();
        assert!(s.allows("query_payment_order") && !s.allows("list_payment_orders"));
        assert!(!Scope::parse("max_order=5", "token t", true).unwrap().grants_any());
    }

    #[test]
    fn read_only_beats_a_grant() {
        let s = Scope::parse("payments:all read-only", "token t", true).unwrap();
        assert!(s.allows("query_payment_order") && !s.allows("create_payment_order"));
    }

    #[test]
    fn strict_parsing_names_the_bad_item_and_lenient_parsing_skips_foreign_ones() {
        assert!(Scope::parse("payments:reed", "token t", true).unwrap_err().contains("payments:reed"));
        assert!(Scope::parse("tool:nope", "token t", false).unwrap_err().contains("tool:nope"));
        assert!(Scope::parse("max_refund=-1", "token t", false).unwrap_err().contains("max_refund=-1"));
        let s = Scope::parse("openid profile payments:read", "jwt", false).unwrap();
        assert!(s.allows("query_payment_order") && !s.allows("create_payment_order"));
    }

    #[test]
    fn narrowing_only_takes_rights_away() {
        let server = Scope::new(
            None,
            false,
            Some(Cap { amount: Fen(10_000), owner: "this server", source: "PAYMENT_MAX_ORDER_AMOUNT".into() }),
            None,
        );
        let token =
            Scope::parse("payments:create payments:read max_order=500.00 max_refund=5", "token bot", true).unwrap();
        let s = server.narrowed(&token);
        assert!(s.allows("create_payment_order") && !s.allows("refund_payment_order"));
        let err = s.check_order(Fen(10_001)).unwrap_err();
        assert!(err.message.contains("this server's limit of 100.00 (PAYMENT_MAX_ORDER_AMOUNT)"), "{}", err.message);
        assert!(s.check_order(Fen(10_000)).is_ok());
        let err = s.check_refund(Fen(501)).unwrap_err();
        assert!(
            err.message.contains("this caller's limit of 5.00 (max_refund in the scope of token bot)"),
            "{}",
            err.message
        );
        // A token asking for more than the server allows still gets the server's limit.
        let wide = Scope::parse("payments:all max_order=1000000", "token w", true).unwrap();
        assert!(server.narrowed(&wide).check_order(Fen(10_001)).is_err());
        let ro = Scope::new(None, true, None, None);
        assert!(!ro.narrowed(&wide).allows("create_payment_order"));
    }

    #[test]
    fn describe_round_trips() {
        let s = Scope::parse("payments:refund read-only max_order=1.50", "token t", true).unwrap();
        assert_eq!(Scope::parse(&s.describe(), "token t", true).unwrap().describe(), s.describe());
    }
}
