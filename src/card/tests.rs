use super::*;
use rmcp::model::{ClientCapabilities, ExtensionCapabilities};

fn client(extension: Option<Value>) -> ClientCapabilities {
    let mut caps = ClientCapabilities::default();
    if let Some(settings) = extension {
        let mut map = ExtensionCapabilities::new();
        map.insert(EXTENSION_ID.into(), settings.as_object().cloned().unwrap());
        caps.extensions = Some(map);
    }
    caps
}

#[test]
fn the_card_is_small_and_loads_nothing() {
    assert!(HTML.len() < 30 * 1024, "the card is {} bytes", HTML.len());
    assert!(HTML.starts_with("<!DOCTYPE html>"));
    let lower = HTML.to_ascii_lowercase();
    for external in
        ["<script src", "<link", "@import", "url(", "src=\"http", "href=\"http", "<iframe", "fetch(", "xmlhttprequest"]
    {
        assert!(!lower.contains(external), "the card must be self-contained, found `{external}`");
    }
}

#[test]
fn the_resource_reads_as_the_spec_says() {
    let answer = serde_json::to_value(read(CARD_URI).unwrap()).unwrap();
    let content = &answer["contents"][0];
    assert_eq!(content["uri"], CARD_URI);
    assert_eq!(content["mimeType"], "text/html;profile=mcp-app");
    assert_eq!(content["text"], HTML);
    assert_eq!(content["_meta"]["ui"]["prefersBorder"], true);
    assert!(content["_meta"]["ui"]["permissions"]["clipboardWrite"].is_object());
    assert!(content["_meta"]["ui"].get("csp").is_none(), "no domains: the host's restrictive default CSP applies");
    assert!(read(&format!("{CARD_URI}x")).is_none());
    assert!(read("ui://other/card.html").is_none());

    let listed = serde_json::to_value(resource().unwrap()).unwrap();
    assert_eq!(listed["uri"], CARD_URI);
    assert!(listed["uri"].as_str().unwrap().starts_with("ui://"));
    assert_eq!(listed["mimeType"], MIME_TYPE);
    assert_eq!(listed["_meta"], content["_meta"]);
}

#[test]
fn only_a_client_asking_for_the_html_profile_renders_apps() {
    assert!(renders_apps(Some(&client(Some(json!({"mimeTypes": ["text/html;profile=mcp-app"]}))))));
    assert!(renders_apps(Some(&client(Some(json!({"mimeTypes": ["text/other", "text/html;profile=mcp-app"]}))))));
    assert!(!renders_apps(Some(&client(Some(json!({"mimeTypes": ["text/html"]}))))));
    assert!(!renders_apps(Some(&client(Some(json!({"mimeTypes": "text/html;profile=mcp-app"}))))));
    assert!(!renders_apps(Some(&client(Some(json!({}))))));
    assert!(!renders_apps(Some(&client(None))));
    assert!(!renders_apps(None));
    let other: ClientCapabilities =
        serde_json::from_value(json!({"extensions": {"io.modelcontextprotocol/apps": {"mimeTypes": [MIME_TYPE]}}}))
            .unwrap();
    assert!(!renders_apps(Some(&other)), "another extension's id is not this one");
}

#[test]
fn a_linked_tool_names_the_card_both_ways_and_keeps_its_meta() {
    let mut tool: Tool = serde_json::from_value(json!({
        "name": "create_payment_order", "inputSchema": {"type": "object"}, "_meta": {"x": 1}
    }))
    .unwrap();
    link(&mut tool);
    let meta = serde_json::to_value(&tool).unwrap()["_meta"].clone();
    assert_eq!(meta, json!({"x": 1, "ui": {"resourceUri": CARD_URI}, "ui/resourceUri": CARD_URI}));
}

#[test]
fn the_decision_tool_is_for_the_app_only() {
    let tool = decision_tool(std::sync::Arc::new(JsonObject::new())).unwrap();
    let v = serde_json::to_value(&tool).unwrap();
    assert_eq!(v["name"], DECISION_TOOL);
    assert_eq!(v["_meta"]["ui"]["visibility"], json!(["app"]));
    assert_eq!(v["_meta"]["ui"]["resourceUri"], CARD_URI);
    assert_eq!(v["inputSchema"]["required"], json!(["token", "decision"]));
}

#[test]
fn the_server_declares_the_extension_by_its_id() {
    let (id, settings) = server_extension();
    assert_eq!(id, "io.modelcontextprotocol/ui");
    assert!(settings.is_empty());
}
