//! `serve --http`'s own settings: the `PAYMENT_HTTP_*`, `PAYMENT_PUBLIC_URL`, `PAYMENT_TOKENS_FILE`
//! and `PAYMENT_OAUTH_*` variables, read once and validated, and the rule that auth is never
//! optional off loopback.
//!
//! Unlike the payment configuration (which lets `tools/list` work and reports problems per tool),
//! a bad HTTP setting stops `serve` with a message naming the variable: a network listener that
//! starts half-configured is the one thing worse than none.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::time::Duration;

use super::jwt::OAuthSettings;
use super::limits::Rate;

/// Where `serve` listens when neither `--http` nor `PAYMENT_HTTP_ADDR` says.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";
/// The largest request body `/mcp` reads (`PAYMENT_HTTP_MAX_BODY_BYTES`): the largest legitimate
/// request, a notification to verify, is a few kilobytes.
pub const DEFAULT_MAX_BODY: usize = 256 * 1024;
/// How long shutdown waits for money-moving calls (`PAYMENT_SHUTDOWN_GRACE_SECS`): a create or
/// refund with its settling query and retries fits in four request timeouts.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60);

/// The validated settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub addr: SocketAddr,
    /// `PAYMENT_PUBLIC_URL`: the `/mcp` URL as clients reach it (through the reverse proxy).
    pub public_url: Option<String>,
    /// `Host` values accepted (DNS-rebinding protection).
    pub allowed_hosts: Vec<String>,
    /// Whether `PAYMENT_HTTP_ALLOWED_HOSTS` set them (rather than the loopback default).
    pub hosts_configured: bool,
    /// `Origin` values accepted; any other Origin is refused.
    pub allowed_origins: Vec<String>,
    pub max_body: usize,
    pub rate: Option<Rate>,
    /// The token file, and whether it exists.
    pub tokens_file: Option<PathBuf>,
    pub oauth: Option<OAuthPartial>,
    pub grace: Duration,
}

/// OAuth settings before the audience default (the public URL, known once bound) is applied.
#[derive(Debug, Clone)]
pub struct OAuthPartial {
    pub issuer: String,
    pub jwks_url: String,
    pub audience: Option<String>,
}

impl OAuthPartial {
    pub fn complete(&self, resource: &str) -> OAuthSettings {
        OAuthSettings {
            issuer: self.issuer.clone(),
            jwks_url: self.jwks_url.clone(),
            audience: self.audience.clone().unwrap_or_else(|| resource.to_owned()),
        }
    }
}

fn list(raw: Option<String>) -> Option<Vec<String>> {
    raw.map(|r| r.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
}

fn url_var(name: &str, raw: Option<String>) -> Result<Option<reqwest::Url>, String> {
    raw.map(|r| match reqwest::Url::parse(&r) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(url),
        _ => Err(format!("{name} is `{r}`; set it to an absolute http(s) URL")),
    })
    .transpose()
}

impl HttpSettings {
    /// Reads the variables through `lookup`; `cli_addr` is `--http`, which wins over `PAYMENT_HTTP_ADDR`.
    ///
    /// # Errors
    /// A sentence naming the variable at fault, or the refusal to serve off loopback without auth.
    pub fn from_lookup(
        cli_addr: Option<&str>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<HttpSettings, String> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let raw_addr =
            cli_addr.map(str::to_owned).or_else(|| get("PAYMENT_HTTP_ADDR")).unwrap_or_else(|| DEFAULT_ADDR.into());
        let addr = parse_addr(&raw_addr)?;
        let public = url_var("PAYMENT_PUBLIC_URL", get("PAYMENT_PUBLIC_URL"))?;
        let hosts_configured = get("PAYMENT_HTTP_ALLOWED_HOSTS").is_some();
        let allowed_hosts = match list(get("PAYMENT_HTTP_ALLOWED_HOSTS")) {
            Some(hosts) => hosts,
            None => {
                let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
                if let Some(host) = public.as_ref().and_then(|u| u.host_str()) {
                    hosts.push(host.trim_start_matches('[').trim_end_matches(']').to_owned());
                }
                hosts
            }
        };
        let allowed_origins = list(get("PAYMENT_HTTP_ALLOWED_ORIGINS")).unwrap_or_default();
        let max_body = match get("PAYMENT_HTTP_MAX_BODY_BYTES") {
            None => DEFAULT_MAX_BODY,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n @ 1024..=16_777_216) => n,
                _ => {
                    return Err(format!(
                        "PAYMENT_HTTP_MAX_BODY_BYTES is `{raw}`; set it to bytes from 1024 to 16777216"
                    ));
                }
            },
        };
        let rate = match get("PAYMENT_HTTP_RATE_LIMIT") {
            None => Some(Rate { per_second: 50.0, burst: 100.0 }),
            Some(raw) => Rate::parse(&raw)?,
        };
        let tokens_file = get("PAYMENT_TOKENS_FILE").map(PathBuf::from).or_else(super::tokens::default_path);
        let oauth = match (get("PAYMENT_OAUTH_ISSUER"), get("PAYMENT_OAUTH_JWKS_URL")) {
            (None, None) => None,
            (Some(issuer), Some(jwks)) => {
                let jwks_url = url_var("PAYMENT_OAUTH_JWKS_URL", Some(jwks))?
                    .ok_or_else(|| "PAYMENT_OAUTH_JWKS_URL is empty".to_owned())?;
                if jwks_url.scheme() != "https" && !jwks_url.host_str().is_some_and(crate::config::is_loopback_host) {
                    return Err("PAYMENT_OAUTH_JWKS_URL must be https (plain http only to this machine): the keys it serves decide who may move money".into());
                }
                Some(OAuthPartial { issuer, jwks_url: jwks_url.to_string(), audience: get("PAYMENT_OAUTH_AUDIENCE") })
            }
            (Some(_), None) => {
                return Err("PAYMENT_OAUTH_ISSUER is set but PAYMENT_OAUTH_JWKS_URL is not; set it to the issuer's jwks_uri (from its /.well-known/openid-configuration)".into());
            }
            (None, Some(_)) => {
                return Err("PAYMENT_OAUTH_JWKS_URL is set but PAYMENT_OAUTH_ISSUER is not; set it to the issuer, exactly as in the tokens' `iss` claim".into());
            }
        };
        let grace = match get("PAYMENT_SHUTDOWN_GRACE_SECS") {
            None => DEFAULT_GRACE,
            Some(raw) => match raw.parse::<u64>() {
                Ok(s @ 0..=3600) => Duration::from_secs(s),
                _ => return Err(format!("PAYMENT_SHUTDOWN_GRACE_SECS is `{raw}`; set it to seconds from 0 to 3600")),
            },
        };
        Ok(HttpSettings {
            addr,
            public_url: public.map(|u| u.to_string()),
            allowed_hosts,
            hosts_configured,
            allowed_origins,
            max_body,
            rate,
            tokens_file,
            oauth,
            grace,
        })
    }

    /// Refuses to serve a non-loopback address without credentials, or without knowing which
    /// `Host` it is reached under.
    ///
    /// # Errors
    /// What to set.
    pub fn check_exposure(&self, tokens_file_exists: bool) -> Result<(), String> {
        if self.addr.ip().is_loopback() {
            return Ok(());
        }
        if !tokens_file_exists && self.oauth.is_none() {
            return Err(format!(
                "refusing to serve {} without authentication: a non-loopback address needs bearer tokens (payment-mcp token add NAME --scope ..., file {}) or OAuth (PAYMENT_OAUTH_ISSUER and PAYMENT_OAUTH_JWKS_URL). TLS belongs to a reverse proxy in front (see README, Team deployments).",
                self.addr,
                self.tokens_file.as_ref().map_or_else(|| "PAYMENT_TOKENS_FILE".into(), |p| p.display().to_string())
            ));
        }
        if self.public_url.is_none() && !self.hosts_configured {
            return Err(format!(
                "serving {} off loopback needs PAYMENT_PUBLIC_URL (the https URL clients use, e.g. https://pay.example.com/mcp) or PAYMENT_HTTP_ALLOWED_HOSTS: requests whose Host is not listed are refused (DNS-rebinding protection)",
                self.addr
            ));
        }
        Ok(())
    }
}

/// An address to listen on: `IP:PORT`, `[IPv6]:PORT`, or `localhost:PORT`.
fn parse_addr(raw: &str) -> Result<SocketAddr, String> {
    let bad = || {
        format!(
            "`{raw}` is not an address to listen on; use IP:PORT such as 127.0.0.1:8080 (--http or PAYMENT_HTTP_ADDR)"
        )
    };
    if let Ok(addr) = raw.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match raw.rsplit_once(':') {
        Some((host, _)) if host.eq_ignore_ascii_case("localhost") => {
            raw.to_socket_addrs().map_err(|_| bad())?.find(|a| a.is_ipv4()).ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(cli: Option<&str>, vars: &[(&str, &str)]) -> Result<HttpSettings, String> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        HttpSettings::from_lookup(cli, |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_are_loopback_and_strict() {
        let s = settings(None, &[]).unwrap();
        assert_eq!(s.addr.to_string(), DEFAULT_ADDR);
        assert!(s.allowed_origins.is_empty() && s.allowed_hosts.contains(&"localhost".to_owned()));
        assert!(s.check_exposure(false).is_ok());
        assert_eq!(settings(Some("localhost:0"), &[]).unwrap().addr.ip().to_string(), "127.0.0.1");
    }

    #[test]
    fn off_loopback_needs_auth_and_a_public_host() {
        let s = settings(Some("0.0.0.0:8080"), &[]).unwrap();
        assert!(s.check_exposure(false).unwrap_err().contains("without authentication"));
        assert!(s.check_exposure(true).unwrap_err().contains("PAYMENT_PUBLIC_URL"));
        let s = settings(Some("0.0.0.0:8080"), &[("PAYMENT_PUBLIC_URL", "https://pay.example.com/mcp")]).unwrap();
        assert!(s.check_exposure(true).is_ok() && s.allowed_hosts.contains(&"pay.example.com".to_owned()));
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert!(settings(Some("nonsense"), &[]).unwrap_err().contains("--http"));
        assert!(
            settings(None, &[("PAYMENT_HTTP_MAX_BODY_BYTES", "1")])
                .unwrap_err()
                .contains("PAYMENT_HTTP_MAX_BODY_BYTES")
        );
        assert!(
            settings(None, &[("PAYMENT_OAUTH_ISSUER", "https://id")]).unwrap_err().contains("PAYMENT_OAUTH_JWKS_URL")
        );
        let e = settings(
            None,
            &[("PAYMENT_OAUTH_ISSUER", "https://id"), ("PAYMENT_OAUTH_JWKS_URL", "http://id.example/jwks")],
        );
        assert!(e.unwrap_err().contains("https"));
    }
}
