//! Configuration: `PAYMENT_*` (and, for the Alipay provider, `AP_*`) environment variables → a
//! validated [`Config`].
//!
//! Two stages: raw strings are read once at start-up, then each is validated into a typed value.
//! A missing or bad value never stops the server: it becomes a [`Problem`] naming the variable, and
//! the tools that depend on it answer with a `config` error saying how to fix it, while `initialize`
//! and `tools/list` keep working. Secrets live in [`SecretString`], whose `Debug` prints
//! `[REDACTED]` and which has no `Display`. The Alipay provider's variables, named as Alipay's own MCP
//! server names them, are read in `alipay.rs`.

pub mod alipay;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

pub use secrecy::{ExposeSecret, SecretString};

use crate::money::Fen;
use crate::provider::ProviderKind;
pub use crate::provider::epay::EpayApiStyle;
use crate::scope::{Cap, Scope};
pub use alipay::{AlipayEnv, AlipaySettings};

/// LFWin's production gateway.
pub const LFWIN_DEFAULT_BASE_URL: &str = "https://api2.lfwin.com";
/// Whole-request timeout when `PAYMENT_REQUEST_TIMEOUT_MS` is unset.
pub const DEFAULT_TIMEOUT_MS: u64 = 15_000;

/// How long a human has to confirm a refund when `PAYMENT_CONFIRM_TIMEOUT_SECONDS` is unset.
pub const DEFAULT_CONFIRM_TIMEOUT_S: u64 = 300;

/// Every tool name the server knows, for `PAYMENT_TOOLS` validation.
pub const ALL_TOOLS: &[&str] = &[
    "create_payment_order",
    "query_payment_order",
    "refund_payment_order",
    "query_refund_status",
    "wait_for_payment",
    "list_payment_orders",
    "get_merchant_info",
    "verify_payment_notification",
    "sandbox_simulate_payment",
    "close_payment_order",
    "create-mobile-alipay-payment",
    "create-web-page-alipay-payment",
    "query-alipay-payment",
    "refund-alipay-payment",
    "query-alipay-refund",
];

/// Tools that move money or change an order: hidden by `PAYMENT_READ_ONLY`.
pub const MONEY_MOVING_TOOLS: &[&str] = &[
    "create_payment_order",
    "refund_payment_order",
    "close_payment_order",
    "create-mobile-alipay-payment",
    "create-web-page-alipay-payment",
    "refund-alipay-payment",
];

/// A configuration problem, reported by the tools that need the variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What is wrong and how to fix it, without the variable's value when it is a secret.
    pub message: String,
    /// Whether only money-moving tools are affected (a bad guardrail fails closed for them alone).
    pub money_moving_only: bool,
}

/// The gateway and its credentials.
#[derive(Debug, Clone)]
pub enum ProviderSettings {
    Lfwin {
        base_url: String,
        api_key: SecretString,
        sign_key: SecretString,
    },
    Epay {
        base_url: String,
        merchant_id: String,
        key: SecretString,
        api_style: EpayApiStyle,
        pay_type: String,
    },
    /// The Alipay Open Platform (`AP_*` variables, see [`alipay`]).
    Alipay(AlipaySettings),
    Sandbox,
    /// See [`ProviderKind::Unconfigured`]; the reason is in [`Config::problems`].
    Unconfigured,
}

impl ProviderSettings {
    pub fn kind(&self) -> ProviderKind {
        match self {
            ProviderSettings::Lfwin { .. } => ProviderKind::Lfwin,
            ProviderSettings::Epay { .. } => ProviderKind::Epay,
            ProviderSettings::Alipay(_) => ProviderKind::Alipay,
            ProviderSettings::Sandbox => ProviderKind::Sandbox,
            ProviderSettings::Unconfigured => ProviderKind::Unconfigured,
        }
    }
}

/// How often `wait_for_payment` queries an order when `PAYMENT_POLL_INTERVAL_MS` is unset: LFWin
/// advises about every 2 s.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Where the order ledger lives (`PAYMENT_LEDGER`).
#[derive(Debug, Clone)]
pub enum LedgerSetting {
    /// The platform's per-user data directory.
    Default,
    /// In memory only: nothing survives a restart.
    Off,
    /// This file.
    Path(std::path::PathBuf),
    /// A PostgreSQL server (`postgres://…` or `postgresql://…`), shared by several instances. The
    /// URL may hold a password, so it is a secret: registered for scrubbing, never printed.
    Postgres(SecretString),
}

impl PartialEq for LedgerSetting {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (LedgerSetting::Default, LedgerSetting::Default) | (LedgerSetting::Off, LedgerSetting::Off) => true,
            (LedgerSetting::Path(a), LedgerSetting::Path(b)) => a == b,
            (LedgerSetting::Postgres(a), LedgerSetting::Postgres(b)) => a.expose_secret() == b.expose_secret(),
            _ => false,
        }
    }
}

impl Eq for LedgerSetting {}

/// Whether `PAYMENT_LEDGER` names a PostgreSQL server rather than a file.
fn is_postgres_url(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// A PostgreSQL URL as a secret: the whole URL and its password are scrubbed from everything
/// that leaves the process.
fn postgres_setting(url: &str) -> LedgerSetting {
    crate::redact::register(url);
    if let Some(password) = url
        .parse::<tokio_postgres::Config>()
        .ok()
        .and_then(|c| c.get_password().map(|p| String::from_utf8_lossy(p).into_owned()))
    {
        crate::redact::register(&password);
        // The URL form percent-encodes it; the scrubber matches decoded text, so both are covered.
    }
    LedgerSetting::Postgres(url.to_owned().into())
}

/// The validated configuration. Fields hold safe defaults when their variable was bad; the
/// corresponding [`Problem`] is in `problems`.
#[derive(Debug, Clone)]
pub struct Config {
    /// The provider the tools use. When resolution failed, the sandbox is NOT substituted:
    /// `provider_problem` says why and every gateway tool reports it.
    pub provider: ProviderSettings,
    pub timeout: Duration,
    pub notify_url: Option<String>,
    pub return_url: Option<String>,
    /// `PAYMENT_TOOLS`; `None` = all.
    pub tools: Option<Vec<String>>,
    /// `AP_SELECT_TOOLS`, as full tool names; `None` = all.
    pub selected_tools: Option<Vec<String>>,
    pub read_only: bool,
    pub max_refund: Option<Fen>,
    pub max_order: Option<Fen>,
    pub confirm_refunds: bool,
    /// How long a human has to confirm a refund (`PAYMENT_CONFIRM_TIMEOUT_SECONDS`, default 300 s):
    /// the form's wait, the life of a confirmation page's one-time link and of a card's token.
    pub confirm_timeout: Duration,
    /// `PAYMENT_QR_TEXT`: also draw the QR code in Unicode half blocks in the create result's text
    /// (for terminal clients that show no images); off by default, it costs tokens.
    pub qr_text: bool,
    /// How long the sandbox takes to settle a refund (`PAYMENT_SANDBOX_REFUND_DELAY_MS`, default 3 s).
    pub sandbox_refund_delay: Duration,
    /// How often `wait_for_payment` queries an order (`PAYMENT_POLL_INTERVAL_MS`, default 2 s).
    /// A verified notification wakes a wait at once whatever this is, so with notifications set
    /// up it can be long.
    pub poll_interval: Duration,
    /// Where the stdio server listens for the gateway's payment notifications
    /// (`PAYMENT_NOTIFY_ADDR`, e.g. `127.0.0.1:8787`); `None`: it does not.
    pub notify_addr: Option<std::net::SocketAddr>,
    pub ledger: LedgerSetting,
    pub problems: Vec<Problem>,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Config {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Config {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let mut problems = Vec::new();

        let read_only = parse_bool(&get, "PAYMENT_READ_ONLY", &mut problems, true);
        let confirm_refunds = parse_bool(&get, "PAYMENT_CONFIRM_REFUNDS", &mut problems, true);
        let allow_insecure = parse_bool(&get, "PAYMENT_ALLOW_INSECURE_HTTP", &mut problems, false);
        let qr_text = parse_bool(&get, "PAYMENT_QR_TEXT", &mut problems, false);
        let confirm_timeout = match get("PAYMENT_CONFIRM_TIMEOUT_SECONDS").map(|v| v.parse::<u64>()) {
            None => Duration::from_secs(DEFAULT_CONFIRM_TIMEOUT_S),
            Some(Ok(s @ 1..=3600)) => Duration::from_secs(s),
            Some(_) => {
                problems.push(Problem {
                    variable: "PAYMENT_CONFIRM_TIMEOUT_SECONDS",
                    message: format!(
                        "PAYMENT_CONFIRM_TIMEOUT_SECONDS must be whole seconds from 1 to 3600 (default {DEFAULT_CONFIRM_TIMEOUT_S}), or unset"
                    ),
                    money_moving_only: true,
                });
                Duration::from_secs(DEFAULT_CONFIRM_TIMEOUT_S)
            }
        };

        let timeout = match get("PAYMENT_REQUEST_TIMEOUT_MS") {
            None => Duration::from_millis(DEFAULT_TIMEOUT_MS),
            Some(raw) => match raw.parse::<u64>() {
                Ok(ms @ 1..=120_000) => Duration::from_millis(ms),
                _ => {
                    problems.push(Problem {
                        variable: "PAYMENT_REQUEST_TIMEOUT_MS",
                        message: format!(
                            "PAYMENT_REQUEST_TIMEOUT_MS is `{raw}`; set it to a whole number of milliseconds from 1 to 120000 (default {DEFAULT_TIMEOUT_MS}), or unset it"
                        ),
                        money_moving_only: false,
                    });
                    Duration::from_millis(DEFAULT_TIMEOUT_MS)
                }
            },
        };

        let mut notify_url = parse_url_var(&get, "PAYMENT_NOTIFY_URL", &mut problems);
        let mut return_url = parse_url_var(&get, "PAYMENT_RETURN_URL", &mut problems);

        let tools = get("PAYMENT_TOOLS").map(|raw| {
            let names: Vec<String> = raw.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
            for name in &names {
                if !ALL_TOOLS.contains(&name.as_str()) {
                    problems.push(Problem {
                        variable: "PAYMENT_TOOLS",
                        message: format!(
                            "PAYMENT_TOOLS names `{name}`, which is not a tool; known tools: {}",
                            ALL_TOOLS.join(", ")
                        ),
                        money_moving_only: false,
                    });
                }
            }
            names
        });

        let max_refund = parse_amount_var(&get, "PAYMENT_MAX_REFUND_AMOUNT", &mut problems);
        let max_order = parse_amount_var(&get, "PAYMENT_MAX_ORDER_AMOUNT", &mut problems);

        let sandbox_refund_delay = match get("PAYMENT_SANDBOX_REFUND_DELAY_MS").map(|v| v.parse::<u64>()) {
            None => Duration::from_secs(3),
            Some(Ok(ms)) if ms <= 600_000 => Duration::from_millis(ms),
            Some(_) => {
                problems.push(Problem {
                    variable: "PAYMENT_SANDBOX_REFUND_DELAY_MS",
                    message: "PAYMENT_SANDBOX_REFUND_DELAY_MS must be milliseconds from 0 to 600000".into(),
                    money_moving_only: false,
                });
                Duration::from_secs(3)
            }
        };

        let poll_interval = match get("PAYMENT_POLL_INTERVAL_MS").map(|v| v.parse::<u64>()) {
            None => DEFAULT_POLL_INTERVAL,
            Some(Ok(ms @ 200..=3_600_000)) => Duration::from_millis(ms),
            Some(_) => {
                problems.push(Problem {
                    variable: "PAYMENT_POLL_INTERVAL_MS",
                    message:
                        "PAYMENT_POLL_INTERVAL_MS must be milliseconds from 200 to 3600000 (default 2000), or unset"
                            .into(),
                    money_moving_only: false,
                });
                DEFAULT_POLL_INTERVAL
            }
        };

        let notify_addr = get("PAYMENT_NOTIFY_ADDR").and_then(|raw| match raw.parse::<std::net::SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                problems.push(Problem {
                    variable: "PAYMENT_NOTIFY_ADDR",
                    message: format!(
                        "PAYMENT_NOTIFY_ADDR is `{raw}`; set it to the IP address and port to receive payment notifications on, such as 127.0.0.1:8787, or unset it"
                    ),
                    money_moving_only: false,
                });
                None
            }
        });

        let ledger = match get("PAYMENT_LEDGER") {
            None => LedgerSetting::Default,
            Some(v) if v.eq_ignore_ascii_case("off") => LedgerSetting::Off,
            Some(v) if is_postgres_url(&v) => postgres_setting(&v),
            Some(v) => LedgerSetting::Path(v.into()),
        };

        let provider = resolve_provider(&get, allow_insecure, &mut problems);
        if matches!(provider, ProviderSettings::Alipay(_)) {
            if notify_url.is_none() {
                notify_url = parse_url_var(&get, "AP_NOTIFY_URL", &mut problems);
            }
            if return_url.is_none() {
                return_url = parse_url_var(&get, "AP_RETURN_URL", &mut problems);
            }
        }
        let selected_tools = alipay::select_tools(&get, &mut problems);

        Config {
            provider,
            timeout,
            notify_url,
            return_url,
            tools,
            selected_tools,
            read_only,
            max_refund,
            max_order,
            confirm_refunds,
            confirm_timeout,
            qr_text,
            sandbox_refund_delay,
            poll_interval,
            notify_addr,
            ledger,
            problems,
        }
    }

    /// The first problem that stops `tool` from working, if any.
    pub fn problem_for(&self, money_moving: bool) -> Option<&Problem> {
        self.problems.iter().find(|p| money_moving || !p.money_moving_only)
    }

    /// Whether a tool is offered, after `PAYMENT_TOOLS`, `AP_SELECT_TOOLS` and `PAYMENT_READ_ONLY`.
    pub fn tool_enabled(&self, name: &str) -> bool {
        self.scope().allows(name)
    }

    /// The server-wide guardrails as a [`Scope`]: the tools both `PAYMENT_TOOLS` and
    /// `AP_SELECT_TOOLS` list, `PAYMENT_READ_ONLY`, and the two amount limits. Over HTTP each caller's
    /// scope narrows it further (see [`crate::scope`]).
    pub fn scope(&self) -> Scope {
        let set = |list: &Option<Vec<String>>| list.as_ref().map(|l| l.iter().cloned().collect::<BTreeSet<String>>());
        let tools = match (set(&self.tools), set(&self.selected_tools)) {
            (Some(a), Some(b)) => Some(a.intersection(&b).cloned().collect()),
            (Some(t), None) | (None, Some(t)) => Some(t),
            (None, None) => None,
        };
        let cap = |amount: Option<Fen>, variable: &str| {
            amount.map(|amount| Cap { amount, owner: "this server", source: variable.to_owned() })
        };
        Scope::new(
            tools,
            self.read_only,
            cap(self.max_order, "PAYMENT_MAX_ORDER_AMOUNT"),
            cap(self.max_refund, "PAYMENT_MAX_REFUND_AMOUNT"),
        )
    }
}

fn parse_bool(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    problems: &mut Vec<Problem>,
    fail_closed_value: bool,
) -> bool {
    match get(name).map(|v| v.to_ascii_lowercase()) {
        None => false,
        Some(v) if matches!(v.as_str(), "true" | "1" | "yes" | "on") => true,
        Some(v) if matches!(v.as_str(), "false" | "0" | "no" | "off") => false,
        Some(v) => {
            problems.push(Problem {
                variable: name,
                message: format!("{name} is `{v}`; set it to true or false"),
                money_moving_only: fail_closed_value,
            });
            fail_closed_value
        }
    }
}

fn parse_url_var(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    problems: &mut Vec<Problem>,
) -> Option<String> {
    let raw = get(name)?;
    match check_callback_url(&raw) {
        Ok(()) => Some(raw),
        Err(why) => {
            problems.push(Problem { variable: name, message: format!("{name} {why}"), money_moving_only: true });
            None
        }
    }
}

/// Checks a notify/return URL: absolute http(s), at most 512 characters.
pub fn check_callback_url(raw: &str) -> Result<(), String> {
    if raw.len() > 512 {
        return Err(format!("is {} characters long; the limit is 512", raw.len()));
    }
    match reqwest::Url::parse(raw) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
        _ => Err(format!("`{raw}` is not an absolute http(s) URL")),
    }
}

fn parse_amount_var(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    problems: &mut Vec<Problem>,
) -> Option<Fen> {
    let raw = get(name)?;
    match Fen::parse_yuan(&raw) {
        Ok(fen) => Some(fen),
        Err(why) => {
            problems.push(Problem {
                variable: name,
                message: format!("{name}: {why}. Set it to an amount in yuan such as 500.00, or unset it"),
                money_moving_only: true,
            });
            // Fail closed: with a broken limit, no amount passes.
            Some(Fen(0))
        }
    }
}

/// Whether `host` is this machine (127.0.0.0/8, ::1, localhost).
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Validates a gateway base URL: https, or http to loopback / when explicitly allowed. A refusal
/// names the variable and the rule and shows at most the URL's origin: the value itself may carry a
/// key pasted in the wrong place (`?apikey=…`), and it would reach results and logs.
pub fn check_base_url(raw: &str, allow_insecure: bool) -> Result<String, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| {
        format!("PAYMENT_API_BASE_URL is not an absolute URL ({e}); set it to e.g. {LFWIN_DEFAULT_BASE_URL}")
    })?;
    let host = url.host_str().unwrap_or_default().to_owned();
    if host.is_empty() {
        return Err("PAYMENT_API_BASE_URL has no host; set it to e.g. https://pay.example.com".into());
    }
    let origin = crate::provider::transport::origin_of(&url);
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "PAYMENT_API_BASE_URL must not carry credentials; set it to {origin} and put keys in PAYMENT_API_KEY/PAYMENT_SIGN_KEY"
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_host(&host) || allow_insecure => {}
        "http" => {
            return Err(format!(
                "PAYMENT_API_BASE_URL ({origin}) uses plain http to a non-loopback host; use https, or set PAYMENT_ALLOW_INSECURE_HTTP=true for a test gateway"
            ));
        }
        other => return Err(format!("PAYMENT_API_BASE_URL uses `{other}`; use https")),
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "PAYMENT_API_BASE_URL must not have a query or fragment (keys go in PAYMENT_API_KEY/PAYMENT_SIGN_KEY); set it to {origin} plus its path only"
        ));
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

fn resolve_provider(
    get: &impl Fn(&str) -> Option<String>,
    allow_insecure: bool,
    problems: &mut Vec<Problem>,
) -> ProviderSettings {
    let api_key = get("PAYMENT_API_KEY");
    let sign_key = get("PAYMENT_SIGN_KEY");
    // From here on, these never leave the process: results, errors and logs are scrubbed of them.
    for secret in [&api_key, &sign_key].into_iter().flatten() {
        crate::redact::register(secret);
    }
    let merchant_id = get("PAYMENT_MERCHANT_ID");
    let base = get("PAYMENT_API_BASE_URL");
    let app_id = get("AP_APP_ID");
    let alipay_keys = get("AP_APP_KEY").is_some() || get("AP_PUB_KEY").is_some();

    let explicit = get("PAYMENT_PROVIDER").map(|p| p.to_ascii_lowercase());
    let mut unconfigured = |variable: &'static str, message: String| {
        problems.push(Problem { variable, message, money_moving_only: false });
        ProviderSettings::Unconfigured
    };
    let kind = match explicit.as_deref() {
        Some("lfwin") => ProviderKind::Lfwin,
        Some("epay") => ProviderKind::Epay,
        Some("sandbox") => ProviderKind::Sandbox,
        Some("alipay") => ProviderKind::Alipay,
        Some(other) => {
            return unconfigured(
                "PAYMENT_PROVIDER",
                format!("PAYMENT_PROVIDER is `{other}`; use lfwin, epay, alipay or sandbox"),
            );
        }
        None if api_key.is_some() && merchant_id.is_some() => {
            return unconfigured(
                "PAYMENT_PROVIDER",
                "both PAYMENT_API_KEY (LFWin) and PAYMENT_MERCHANT_ID (epay) are set; set PAYMENT_PROVIDER to lfwin or epay to say which gateway to use".into(),
            );
        }
        None if app_id.is_some() && (api_key.is_some() || merchant_id.is_some()) => {
            return unconfigured(
                "PAYMENT_PROVIDER",
                "AP_APP_ID (Alipay) is set together with PAYMENT_API_KEY (LFWin) or PAYMENT_MERCHANT_ID (epay); set PAYMENT_PROVIDER to alipay, lfwin or epay to say which gateway to use".into(),
            );
        }
        None if app_id.is_some() => ProviderKind::Alipay,
        None if api_key.is_some() => ProviderKind::Lfwin,
        None if merchant_id.is_some() => ProviderKind::Epay,
        None if alipay_keys && api_key.is_none() && merchant_id.is_none() && sign_key.is_none() => {
            return unconfigured(
                "AP_APP_ID",
                "AP_APP_KEY or AP_PUB_KEY is set but AP_APP_ID is not; set AP_APP_ID to the Alipay application's APPID (the sandbox is not used when credentials are partly set)".into(),
            );
        }
        None if sign_key.is_some() => {
            return unconfigured(
                "PAYMENT_API_KEY",
                "PAYMENT_SIGN_KEY is set but neither PAYMENT_API_KEY (LFWin) nor PAYMENT_MERCHANT_ID (epay) is; set the one for your gateway (the sandbox is not used when credentials are partly set)".into(),
            );
        }
        None if base.is_some() => {
            return unconfigured(
                "PAYMENT_API_KEY",
                "PAYMENT_API_BASE_URL is set but no credentials are; set PAYMENT_API_KEY and PAYMENT_SIGN_KEY (LFWin) or PAYMENT_MERCHANT_ID and PAYMENT_SIGN_KEY (epay), or unset PAYMENT_API_BASE_URL to use the sandbox".into(),
            );
        }
        None => ProviderKind::Sandbox,
    };

    let mut missing = |name: &'static str, why: &str| {
        problems.push(Problem {
            variable: name,
            message: format!("{name} is not set; {why}"),
            money_moving_only: false,
        });
    };
    let base_url = |default: Option<&str>, problems: &mut Vec<Problem>| -> String {
        let raw = base.clone().or(default.map(str::to_owned)).unwrap_or_default();
        match check_base_url(&raw, allow_insecure) {
            Ok(url) => url,
            Err(message) => {
                problems.push(Problem { variable: "PAYMENT_API_BASE_URL", message, money_moving_only: false });
                raw
            }
        }
    };

    match kind {
        ProviderKind::Alipay => {
            ProviderSettings::Alipay(alipay::settings(get, base.as_deref(), allow_insecure, problems))
        }
        ProviderKind::Sandbox => ProviderSettings::Sandbox,
        ProviderKind::Unconfigured => ProviderSettings::Unconfigured,
        ProviderKind::Lfwin => {
            if api_key.is_none() {
                missing("PAYMENT_API_KEY", "set it to your LFWin apikey (merchant console)");
            }
            if sign_key.is_none() {
                missing("PAYMENT_SIGN_KEY", "set it to your LFWin MD5 sign key (merchant console)");
            }
            let base_url = base_url(Some(LFWIN_DEFAULT_BASE_URL), problems);
            ProviderSettings::Lfwin {
                base_url,
                api_key: SecretString::from(api_key.unwrap_or_default()),
                sign_key: SecretString::from(sign_key.unwrap_or_default()),
            }
        }
        ProviderKind::Epay => {
            if merchant_id.is_none() {
                missing("PAYMENT_MERCHANT_ID", "set it to your epay merchant id (pid)");
            }
            if sign_key.is_none() {
                missing("PAYMENT_SIGN_KEY", "set it to your epay merchant key");
            }
            if base.is_none() {
                missing(
                    "PAYMENT_API_BASE_URL",
                    "epay gateways have no default; set it to your gateway's https base URL",
                );
            }
            let base_url = if base.is_some() { base_url(None, problems) } else { String::new() };
            let api_style = match get("PAYMENT_EPAY_API_STYLE").map(|s| s.to_ascii_lowercase()).as_deref() {
                None | Some("path") => EpayApiStyle::Path,
                Some("act") => EpayApiStyle::Act,
                Some(other) => {
                    problems.push(Problem {
                        variable: "PAYMENT_EPAY_API_STYLE",
                        message: format!("PAYMENT_EPAY_API_STYLE is `{other}`; use path or act"),
                        money_moving_only: false,
                    });
                    EpayApiStyle::Path
                }
            };
            let pay_type = get("PAYMENT_EPAY_TYPE").unwrap_or_else(|| "alipay".into());
            ProviderSettings::Epay {
                base_url,
                merchant_id: merchant_id.unwrap_or_default(),
                key: SecretString::from(sign_key.unwrap_or_default()),
                api_style,
                pay_type,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Config {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn nothing_set_means_sandbox_without_problems() {
        let c = config(&[]);
        assert_eq!(c.provider.kind(), ProviderKind::Sandbox);
        assert!(c.problems.is_empty());
        assert_eq!(c.timeout, Duration::from_millis(DEFAULT_TIMEOUT_MS));
    }

    #[test]
    fn keys_select_lfwin_with_the_https_default() {
        let c = config(&[("PAYMENT_API_KEY", "k"), ("PAYMENT_SIGN_KEY", "s")]);
        match &c.provider {
            ProviderSettings::Lfwin { base_url, .. } => assert_eq!(base_url, LFWIN_DEFAULT_BASE_URL),
            other => panic!("{other:?}"),
        }
        assert!(c.problems.is_empty());
    }

    #[test]
    fn partial_credentials_are_a_problem_not_a_sandbox() {
        let c = config(&[("PAYMENT_API_KEY", "k")]);
        assert_eq!(c.provider.kind(), ProviderKind::Lfwin);
        assert_eq!(c.problems[0].variable, "PAYMENT_SIGN_KEY");
        let c = config(&[("PAYMENT_SIGN_KEY", "s")]);
        assert_eq!(c.provider.kind(), ProviderKind::Unconfigured);
        assert_eq!(c.problems[0].variable, "PAYMENT_API_KEY");
        let c = config(&[("PAYMENT_API_BASE_URL", "https://api2.lfwin.com")]);
        assert_eq!(c.provider.kind(), ProviderKind::Unconfigured);
        assert_eq!(c.problems[0].variable, "PAYMENT_API_KEY");
    }

    #[test]
    fn an_unknown_or_ambiguous_provider_is_a_problem_not_a_sandbox() {
        let c = config(&[("PAYMENT_PROVIDER", "lfwn")]);
        assert_eq!(c.provider.kind(), ProviderKind::Unconfigured);
        assert_eq!(c.problems[0].variable, "PAYMENT_PROVIDER");
        let c = config(&[("PAYMENT_API_KEY", "k"), ("PAYMENT_SIGN_KEY", "s"), ("PAYMENT_MERCHANT_ID", "1001")]);
        assert_eq!(c.provider.kind(), ProviderKind::Unconfigured);
        assert_eq!(c.problems[0].variable, "PAYMENT_PROVIDER");
        let c = config(&[
            ("PAYMENT_PROVIDER", "lfwin"),
            ("PAYMENT_API_KEY", "k"),
            ("PAYMENT_SIGN_KEY", "s"),
            ("PAYMENT_MERCHANT_ID", "1001"),
        ]);
        assert_eq!(c.provider.kind(), ProviderKind::Lfwin);
        assert!(c.problems.is_empty());
    }

    #[test]
    fn plain_http_only_to_loopback_or_when_allowed() {
        assert!(
            check_base_url("http://127.0.0.1:8080/prefix/", false).is_ok_and(|u| u == "http://127.0.0.1:8080/prefix")
        );
        assert!(check_base_url("http://[::1]:9", false).is_ok());
        assert!(check_base_url("http://localhost", false).is_ok());
        assert!(check_base_url("http://api2uat.lfwin.com", false).is_err());
        assert!(check_base_url("http://api2uat.lfwin.com", true).is_ok());
        assert!(check_base_url("ftp://x", true).is_err());
        assert!(check_base_url("not a url", false).is_err());
        assert!(check_base_url("https://user:pw@x.com", false).is_err());
    }

    #[test]
    fn bad_values_name_their_variable_and_never_echo_secrets() {
        let c = config(&[
            ("PAYMENT_API_KEY", "topsecret-api"),
            ("PAYMENT_SIGN_KEY", "topsecret-sign"),
            ("PAYMENT_API_BASE_URL", "http://evil.example"),
            ("PAYMENT_REQUEST_TIMEOUT_MS", "0"),
            ("PAYMENT_MAX_REFUND_AMOUNT", "abc"),
            ("PAYMENT_READ_ONLY", "maybe"),
        ]);
        let vars: Vec<_> = c.problems.iter().map(|p| p.variable).collect();
        for v in
            ["PAYMENT_API_BASE_URL", "PAYMENT_REQUEST_TIMEOUT_MS", "PAYMENT_MAX_REFUND_AMOUNT", "PAYMENT_READ_ONLY"]
        {
            assert!(vars.contains(&v), "{v} missing from {vars:?}");
        }
        let debug = format!("{c:?}");
        assert!(!debug.contains("topsecret"), "{debug}");
        assert!(c.read_only, "a bad PAYMENT_READ_ONLY fails closed");
        assert_eq!(c.max_refund, Some(Fen(0)), "a bad limit fails closed");
    }

    #[test]
    fn tool_allow_list_and_read_only() {
        let c =
            config(&[("PAYMENT_TOOLS", "query_payment_order, create_payment_order"), ("PAYMENT_READ_ONLY", "true")]);
        assert!(c.tool_enabled("query_payment_order"));
        assert!(!c.tool_enabled("create_payment_order"));
        assert!(!c.tool_enabled("refund_payment_order"));
    }
}
