//! `serve --http` through rmcp's streamable HTTP client: the same tools and results as stdio, for
//! 2025 clients (sessions) and 2026-07-28 clients (stateless); health, readiness and metrics; the
//! transport's refusals (foreign Host or Origin, oversized body); no non-loopback bind without
//! auth; and a graceful shutdown that lets a create in flight finish.

use std::time::Duration;

use payment_mcp::sandbox::{Fault, SandboxGateway};
use serde_json::{Value, json};

use crate::http_support::*;
use crate::support::{Harness, Options, assert_ok, gateway_config};

/// The structured content of a successful call.
fn ok(r: Result<rmcp::model::CallToolResult, String>) -> Value {
    assert_ok(&r.expect("no JSON-RPC error"))
}

#[tokio::test]
async fn over_http_the_tools_and_their_results_are_the_ones_over_stdio() {
    let gw = SandboxGateway::start(gateway_config()).await.unwrap();
    let stdio = Harness::start_with(Options { shared_gateway: Some(gw.clone()), ..Options::default() }).await;
    let server = HttpServer::start(Start { gateway: Some(gw.clone()), ..Start::default() }).await;
    let legacy = server.connect(None, false).await.expect("initialize over HTTP");
    let modern = server.connect(None, true).await.expect("discover over HTTP");

    let listed = |tools: Vec<rmcp::model::Tool>| serde_json::to_value(tools).unwrap();
    let over_stdio = listed(stdio.client.list_all_tools().await.unwrap());
    assert_eq!(listed(legacy.list_all_tools().await.unwrap()), over_stdio, "tools/list differs between stdio and HTTP");
    assert_eq!(tool_names(&modern).await, tool_names(&legacy).await);

    let created =
        ok(call(&legacy, "create_payment_order", json!({"merchant_order_no": "HTTP-1", "amount": "12.30"})).await);
    assert_eq!(created["state"], "pending");
    let order_no = created["order_no"].as_str().unwrap().to_owned();
    // The stateless client reaches the same server: a repeat is the same order, not a second one.
    let again =
        ok(call(&modern, "create_payment_order", json!({"merchant_order_no": "HTTP-1", "amount": "12.30"})).await);
    assert_eq!(again["order_no"], created["order_no"]);
    assert_eq!(
        gw.requests().iter().filter(|r| r.path.ends_with("pre_order")).count(),
        1,
        "one create reached the gateway"
    );

    let by_http = ok(call(&modern, "query_payment_order", json!({"order_no": order_no})).await);
    let by_stdio = assert_ok(&stdio.call("query_payment_order", json!({"order_no": order_no})).await);
    assert_eq!(by_http, by_stdio, "the same query answers the same over both transports");

    let err = call(&legacy, "query_payment_order", json!({"order_no": "nope!"})).await.unwrap();
    assert_eq!(err.is_error, Some(true));
    let over_stdio = stdio.call("query_payment_order", json!({"order_no": "nope!"})).await;
    assert_eq!(err.structured_content, over_stdio.structured_content, "errors too");
}

#[tokio::test]
async fn health_readiness_and_metrics_report_what_happened() {
    let server = HttpServer::start(Start::default().with_gateway().await).await;
    let http = server.raw();
    let get = |path: &str| http.get(format!("{}{path}", server.base)).send();
    let health = get("/healthz").await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);

    let client = server.connect(None, false).await.unwrap();
    let created =
        ok(call(&client, "create_payment_order", json!({"merchant_order_no": "M-1", "amount": "1.00"})).await);
    ok(call(&client, "query_payment_order", json!({"order_no": created["order_no"]})).await);
    let refused =
        call(&client, "create_payment_order", json!({"merchant_order_no": "M 2", "amount": "1.00"})).await.unwrap();
    assert_eq!(refused.is_error, Some(true));

    let metrics = get("/metrics").await.unwrap();
    assert!(metrics.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = metrics.text().await.unwrap();
    for line in [
        "payment_mcp_tool_calls_total{tool=\"create_payment_order\",outcome=\"ok\"} 1",
        "payment_mcp_tool_calls_total{tool=\"create_payment_order\",outcome=\"error\"} 1",
        "payment_mcp_tool_errors_total{tool=\"create_payment_order\",kind=\"invalid_input\"} 1",
        "payment_mcp_tool_calls_total{tool=\"query_payment_order\",outcome=\"ok\"} 1",
        "payment_mcp_tool_calls_in_flight{money_moving=\"true\"} 0",
        "# TYPE payment_mcp_notifications_total counter",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
    assert!(
        text.lines().any(|l| l.starts_with("payment_mcp_gateway_request_duration_seconds_count{provider=\"lfwin\"")),
        "a gateway latency histogram:\n{text}"
    );
    assert!(!text.contains(crate::support::API_KEY) && !text.contains("M-1"), "no keys or order numbers in labels");

    let log = server.stderr();
    assert!(log.contains("path=/metrics") && log.contains("tool=create_payment_order"), "access and call logs:\n{log}");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_without_secrets() {
    let server = HttpServer::start(Start::default().with_gateway().await.env("PAYMENT_LOG_FORMAT", "json")).await;
    let client = server.connect(None, false).await.unwrap();
    ok(call(&client, "create_payment_order", json!({"merchant_order_no": "J-1", "amount": "1.00"})).await);
    let log = server.stderr();
    let call_line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["fields"]["tool"] == "create_payment_order")
        .unwrap_or_else(|| panic!("a JSON line for the call:\n{log}"));
    assert_eq!(call_line["fields"]["outcome"], "ok");
    assert!(!log.contains(crate::support::SIGN_KEY) && !log.contains(crate::support::API_KEY));
}

#[tokio::test]
async fn a_foreign_host_or_origin_and_an_oversized_body_are_refused() {
    let server = HttpServer::start(
        Start::default()
            .env("PAYMENT_HTTP_ALLOWED_ORIGINS", "https://app.example.com")
            .env("PAYMENT_HTTP_MAX_BODY_BYTES", "2048"),
    )
    .await;
    let body = initialize_body().to_string();
    assert_eq!(post_mcp(&server, body.clone(), &[]).await.status(), 200, "no Origin: a non-browser client");
    assert_eq!(post_mcp(&server, body.clone(), &[("origin", "https://app.example.com")]).await.status(), 200);
    assert_eq!(post_mcp(&server, body.clone(), &[("origin", "https://evil.example")]).await.status(), 403);
    assert_eq!(post_mcp(&server, body.clone(), &[("host", "evil.example")]).await.status(), 403, "DNS rebinding");
    let mut big = initialize_body();
    big["params"]["clientInfo"]["name"] = json!("x".repeat(4096));
    assert_eq!(post_mcp(&server, big.to_string(), &[]).await.status(), 413);

    // With no origins configured, any Origin is refused (browsers are not expected here).
    let strict = HttpServer::start(Start::default()).await;
    assert_eq!(post_mcp(&strict, body, &[("origin", "http://localhost:6274")]).await.status(), 403);
}

#[tokio::test]
async fn a_non_loopback_address_without_auth_is_refused_before_binding() {
    let (ok, stderr) = HttpServer::run_to_end(Start { addr: "0.0.0.0:0".into(), ..Start::default() }).await;
    assert!(!ok);
    assert!(stderr.contains("refusing to serve 0.0.0.0:0 without authentication"), "{stderr}");
    assert!(stderr.contains("reverse proxy"), "says where TLS belongs: {stderr}");
    assert!(!stderr.contains("listening on"));
    let (ok, stderr) = HttpServer::run_to_end(Start { addr: "not an address".into(), ..Start::default() }).await;
    assert!(!ok && stderr.contains("PAYMENT_HTTP_ADDR"), "{stderr}");
}

#[tokio::test]
async fn shutdown_lets_a_create_in_flight_finish_and_refuses_new_calls() {
    let server = HttpServer::start(Start::default().with_gateway().await).await;
    let client = server.connect(None, false).await.unwrap();
    let gw = server.gw().clone();
    let before = gw.request_count();
    gw.fault_next(Fault::Delay(Duration::from_millis(1500)));
    let in_flight = tokio::spawn(async move {
        call(&client, "create_payment_order", json!({"merchant_order_no": "SIGTERM-1", "amount": "3.00"})).await
    });
    // Once the gateway has the request, the server is told to stop.
    for _ in 0..500 {
        if gw.request_count() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gw.request_count() > before, "the create reached the gateway");
    server.terminate();
    // While the create is still at the gateway, new MCP requests are turned away (a load
    // balancer retries them elsewhere).
    let mut refused = None;
    for _ in 0..100 {
        let status = post_mcp(&server, initialize_body().to_string(), &[]).await.status();
        if status != 200 {
            refused = Some(status);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(refused.map(|s| s.as_u16()), Some(503));
    let created = ok(in_flight.await.unwrap());
    assert_eq!(created["state"], "pending");
    let mut child = server.child;
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.expect("exits").unwrap();
    assert!(status.success(), "exit status {status:?}");
    let log = server.stderr.lock().unwrap().clone();
    assert!(log.contains("waiting for 1 money-moving call(s)"), "{log}");
}

#[tokio::test]
async fn gateway_notifications_reach_serve_without_a_token_and_are_counted() {
    let file = temp_tokens_file();
    let token = payment_mcp::serve::tokens::add(&file, "shop", "payments:all").unwrap();
    let server =
        HttpServer::start(Start::default().with_gateway().await.env("PAYMENT_TOKENS_FILE", file.to_str().unwrap()))
            .await;
    let client = server.connect(Some(&token), false).await.unwrap();
    let notify_url = format!("{}/notify/lfwin", server.base);
    let created = ok(call(
        &client,
        "create_payment_order",
        json!({"merchant_order_no": "NT-1", "amount": "2.00", "notify_url": notify_url}),
    )
    .await);
    let order_no = created["order_no"].as_str().unwrap().to_owned();
    server.gw().simulate_payment(&order_no, true).unwrap();
    let fields = server.gw().notification_for(&order_no).unwrap();

    // The gateway carries no bearer token: its signature is the check.
    let http = server.raw();
    for _ in 0..3 {
        let reply = http.post(&notify_url).form(&fields).send().await.unwrap();
        assert_eq!((reply.status().as_u16(), reply.text().await.unwrap()), (200, "success".to_owned()));
    }
    let mut tampered = fields.clone();
    tampered.iter_mut().find(|(k, _)| k == "pri_paymoney").unwrap().1 = "0.01".into();
    let reply = http.post(&notify_url).form(&tampered).send().await.unwrap();
    assert_eq!((reply.status().as_u16(), reply.text().await.unwrap()), (400, "fail".to_owned()));
    let reply = http.post(format!("{}/notify/made-up-provider", server.base)).form(&fields).send().await.unwrap();
    assert_eq!(reply.status(), 404);
    let queried = ok(call(&client, "query_payment_order", json!({"order_no": order_no})).await);
    assert_eq!(queried["state"], "paid");

    let metrics = http.get(format!("{}/metrics", server.base)).send().await.unwrap().text().await.unwrap();
    let count = |needle: &str| -> u64 {
        metrics.lines().find_map(|l| l.strip_prefix(needle)).map_or(0, |n| n.trim().parse().unwrap())
    };
    assert!(count("payment_mcp_notifications_total{provider=\"lfwin\",verdict=\"accepted\"}") >= 3, "{metrics}");
    assert_eq!(count("payment_mcp_notifications_total{provider=\"lfwin\",verdict=\"rejected\"}"), 1, "{metrics}");
    assert_eq!(count("payment_mcp_notifications_total{provider=\"other\",verdict=\"rejected\"}"), 1, "{metrics}");
}
