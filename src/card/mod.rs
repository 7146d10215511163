//! The MCP Apps pay card (the `io.modelcontextprotocol/ui` extension, SEP-1865): the `ui://`
//! HTML resource, its `_meta`, the capability negotiation, and what it adds to `tools/list`.
//!
//! The names and shapes follow the MCP Apps specification (2026-01-26) and the ext-apps SDK's own
//! server helpers (`registerAppTool`, `registerAppResource`, `getUiCapability`), summarised in
//! docs/pay-card.md:
//!
//! - A client renders apps when its capabilities carry
//!   `extensions["io.modelcontextprotocol/ui"].mimeTypes` with `text/html;profile=mcp-app`.
//! - Only then does the server declare the extension (and `resources`), list the card resource,
//!   link `create_payment_order`, `query_payment_order`, `wait_for_payment` and
//!   `refund_payment_order` to it with `_meta.ui.resourceUri` (plus the deprecated flat
//!   `_meta["ui/resourceUri"]` that the SDK's `registerAppTool` still writes for older hosts), and
//!   list the app-only [`DECISION_TOOL`] (`_meta.ui.visibility: ["app"]`, which hosts keep from the
//!   model). Every other client gets the server exactly as before: no extension, no resources, no
//!   `_meta`, the same `tools/list` bytes (`tests/it/card.rs` compares them with a recording).
//!
//! The card (`assets/pay-card.html`) is one self-contained HTML file: no script, style, font or
//! image from anywhere (the QR is the `data:` PNG of the tool result), so it runs under the
//! restrictive CSP a host applies when a resource declares no domains. It speaks the MCP Apps
//! postMessage protocol itself (about 2 KB of script) rather than bundling the SDK's App class
//! (about 540 KB with its dependencies).

use rmcp::RoleServer;
use rmcp::model::{ClientCapabilities, JsonObject, MetaObject, ReadResourceResult, Resource, Tool};
use rmcp::service::RequestContext;
use serde_json::{Value, json};

/// The extension's identifier (SEP-1865).
pub const EXTENSION_ID: &str = "io.modelcontextprotocol/ui";

/// The MIME type of an MCP Apps HTML resource; the specification requires exactly this string.
pub const MIME_TYPE: &str = "text/html;profile=mcp-app";

/// The card's resource URI.
pub const CARD_URI: &str = "ui://payment-mcp/pay-card.html";

/// The deprecated flat key for the resource link, still written by the SDK's `registerAppTool`
/// and read by hosts that predate `_meta.ui.resourceUri`.
const LEGACY_URI_KEY: &str = "ui/resourceUri";

/// The card's HTML (kept under 30 KB; a unit test checks).
pub const HTML: &str = include_str!("../../assets/pay-card.html");

/// The app-only tool behind the card's confirm and decline buttons for a refund. Listed only to
/// clients that render apps, with `visibility: ["app"]`, and answered only for them.
pub const DECISION_TOOL: &str = "payment_card_refund_decision";

/// Where a result carries what only the card may see: the refund confirmation token. `_meta` of a
/// tool result is for the app, not for the model's context (SEP-1865, "Data Passing").
pub const RESULT_META_KEY: &str = "io.github.payment-mcp/card";

/// The tools whose results the card shows.
pub const LINKED_TOOLS: &[&str] =
    &["create_payment_order", "query_payment_order", "wait_for_payment", "refund_payment_order"];

/// Whether these client capabilities ask for MCP Apps with the HTML profile.
pub fn renders_apps(capabilities: Option<&ClientCapabilities>) -> bool {
    capabilities
        .and_then(|c| c.extensions.as_ref())
        .and_then(|e| e.get(EXTENSION_ID))
        .and_then(|settings| settings.get("mimeTypes"))
        .and_then(Value::as_array)
        .is_some_and(|types| types.iter().any(|t| t.as_str() == Some(MIME_TYPE)))
}

/// Whether the client behind this request renders apps (per request for 2026-07-28 clients, from
/// `initialize` for older ones).
pub fn client_renders_apps(ctx: &RequestContext<RoleServer>) -> bool {
    renders_apps(ctx.client_capabilities().as_ref())
}

/// The extension's entry in the server's capabilities. The specification defines no server-side
/// settings, so it is empty, as in rmcp's own example of a server extension.
pub fn server_extension() -> (String, JsonObject) {
    (EXTENSION_ID.to_owned(), JsonObject::new())
}

fn meta(value: Value) -> MetaObject {
    match value {
        Value::Object(map) => MetaObject(map),
        _ => MetaObject::default(),
    }
}

/// The resource's `_meta.ui`: a border from the host, and clipboard access for "Copy link" (the
/// card falls back to selecting the link when the host does not grant it). No `csp` domains: the
/// card loads nothing from anywhere.
fn resource_ui_meta() -> Value {
    json!({"ui": {"prefersBorder": true, "permissions": {"clipboardWrite": {}}}})
}

/// The card as `resources/list` shows it.
pub fn resource() -> Option<Resource> {
    serde_json::from_value(json!({
        "uri": CARD_URI,
        "name": "payment_card",
        "title": "Payment card",
        "description": "The payer's view of an order: amount, QR code, pay link and live status; refund confirmation.",
        "mimeType": MIME_TYPE,
        "_meta": resource_ui_meta(),
    }))
    .ok()
}

/// The card as `resources/read` returns it, or `None` for another URI.
pub fn read(uri: &str) -> Option<ReadResourceResult> {
    if uri != CARD_URI {
        return None;
    }
    serde_json::from_value(json!({
        "contents": [{"uri": CARD_URI, "mimeType": MIME_TYPE, "text": HTML, "_meta": resource_ui_meta()}]
    }))
    .ok()
}

/// Links a tool to the card (both spellings of the link, as the SDK writes them).
pub fn link(tool: &mut Tool) {
    let mut map = tool.meta.take().map(|m| m.0).unwrap_or_default();
    map.insert("ui".into(), json!({"resourceUri": CARD_URI}));
    map.insert(LEGACY_URI_KEY.into(), json!(CARD_URI));
    tool.meta = Some(MetaObject(map));
}

/// The app-only tool the card's refund buttons call.
pub fn decision_tool(output_schema: std::sync::Arc<JsonObject>) -> Option<Tool> {
    let mut tool: Tool = serde_json::from_value(json!({
        "name": DECISION_TOOL,
        "title": "Refund decision from the payment card",
        "description": "Called by the payment card when the human presses Confirm or Decline on a refund. Not for the model.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "token": {"type": "string", "minLength": 16, "maxLength": 128},
                "decision": {"type": "string", "enum": ["confirm", "decline"]}
            },
            "required": ["token", "decision"],
            "additionalProperties": false
        },
        "annotations": {"title": "Refund decision from the payment card", "readOnlyHint": false, "destructiveHint": true, "idempotentHint": true, "openWorldHint": true},
    }))
    .ok()?;
    tool.output_schema = Some(output_schema);
    tool.meta = Some(meta(json!({"ui": {"resourceUri": CARD_URI, "visibility": ["app"]}})));
    Some(tool)
}

/// The card-only `_meta` of a result: `value` under [`RESULT_META_KEY`].
pub fn result_meta(value: Value) -> MetaObject {
    meta(json!({ RESULT_META_KEY: value }))
}

#[cfg(test)]
mod tests;
