//! The `payment-mcp` binary: parse the command line, log to stderr, serve MCP over stdio (and
//! payment notifications on `PAYMENT_NOTIFY_ADDR` when set), or over HTTP with `serve`.

// As in lib.rs: the served MCP session's future is deeper than rustc's default query depth.
#![recursion_limit = "256"]

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser;
use payment_mcp::cli::{self, Cli, Command};
use payment_mcp::payments::Payments;
use payment_mcp::tools::PaymentServer;
use rmcp::ServiceExt;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(matches!(cli.command, Some(Command::Serve { .. })));
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ok = runtime.block_on(async {
        match cli.command {
            None => serve().await,
            Some(Command::Demo { provider }) => cli::demo(provider).await,
            Some(Command::Sandbox { port, wire }) => cli::sandbox(port, wire).await,
            Some(Command::Doctor) => cli::doctor().await,
            Some(Command::Serve { http }) => payment_mcp::serve::run(http).await,
            Some(Command::Token { command }) => cli::token(command),
        }
    });
    // When the client went away without closing stdin, a read of stdin is still blocked in its
    // thread and would keep the runtime (and the process) alive: do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Logs go to stderr only: stdout carries JSON-RPC. The filter comes from `PAYMENT_LOG`: comma-separated
/// `level` and `target=level` directives (`warn`, `info,payment_mcp=debug`), default `warn`. A
/// `Targets` filter rather than `EnvFilter`: the same directive syntax without span/field matching,
/// and no regex engine in the binary or in start-up.
///
/// `AP_LOG_ENABLED=true` (Alipay's own MCP server's variable) also appends the log to the file that
/// server writes, `~/mcp-server-alipay.log` (user-only), at `info` unless `PAYMENT_LOG` says
/// otherwise, through the same scrubbing as stderr: no secret reaches it.
///
/// `serve` also logs each HTTP request and tool call at `info` by default (targets
/// `payment_mcp::serve::access` and `payment_mcp::calls`), and `PAYMENT_LOG_FORMAT=json` writes one
/// JSON object per line, for log collectors.
fn init_logging(serving_http: bool) {
    let configured =
        std::env::var("PAYMENT_LOG").ok().filter(|v| !v.trim().is_empty()).and_then(|v| v.parse::<Targets>().ok());
    let default = if serving_http {
        Targets::new()
            .with_default(tracing::Level::WARN)
            .with_target("payment_mcp::serve", tracing::Level::INFO)
            .with_target("payment_mcp::calls", tracing::Level::INFO)
    } else {
        Targets::new().with_default(tracing::Level::WARN)
    };
    let filter = configured.clone().unwrap_or(default);
    let json = std::env::var("PAYMENT_LOG_FORMAT").is_ok_and(|v| v.trim().eq_ignore_ascii_case("json"));
    let file = payment_mcp::config::alipay::log_file(|name| std::env::var(name).ok()).and_then(|path| {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(&path) {
            Ok(file) => Some(std::sync::Arc::new(std::sync::Mutex::new(file))),
            Err(e) => {
                eprintln!("AP_LOG_ENABLED: cannot open {}: {e}; logging to stderr only", path.display()); // stdout-ok: this is stderr
                None
            }
        }
    });
    let file_layer = file.map(|file| {
        let file_filter = configured.unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
        tracing_subscriber::fmt::layer()
            .with_writer(move || payment_mcp::redact::FileWriter::new(file.clone()))
            .with_ansi(false)
            .with_filter(file_filter)
    });
    let stderr_layer = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(payment_mcp::redact::stderr_writer)
            .with_filter(filter)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(payment_mcp::redact::stderr_writer)
            .with_ansi(false)
            .with_filter(filter)
            .boxed()
    };
    tracing_subscriber::registry().with(stderr_layer).with(file_layer).init();
}

async fn serve() -> bool {
    if std::io::stdin().is_terminal() {
        eprintln!("{}", payment_mcp::stdio::terminal_notice()); // stdout-ok: this is stderr
    }
    let payments = Payments::from_env();
    // Payment notifications on PAYMENT_NOTIFY_ADDR, next to the stdio session (README, "Payment
    // notifications"): a failure to bind is logged and the tools still work, polling as before.
    let notify = tokio_util::sync::CancellationToken::new();
    if let Some(addr) = payments.config().notify_addr {
        match payment_mcp::notify::serve(addr, payments.clone(), notify.clone()).await {
            Ok(bound) => tracing::info!(
                "payment notifications: listening on http://{bound}{}",
                payment_mcp::notify::path_for(payments.kind())
            ),
            Err(e) => {
                tracing::error!("PAYMENT_NOTIFY_ADDR: cannot listen on {addr}: {e}; notifications are not received")
            }
        }
    }
    let _stop_notify = notify.drop_guard();
    let server = PaymentServer::new(payments);
    let (service_io, bridge_io) = tokio::io::duplex(1 << 20);
    let bridge = tokio::spawn(payment_mcp::stdio::bridge(tokio::io::stdin(), tokio::io::stdout(), bridge_io));
    let ok = match server.serve(service_io).await {
        Ok(running) => match running.waiting().await {
            Ok(_) => true,
            Err(e) => {
                tracing::error!("the MCP session ended with an error: {e}");
                false
            }
        },
        Err(e) => {
            tracing::error!("the MCP session could not start: {e}");
            false
        }
    };
    let _ = bridge.await;
    ok
}
