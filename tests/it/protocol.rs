//! MCP protocol behaviour: both protocol generations, the tool list's shape, and stdio hygiene.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn initialize_reports_name_version_instructions_and_well_formed_tools() {
    let h = Harness::start().await;
    let info = h.client.peer_info().expect("server info");
    let server = info.server_info.clone().expect("serverInfo");
    assert_eq!(server.name, "payment-mcp");
    assert_eq!(server.version, env!("CARGO_PKG_VERSION"));
    assert!(info.instructions.as_deref().unwrap_or_default().contains("query_payment_order"));
    let tools = h.client.list_all_tools().await.unwrap();
    let mut names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "create_payment_order",
            "list_payment_orders",
            "query_payment_order",
            "query_refund_status",
            "refund_payment_order",
            "verify_payment_notification",
            "wait_for_payment"
        ]
    );
    for t in &tools {
        assert!(t.title.is_some() && t.description.is_some(), "{}", t.name);
        assert!(t.output_schema.is_some(), "{} has an outputSchema", t.name);
        let a = t.annotations.as_ref().expect("annotations");
        assert!(a.title.is_some());
        assert_eq!(a.open_world_hint, Some(true), "{}: tools.md: openWorldHint true outside the sandbox", t.name);
        let read_only = !matches!(t.name.as_ref(), "create_payment_order" | "refund_payment_order");
        assert_eq!(a.read_only_hint, Some(read_only), "{}", t.name);
        for (name, prop) in t.input_schema["properties"].as_object().unwrap() {
            assert!(prop.get("description").is_some(), "{}.{name} has a description", t.name);
        }
    }
    let refund = tools.iter().find(|t| t.name == "refund_payment_order").unwrap().annotations.clone().unwrap();
    assert_eq!((refund.destructive_hint, refund.idempotent_hint), (Some(true), Some(true)));
}

#[tokio::test]
async fn a_2026_07_28_client_discovers_and_calls_tools() {
    let h = Harness::start_with(Options { modern: true, ..Options::default() }).await;
    assert_eq!(h.client.list_all_tools().await.unwrap().len(), 7);
    let s = h.create("MODERN-1", "4.56").await;
    assert_eq!(s["amount"], "4.56");
    let q = assert_ok(&h.call("query_payment_order", json!({"order_no": s["order_no"]})).await);
    assert_eq!(q["state"], "pending");
}

/// Successes and errors both validate against the listed `outputSchema` (the harness checks every
/// call); the schema still demands every success field when there is no `error`.
#[tokio::test]
async fn success_and_error_results_both_match_the_output_schema() {
    let h = Harness::start().await;
    let s = h.create("SHAPE-1", "1.00").await;
    let bad = h.call("create_payment_order", json!({"merchant_order_no": "SHAPE-2", "amount": "0.001"})).await;
    assert_err(&bad, "invalid_input");
    let missing = h.call("query_payment_order", json!({"order_no": "NO-SUCH-ORDER"})).await;
    assert_eq!(missing.is_error, Some(true));

    let tools = h.client.list_all_tools().await.unwrap();
    let schema = tools.iter().find(|t| t.name == "create_payment_order").unwrap().output_schema.clone().unwrap();
    let validator = jsonschema::validator_for(&Value::Object(schema.as_ref().clone())).unwrap();
    assert!(validator.is_valid(&s));
    let mut stripped = s.clone();
    stripped.as_object_mut().unwrap().remove("state");
    assert!(!validator.is_valid(&stripped), "a success result without `state` must not validate");
    let props = schema["properties"].as_object().unwrap();
    for key in s.as_object().unwrap().keys() {
        assert!(props.contains_key(key), "create result field {key} is in the schema");
    }
}

/// Raw stdio: a non-JSON line and an unknown tool never kill the server, and stdout holds only
/// JSON-RPC.
#[test]
fn raw_stdio_stays_json_rpc_through_garbage_and_unknown_tools() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_payment-mcp"))
        .env_remove("PAYMENT_API_KEY")
        .env_remove("PAYMENT_SIGN_KEY")
        .env("PAYMENT_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let lines = [
        json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}).to_string(),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string(),
        "this is not json".to_owned(),
        "{\"jsonrpc\":\"2.0\",\"id\":".to_owned(),
        json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"no_such_tool","arguments":{}}}).to_string(),
        json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"create_payment_order","arguments":{"merchant_order_no":"RAW-1","amount":1.005}}}).to_string(),
        json!({"jsonrpc":"2.0","id":4,"method":"ping"}).to_string(),
    ];
    for l in &lines {
        writeln!(stdin, "{l}").unwrap();
    }
    stdin.flush().unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut seen = std::collections::HashMap::new();
    let mut line = String::new();
    let mut errors = Vec::new();
    while seen.len() < 4 || errors.len() < 2 {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
        assert_eq!(v["jsonrpc"], "2.0");
        if let Some(id) = v["id"].as_i64() {
            seen.insert(id, v);
        } else if v["id"].is_null() {
            errors.push(v["error"]["code"].as_i64().unwrap());
        }
    }
    drop(stdin);
    let _ = child.wait();
    assert_eq!(errors, [-32700, -32700], "each malformed line is answered with a parse error");
    assert!(seen[&2]["error"].is_object(), "unknown tool is a JSON-RPC error");
    assert_eq!(seen[&3]["result"]["isError"], true);
    assert!(seen[&4]["result"].is_object(), "still answering after garbage");
}
