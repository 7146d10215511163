//! The MCP Apps pay card (issue 15) through the real binary: negotiated only with clients that
//! advertise the extension (everyone else gets today's bytes), the resource and the tools' links,
//! the pay-link line and the opt-in text QR, and refund confirmation by URL elicitation (the
//! loopback page) and by the card's app-only tool.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::atomic::Ordering;

use rmcp::model::{CallToolRequestParams, ReadResourceRequestParams};
use serde_json::{Value, json};

use crate::support::*;

const CARD_URI: &str = "ui://payment-mcp/pay-card.html";
const MIME: &str = "text/html;profile=mcp-app";

/// `initialize` + `tools/list` over raw stdio, as the lines the server wrote, and the
/// `resources/list` error line.
fn raw_session(env: &[(&str, &str)], capabilities: Value) -> (String, String) {
    let mut cmd = crate::rawio::command(env);
    cmd.env("PAYMENT_LEDGER", "off").stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = |message: Value| {
        writeln!(stdin, "{message}").unwrap();
        stdin.flush().unwrap();
    };
    line(
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":capabilities,"clientInfo":{"name":"golden","version":"1"}}}),
    );
    let mut init = String::new();
    stdout.read_line(&mut init).unwrap();
    line(json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
    line(json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}));
    let mut tools = String::new();
    stdout.read_line(&mut tools).unwrap();
    drop(stdin);
    child.wait().unwrap();
    (init, tools)
}

/// The recording of today's server (taken before the card existed), with this build's version.
fn golden(name: &str) -> String {
    let path = format!("{}/tests/it/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    text.replace(r#""version":"0.1.0""#, &format!(r#""version":"{}""#, env!("CARGO_PKG_VERSION")))
}

#[test]
fn a_client_without_mcp_apps_gets_todays_initialize_and_tools_list_byte_for_byte() {
    let lfwin = [
        ("PAYMENT_API_KEY", "ak"),
        ("PAYMENT_SIGN_KEY", "sk"),
        ("PAYMENT_API_BASE_URL", "http://127.0.0.1:9"),
        ("PAYMENT_CONFIRM_REFUNDS", "true"),
    ];
    for (env, file) in [(&[][..], "no-apps-sandbox.jsonl"), (&lfwin[..], "no-apps-lfwin.jsonl")] {
        let (init, tools) = raw_session(env, json!({"elicitation": {}}));
        assert_eq!(format!("{init}{tools}"), golden(file), "{file}: the server a client without MCP Apps sees changed");
        assert!(!tools.contains("ui://") && !init.contains("io.modelcontextprotocol/ui"));
    }
    // Another extension, or the extension without the HTML profile, is not MCP Apps.
    for caps in [
        json!({"elicitation": {}, "extensions": {"io.modelcontextprotocol/ui": {"mimeTypes": ["text/html"]}}}),
        json!({"elicitation": {}, "extensions": {"io.example/other": {}}}),
    ] {
        let (init, tools) = raw_session(&[], caps.clone());
        assert_eq!(format!("{init}{tools}"), golden("no-apps-sandbox.jsonl"), "{caps}");
    }
}

#[test]
fn a_client_with_mcp_apps_gets_the_extension_and_linked_tools() {
    let caps = json!({"extensions": {"io.modelcontextprotocol/ui": {"mimeTypes": [MIME]}}});
    let (init, tools) = raw_session(&[("PAYMENT_CONFIRM_REFUNDS", "true")], caps);
    let init: Value = serde_json::from_str(&init).unwrap();
    let capabilities = &init["result"]["capabilities"];
    assert_eq!(capabilities["extensions"]["io.modelcontextprotocol/ui"], json!({}));
    assert!(capabilities["resources"].is_object() && capabilities["tools"].is_object());
    let tools: Value = serde_json::from_str(&tools).unwrap();
    let tools = tools["result"]["tools"].as_array().unwrap();
    let by_name = |n: &str| tools.iter().find(|t| t["name"] == n).unwrap_or_else(|| panic!("{n} listed"));
    for linked in ["create_payment_order", "query_payment_order", "wait_for_payment", "refund_payment_order"] {
        let meta = &by_name(linked)["_meta"];
        assert_eq!(meta["ui"]["resourceUri"], CARD_URI, "{linked}");
        assert_eq!(meta["ui/resourceUri"], CARD_URI, "{linked}: the SDK's legacy key too");
        assert!(meta["ui"].get("visibility").is_none(), "{linked}: visible to the model");
    }
    for plain in ["list_payment_orders", "query_refund_status", "sandbox_simulate_payment"] {
        assert!(by_name(plain).get("_meta").is_none(), "{plain}");
    }
    let decision = by_name("payment_card_refund_decision");
    assert_eq!(decision["_meta"]["ui"]["visibility"], json!(["app"]), "hosts keep it from the model");
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "still sorted by name");

    // Without refund confirmation there is nothing for the card to confirm.
    let caps = json!({"extensions": {"io.modelcontextprotocol/ui": {"mimeTypes": [MIME]}}});
    let (_, tools) = raw_session(&[], caps);
    assert!(!tools.contains("payment_card_refund_decision"));
    assert!(tools.contains(CARD_URI));
}

fn apps_client(modern: bool) -> Options {
    Options { modern, client: TestClient { apps: true, ..TestClient::default() }, ..Options::default() }
}

#[tokio::test]
async fn the_card_resource_is_read_only_by_clients_that_render_apps() {
    for modern in [false, true] {
        let h = Harness::start_with(apps_client(modern)).await;
        let tools = h.client.list_all_tools().await.unwrap();
        let create = tools.iter().find(|t| t.name == "create_payment_order").unwrap();
        let meta = serde_json::to_value(create.meta.as_ref().unwrap()).unwrap();
        assert_eq!(meta["ui"]["resourceUri"], CARD_URI, "modern={modern}");
        let listed = h.client.list_all_resources().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].uri, CARD_URI);
        let read = h.client.read_resource(ReadResourceRequestParams::new(CARD_URI)).await.unwrap();
        let content = serde_json::to_value(&read.contents[0]).unwrap();
        assert_eq!(content["mimeType"], MIME);
        let html = content["text"].as_str().unwrap();
        assert!(html.starts_with("<!DOCTYPE html>") && html.len() < 30 * 1024);
        assert_eq!(content["_meta"]["ui"]["prefersBorder"], true);
        assert!(h.client.read_resource(ReadResourceRequestParams::new("ui://payment-mcp/other")).await.is_err());
    }
    // A client without the extension: no resources at all, as before.
    let h = Harness::start().await;
    assert!(h.client.list_all_resources().await.is_err());
    assert!(h.client.read_resource(ReadResourceRequestParams::new(CARD_URI)).await.is_err());
}

/// Reads a half-block drawing (two module rows per line, a space = dark module) back into the
/// text its QR code encodes.
fn decode_text_qr(drawing: &str) -> String {
    let rows: Vec<Vec<char>> = drawing.lines().map(|l| l.chars().collect()).collect();
    let (w, h) = (rows[0].len(), rows.len() * 2);
    let dark = |x: usize, y: usize| {
        let c = rows[y / 2][x];
        matches!((c, y % 2), (' ', _) | ('▄', 0) | ('▀', 1))
    };
    let scale = 6;
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w * scale + 40, h * scale + 40, |x, y| {
        let (x, y) = (x as isize - 20, y as isize - 20);
        if x < 0 || y < 0 || x as usize >= w * scale || y as usize >= h * scale {
            return 255;
        }
        if dark(x as usize / scale, y as usize / scale) { 0 } else { 255 }
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the drawing");
    grids[0].decode().expect("the drawing decodes").1
}

#[tokio::test]
async fn create_adds_a_pay_link_line_and_on_request_a_text_qr() {
    let h = Harness::start().await;
    let r = h.call("create_payment_order", json!({"merchant_order_no": "CARD-LINK-1", "amount": "12.30"})).await;
    let s = assert_ok(&r);
    let pay_url = s["pay_url"].as_str().unwrap();
    let texts: Vec<String> = r.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect();
    assert_eq!(texts.len(), 2, "the JSON, then the link line");
    let json_text: Value = serde_json::from_str(&texts[0]).expect("the first text is still the JSON");
    assert_eq!(json_text["pay_url"], pay_url);
    assert_eq!(
        texts[1],
        format!(
            "Show the payer this pay link (and the QR code, where it is displayed): [Pay ¥12.30 · order CARD-LINK-1]({pay_url})"
        )
    );
    assert!(r.content.last().unwrap().as_image().is_some(), "the image block stays last");
    assert!(!texts[1].contains('▀'), "no text QR unless asked for");

    let h = Harness::start_with(Options::default().env("PAYMENT_QR_TEXT", "true")).await;
    let r = h.call("create_payment_order", json!({"merchant_order_no": "CARD-LINK-2", "amount": "1.00"})).await;
    let s = assert_ok(&r);
    let line = texts_of(&r)[1].clone();
    let drawing = line.split("```\n").nth(1).and_then(|rest| rest.split("```").next()).expect("a fenced drawing");
    assert_eq!(decode_text_qr(drawing), s["qrcode"].as_str().unwrap(), "the text QR scans to the pay target");
}

fn texts_of(r: &rmcp::model::CallToolResult) -> Vec<String> {
    r.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect()
}

async fn paid_order(h: &Harness, no: &str) -> String {
    let s = h.create(no, "5.00").await;
    let order_no = s["order_no"].as_str().unwrap().to_owned();
    h.gw.simulate_payment(&order_no, true).unwrap();
    order_no
}

fn refunds_sent(h: &Harness) -> usize {
    h.gw.requests().iter().filter(|r| r.path.contains("refund_order")).count()
}

fn confirming(client: TestClient, modern: bool) -> Options {
    Options { modern, client, ..Options::default() }.env("PAYMENT_CONFIRM_REFUNDS", "true")
}

async fn refund(h: &Harness, order_no: &str, mch_refund_no: &str) -> rmcp::model::CallToolResult {
    h.call(
        "refund_payment_order",
        json!({"order_no": order_no, "refund_amount": "1.00", "mch_refund_no": mch_refund_no, "reason": "broken <b>cup</b>"}),
    )
    .await
}

#[tokio::test]
async fn a_url_elicitation_client_confirms_on_the_loopback_page() {
    for modern in [false, true] {
        let client = TestClient { url: Some(UrlAction::Confirm), ..TestClient::default() };
        let h = Harness::start_with(confirming(client, modern)).await;
        let order_no = paid_order(&h, &format!("CARD-URL-Y-{modern}")).await;
        let r = refund(&h, &order_no, "CARD-URL-RF-1").await;
        assert_eq!(assert_ok(&r)["state"], "processing", "modern={modern}");
        assert_eq!(refunds_sent(&h), 1);
        let pages = h.client.service().pages.lock().unwrap().clone();
        assert_eq!(pages.len(), 1);
        let (url, html) = &pages[0];
        assert!(url.starts_with("http://127.0.0.1:") && url.contains("/confirm/"), "{url}");
        assert!(html.contains(&order_no) && html.contains("¥1.00") && html.contains("CARD-URL-RF-1"), "{html}");
        assert!(html.contains("broken &lt;b&gt;cup&lt;/b&gt;"), "the reason is shown, escaped: {html}");
        // The link worked once.
        let (status, _) = http_request(url, "POST", Some("decision=confirm"), &[]).await;
        assert_eq!(status, 410);
        let (status, _) = http_request(url, "GET", None, &[]).await;
        assert_eq!(status, 410);
    }
}

#[tokio::test]
async fn a_declined_refused_or_expired_page_refunds_nothing() {
    for (action, timeout) in [(UrlAction::Decline, "300"), (UrlAction::Refuse, "300"), (UrlAction::Ignore, "1")] {
        for modern in [false, true] {
            let client = TestClient { url: Some(action), ..TestClient::default() };
            let h =
                Harness::start_with(confirming(client, modern).env("PAYMENT_CONFIRM_TIMEOUT_SECONDS", timeout)).await;
            let order_no = paid_order(&h, &format!("CARD-URL-N-{action:?}-{modern}")).await;
            let r = refund(&h, &order_no, "CARD-URL-RF-2").await;
            let err = assert_err(&r, "refused");
            assert!(err["message"].as_str().unwrap().contains("no refund was sent"), "{action:?}: {err}");
            assert_eq!(refunds_sent(&h), 0, "{action:?} modern={modern}");
            let (url, _) = h.client.service().pages.lock().unwrap()[0].clone();
            let (status, _) = http_request(&url, "POST", Some("decision=confirm"), &[]).await;
            assert_eq!(status, 410, "{action:?}: a link that ended confirms nothing afterwards");
            assert_eq!(refunds_sent(&h), 0);
        }
    }
}

#[tokio::test]
async fn the_page_answers_only_its_own_origin() {
    let client = TestClient { url: Some(UrlAction::Ignore), ..TestClient::default() };
    let h = Harness::start_with(confirming(client, false).env("PAYMENT_CONFIRM_TIMEOUT_SECONDS", "3")).await;
    let order_no = paid_order(&h, "CARD-URL-O").await;
    let refunding = refund(&h, &order_no, "CARD-URL-RF-3");
    let probe = async {
        let url = loop {
            if let Some((url, _)) = h.client.service().pages.lock().unwrap().first().cloned() {
                break url;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        let evil = [("Origin", "https://evil.example")];
        assert_eq!(http_request(&url, "POST", Some("decision=confirm"), &evil).await.0, 403);
        let rebound = [("Host", "evil.example")];
        assert_eq!(http_request(&url, "POST", Some("decision=confirm"), &rebound).await.0, 403);
        let (status, html) = http_request(&url, "GET", None, &[]).await;
        assert_eq!(status, 200, "the page itself is still open");
        assert!(html.contains("Confirm refund"));
    };
    let (r, ()) = tokio::join!(refunding, probe);
    assert_err(&r, "refused");
    assert_eq!(refunds_sent(&h), 0, "posts from elsewhere confirmed nothing");
}

fn card_token(r: &rmcp::model::CallToolResult) -> String {
    let meta = serde_json::to_value(r.meta.as_ref().expect("the card's _meta")).unwrap();
    let confirm = &meta["io.github.payment-mcp/card"]["confirm"];
    confirm["token"].as_str().unwrap().to_owned()
}

async fn decide(h: &Harness, token: &str, decision: &str) -> rmcp::model::CallToolResult {
    h.call("payment_card_refund_decision", json!({"token": token, "decision": decision})).await
}

#[tokio::test]
async fn the_card_confirms_a_refund_through_its_app_only_tool() {
    for modern in [false, true] {
        let h = Harness::start_with(confirming(TestClient { apps: true, ..TestClient::default() }, modern)).await;
        let order_no = paid_order(&h, &format!("CARD-BTN-{modern}")).await;
        let r = refund(&h, &order_no, "CARD-BTN-RF-1").await;
        let err = assert_err(&r, "refused");
        assert_eq!(err["code"], "awaiting_confirmation");
        assert!(err["message"].as_str().unwrap().contains("Confirm button"));
        let text = texts_of(&r).join("\n");
        let token = card_token(&r);
        assert!(!text.contains(&token), "the token is not in what the model reads");
        assert!(!serde_json::to_string(&r.structured_content).unwrap().contains(&token));
        assert_eq!(refunds_sent(&h), 0, "nothing is sent before the button");

        assert_err(&decide(&h, "card-forged-0000000000000000", "confirm").await, "refused");
        assert_eq!(refunds_sent(&h), 0);
        let done = decide(&h, &token, "confirm").await;
        assert_eq!(assert_ok(&done)["state"], "processing");
        assert_eq!(refunds_sent(&h), 1);
        assert_err(&decide(&h, &token, "confirm").await, "refused");
        assert_eq!(refunds_sent(&h), 1, "a token confirms once");

        let r = refund(&h, &order_no, "CARD-BTN-RF-2").await;
        let token = card_token(&r);
        let declined = decide(&h, &token, "decline").await;
        assert!(assert_err(&declined, "refused")["message"].as_str().unwrap().contains("declined"));
        assert_err(&decide(&h, &token, "confirm").await, "refused");
        assert_eq!(refunds_sent(&h), 1, "a declined refund is never sent");
    }
}

#[tokio::test]
async fn a_client_without_apps_cannot_call_the_decision_tool() {
    let h = Harness::start_with(confirming(TestClient { confirm: Some(true), ..TestClient::default() }, false)).await;
    let args = json!({"token": "card-0000000000000000", "decision": "confirm"}).as_object().unwrap().clone();
    let call = h.client.call_tool(CallToolRequestParams::new("payment_card_refund_decision").with_arguments(args));
    assert!(call.await.is_err(), "an unknown tool, as before");
}

#[tokio::test]
async fn a_client_that_offers_no_way_is_told_the_three() {
    let h = Harness::start_with(confirming(TestClient::default(), false)).await;
    let order_no = paid_order(&h, "CARD-NONE").await;
    let r = refund(&h, &order_no, "CARD-NONE-RF").await;
    let message = assert_err(&r, "refused")["message"].as_str().unwrap().to_owned();
    for way in ["form elicitation", "URL elicitation", "MCP Apps"] {
        assert!(message.contains(way), "{message}");
    }
    assert_eq!(h.client.service().asked.load(Ordering::SeqCst), 0);
    assert_eq!(refunds_sent(&h), 0);
}
