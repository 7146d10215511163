//! Process-wide counters for operators, rendered in the Prometheus text format on `serve --http`'s
//! `/metrics`: tool calls and errors by tool and kind, tool and gateway latency histograms, calls
//! in flight, payment notifications accepted and rejected, HTTP responses and auth refusals.
//!
//! Fed from where things happen: the tool layer (every call), the three gateway clients (every
//! HTTP request to a gateway), the HTTP server (responses, refusals) and the notification endpoint
//! ([`notification_accepted`] / [`notification_rejected`]). Over stdio the counters are kept too
//! (a few atomic and map updates per call) and simply never shown. Labels only ever carry tool
//! names, error kinds, provider names, gateway operations and status codes: bounded sets, and never
//! an order number, a token or a key. Hand-rolled rather than a metrics crate: four metric shapes
//! and one text format do not justify another dependency tree.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Bucket upper bounds in seconds: 1 ms to 30 s, enough to tell a local sandbox from a slow gateway.
const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A latency histogram with [`BUCKETS`].
#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Non-cumulative counts per bucket, plus one for +Inf at the end.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len() + 1];
        }
        let slot = BUCKETS.iter().position(|b| seconds <= *b).unwrap_or(BUCKETS.len());
        if let Some(c) = self.counts.get_mut(slot) {
            *c += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Maps {
    /// (tool, outcome: ok | error | input_required) → count.
    calls: BTreeMap<(String, &'static str), u64>,
    /// (tool, error kind) → count.
    errors: BTreeMap<(String, String), u64>,
    /// tool → latency.
    call_seconds: BTreeMap<String, Histogram>,
    /// (provider, operation, outcome) → latency of one HTTP request to the gateway.
    gateway_seconds: BTreeMap<(&'static str, String, &'static str), Histogram>,
    /// (provider, accepted | rejected) → count.
    notifications: BTreeMap<(String, &'static str), u64>,
    /// HTTP status → count.
    http: BTreeMap<u16, u64>,
    /// reason → count.
    auth_refusals: BTreeMap<&'static str, u64>,
}

static MAPS: Mutex<Maps> = Mutex::new(Maps {
    calls: BTreeMap::new(),
    errors: BTreeMap::new(),
    call_seconds: BTreeMap::new(),
    gateway_seconds: BTreeMap::new(),
    notifications: BTreeMap::new(),
    http: BTreeMap::new(),
    auth_refusals: BTreeMap::new(),
});
static IN_FLIGHT_READ: AtomicI64 = AtomicI64::new(0);
static IN_FLIGHT_MONEY: AtomicI64 = AtomicI64::new(0);

/// The maps; a panic while one was held cannot leave them inconsistent (each update is one
/// insertion), so a poisoned lock is simply taken over.
fn maps() -> MutexGuard<'static, Maps> {
    MAPS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A tool call in flight; counted down when dropped (a cancelled call included).
#[derive(Debug)]
pub struct InFlight {
    money_moving: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let gauge = if self.money_moving { &IN_FLIGHT_MONEY } else { &IN_FLIGHT_READ };
        gauge.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts a tool call as in flight until the returned guard is dropped.
pub fn call_started(money_moving: bool) -> InFlight {
    let gauge = if money_moving { &IN_FLIGHT_MONEY } else { &IN_FLIGHT_READ };
    gauge.fetch_add(1, Ordering::SeqCst);
    InFlight { money_moving }
}

/// Money-moving calls (create, refund, close) in flight now: graceful shutdown waits for them.
pub fn money_moving_in_flight() -> i64 {
    IN_FLIGHT_MONEY.load(Ordering::SeqCst)
}

/// Records a finished tool call: `outcome` is `ok`, `error` or `input_required`; `error_kind` the
/// error's kind (`invalid_input`, `outcome_unknown`, ...) when it failed.
pub fn call_finished(tool: &str, outcome: &'static str, error_kind: Option<&str>, elapsed: Duration) {
    let mut m = maps();
    *m.calls.entry((tool.to_owned(), outcome)).or_default() += 1;
    if let Some(kind) = error_kind {
        *m.errors.entry((tool.to_owned(), kind.to_owned())).or_default() += 1;
    }
    m.call_seconds.entry(tool.to_owned()).or_default().observe(elapsed.as_secs_f64());
}

/// Records one HTTP request to a gateway: `operation` is its path or method name, `outcome` `ok`,
/// `not_sent`, `no_reply`, `rejected` or `bad_signature`.
pub fn gateway_request(provider: &'static str, operation: &str, outcome: &'static str, elapsed: Duration) {
    maps().gateway_seconds.entry((provider, operation.to_owned(), outcome)).or_default().observe(elapsed.as_secs_f64());
}

/// A gateway notification whose signature verified and that was recorded (the notify endpoint).
pub fn notification_accepted(provider: &str) {
    *maps().notifications.entry((provider.to_owned(), "accepted")).or_default() += 1;
}

/// A gateway notification refused (bad signature, unknown order, wrong amount, unreadable).
pub fn notification_rejected(provider: &str) {
    *maps().notifications.entry((provider.to_owned(), "rejected")).or_default() += 1;
}

/// An HTTP response of `serve --http`.
pub fn http_response(status: u16) {
    *maps().http.entry(status).or_default() += 1;
}

/// A request refused before it reached a tool: `missing_token`, `bad_token`,
/// `insufficient_scope`, `rate_limited`, `draining`, `keys_unavailable`.
pub fn auth_refused(reason: &'static str) {
    *maps().auth_refusals.entry(reason).or_default() += 1;
}

/// Escapes a label value (the sets are bounded and mostly ASCII names, but be exact anyway).
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Everything, in the Prometheus text exposition format (version 0.0.4).
pub fn render() -> String {
    let m = maps();
    let mut out = String::with_capacity(4096);
    out.push_str("# HELP payment_mcp_tool_calls_total Tool calls by tool and outcome.\n# TYPE payment_mcp_tool_calls_total counter\n");
    for ((tool, outcome), n) in &m.calls {
        let _ = writeln!(out, "payment_mcp_tool_calls_total{{tool=\"{}\",outcome=\"{outcome}\"}} {n}", label(tool));
    }
    out.push_str("# HELP payment_mcp_tool_errors_total Tool calls that ended in an error, by tool and error kind.\n# TYPE payment_mcp_tool_errors_total counter\n");
    for ((tool, kind), n) in &m.errors {
        let _ = writeln!(out, "payment_mcp_tool_errors_total{{tool=\"{}\",kind=\"{}\"}} {n}", label(tool), label(kind));
    }
    out.push_str("# HELP payment_mcp_tool_calls_in_flight Tool calls running now.\n# TYPE payment_mcp_tool_calls_in_flight gauge\n");
    let _ = writeln!(
        out,
        "payment_mcp_tool_calls_in_flight{{money_moving=\"false\"}} {}",
        IN_FLIGHT_READ.load(Ordering::SeqCst)
    );
    let _ = writeln!(
        out,
        "payment_mcp_tool_calls_in_flight{{money_moving=\"true\"}} {}",
        IN_FLIGHT_MONEY.load(Ordering::SeqCst)
    );
    out.push_str("# HELP payment_mcp_tool_call_duration_seconds Tool call latency.\n# TYPE payment_mcp_tool_call_duration_seconds histogram\n");
    for (tool, h) in &m.call_seconds {
        h.render(&mut out, "payment_mcp_tool_call_duration_seconds", &format!("tool=\"{}\"", label(tool)));
    }
    out.push_str("# HELP payment_mcp_gateway_request_duration_seconds Latency of each HTTP request to the payment gateway.\n# TYPE payment_mcp_gateway_request_duration_seconds histogram\n");
    for ((provider, operation, outcome), h) in &m.gateway_seconds {
        let labels = format!("provider=\"{provider}\",operation=\"{}\",outcome=\"{outcome}\"", label(operation));
        h.render(&mut out, "payment_mcp_gateway_request_duration_seconds", &labels);
    }
    out.push_str("# HELP payment_mcp_notifications_total Gateway payment notifications by provider and verdict.\n# TYPE payment_mcp_notifications_total counter\n");
    for ((provider, verdict), n) in &m.notifications {
        let _ = writeln!(
            out,
            "payment_mcp_notifications_total{{provider=\"{}\",verdict=\"{verdict}\"}} {n}",
            label(provider)
        );
    }
    out.push_str("# HELP payment_mcp_http_responses_total HTTP responses by status code.\n# TYPE payment_mcp_http_responses_total counter\n");
    for (status, n) in &m.http {
        let _ = writeln!(out, "payment_mcp_http_responses_total{{status=\"{status}\"}} {n}");
    }
    out.push_str("# HELP payment_mcp_http_refusals_total Requests refused before any tool ran, by reason.\n# TYPE payment_mcp_http_refusals_total counter\n");
    for (reason, n) in &m.auth_refusals {
        let _ = writeln!(out, "payment_mcp_http_refusals_total{{reason=\"{reason}\"}} {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative_and_count_everything() {
        let mut h = Histogram::default();
        h.observe(0.0005);
        h.observe(0.02);
        h.observe(100.0);
        let mut out = String::new();
        h.render(&mut out, "x", "a=\"b\"");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.001\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.025\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"30\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count{a=\"b\"} 3\n"), "{out}");
    }

    #[test]
    fn notifications_and_calls_show_up_with_their_labels() {
        notification_accepted("test-provider-a");
        notification_rejected("test-provider-a");
        notification_rejected("test-provider-a");
        call_finished("test_tool", "error", Some("invalid_input"), Duration::from_millis(3));
        let text = render();
        assert!(text.contains("payment_mcp_notifications_total{provider=\"test-provider-a\",verdict=\"accepted\"} 1"));
        assert!(text.contains("payment_mcp_notifications_total{provider=\"test-provider-a\",verdict=\"rejected\"} 2"));
        assert!(text.contains("payment_mcp_tool_errors_total{tool=\"test_tool\",kind=\"invalid_input\"} 1"));
        assert!(label("a\"b").contains("\\\""));
    }
}
