//! The sandbox cashier: the HTML pay page behind every sandbox pay URL.
//!
//! It stands in for LFWin's cashier so a person (or a test) can complete the flow: it shows the
//! amount, both order numbers, a QR code of the pay URL (as the real cashier shows one; the sandbox
//! listens on 127.0.0.1, so only this machine can open it) and two plain form buttons that pay or
//! fail the order. No
//! JavaScript and no external assets; everything interpolated is HTML-escaped. Opening the page
//! marks the order "opened", which is when LFWin creates the platform order (see
//! `SandboxConfig::lazy_platform_orders`).
//!
//! Only the page itself can press its buttons: the form carries the order's random token (16 bytes
//! from the OS, made at creation), and a post must name the order by its platform number and send
//! that token back. With the Host and Origin checks in `http.rs`, neither another web site (CSRF) nor
//! a page on a rebound domain (DNS rebinding) can mark an order paid.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Shared;
use super::state::Order;
use crate::html::escape;
use crate::sign::signatures_match;

/// A fresh pay-form token: 32 hex digits from the OS's randomness, or empty (a form that never
/// works) when there is none.
pub(crate) fn new_token() -> String {
    let mut bytes = [0u8; 16];
    match getrandom::fill(&mut bytes) {
        Ok(()) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "sandbox: no OS randomness; the pay page's buttons will not work");
            String::new()
        }
    }
}

/// `GET /pay/{orderid}`: the page, or a 404 page for an unknown order.
pub(crate) async fn show(State(shared): State<Arc<Shared>>, Path(orderid): Path<String>) -> Response {
    let order = {
        let mut state = shared.lock();
        state.mark_opened(&orderid);
        state.find(&orderid).cloned()
    };
    match order {
        Some(order) => html(StatusCode::OK, render(&order, &shared.pay_url(&order.orderid), None)),
        None => not_found(&orderid),
    }
}

/// `POST /pay/{orderid}/simulate` with form `outcome=paid|failed` and the page's `token`: pays or
/// fails the order, then redirects (303) back to the page. The order must be named by its platform
/// number (404 otherwise) and the token must match (403 otherwise). A bad outcome is 400; an
/// already paid or failed order shows the page with a notice (409).
pub(crate) async fn simulate(State(shared): State<Arc<Shared>>, Path(orderid): Path<String>, body: Bytes) -> Response {
    let fields = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body).unwrap_or_default();
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let Some(expected) = shared.lock().by_orderid(&orderid).map(|o| o.page_token.clone()) else {
        return not_found(&orderid);
    };
    if expected.is_empty() || !field("token").is_some_and(|given| signatures_match(&expected, given)) {
        tracing::warn!(%orderid, "sandbox: refused a pay-page post without the page's token");
        return html(
            StatusCode::FORBIDDEN,
            message_page(
                "Not from the pay page",
                "This button works only from the order's own pay page. Open the pay page again and use its buttons.",
            ),
        );
    }
    let paid = match field("outcome") {
        Some("paid") => true,
        Some("failed") => false,
        _ => {
            return html(
                StatusCode::BAD_REQUEST,
                message_page("Bad request", "The form must send outcome=paid or outcome=failed."),
            );
        }
    };
    if let Err(notice) = shared.simulate_payment(&orderid, paid) {
        let order = shared.lock().find(&orderid).cloned();
        return match order {
            Some(order) => html(StatusCode::CONFLICT, render(&order, &shared.pay_url(&order.orderid), Some(&notice))),
            None => not_found(&orderid),
        };
    }
    // The platform order number is digits only, so it is always a valid header value.
    match HeaderValue::from_str(&format!("/pay/{orderid}")) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(_) => html(StatusCode::OK, message_page("Done", "The order was updated.")),
    }
}

fn html(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn not_found(orderid: &str) -> Response {
    html(
        StatusCode::NOT_FOUND,
        message_page(
            "Order not found",
            &format!("This sandbox has no order {orderid}. Sandbox orders live only as long as the sandbox runs."),
        ),
    )
}

const STYLE: &str = "\
*{box-sizing:border-box}\
body{margin:0;font-family:system-ui,-apple-system,'Segoe UI',Roboto,'PingFang SC','Microsoft YaHei',sans-serif;\
background:#f4f5f7;color:#1f2328}\
main{max-width:420px;margin:0 auto;padding:16px}\
.banner{background:#b42318;color:#fff;font-weight:700;text-align:center;padding:10px;border-radius:8px;letter-spacing:.03em}\
.card{background:#fff;border-radius:12px;padding:20px;margin-top:16px;box-shadow:0 1px 3px rgba(0,0,0,.08);text-align:center}\
.amount{font-size:2.4rem;font-weight:700;margin:4px 0 12px}\
dl{display:grid;grid-template-columns:auto 1fr;gap:4px 12px;text-align:left;font-size:.9rem;margin:0 0 12px}\
dt{color:#656d76}dd{margin:0;word-break:break-all;font-family:ui-monospace,Menlo,Consolas,monospace}\
#qr{width:220px;height:220px;max-width:100%;image-rendering:pixelated}\
#state{font-weight:700;text-transform:uppercase;margin:12px 0}\
.notice{background:#fff4e5;border:1px solid #f5c26b;border-radius:8px;padding:8px}\
form{display:flex;flex-direction:column;gap:10px}\
button{font-size:1.05rem;padding:14px;border-radius:8px;border:0;cursor:pointer}\
#pay{background:#1a7f37;color:#fff}#fail{background:#eaeef2;color:#1f2328}\
button:disabled{opacity:.45;cursor:not-allowed}\
table{width:100%;border-collapse:collapse;font-size:.85rem;margin-top:8px}\
td,th{padding:4px;border-bottom:1px solid #eaeef2;text-align:left}\
.hint{color:#656d76;font-size:.8rem;text-align:center}";

fn head(title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n",
        escape(title)
    )
}

const BANNER: &str = "<div class=\"banner\">SANDBOX — no real money</div>\n";

fn message_page(title: &str, text: &str) -> String {
    format!(
        "{}<body>\n<main>\n{BANNER}<div class=\"card\">\n<h1>{}</h1>\n<p>{}</p>\n</div>\n</main>\n</body>\n</html>\n",
        head(title),
        escape(title),
        escape(text)
    )
}

/// The pay page of `order`; `notice` is shown above the buttons (e.g. "already paid").
pub(crate) fn render(order: &Order, pay_url: &str, notice: Option<&str>) -> String {
    let amount = format!("¥{}", order.money.to_yuan());
    let qr = match crate::qr::render(pay_url) {
        Ok(image) => {
            format!("<img id=\"qr\" src=\"{}\" alt=\"QR code of this pay page\">\n", escape(&image.data_url()))
        }
        Err(e) => format!("<p id=\"qr\">{}</p>\n", escape(&e.to_string())),
    };
    let notice = notice.map(|n| format!("<p class=\"notice\" id=\"notice\">{}</p>\n", escape(n))).unwrap_or_default();
    let disabled = if order.paystatus == 0 { "" } else { " disabled" };
    let refunds = if order.refunds.is_empty() {
        String::new()
    } else {
        let rows: String = order
            .refunds
            .iter()
            .map(|r| {
                let state = match r.status {
                    1 => "refunded",
                    2 => "failed",
                    _ => "pending",
                };
                format!(
                    "<tr><td>{}</td><td>¥{}</td><td>{state}</td></tr>\n",
                    escape(&r.mch_refund_no),
                    r.money.to_yuan()
                )
            })
            .collect();
        format!("<table id=\"refunds\">\n<tr><th>Refund</th><th>Amount</th><th>State</th></tr>\n{rows}</table>\n")
    };
    let id = escape(&order.orderid);
    format!(
        "{head}<body>\n<main>\n{BANNER}<div class=\"card\">\n\
         <p class=\"amount\" id=\"amount\">{amount}</p>\n\
         <dl>\n<dt>Merchant order</dt><dd id=\"mch_orderid\">{mch}</dd>\n\
         <dt>Platform order</dt><dd id=\"orderid\">{id}</dd>\n</dl>\n\
         {qr}<p id=\"state\">{state}</p>\n{notice}\
         <form method=\"post\" action=\"/pay/{id}/simulate\">\n\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\n\
         <button id=\"pay\" name=\"outcome\" value=\"paid\"{disabled}>Pay {amount}</button>\n\
         <button id=\"fail\" name=\"outcome\" value=\"failed\"{disabled}>Simulate failure</button>\n\
         </form>\n{refunds}</div>\n\
         <p class=\"hint\">This is a test cashier: nothing is charged. Pay or fail the order to see how the \
         merchant handles it.</p>\n</main>\n</body>\n</html>\n",
        head = head(&format!("Sandbox cashier — {amount}")),
        amount = escape(&amount),
        mch = escape(&order.mch_orderid),
        token = escape(&order.page_token),
        state = order.state_word(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Fen;

    fn order(mch: &str) -> Order {
        Order {
            orderid: "202403151200000000000001".into(),
            mch_orderid: mch.into(),
            money: Fen(1230),
            order_time: 0,
            notify_url: String::new(),
            paystatus: 0,
            paytime: None,
            trade_no: String::new(),
            buyer_account: String::new(),
            opened: false,
            page_token: "0123456789abcdef0123456789abcdef".into(),
            refunds: Vec::new(),
        }
    }

    #[test]
    fn page_has_the_documented_elements() {
        let html = render(&order("MCH-1"), "http://127.0.0.1:1/pay/202403151200000000000001", None);
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("SANDBOX — no real money"));
        assert!(html.contains("<p class=\"amount\" id=\"amount\">¥12.30</p>"));
        assert!(html.contains("<img id=\"qr\" src=\"data:image/png;base64,"));
        assert!(html.contains("<p id=\"state\">pending</p>"));
        assert!(html.contains("<form method=\"post\" action=\"/pay/202403151200000000000001/simulate\">"));
        assert!(html.contains("<button id=\"pay\" name=\"outcome\" value=\"paid\">Pay ¥12.30</button>"));
        assert!(html.contains("<input type=\"hidden\" name=\"token\" value=\"0123456789abcdef0123456789abcdef\">"));
        assert!(html.contains("<button id=\"fail\" name=\"outcome\" value=\"failed\">Simulate failure</button>"));
        assert!(!html.contains("<script"), "no JavaScript");
        assert!(!html.contains("src=\"http"), "no external assets");
    }

    #[test]
    fn form_tokens_are_random_hex() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn interpolated_text_is_escaped() {
        let html = render(&order("<script>alert('x')</script>&"), "u", Some("<b>"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;"));
        assert!(html.contains("&lt;b&gt;"));
        assert!(message_page("<t>", "\"q\"").contains("&quot;q&quot;"));
    }

    #[test]
    fn final_orders_disable_the_buttons() {
        let mut o = order("M");
        o.paystatus = 1;
        let html = render(&o, "u", None);
        assert!(html.contains("<p id=\"state\">paid</p>"));
        assert!(html.contains("value=\"paid\" disabled>"));
    }
}
