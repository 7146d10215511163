//! Test support: a fake LFWin gateway (the sandbox gateway, in-process) and an MCP client that
//! spawns the built binary pointed at it.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use payment_mcp::sandbox::{SandboxConfig, SandboxGateway};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;
use tokio::io::AsyncBufReadExt;

pub const API_KEY: &str = "ak-51d9e7x";
pub const SIGN_KEY: &str = "test-sign-key-9f2c";

/// Every `PAYMENT_*` variable, cleared from the child's environment so the host's never leak in.
pub const ALL_VARS: &[&str] = &[
    "PAYMENT_PROVIDER",
    "PAYMENT_API_KEY",
    "PAYMENT_SIGN_KEY",
    "PAYMENT_MERCHANT_ID",
    "PAYMENT_API_BASE_URL",
    "PAYMENT_ALLOW_INSECURE_HTTP",
    "PAYMENT_REQUEST_TIMEOUT_MS",
    "PAYMENT_NOTIFY_URL",
    "PAYMENT_RETURN_URL",
    "PAYMENT_TOOLS",
    "PAYMENT_READ_ONLY",
    "PAYMENT_MAX_REFUND_AMOUNT",
    "PAYMENT_MAX_ORDER_AMOUNT",
    "PAYMENT_CONFIRM_REFUNDS",
    "PAYMENT_CONFIRM_TIMEOUT_SECONDS",
    "PAYMENT_QR_TEXT",
    "PAYMENT_LEDGER",
    "PAYMENT_EPAY_API_STYLE",
    "PAYMENT_EPAY_TYPE",
    "PAYMENT_LOG",
    "PAYMENT_SANDBOX_REFUND_DELAY_MS",
    "PAYMENT_POLL_INTERVAL_MS",
    "PAYMENT_NOTIFY_ADDR",
    "AP_APP_ID",
    "AP_APP_KEY",
    "AP_PUB_KEY",
    "AP_RETURN_URL",
    "AP_NOTIFY_URL",
    "AP_ENCRYPTION_ALGO",
    "AP_CURRENT_ENV",
    "AP_SELECT_TOOLS",
    "AP_LOG_ENABLED",
    "PAYMENT_LOG_FORMAT",
    "PAYMENT_HTTP_ADDR",
    "PAYMENT_PUBLIC_URL",
    "PAYMENT_HTTP_ALLOWED_HOSTS",
    "PAYMENT_HTTP_ALLOWED_ORIGINS",
    "PAYMENT_HTTP_MAX_BODY_BYTES",
    "PAYMENT_HTTP_RATE_LIMIT",
    "PAYMENT_TOKENS_FILE",
    "PAYMENT_OAUTH_ISSUER",
    "PAYMENT_OAUTH_JWKS_URL",
    "PAYMENT_OAUTH_AUDIENCE",
    "PAYMENT_SHUTDOWN_GRACE_SECS",
];

pub fn gateway_config() -> SandboxConfig {
    SandboxConfig {
        wire: payment_mcp::sandbox::Wire::Lfwin,
        api_key: API_KEY.into(),
        sign_key: SIGN_KEY.into(),
        port: 0,
        refund_settle_delay: Duration::MAX,
        lazy_platform_orders: false,
        request_log_limit: usize::MAX,
    }
}

/// What the test client does with a URL-mode elicitation (a confirmation page).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlAction {
    /// Open the page, press Confirm, answer accept.
    Confirm,
    /// Open the page, press Decline, answer accept.
    Decline,
    /// Answer accept without opening the page.
    Ignore,
    /// Answer decline (the human refused to open it).
    Refuse,
}

/// The test's MCP client: declares elicitation and answers it when `confirm` is set.
#[derive(Clone, Default)]
pub struct TestClient {
    /// `Some(true)`: accept and tick; `Some(false)`: decline; `None`: no form elicitation.
    pub confirm: Option<bool>,
    /// `Some`: declares URL-mode elicitation (without form, unless `confirm` is set) and does this.
    pub url: Option<UrlAction>,
    /// Declares the MCP Apps extension (`io.modelcontextprotocol/ui`, HTML profile).
    pub apps: bool,
    /// How many elicitation requests arrived.
    pub asked: Arc<std::sync::atomic::AtomicUsize>,
    /// Each confirmation page opened: its URL and the HTML the GET returned.
    pub pages: Arc<Mutex<Vec<(String, String)>>>,
}

impl rmcp::ClientHandler for TestClient {
    fn get_info(&self) -> rmcp::model::ClientConfig {
        let mut caps = rmcp::model::ClientCapabilities::default();
        if self.confirm.is_some() {
            caps.elicitation = Some(rmcp::model::ElicitationCapability::default());
        }
        if self.url.is_some() {
            let mut e = rmcp::model::ElicitationCapability::default()
                .with_url(rmcp::model::UrlElicitationCapability::default());
            if self.confirm.is_some() {
                e = e.with_form(rmcp::model::FormElicitationCapability::default());
            }
            caps.elicitation = Some(e);
        }
        if self.apps {
            let mut extensions = rmcp::model::ExtensionCapabilities::new();
            let settings = serde_json::json!({"mimeTypes": ["text/html;profile=mcp-app"]});
            extensions.insert("io.modelcontextprotocol/ui".into(), settings.as_object().unwrap().clone());
            caps.extensions = Some(extensions);
        }
        rmcp::model::ClientConfig::new(caps, rmcp::model::Implementation::new("payment-mcp-tests", "1.0"))
    }

    async fn create_elicitation(
        &self,
        _request: rmcp::model::ElicitRequestParams,
        _context: rmcp::service::RequestContext<RoleClient>,
    ) -> Result<rmcp::model::ElicitResult, rmcp::ErrorData> {
        use rmcp::model::{ElicitRequestParams, ElicitResult, ElicitationAction};
        self.asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if let ElicitRequestParams::UrlElicitationParams { url, .. } = &_request {
            let action = self.url.expect("a URL elicitation only when the client declared URL mode");
            let decision = match action {
                UrlAction::Confirm => Some("confirm"),
                UrlAction::Decline => Some("decline"),
                UrlAction::Ignore | UrlAction::Refuse => None,
            };
            if let Some(decision) = decision {
                let (status, html) = http_request(url, "GET", None, &[]).await;
                assert_eq!(status, 200, "the confirmation page opens: {html}");
                self.pages.lock().unwrap().push((url.clone(), html));
                let body = format!("decision={decision}");
                let (status, html) = http_request(url, "POST", Some(&body), &[]).await;
                assert_eq!(status, 200, "the decision is taken: {html}");
            } else {
                self.pages.lock().unwrap().push((url.clone(), String::new()));
            }
            return Ok(ElicitResult::new(if action == UrlAction::Refuse {
                ElicitationAction::Decline
            } else {
                ElicitationAction::Accept
            }));
        }
        Ok(match self.confirm {
            Some(true) => {
                let mut r = ElicitResult::new(ElicitationAction::Accept);
                r.content = Some(serde_json::json!({"confirm": true}));
                r
            }
            _ => ElicitResult::new(ElicitationAction::Decline),
        })
    }
}

pub struct Harness {
    pub gw: SandboxGateway,
    pub client: RunningService<RoleClient, TestClient>,
    stderr: Arc<Mutex<String>>,
    /// Each listed tool's `outputSchema`: every result a test sees is checked against it, as the
    /// TypeScript SDK's clients do (they reject a result that does not match, errors included).
    output_schemas: std::collections::HashMap<String, Value>,
}

pub struct Options {
    pub gateway: SandboxConfig,
    /// Use this running gateway instead of starting one from `gateway`.
    pub shared_gateway: Option<SandboxGateway>,
    /// The ledger file (or a `postgres://` URL); a fresh temporary file when `None`.
    pub ledger: Option<std::path::PathBuf>,
    pub env: Vec<(String, String)>,
    pub modern: bool,
    pub client: TestClient,
    /// Point the server at the gateway with the right keys.
    pub lfwin: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            gateway: gateway_config(),
            shared_gateway: None,
            ledger: None,
            env: Vec::new(),
            modern: false,
            client: TestClient::default(),
            lfwin: true,
        }
    }
}

impl Options {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Harness {
        let gw = match opts.shared_gateway {
            Some(gw) => gw,
            None => SandboxGateway::start(opts.gateway).await.expect("gateway starts"),
        };
        let ledger = opts.ledger.unwrap_or_else(temp_ledger);
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_payment-mcp"));
        for var in ALL_VARS {
            cmd.env_remove(var);
        }
        if opts.lfwin {
            cmd.env("PAYMENT_API_BASE_URL", gw.base_url())
                .env("PAYMENT_API_KEY", API_KEY)
                .env("PAYMENT_SIGN_KEY", SIGN_KEY)
                .env("PAYMENT_REQUEST_TIMEOUT_MS", "1500");
        }
        cmd.env("PAYMENT_LOG", "debug").env("PAYMENT_LEDGER", &ledger);
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let (transport, stderr) =
            TokioChildProcess::builder(cmd).stderr(Stdio::piped()).spawn().expect("binary spawns");
        let log = Arc::new(Mutex::new(String::new()));
        if let Some(stderr) = stderr {
            let log = log.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let handler = opts.client.clone();
        let client = if opts.modern {
            handler
                .serve_with_lifecycle(
                    transport,
                    ClientLifecycleMode::Discover {
                        preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
                    },
                )
                .await
                .expect("discover handshake")
        } else {
            handler.serve(transport).await.expect("initialize handshake")
        };
        let tools = client.list_all_tools().await.expect("tools/list");
        let output_schemas = tools
            .into_iter()
            .filter_map(|t| t.output_schema.map(|s| (t.name.to_string(), Value::Object(s.as_ref().clone()))))
            .collect();
        Harness { gw, client, stderr: log, output_schemas }
    }

    /// Calls a tool; a JSON-RPC error fails the test (tool errors come back as results).
    pub async fn call(&self, tool: &str, args: Value) -> CallToolResult {
        let args = args.as_object().cloned().expect("arguments are an object");
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(args);
        let result = tokio::time::timeout(Duration::from_secs(20), self.client.call_tool(params))
            .await
            .expect("the call is answered in bounded time")
            .expect("no JSON-RPC error");
        self.assert_matches_output_schema(tool, &result);
        result
    }

    /// Fails unless the result's `structuredContent` validates against the tool's `outputSchema`.
    pub fn assert_matches_output_schema(&self, tool: &str, result: &CallToolResult) {
        let (Some(schema), Some(structured)) = (self.output_schemas.get(tool), &result.structured_content) else {
            return;
        };
        let validator = jsonschema::validator_for(schema).expect("outputSchema is a valid JSON Schema");
        let problems: Vec<String> =
            validator.iter_errors(structured).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(
            problems.is_empty(),
            "{tool}: structuredContent does not match outputSchema: {problems:?}\n{structured}"
        );
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Creates an order and returns its structured content.
    pub async fn create(&self, merchant_order_no: &str, amount: &str) -> Value {
        let r = self
            .call("create_payment_order", serde_json::json!({"merchant_order_no": merchant_order_no, "amount": amount}))
            .await;
        assert_ok(&r)
    }
}

/// A fresh ledger path in a new directory under Cargo's scratch directory for integration tests
/// (`target/tmp`), so test runs leave nothing in the system's temporary directory and `cargo clean`
/// removes what they leave.
pub fn temp_ledger() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("payment-mcp-it-{}-{n}-{nanos}", std::process::id()))
        .join("ledger.sqlite3")
}

/// The structured content of a successful result.
pub fn assert_ok(r: &CallToolResult) -> Value {
    assert_ne!(r.is_error, Some(true), "expected success, got {}", texts(r));
    r.structured_content.clone().expect("structured content")
}

/// The error body of a failed result.
pub fn assert_err(r: &CallToolResult, kind: &str) -> Value {
    assert_eq!(r.is_error, Some(true), "expected an error, got {}", texts(r));
    let s = r.structured_content.clone().expect("structured content");
    assert_eq!(s["error"]["kind"], kind, "{s}");
    assert!(s["error"]["message"].as_str().is_some_and(|m| m.len() > 20), "{s}");
    s["error"].clone()
}

/// All text blocks joined.
pub fn texts(r: &CallToolResult) -> String {
    r.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect::<Vec<_>>().join("\n")
}

/// The PNG bytes of the image block, if any.
pub fn image_png(r: &CallToolResult) -> Option<Vec<u8>> {
    r.content.iter().find_map(|c| c.as_image()).map(|i| {
        assert_eq!(i.mime_type, "image/png");
        base64::engine::general_purpose::STANDARD.decode(&i.data).expect("valid base64")
    })
}

/// Decodes a QR code PNG to its text.
pub fn decode_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let (w, h, stride, depth) = (info.width as usize, info.height as usize, info.line_size, info.bit_depth);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| match depth {
        png::BitDepth::One => {
            if buf[y * stride + x / 8] & (0x80 >> (x % 8)) != 0 {
                255
            } else {
                0
            }
        }
        _ => buf[y * stride + x],
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "exactly one QR code");
    grids[0].decode().expect("decodes").1
}

/// Asserts that no secret appears anywhere in a result or the server's stderr.
pub fn assert_no_secrets(h: &Harness, results: &[&CallToolResult]) {
    for r in results {
        let all = serde_json::to_string(r).unwrap();
        assert!(!all.contains(SIGN_KEY), "sign key leaked in a result");
        assert!(
            !all.contains(&format!("\"{API_KEY}\"")) && !all.contains(&format!("apikey={API_KEY}")),
            "api key leaked in a result"
        );
    }
    let log = h.stderr();
    assert!(!log.contains(SIGN_KEY), "sign key leaked to stderr");
    assert!(!log.contains(API_KEY), "api key leaked to stderr:\n{log}");
}

/// Options for a server on the Alipay provider, pointed at a sandbox gateway on its Alipay wire
/// (started here, reachable as `Harness::gw`) with the sandbox's TEST-ONLY keys.
pub async fn alipay_options() -> Options {
    alipay_options_with(gateway_config()).await
}

/// [`alipay_options`] with an Alipay-wire sandbox made from `config` (its `wire` is set here).
pub async fn alipay_options_with(config: SandboxConfig) -> Options {
    use payment_mcp::sandbox::{ALIPAY_APP_ID, Wire, alipay_public_key, app_private_key};
    let gw = SandboxGateway::start(SandboxConfig { wire: Wire::Alipay, ..config }).await.expect("gateway starts");
    let url = gw.gateway_url();
    Options { shared_gateway: Some(gw), lfwin: false, ..Options::default() }
        .env("AP_APP_ID", ALIPAY_APP_ID)
        .env("AP_APP_KEY", &app_private_key())
        .env("AP_PUB_KEY", &alipay_public_key())
        .env("PAYMENT_API_BASE_URL", &url)
        .env("PAYMENT_REQUEST_TIMEOUT_MS", "1500")
}

/// The Alipay `method` of each request the gateway recorded, in order.
pub fn alipay_methods(gw: &SandboxGateway) -> Vec<String> {
    gw.requests().iter().map(|r| r.field("method").unwrap_or_default().to_owned()).collect()
}

/// One HTTP/1.1 request to a loopback `http://host:port/path` URL, over a plain socket (so a test
/// can set any header, `Host` and `Origin` included): the status and the body.
pub async fn http_request(url: &str, method: &str, form: Option<&str>, headers: &[(&str, &str)]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {authority}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = form.unwrap_or("");
    if form.is_some() {
        request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    let mut stream = tokio::net::TcpStream::connect(authority).await.expect("the page server accepts");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    let status = reply.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("an HTTP status line");
    let body = reply.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}
