//! Bearer tokens for `serve --http`: a text file the operator edits, holding each token's name, the
//! SHA-256 of the token and its scope, never the token itself.
//!
//! ```text
//! # NAME  sha256:HEX  SCOPE...
//! shop-bot  sha256:5f0c…  payments:read payments:create max_order=500.00
//! support   sha256:9a1e…  payments:read payments:refund max_refund=50.00
//! ```
//!
//! `payment-mcp token add NAME --scope …` makes a token (32 random bytes, `pmcp_` + base64url),
//! appends its line and prints the token once; `token list` and `token remove` do the obvious. An
//! operator may edit scopes or delete lines by hand: the server rereads the file when it changes
//! (checked at most once a second), and a file with a bad line is refused as a whole (the previous
//! version stays in force) with the line number in the log, so a typo never widens a token.
//! The file is created user-only (0600). Why hashed: a leaked file or backup grants nothing, and a
//! token's 256 random bits make a plain SHA-256 enough (no password stretching needed).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use sha2::Digest as _;

use crate::scope::Scope;

/// The prefix of every token this server makes: recognisable in a leaked log or a secret scanner,
/// and tells the auth layer to look in this file before trying a JWT.
pub const TOKEN_PREFIX: &str = "pmcp_";

/// How often at most the file's modification time is checked.
const RECHECK: Duration = Duration::from_secs(1);

const HEADER: &str = "# payment-mcp bearer tokens (PAYMENT_TOKENS_FILE), one per line: NAME  sha256:HEX  SCOPE...\n# Scope items: payments:read payments:create payments:refund payments:close payments:all tool:NAME\n#              read-only max_order=YUAN max_refund=YUAN (see README, Team deployments).\n# Add tokens with `payment-mcp token add NAME --scope ...`; the tokens themselves are never stored.\n";

/// The default file: `tokens` in the per-user data directory, next to the ledger.
pub fn default_path() -> Option<PathBuf> {
    dirs::data_dir().map(|d| d.join("payment-mcp").join("tokens"))
}

/// One line of the file.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    /// Lower-case hex SHA-256 of the token.
    pub hash: String,
    pub scope: Scope,
}

/// The SHA-256 of a token, as stored.
pub fn hash(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses the file's text.
///
/// # Errors
/// The first bad line, by number: a missing hash, a bad name, a repeated name, or a bad scope.
pub fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut entries: Vec<Entry> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let n = i + 1;
        let mut parts = line.split_whitespace();
        let (Some(name), Some(hash)) = (parts.next(), parts.next()) else {
            return Err(format!("line {n}: expected NAME sha256:HEX SCOPE..."));
        };
        check_name(name).map_err(|e| format!("line {n}: {e}"))?;
        let Some(hex) =
            hash.strip_prefix("sha256:").filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        else {
            return Err(format!("line {n}: the second field must be sha256: and 64 hex digits"));
        };
        if entries.iter().any(|e| e.name == name) {
            return Err(format!("line {n}: the name {name} is used twice"));
        }
        let rest: Vec<&str> = parts.collect();
        let scope =
            Scope::parse(&rest.join(" "), &format!("token {name}"), true).map_err(|e| format!("line {n}: {e}"))?;
        entries.push(Entry { name: name.to_owned(), hash: hex.to_ascii_lowercase(), scope });
    }
    Ok(entries)
}

/// A token name: 1 to 64 of `A-Z a-z 0-9 . _ -` (it appears in logs and metrics).
///
/// # Errors
/// What is wrong with it.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
        return Err(format!("`{name}` is not a token name: use 1 to 64 letters, digits, `.`, `_` or `-`"));
    }
    Ok(())
}

struct Loaded {
    by_hash: HashMap<String, Arc<Entry>>,
    /// The file's modification time and length when read.
    stamp: Option<(SystemTime, u64)>,
    checked_at: Instant,
}

/// The token file as the server sees it: read at start, reread when it changes.
pub struct TokenStore {
    path: PathBuf,
    loaded: Mutex<Loaded>,
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl TokenStore {
    /// Reads the file at `path`.
    ///
    /// # Errors
    /// The file cannot be read, or a line is bad (see [`parse`]).
    pub fn open(path: &Path) -> Result<TokenStore, String> {
        let by_hash = read(path)?;
        let loaded = Loaded { by_hash, stamp: stamp(path), checked_at: Instant::now() };
        Ok(TokenStore { path: path.to_owned(), loaded: Mutex::new(loaded) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many tokens the file holds now.
    pub fn len(&self) -> usize {
        self.loaded.lock().map(|l| l.by_hash.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry of `token`, if it is one of the file's.
    pub fn lookup(&self, token: &str) -> Option<Arc<Entry>> {
        let digest = hash(token);
        let mut loaded = self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if loaded.checked_at.elapsed() >= RECHECK {
            loaded.checked_at = Instant::now();
            let now = stamp(&self.path);
            if now != loaded.stamp {
                match read(&self.path) {
                    Ok(by_hash) => {
                        tracing::info!(path = %self.path.display(), tokens = by_hash.len(), "reloaded the token file");
                        loaded.by_hash = by_hash;
                        loaded.stamp = now;
                    }
                    Err(e) => {
                        tracing::error!(path = %self.path.display(), "the token file changed but cannot be used ({e}); keeping the previous tokens");
                        loaded.stamp = now;
                    }
                }
            }
        }
        loaded.by_hash.get(&digest).cloned()
    }
}

fn read(path: &Path) -> Result<HashMap<String, Arc<Entry>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let entries = parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(entries.into_iter().map(|e| (e.hash.clone(), Arc::new(e))).collect())
}

/// A new random token.
///
/// # Errors
/// The system's random source failed.
pub fn generate() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random bytes: {e}"))?;
    Ok(format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// Adds a token named `name` with `scope` to the file (created user-only when missing) and
/// returns the token, which is not stored anywhere.
///
/// # Errors
/// A bad or repeated name, a scope that grants no tool, or the file cannot be read or written.
pub fn add(path: &Path, name: &str, scope_text: &str) -> Result<String, String> {
    check_name(name)?;
    let scope = Scope::parse(scope_text, &format!("token {name}"), true)?;
    if !scope.grants_any() {
        return Err(format!(
            "the scope `{scope_text}` grants no tool; add at least one of {} or tool:NAME",
            crate::scope::GRANT_ITEMS.join(", ")
        ));
    }
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let entries = parse(&existing).map_err(|e| format!("{}: {e}; fix it first", path.display()))?;
    if entries.iter().any(|e| e.name == name) {
        return Err(format!("a token named {name} exists already; remove it first (payment-mcp token remove {name})"));
    }
    let token = generate()?;
    let mut text = if existing.is_empty() { HEADER.to_owned() } else { existing };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "{name}  sha256:{}  {}\n",
        hash(&token),
        scope_text.split_whitespace().collect::<Vec<_>>().join(" ")
    ));
    write(path, &text)?;
    Ok(token)
}

/// Removes the token named `name`; comments and other lines stay as they were.
///
/// # Errors
/// No such token, or the file cannot be read or written.
pub fn remove(path: &Path, name: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut found = false;
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            let this = line.split_whitespace().next() == Some(name) && !line.trim_start().starts_with('#');
            found |= this;
            !this
        })
        .collect();
    if !found {
        return Err(format!("{} has no token named {name}", path.display()));
    }
    write(path, &(kept.join("\n") + "\n"))
}

/// Writes the file user-only, through a temporary file renamed over it (an editor or a server
/// reading it never sees half a file).
fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot replace {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pmcp-tokens-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("tokens")
    }

    #[test]
    fn add_prints_a_token_the_file_only_knows_by_hash() {
        let path = temp("add");
        let token = add(&path, "shop-bot", "payments:read max_order=5").unwrap();
        assert!(token.starts_with(TOKEN_PREFIX) && token.len() > 40);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&token) && text.contains(&hash(&token)));
        #[cfg(unix)]
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions()) & 0o777,
            0o600
        );
        let store = TokenStore::open(&path).unwrap();
        let entry = store.lookup(&token).unwrap();
        assert_eq!(entry.name, "shop-bot");
        assert!(entry.scope.allows("query_payment_order") && !entry.scope.allows("create_payment_order"));
        assert!(store.lookup("pmcp_wrong").is_none());
        assert!(add(&path, "shop-bot", "payments:read").unwrap_err().contains("exists already"));
        assert!(add(&path, "other", "max_order=5").unwrap_err().contains("grants no tool"));
        assert!(add(&path, "bad name", "payments:read").is_err());
        remove(&path, "shop-bot").unwrap();
        assert!(parse(&std::fs::read_to_string(&path).unwrap()).unwrap().is_empty());
        assert!(remove(&path, "shop-bot").is_err());
    }

    #[test]
    fn a_bad_line_is_named_by_number() {
        let good = format!("a sha256:{} payments:read\n", "0".repeat(64));
        assert_eq!(parse(&good).unwrap().len(), 1);
        let err = parse(&format!("# c\n{good}b sha256:{} payments:raed\n", "1".repeat(64))).unwrap_err();
        assert!(err.starts_with("line 3:") && err.contains("payments:raed"), "{err}");
        assert!(parse("a sha256:abc payments:read").unwrap_err().contains("64 hex"));
        assert!(parse(&format!("{good}{good}")).unwrap_err().contains("twice"));
    }
}
