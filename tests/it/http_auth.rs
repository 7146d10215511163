//! Bearer tokens on `serve --http`: made with `payment-mcp token add`, required once the token file
//! exists, each token limited to its scope (hidden tools, refused calls, its own refund cap), a
//! removed token refused without a restart, and the per-token rate limit.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::http_support::*;
use crate::support::{ALL_VARS, assert_err, assert_ok};

/// Runs `payment-mcp token ARGS` on the file `path`: (success, stdout, stderr).
fn token_cli(path: &Path, args: &[&str]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_payment-mcp"));
    for var in ALL_VARS {
        cmd.env_remove(var);
    }
    let out = cmd.arg("token").args(args).env("PAYMENT_TOKENS_FILE", path).output().expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn add_token(path: &Path, name: &str, scope: &str) -> String {
    let (ok, token, stderr) = token_cli(path, &["add", name, "--scope", scope]);
    assert!(ok, "token add failed: {stderr}");
    assert!(token.starts_with("pmcp_"), "{token}");
    token
}

#[tokio::test]
async fn each_token_reaches_only_what_its_scope_grants() {
    let file = temp_tokens_file();
    let reader = add_token(&file, "reader", "payments:read");
    let seller = add_token(&file, "seller", "payments:read payments:create payments:refund max_refund=1.00");
    let server =
        HttpServer::start(Start::default().with_gateway().await.env("PAYMENT_TOKENS_FILE", file.to_str().unwrap()))
            .await;
    assert!(server.stderr().contains("bearer tokens (2 in"), "{}", server.stderr());

    // No token, or a wrong one: 401 with a Bearer challenge, and no MCP session.
    assert!(server.connect(None, false).await.is_err());
    let missing = post_mcp(&server, initialize_body().to_string(), &[]).await;
    assert_eq!(missing.status(), 401);
    let challenge = missing.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer realm=\"payment-mcp\""), "{challenge}");
    assert!(server.connect(Some("pmcp_not-a-real-token"), true).await.is_err());
    let wrong =
        post_mcp(&server, initialize_body().to_string(), &[("authorization", "Bearer pmcp_not-a-real-token")]).await;
    assert_eq!(wrong.status(), 401);
    assert!(wrong.headers()["www-authenticate"].to_str().unwrap().contains("error=\"invalid_token\""));
    let basic = post_mcp(&server, initialize_body().to_string(), &[("authorization", "Basic dXNlcjpwYXNz")]).await;
    assert_eq!(basic.status(), 401);

    // The read-only token: money-moving tools are neither listed nor callable.
    let as_reader = server.connect(Some(&reader), false).await.expect("reader connects");
    let names = tool_names(&as_reader).await;
    assert!(names.contains(&"query_payment_order".to_owned()), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("create") || n.starts_with("refund")), "{names:?}");
    let before = server.gw().request_count();
    let refused = call(&as_reader, "create_payment_order", json!({"merchant_order_no": "R-1", "amount": "1.00"})).await;
    let message = refused.expect_err("a JSON-RPC error");
    assert!(message.contains("not available to this caller"), "{message}");
    assert_eq!(server.gw().request_count(), before, "nothing reached the gateway");

    // The seller: creates, but no refund above its own cap (the server has none).
    let as_seller = server.connect(Some(&seller), true).await.expect("seller connects");
    let names = tool_names(&as_seller).await;
    assert!(names.contains(&"create_payment_order".to_owned()) && names.contains(&"refund_payment_order".to_owned()));
    let created = assert_ok(
        &call(&as_seller, "create_payment_order", json!({"merchant_order_no": "S-1", "amount": "5.00"})).await.unwrap(),
    );
    let before = server.gw().request_count();
    let over = call(
        &as_seller,
        "refund_payment_order",
        json!({"order_no": created["order_no"], "refund_amount": "2.00", "mch_refund_no": "S-1-R1"}),
    )
    .await
    .unwrap();
    let error = assert_err(&over, "invalid_input");
    let text = error["message"].as_str().unwrap();
    assert!(text.contains("this caller's limit of 1.00 (max_refund in the scope of token seller)"), "{text}");
    assert_eq!(server.gw().request_count(), before, "nothing reached the gateway");

    let log = server.stderr();
    assert!(log.contains("caller=token:reader") && log.contains("caller=token:seller"), "{log}");
    assert!(!log.contains(&reader) && !log.contains(&seller), "tokens never reach the log");

    // Removing a token takes effect without a restart.
    let (ok, _, stderr) = token_cli(&file, &["remove", "reader"]);
    assert!(ok, "{stderr}");
    let mut status = 0;
    for _ in 0..60 {
        status = post_mcp(&server, initialize_body().to_string(), &[("authorization", &format!("Bearer {reader}"))])
            .await
            .status()
            .as_u16();
        if status == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 401, "the removed token is refused");
}

#[tokio::test]
async fn a_token_over_its_rate_gets_429_with_retry_after() {
    let file = temp_tokens_file();
    let token = add_token(&file, "busy", "payments:read");
    let server = HttpServer::start(
        Start::default().env("PAYMENT_TOKENS_FILE", file.to_str().unwrap()).env("PAYMENT_HTTP_RATE_LIMIT", "1"),
    )
    .await;
    let bearer = format!("Bearer {token}");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = post_mcp(&server, initialize_body().to_string(), &[("authorization", &bearer)]).await;
        statuses.push((r.status().as_u16(), r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned())));
    }
    assert_eq!(statuses[0].0, 200);
    assert_eq!(statuses[1].0, 200, "a burst of two");
    assert_eq!(statuses[2].0, 429);
    assert_eq!(statuses[2].1.as_deref(), Some("1"));
}

#[test]
fn the_token_command_checks_scopes_and_never_lists_secrets() {
    let file = temp_tokens_file();
    let (ok, _, stderr) = token_cli(&file, &["add", "typo", "--scope", "payments:reed"]);
    assert!(!ok && stderr.contains("payments:reed"), "{stderr}");
    let (ok, _, stderr) = token_cli(&file, &["add", "capped", "--scope", "max_order=5"]);
    assert!(!ok && stderr.contains("grants no tool"), "{stderr}");
    let token = add_token(&file, "bot", "payments:create max_order=500");
    let (ok, listed, _) = token_cli(&file, &["list"]);
    assert!(ok);
    assert_eq!(
        listed,
        "bot\ttool:create-mobile-alipay-payment tool:create-web-page-alipay-payment tool:create_payment_order max_order=500.00"
    );
    assert!(!std::fs::read_to_string(&file).unwrap().contains(&token));
    let (ok, _, stderr) = token_cli(&file, &["remove", "nobody"]);
    assert!(!ok && stderr.contains("no token named nobody"), "{stderr}");
}

#[tokio::test]
async fn a_session_grants_nothing_each_request_runs_under_its_own_token() {
    let file = temp_tokens_file();
    let seller = add_token(&file, "seller", "payments:all");
    let reader = add_token(&file, "reader", "payments:read");
    let server = HttpServer::start(Start::default().env("PAYMENT_TOKENS_FILE", file.to_str().unwrap())).await;
    let opened =
        post_mcp(&server, initialize_body().to_string(), &[("authorization", &format!("Bearer {seller}"))]).await;
    assert_eq!(opened.status(), 200);
    let session = opened.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    let _ = opened.text().await;
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}).to_string();
    let headers = |token: &str| {
        vec![
            ("authorization".to_owned(), format!("Bearer {token}")),
            ("mcp-session-id".to_owned(), session.clone()),
            ("mcp-protocol-version".to_owned(), "2025-06-18".to_owned()),
        ]
    };
    let listed = |token: String| {
        let (server, list, h) = (&server, list.clone(), headers(&token));
        async move {
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let r = post_mcp(server, list, &h).await;
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, body) = listed(seller.clone()).await;
    assert_eq!(status, 200);
    assert!(body.contains("create_payment_order"), "{body}");
    let (status, body) = listed(reader.clone()).await;
    assert_eq!(status, 200, "the session is usable with any valid token");
    assert!(body.contains("query_payment_order") && !body.contains("create_payment_order"), "{body}");
    let (status, _) = listed("pmcp_forged".into()).await;
    assert_eq!(status, 401, "but never without one");

    let metrics = server.raw().get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("payment_mcp_http_refusals_total{reason=\"bad_token\"} 1"), "{metrics}");
}

#[tokio::test]
async fn the_pay_cards_refund_button_needs_the_refund_grant() {
    let file = temp_tokens_file();
    let seller = add_token(&file, "seller", "payments:read payments:create");
    let support = add_token(&file, "support", "payments:read payments:refund");
    let server = HttpServer::start(
        Start::default().env("PAYMENT_TOKENS_FILE", file.to_str().unwrap()).env("PAYMENT_CONFIRM_REFUNDS", "true"),
    )
    .await;
    let apps = || crate::support::TestClient { apps: true, ..crate::support::TestClient::default() };
    let decision = "payment_card_refund_decision";
    let as_support = server.connect_as(apps(), Some(&support), true).await.unwrap();
    let names: Vec<String> =
        as_support.list_all_tools().await.unwrap().into_iter().map(|t| t.name.to_string()).collect();
    assert!(names.contains(&decision.to_owned()), "{names:?}");
    let as_seller = server.connect_as(apps(), Some(&seller), true).await.unwrap();
    let names: Vec<String> =
        as_seller.list_all_tools().await.unwrap().into_iter().map(|t| t.name.to_string()).collect();
    assert!(!names.contains(&decision.to_owned()) && names.contains(&"create_payment_order".to_owned()), "{names:?}");
    let args = json!({"token": "card-forged-0000000000000000", "decision": "confirm"});
    let params = rmcp::model::CallToolRequestParams::new(decision).with_arguments(args.as_object().cloned().unwrap());
    let err = as_seller.call_tool(params).await.expect_err("refused before the tool");
    assert!(err.to_string().contains("not available to this caller"), "{err}");
}

/// A refund that needs confirmation, asked by a client that offers URL elicitation only: `serve` on
/// loopback sends the one-time confirmation page; off loopback it does not (the `127.0.0.1` link
/// would point at the human's own machine), and the client gets the refusal that says how to
/// confirm instead. Either way nothing is refunded without the human.
#[tokio::test]
async fn the_confirmation_page_is_offered_only_on_loopback() {
    use crate::support::{TestClient, UrlAction};
    for (addr, offered) in [("127.0.0.1:0", true), ("0.0.0.0:0", false)] {
        let file = temp_tokens_file();
        let token = add_token(&file, "seller", "payments:all");
        let start = Start { addr: addr.into(), ..Start::default() }
            .with_gateway()
            .await
            .env("PAYMENT_TOKENS_FILE", file.to_str().unwrap())
            .env("PAYMENT_HTTP_ALLOWED_HOSTS", "0.0.0.0,127.0.0.1")
            .env("PAYMENT_CONFIRM_REFUNDS", "true");
        let server = HttpServer::start(start).await;
        let client = TestClient { url: Some(UrlAction::Confirm), ..TestClient::default() };
        let pages = client.pages.clone();
        let c = server.connect_as(client, Some(&token), false).await.expect("connects");
        let call = |tool: &'static str, args: serde_json::Value| {
            let c = &c;
            async move {
                let params =
                    rmcp::model::CallToolRequestParams::new(tool).with_arguments(args.as_object().unwrap().clone());
                c.call_tool(params).await.unwrap()
            }
        };
        let created =
            assert_ok(&call("create_payment_order", json!({"merchant_order_no": "CONF-1", "amount": "2.00"})).await);
        server.gw().simulate_payment("CONF-1", true).unwrap();
        let refund = json!({"order_no": created["order_no"], "refund_amount": "1.00", "mch_refund_no": "CONF-1-R", "reason": "test"});
        let r = call("refund_payment_order", refund).await;
        let refunds = server.gw().requests().iter().filter(|r| r.path.contains("refund")).count();
        if offered {
            assert_eq!(assert_ok(&r)["state"], "processing", "{addr}");
            assert_eq!(pages.lock().unwrap().len(), 1, "{addr}: the page was offered and confirmed");
            assert_eq!(refunds, 1);
        } else {
            let e = assert_err(&r, "refused");
            assert!(pages.lock().unwrap().is_empty(), "{addr}: no page offered");
            assert_eq!(refunds, 0, "{addr}: nothing refunded: {e}");
        }
    }
}
