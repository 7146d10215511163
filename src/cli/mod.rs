//! The command line: the stdio MCP server (no subcommand), `serve --http`, `token`, `demo`,
//! `sandbox` and `doctor`.
//!
//! These commands talk to a person, so they print to stdout; the MCP server path never does. The
//! Alipay variants (`demo --provider alipay`, `sandbox --wire alipay`, doctor's Alipay verdicts)
//! are in `alipay.rs`.

mod alipay;

use crate::error::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::{RoleClient, ServiceExt, service::RunningService};
use serde_json::{Value, json};

use crate::config::{Config, ExposeSecret, ProviderSettings};
use crate::payments::Payments;
use crate::provider::OrderRef;
use crate::redact;
use crate::sandbox;
use crate::tools::PaymentServer;

/// An MCP server that lets AI agents take payments through Chinese payment gateways.
///
/// With no subcommand it serves MCP over stdio (what MCP clients start). With no PAYMENT_*
/// credentials it uses an embedded sandbox gateway: no real money.
#[derive(Debug, Parser)]
#[command(name = "payment-mcp", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run create → simulated payment → query → refund → refund query on the sandbox, through the
    /// real MCP tool layer, and print each step. Exits 0 only if every step behaved.
    Demo {
        /// Which client to run the flow through: the sandbox provider (LFWin wire) or the Alipay
        /// provider against the sandbox's Alipay wire.
        #[arg(long, value_enum, default_value_t = DemoProvider::Sandbox)]
        provider: DemoProvider,
    },
    /// Run the sandbox gateway standalone and print its base URL and keys.
    Sandbox {
        /// Port on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// The wire protocol it speaks: lfwin, or alipay (prints ready-to-paste AP_* variables).
        #[arg(long, value_enum, default_value_t = WireArg::Lfwin)]
        wire: WireArg,
    },
    /// Check the configuration, the gateway's reachability and the keys; exit non-zero on a problem.
    Doctor,
    /// Serve MCP over streamable HTTP for remote agents (see README, "Team deployments").
    ///
    /// Listens on 127.0.0.1:8080 unless --http or PAYMENT_HTTP_ADDR says otherwise. A non-loopback
    /// address needs authentication (bearer tokens from `payment-mcp token add`, or OAuth); TLS
    /// belongs to a reverse proxy in front.
    Serve {
        /// Address to listen on, IP:PORT (port 0 picks a free one; the bound address is printed on stderr).
        #[arg(long, value_name = "ADDR")]
        http: Option<String>,
    },
    /// Manage the bearer tokens `serve --http` accepts (the file PAYMENT_TOKENS_FILE, default in
    /// the per-user data directory).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

/// `payment-mcp token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token, add its hash and scope to the file, and print the token (once: it is not stored).
    Add {
        /// A name for logs and metrics: letters, digits, `.`, `_`, `-`.
        name: String,
        /// What the token may do, e.g. "payments:read payments:create max_order=500.00" (items:
        /// payments:read|create|refund|close|all, tool:NAME, read-only, max_order=YUAN, max_refund=YUAN).
        #[arg(long, required = true, num_args = 1.., value_name = "ITEMS")]
        scope: Vec<String>,
    },
    /// List the tokens' names and scopes.
    List,
    /// Remove a token; requests with it are refused within a second.
    Remove {
        /// The token's name.
        name: String,
    },
}

/// The provider `demo` runs through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoProvider {
    /// The sandbox provider (the embedded gateway's LFWin wire).
    Sandbox,
    /// The Alipay provider, against the embedded gateway's Alipay wire.
    Alipay,
}

/// The wire protocol of `sandbox --wire`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WireArg {
    /// The LFWin cashier API.
    Lfwin,
    /// Alipay's OpenAPI v2 (`gateway.do`), with TEST-ONLY keys.
    Alipay,
}

/// An in-process MCP client connected to a [`PaymentServer`] over an in-memory pipe.
async fn connect(payments: Arc<Payments>) -> Result<RunningService<RoleClient, ()>, String> {
    let (client_io, server_io) = tokio::io::duplex(1 << 20);
    let server = PaymentServer::new(payments);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    ().serve(client_io).await.map_err(|e| format!("cannot connect to the MCP server: {e}"))
}

async fn call(client: &RunningService<RoleClient, ()>, tool: &str, args: Value) -> Result<CallToolResult, String> {
    let args = args.as_object().cloned().unwrap_or_default();
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
        .map_err(|e| format!("{tool}: MCP error: {e}"))
}

/// The structured content of a successful result, or the error text.
fn structured(tool: &str, r: &CallToolResult) -> Result<Value, String> {
    let s = r.structured_content.clone().unwrap_or(Value::Null);
    if r.is_error == Some(true) {
        return Err(format!(
            "{tool} failed: {}",
            s.pointer("/error/message").and_then(Value::as_str).unwrap_or("no message")
        ));
    }
    Ok(s)
}

fn field(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn expect(what: &str, got: &str, want: &str) -> Result<(), String> {
    if got == want { Ok(()) } else { Err(format!("{what}: expected {want}, got {got}")) }
}

/// `payment-mcp demo [--provider P]`.
pub async fn demo(provider: DemoProvider) -> bool {
    let outcome = match provider {
        DemoProvider::Sandbox => run_demo().await,
        DemoProvider::Alipay => alipay::run_demo().await,
    };
    match outcome {
        Ok(()) => {
            println!("\nDemo complete: every step behaved. Next: add payment-mcp to your MCP client (see README)."); // stdout-ok
            true
        }
        Err(e) => {
            println!("\nDEMO FAILED: {e}"); // stdout-ok
            false
        }
    }
}

async fn run_demo() -> Result<(), String> {
    let config = Config::from_lookup(|name| match name {
        "PAYMENT_PROVIDER" => Some("sandbox".into()),
        "PAYMENT_SANDBOX_REFUND_DELAY_MS" => Some("1000".into()),
        _ => None,
    });
    let payments = Arc::new(Payments::new(config));
    let client = connect(payments.clone()).await?;
    let merchant_order_no = format!("DEMO-{}", crate::time::now_unix());
    println!("payment-mcp demo — SANDBOX: no real money moves.\n"); // stdout-ok

    println!("1. create_payment_order {{merchant_order_no: {merchant_order_no}, amount: \"12.30\"}}"); // stdout-ok
    let r = call(
        &client,
        "create_payment_order",
        json!({"merchant_order_no": merchant_order_no, "amount": "12.30", "subject": "Demo coffee"}),
    )
    .await?;
    let created = structured("create_payment_order", &r)?;
    let order_no = field(&created, "order_no");
    let pay_url = field(&created, "pay_url");
    println!("   state={} order_no={order_no} amount={}", field(&created, "state"), field(&created, "amount")); // stdout-ok
    println!("   pay_url={pay_url}"); // stdout-ok
    expect("create state", &field(&created, "state"), "pending")?;
    if r.content.iter().all(|c| c.as_image().is_none()) {
        return Err("the create result has no QR image block".into());
    }
    match crate::qr::to_terminal(&pay_url) {
        Ok(qr) => println!("{qr}"), // stdout-ok
        Err(e) => return Err(e.to_string()),
    }

    println!("2. query_payment_order {{order_no: {order_no}}}"); // stdout-ok
    let q =
        structured("query_payment_order", &call(&client, "query_payment_order", json!({"order_no": order_no})).await?)?;
    println!("   state={} final={}", field(&q, "state"), field(&q, "final")); // stdout-ok
    expect("query state before paying", &field(&q, "state"), "pending")?;

    println!("3. sandbox_simulate_payment {{order_no: {order_no}, outcome: paid}}  (the payer pays)"); // stdout-ok
    structured(
        "sandbox_simulate_payment",
        &call(&client, "sandbox_simulate_payment", json!({"order_no": order_no, "outcome": "paid"})).await?,
    )?;

    println!("4. query_payment_order {{order_no: {order_no}}}"); // stdout-ok
    let q =
        structured("query_payment_order", &call(&client, "query_payment_order", json!({"order_no": order_no})).await?)?;
    println!(
        "   state={} paid_amount={} paid_time={}",
        field(&q, "state"),
        field(&q, "paid_amount"),
        field(&q, "paid_time")
    ); // stdout-ok
    expect("query state after paying", &field(&q, "state"), "paid")?;
    expect("paid amount", &field(&q, "paid_amount"), "12.30")?;

    let mch_refund_no = format!("{merchant_order_no}-RF1");
    println!(
        "5. refund_payment_order {{order_no: {order_no}, refund_amount: \"2.30\", mch_refund_no: {mch_refund_no}}}"
    ); // stdout-ok
    let rf = structured(
        "refund_payment_order",
        &call(
            &client,
            "refund_payment_order",
            json!({"order_no": order_no, "refund_amount": "2.30", "reason": "demo", "mch_refund_no": mch_refund_no}),
        )
        .await?,
    )?;
    println!("   state={} (accepted is not refunded)", field(&rf, "state")); // stdout-ok
    expect("refund state", &field(&rf, "state"), "processing")?;

    println!("6. query_refund_status {{order_no: {order_no}, mch_refund_no: {mch_refund_no}}} until final"); // stdout-ok
    let mut last = String::new();
    for _ in 0..20 {
        let s = structured(
            "query_refund_status",
            &call(&client, "query_refund_status", json!({"order_no": order_no, "mch_refund_no": mch_refund_no}))
                .await?,
        )?;
        last = field(&s, "state");
        println!(
            "   state={last} refund_amount={} refund_time={}",
            field(&s, "refund_amount"),
            field(&s, "refund_time")
        ); // stdout-ok
        if last != "processing" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    expect("refund state after settling", &last, "refunded")?;
    let _ = client.cancel().await;
    Ok(())
}

/// `payment-mcp sandbox --port N [--wire W]`: runs until Ctrl-C.
pub async fn sandbox(port: u16, wire: WireArg) -> bool {
    if wire == WireArg::Alipay {
        return alipay::sandbox(port).await;
    }
    let config = sandbox::SandboxConfig { port, ..sandbox::SandboxConfig::random_keys() };
    let gw = match sandbox::SandboxGateway::start(config).await {
        Ok(gw) => gw,
        Err(e) => {
            eprintln!("cannot start the sandbox gateway on port {port}: {e}");
            return false;
        }
    };
    println!("payment-mcp sandbox gateway (LFWin wire protocol) — no real money"); // stdout-ok
    println!("  base URL : {}", gw.base_url()); // stdout-ok
    println!("  API key  : {}", gw.api_key()); // stdout-ok
    println!("  sign key : {}", gw.sign_key()); // stdout-ok
    println!("\nPoint another payment-mcp at it:"); // stdout-ok
    println!(
        "  PAYMENT_API_BASE_URL={} PAYMENT_API_KEY={} PAYMENT_SIGN_KEY={} payment-mcp",
        gw.base_url(),
        gw.api_key(),
        gw.sign_key()
    ); // stdout-ok
    println!("Press Ctrl-C to stop."); // stdout-ok
    let _ = tokio::signal::ctrl_c().await;
    gw.shutdown();
    true
}

fn mask(secret: &str) -> String {
    match secret.chars().count() {
        0 => "(not set)".into(),
        // Only the length: even a first and last character are a quarter of an 8-character key.
        n => format!("set ({n} characters)"),
    }
}

/// Resolves the base URL's host, for a clear DNS verdict before any request.
async fn resolve(base_url: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(base_url).map_err(|e| format!("`{base_url}` is not a URL ({e})"))?;
    let host = url.host_str().ok_or_else(|| format!("`{base_url}` has no host"))?.to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<String> = tokio::net::lookup_host((host.trim_start_matches('[').trim_end_matches(']'), port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .map(|a| a.ip().to_string())
        .collect();
    if addrs.is_empty() { Err(format!("{host} has no addresses")) } else { Ok(addrs.join(", ")) }
}

/// What `doctor` prints after the checks that failed.
const FIX_FOOTER: &str = "\nFix the problems above in the MCP client's configuration for payment-mcp.";

/// `payment-mcp doctor`.
pub async fn doctor() -> bool {
    let config = Config::from_env();
    let mut ok = true;
    println!("payment-mcp {} doctor\n", env!("CARGO_PKG_VERSION")); // stdout-ok
    println!("provider        : {}", config.provider.kind()); // stdout-ok
    match &config.provider {
        ProviderSettings::Lfwin { base_url, api_key, sign_key } => {
            println!("base URL        : {base_url}"); // stdout-ok
            println!("PAYMENT_API_KEY : {}", mask(api_key.expose_secret())); // stdout-ok
            println!("PAYMENT_SIGN_KEY: {}", mask(sign_key.expose_secret())); // stdout-ok
        }
        ProviderSettings::Epay { base_url, merchant_id, key, .. } => {
            println!("base URL        : {base_url}"); // stdout-ok
            println!("merchant id     : {merchant_id}"); // stdout-ok
            println!("PAYMENT_SIGN_KEY: {}", mask(key.expose_secret())); // stdout-ok
        }
        ProviderSettings::Alipay(alipay) => {
            println!("gateway URL     : {}", alipay.gateway_url); // stdout-ok
            println!("AP_APP_ID       : {}", alipay.app_id); // stdout-ok
            println!("AP_APP_KEY      : {}", mask(alipay.app_key.expose_secret())); // stdout-ok
            println!("AP_PUB_KEY      : {}", mask(alipay.pub_key.expose_secret())); // stdout-ok
            println!("algorithm       : {} ({})", alipay.sign_type, alipay.env.as_str()); // stdout-ok
        }
        ProviderSettings::Sandbox => {
            println!("                  (no keys configured: embedded sandbox, no real money)")
        } // stdout-ok
        ProviderSettings::Unconfigured => {
            println!("                  (credentials partly set or ambiguous: see the problems below)")
        } // stdout-ok
    }
    println!("timeout         : {} ms", config.timeout.as_millis()); // stdout-ok
    println!("read-only       : {}", config.read_only); // stdout-ok
    if let Some(tools) = &config.tools {
        println!("tools           : {}", tools.join(", ")); // stdout-ok
    }
    println!(); // stdout-ok
    for p in &config.problems {
        ok = false;
        println!("PROBLEM {}: {}", p.variable, redact::scrub(&p.message)); // stdout-ok
    }
    if !ok {
        println!("{FIX_FOOTER}"); // stdout-ok
        return false;
    }
    let sandbox = matches!(config.provider, ProviderSettings::Sandbox);
    let is_alipay = matches!(config.provider, ProviderSettings::Alipay(_));
    let base_url = match &config.provider {
        ProviderSettings::Lfwin { base_url, .. } | ProviderSettings::Epay { base_url, .. } => Some(base_url.clone()),
        ProviderSettings::Alipay(alipay) => Some(alipay.gateway_url.clone()),
        ProviderSettings::Sandbox | ProviderSettings::Unconfigured => None,
    };
    let ledger_path = match &config.ledger {
        crate::config::LedgerSetting::Path(path) => Some(path.clone()),
        crate::config::LedgerSetting::Default if !sandbox => crate::ledger::Ledger::default_path(),
        _ => None,
    };
    if let Some(path) = &ledger_path {
        println!("ledger path     : {}", path.display()); // stdout-ok
    }
    let payments = Payments::new(config);
    // Every create and refund is refused without a usable ledger, so it is checked like the keys.
    match payments.ledger().await {
        Ok(ledger) => match (&*ledger, ledger.path()) {
            (crate::ledger::Ledger::Postgres(pg), _) => {
                println!("ledger          : OK (PostgreSQL {}, migrated)", pg.describe()) // stdout-ok
            }
            (_, Some(_)) => println!("ledger          : OK (opened, writable)"), // stdout-ok
            (_, None) => println!("ledger          : in memory (records do not survive a restart)"), // stdout-ok
        },
        Err(e) => {
            let at = ledger_path.map(|p| format!("{}: ", p.display())).unwrap_or_default();
            println!("PROBLEM ledger  : {at}{}", redact::scrub(&e.message)); // stdout-ok
            println!("{FIX_FOOTER}"); // stdout-ok
            return false;
        }
    }
    if let Some(base_url) = base_url {
        match resolve(&base_url).await {
            Ok(addrs) => println!("DNS             : {base_url} → {addrs}"), // stdout-ok
            Err(e) => {
                println!("PROBLEM DNS     : {e}. Check PAYMENT_API_BASE_URL and this machine's network."); // stdout-ok
                println!("{FIX_FOOTER}"); // stdout-ok
                return false;
            }
        }
        let tls = if base_url.starts_with("https://") { "TLS and the keys" } else { "the keys" };
        println!("checking {tls} with a harmless signed query …"); // stdout-ok
    }
    if is_alipay {
        let (fine, verdict) =
            alipay::doctor_verdict(payments.query(OrderRef::Platform(alipay::PROBE_TRADE_NO.into())).await);
        println!("{}", redact::scrub(&verdict)); // stdout-ok
        if !fine {
            println!("{FIX_FOOTER}"); // stdout-ok
        }
        return fine;
    }
    // A harmless signed query for an order that cannot exist: 3040 means the keys work.
    let probe = OrderRef::Platform("000000000000000000000000".into());
    let verdict = match payments.query(probe).await {
        Ok(_) if sandbox => "OK: the embedded sandbox answered (no keys configured; no real money).".to_owned(),
        Ok(_) => "OK: the gateway answered a signed query; the keys work.".to_owned(),
        Err(e) => match e.kind {
            ErrorKind::NotFound if sandbox => {
                "OK: the embedded sandbox answered (no keys configured; no real money).".to_owned()
            }
            ErrorKind::NotFound => {
                "OK: the gateway answered a signed query for an unknown order (3040); the keys work.".to_owned()
            }
            ErrorKind::Auth => {
                ok = false;
                format!("PROBLEM: {}", e.message)
            }
            ErrorKind::Transport => {
                ok = false;
                format!(
                    "PROBLEM: the gateway could not be reached: {} Check PAYMENT_API_BASE_URL, DNS, the network and any proxy.",
                    e.message
                )
            }
            _ => {
                ok = false;
                format!("PROBLEM: unexpected answer: {}", e.message)
            }
        },
    };
    println!("{}", redact::scrub(&verdict)); // stdout-ok
    if !ok {
        println!("{FIX_FOOTER}"); // stdout-ok
    }
    ok
}

/// The token file `token` works on: `PAYMENT_TOKENS_FILE`, or the default next to the ledger.
fn tokens_file() -> Option<std::path::PathBuf> {
    std::env::var("PAYMENT_TOKENS_FILE")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(std::path::PathBuf::from)
        .or_else(crate::serve::tokens::default_path)
}

/// `payment-mcp token add|list|remove`.
pub fn token(command: TokenCommand) -> bool {
    use crate::serve::tokens;
    let Some(path) = tokens_file() else {
        eprintln!("this platform has no per-user data directory; set PAYMENT_TOKENS_FILE"); // stdout-ok: stderr
        return false;
    };
    let outcome = match command {
        TokenCommand::Add { name, scope } => tokens::add(&path, &name, &scope.join(" ")).map(|token| {
            eprintln!(
                "Added token {name} to {}. It is shown once; store it in the agent's configuration as",
                path.display()
            ); // stdout-ok: stderr
            eprintln!("  Authorization: Bearer <token>"); // stdout-ok: stderr
            println!("{token}"); // stdout-ok
        }),
        TokenCommand::List => std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
            .and_then(|text| tokens::parse(&text))
            .map(|entries| {
                for e in entries {
                    println!("{}\t{}", e.name, e.scope.describe()); // stdout-ok
                }
            }),
        TokenCommand::Remove { name } => tokens::remove(&path, &name).map(|()| {
            eprintln!("Removed token {name} from {}.", path.display()); // stdout-ok: stderr
        }),
    };
    match outcome {
        Ok(()) => true,
        Err(e) => {
            eprintln!("payment-mcp token: {e}"); // stdout-ok: stderr
            false
        }
    }
}
