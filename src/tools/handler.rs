//! The rmcp `ServerHandler` of [`PaymentServer`]: server information, `tools/list` and
//! `tools/call` over the tool router, and what a client that renders MCP Apps gets on top (the pay
//! card, [`crate::card`]): the extension and `resources` capabilities, the card resource, the
//! tools' links to it, and the app-only refund decision tool.
//!
//! For any other client each method answers exactly what rmcp's `#[tool_handler]` and default
//! methods answered before the card existed (`tests/it/card.rs` compares the bytes with a
//! recording): the card is negotiated, never imposed.

use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, DiscoverResult, Implementation, InitializeRequestParams,
    InitializeResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ResultType, ServerCapabilities, ServerConfig,
    Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use super::{INSTRUCTIONS, PaymentServer, SANDBOX_INSTRUCTIONS, outputs, render};
use crate::card;

/// Adds what the card needs to the server's capabilities: the extension and `resources`.
fn with_apps(capabilities: &mut ServerCapabilities) {
    let (id, settings) = card::server_extension();
    capabilities.extensions.get_or_insert_with(Default::default).insert(id, settings);
    capabilities.resources.get_or_insert_with(Default::default);
}

impl PaymentServer {
    /// Whether the card's refund buttons can be offered: refunds need confirmation and the refund
    /// tool is listed.
    pub(super) fn offers_card_decisions(&self) -> bool {
        self.payments.config().confirm_refunds && self.tool_router.has_route("refund_payment_order")
    }

    /// The tools as a client that renders apps sees them: linked to the card, plus the app-only
    /// decision tool when refunds need confirmation.
    fn with_card(&self, tools: &mut Vec<Tool>) {
        for tool in tools.iter_mut() {
            if card::LINKED_TOOLS.contains(&tool.name.as_ref()) {
                card::link(tool);
            }
        }
        if self.offers_card_decisions()
            && let Some(decision) = card::decision_tool(outputs::output::<render::RefundOutput>())
        {
            tools.push(decision);
            tools.sort_by(|a, b| a.name.cmp(&b.name));
        }
    }
}

impl ServerHandler for PaymentServer {
    fn get_info(&self) -> ServerConfig {
        let mut instructions = INSTRUCTIONS.to_owned();
        if self.payments.is_sandbox() {
            instructions.push_str(SANDBOX_INSTRUCTIONS);
        }
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("payment-mcp", env!("CARGO_PKG_VERSION")))
            .with_instructions(instructions)
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, McpError> {
        context.peer.set_peer_info(request.clone());
        let mut info = self.negotiate_initialize(&request)?;
        if card::renders_apps(Some(&request.capabilities)) {
            with_apps(&mut info.capabilities);
        }
        Ok(info)
    }

    async fn discover(&self, context: RequestContext<RoleServer>) -> Result<DiscoverResult, McpError> {
        let mut info = self.get_info();
        if card::client_renders_apps(&context) {
            with_apps(&mut info.capabilities);
        }
        Ok(DiscoverResult::from_server_info(self.supported_protocol_versions().into_owned(), info))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let modern = context.protocol_version().is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
        let apps = card::client_renders_apps(&context);
        let mut tools = self.tool_router.list_all();
        if apps {
            self.with_card(&mut tools);
        }
        Ok(ListToolsResult {
            result_type: Some(ResultType::COMPLETE),
            tools,
            meta: None,
            next_cursor: None,
            ttl_ms: modern.then_some(0),
            // The list depends on the client's capabilities once the card is in it.
            cache_scope: modern.then_some(if apps { CacheScope::Private } else { CacheScope::Public }),
        })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if request.name == card::DECISION_TOOL && self.offers_card_decisions() && card::client_renders_apps(&context) {
            let raw = request.arguments.unwrap_or_default();
            return Ok(self.card_decision(raw).await.into());
        }
        let call = ToolCallContext::new(self, request, context);
        self.tool_router.call(call).await
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tool_router.get(name).cloned()
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        if !card::client_renders_apps(&context) {
            return Err(McpError::method_not_found::<rmcp::model::ListResourcesRequestMethod>());
        }
        let mut result = ListResourcesResult::default();
        result.resources.extend(card::resource());
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        if !card::client_renders_apps(&context) {
            return Err(McpError::method_not_found::<rmcp::model::ListResourceTemplatesRequestMethod>());
        }
        Ok(ListResourceTemplatesResult::default())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        if !card::client_renders_apps(&context) {
            return Err(McpError::method_not_found::<rmcp::model::ReadResourceRequestMethod>());
        }
        match card::read(&request.uri) {
            Some(result) => Ok(result.into()),
            None => Err(McpError::resource_not_found(
                format!("no resource {}; this server has {}", request.uri, card::CARD_URI),
                None,
            )),
        }
    }
}
