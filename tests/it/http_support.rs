//! Test support for `serve --http`: the real binary started on a free loopback port (its bound
//! address read from its stderr), pointed at the in-process sandbox gateway, and rmcp's streamable
//! HTTP client connected to it, with or without a bearer credential.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use payment_mcp::sandbox::SandboxGateway;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

use crate::support::{ALL_VARS, API_KEY, SIGN_KEY, gateway_config, temp_ledger};

/// A running `payment-mcp serve --http 127.0.0.1:0`.
pub struct HttpServer {
    pub child: tokio::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub gw: Option<SandboxGateway>,
    pub stderr: Arc<Mutex<String>>,
}

/// What to start the server with.
pub struct Start {
    pub env: Vec<(String, String)>,
    /// Point the server at this gateway with the right keys (None: the embedded sandbox).
    pub gateway: Option<SandboxGateway>,
    pub addr: String,
}

impl Default for Start {
    fn default() -> Self {
        Start { env: Vec::new(), gateway: None, addr: "127.0.0.1:0".into() }
    }
}

impl Start {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// With a fresh in-process LFWin gateway (the strict fake, its requests recorded).
    pub async fn with_gateway(mut self) -> Self {
        self.gateway = Some(SandboxGateway::start(gateway_config()).await.expect("gateway starts"));
        self
    }
}

/// A token file path that does not exist: no bearer tokens, unless a test writes it.
pub fn temp_tokens_file() -> std::path::PathBuf {
    temp_ledger().with_file_name("tokens")
}

fn command(start: &Start) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_payment-mcp"));
    for var in ALL_VARS {
        cmd.env_remove(var);
    }
    cmd.arg("serve").arg("--http").arg(&start.addr);
    cmd.env("PAYMENT_LEDGER", temp_ledger()).env("PAYMENT_TOKENS_FILE", temp_tokens_file());
    if let Some(gw) = &start.gateway {
        cmd.env("PAYMENT_API_BASE_URL", gw.base_url())
            .env("PAYMENT_API_KEY", API_KEY)
            .env("PAYMENT_SIGN_KEY", SIGN_KEY)
            .env("PAYMENT_REQUEST_TIMEOUT_MS", "3000");
    }
    for (k, v) in &start.env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    cmd
}

impl HttpServer {
    /// Starts the server and waits for its "listening on" line.
    pub async fn start(start: Start) -> HttpServer {
        let mut child = command(&start).spawn().expect("binary spawns");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = tokio::sync::oneshot::channel::<String>();
        let sink = log.clone();
        tokio::spawn(async move {
            let mut tx = Some(tx);
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split_once("listening on ").map(|(_, r)| r.to_owned())
                    && let Some(tx) = tx.take()
                {
                    let url = rest.split_whitespace().next().unwrap_or_default().trim_end_matches("/mcp").to_owned();
                    let _ = tx.send(url);
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let base = tokio::time::timeout(Duration::from_secs(20), rx)
            .await
            .expect("the server prints its address in time")
            .unwrap_or_else(|_| panic!("the server exited before listening:\n{}", log.lock().unwrap()));
        HttpServer { child, base, gw: start.gateway, stderr: log }
    }

    /// Runs the command to its end (for start-up refusals): exit success and stderr.
    pub async fn run_to_end(start: Start) -> (bool, String) {
        let out = tokio::time::timeout(Duration::from_secs(20), command(&start).output())
            .await
            .expect("the command ends in time")
            .expect("binary runs");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    pub fn gw(&self) -> &SandboxGateway {
        self.gw.as_ref().expect("started with a gateway")
    }

    /// Connects rmcp's streamable HTTP client: the 2025 `initialize` handshake (a session), or the
    /// 2026-07-28 `server/discover` lifecycle (stateless) when `modern`.
    pub async fn connect(&self, token: Option<&str>, modern: bool) -> Result<RunningService<RoleClient, ()>, String> {
        self.connect_as((), token, modern).await
    }

    /// [`HttpServer::connect`] with a client handler of the test's choosing (its capabilities).
    pub async fn connect_as<H: rmcp::ClientHandler>(
        &self,
        handler: H,
        token: Option<&str>,
        modern: bool,
    ) -> Result<RunningService<RoleClient, H>, String> {
        let mut config = StreamableHttpClientTransportConfig::with_uri(self.mcp_url());
        if let Some(token) = token {
            config = config.auth_header(token.to_owned());
        }
        let transport = StreamableHttpClientTransport::with_client(http_client(), config);
        let connected = if modern {
            handler
                .serve_with_lifecycle(
                    transport,
                    ClientLifecycleMode::Discover {
                        preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
                    },
                )
                .await
        } else {
            handler.serve(transport).await
        };
        connected.map_err(|e| e.to_string())
    }

    /// A plain HTTP request (for what no MCP client sends: bad headers, huge bodies).
    pub fn raw(&self) -> reqwest::Client {
        http_client()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status().expect("kill runs");
        assert!(status.success());
    }
}

/// A reqwest client with the crate's TLS provider installed (reqwest is built without one).
pub fn http_client() -> reqwest::Client {
    payment_mcp::provider::transport::client_builder().pool_max_idle_per_host(0).build().expect("client builds")
}

/// Calls a tool; a JSON-RPC error comes back as `Err` with its message.
pub async fn call(client: &RunningService<RoleClient, ()>, tool: &str, args: Value) -> Result<CallToolResult, String> {
    let args = args.as_object().cloned().expect("arguments are an object");
    let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(args);
    tokio::time::timeout(Duration::from_secs(20), client.call_tool(params))
        .await
        .expect("answered in bounded time")
        .map_err(|e| e.to_string())
}

/// The names in a tools/list.
pub async fn tool_names(client: &RunningService<RoleClient, ()>) -> Vec<String> {
    client.list_all_tools().await.expect("tools/list").into_iter().map(|t| t.name.to_string()).collect()
}

/// A JSON-RPC initialize body, for raw requests.
pub fn initialize_body() -> Value {
    serde_json::json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}})
}

/// POSTs `body` to `/mcp` with the headers MCP requires, plus `extra`.
pub async fn post_mcp(server: &HttpServer, body: String, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut request = server
        .raw()
        .post(server.mcp_url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body);
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    request.send().await.expect("the server answers")
}
