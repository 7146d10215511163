//! OAuth 2.1 resource-server mode: access tokens are JWTs from the operator's authorization server,
//! checked against its JSON Web Key Set.
//!
//! What is checked, in order: the algorithm is an asymmetric one (RS*, PS*, ES256/384, EdDSA; never
//! `none` or a shared-secret HS*), the key is the issuer's (by `kid` from the configured JWKS URL,
//! never a key or URL the token itself names), the signature, `exp` and `nbf` (30 s leeway for
//! clock skew), `iss` equal to `PAYMENT_OAUTH_ISSUER`, and `aud` containing
//! `PAYMENT_OAUTH_AUDIENCE` (by default this server's resource URL): a token minted for another
//! service is refused, as the MCP authorization spec requires.
//!
//! The key set is fetched on first use and cached. A token whose `kid` is not in the cache makes
//! one refetch (key rotation), at most once per [`MISS_REFETCH_INTERVAL`] so that tokens with
//! made-up key ids cannot turn the server into a load generator against the issuer; the whole set
//! is also refreshed after [`MAX_AGE`].
//!
//! The token's `scope` claim (a space-separated string, or `scp` as an array or string, as Entra ID
//! and Okta send it) is read with the scope language of [`crate::scope`], leniently: `openid` and
//! other items of the identity provider's own are ignored.
//!
//! jsonwebtoken does the parsing and claim checks; its signature checks go through
//! [`RING_PROVIDER`], a small `CryptoProvider` over ring (already compiled in for rustls), instead
//! of one of jsonwebtoken's own backends, each of which would bring a second crypto stack.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, EncodingKey, Validation};
use serde::Deserialize;

use crate::scope::Scope;

/// How often at most an unknown `kid` may trigger a refetch of the key set.
pub const MISS_REFETCH_INTERVAL: Duration = Duration::from_secs(2);
/// How long a fetched key set is used before it is fetched again.
pub const MAX_AGE: Duration = Duration::from_secs(600);
/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;
/// The algorithms accepted: asymmetric only.
const ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Where tokens come from and whom they must be for.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    /// `PAYMENT_OAUTH_ISSUER`: the authorization server, as in the tokens' `iss`.
    pub issuer: String,
    /// `PAYMENT_OAUTH_JWKS_URL`: the issuer's key set.
    pub jwks_url: String,
    /// `PAYMENT_OAUTH_AUDIENCE`: the `aud` a token must carry.
    pub audience: String,
}

/// Why a token was refused; the text is sent as the `error_description` of the 401.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("the access token is not a well-formed JWT")]
    Malformed,
    #[error("the access token is signed with {0:?}; only RS*, PS*, ES256, ES384 and EdDSA are accepted")]
    Algorithm(Algorithm),
    #[error("the access token is signed with a key the issuer does not publish")]
    UnknownKey,
    #[error("the issuer's key set could not be fetched: {0}")]
    KeySet(String),
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the access token was issued for another audience")]
    Audience,
    #[error("the access token was issued by another issuer")]
    Issuer,
    #[error("the access token's signature does not verify")]
    Signature,
    #[error("the access token lacks a required claim ({0})")]
    MissingClaim(String),
    #[error("the access token's scope is unusable: {0}")]
    Scope(String),
}

impl From<jsonwebtoken::errors::Error> for JwtError {
    fn from(e: jsonwebtoken::errors::Error) -> JwtError {
        match e.kind() {
            JwtErrorKind::ExpiredSignature => JwtError::Expired,
            JwtErrorKind::ImmatureSignature => JwtError::NotYetValid,
            JwtErrorKind::InvalidAudience => JwtError::Audience,
            JwtErrorKind::InvalidIssuer => JwtError::Issuer,
            JwtErrorKind::InvalidSignature => JwtError::Signature,
            JwtErrorKind::MissingRequiredClaim(c) => JwtError::MissingClaim(c.clone()),
            _ => JwtError::Malformed,
        }
    }
}

/// A verified token: who, and what it allows.
#[derive(Debug, Clone)]
pub struct Verified {
    pub subject: String,
    pub scope: Scope,
}

/// The claims read beyond the ones jsonwebtoken checks.
#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<ScopeClaim>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ScopeClaim {
    One(String),
    Many(Vec<String>),
}

/// The cached key set.
struct Keys {
    /// Keys by `kid`; keys without one under the empty string.
    by_kid: HashMap<String, Vec<(DecodingKey, Option<Algorithm>)>>,
    fetched_at: Instant,
}

/// Verifies access tokens against the issuer's key set.
pub struct JwtVerifierSet {
    settings: OAuthSettings,
    http: reqwest::Client,
    keys: RwLock<Option<Arc<Keys>>>,
    /// Held while fetching (one fetch at a time); the time of the last fetch.
    fetching: tokio::sync::Mutex<Option<Instant>>,
}

impl JwtVerifierSet {
    /// A verifier for `settings`; nothing is fetched until the first token arrives.
    ///
    /// # Errors
    /// The HTTP client cannot be built (no CA certificates, see `transport::client_error`).
    pub fn new(settings: OAuthSettings) -> Result<JwtVerifierSet, String> {
        install_provider();
        let http = crate::provider::transport::client_builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| crate::provider::transport::client_error(&e).message)?;
        Ok(JwtVerifierSet { settings, http, keys: RwLock::new(None), fetching: tokio::sync::Mutex::new(None) })
    }

    pub fn settings(&self) -> &OAuthSettings {
        &self.settings
    }

    /// Verifies `token` and reads its scope.
    ///
    /// # Errors
    /// A [`JwtError`] saying why the token is refused.
    pub async fn verify(&self, token: &str) -> Result<Verified, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(JwtError::Algorithm(header.alg));
        }
        let kid = header.kid.clone().unwrap_or_default();
        let key = self.key(&kid, header.alg).await?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        // The same URL with or without a trailing slash is the same resource to a person
        // configuring an identity provider.
        let audience = self.settings.audience.as_str();
        let bare = audience.trim_end_matches('/');
        let with_slash = format!("{bare}/");
        validation.set_audience(&[bare, with_slash.as_str()]);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_required_spec_claims(&["exp", "aud", "iss"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)?;
        let claims = data.claims;
        let subject = claims.sub.or(claims.client_id).unwrap_or_else(|| "an unnamed OAuth client".into());
        let text = match (claims.scope, claims.scp) {
            (Some(s), _) => s,
            (None, Some(ScopeClaim::One(s))) => s,
            (None, Some(ScopeClaim::Many(v))) => v.join(" "),
            (None, None) => String::new(),
        };
        let scope = Scope::parse(&text, &format!("OAuth subject {subject}"), false).map_err(JwtError::Scope)?;
        Ok(Verified { subject, scope })
    }

    /// The key for `kid` and `alg`: from the cache, or after a refetch when it is unknown (rotation)
    /// or the cache is old.
    async fn key(&self, kid: &str, alg: Algorithm) -> Result<DecodingKey, JwtError> {
        if let Some(keys) = self.cached()
            && keys.fetched_at.elapsed() < MAX_AGE
            && let Some(key) = pick(&keys, kid, alg)
        {
            return Ok(key);
        }
        let mut last = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(keys) = self.cached()
            && last.is_some_and(|at| at.elapsed() < MISS_REFETCH_INTERVAL)
        {
            return pick(&keys, kid, alg).ok_or(JwtError::UnknownKey);
        }
        let fetched = self.fetch().await;
        *last = Some(Instant::now());
        match fetched {
            Ok(keys) => {
                let keys = Arc::new(keys);
                if let Ok(mut slot) = self.keys.write() {
                    *slot = Some(keys.clone());
                }
                pick(&keys, kid, alg).ok_or(JwtError::UnknownKey)
            }
            // An old set still verifies tokens signed with keys it has.
            Err(e) => match self.cached().and_then(|keys| pick(&keys, kid, alg)) {
                Some(key) => {
                    tracing::warn!("could not refresh the OAuth key set, using the cached one: {e}");
                    Ok(key)
                }
                None => Err(e),
            },
        }
    }

    fn cached(&self) -> Option<Arc<Keys>> {
        self.keys.read().ok().and_then(|k| k.clone())
    }

    async fn fetch(&self) -> Result<Keys, JwtError> {
        let response = self
            .http
            .get(&self.settings.jwks_url)
            .send()
            .await
            .map_err(|e| JwtError::KeySet(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(JwtError::KeySet(format!("HTTP {}", response.status())));
        }
        let set: JwkSet = response.json().await.map_err(|e| JwtError::KeySet(e.without_url().to_string()))?;
        let mut by_kid: HashMap<String, Vec<(DecodingKey, Option<Algorithm>)>> = HashMap::new();
        for jwk in &set.keys {
            if let Some((key, alg)) = usable(jwk) {
                by_kid.entry(jwk.common.key_id.clone().unwrap_or_default()).or_default().push((key, alg));
            }
        }
        tracing::info!(keys = set.keys.len(), "fetched the OAuth issuer's key set");
        Ok(Keys { by_kid, fetched_at: Instant::now() })
    }
}

/// A signing key of the set, with the algorithm it is bound to; encryption keys and symmetric keys
/// are skipped.
fn usable(jwk: &Jwk) -> Option<(DecodingKey, Option<Algorithm>)> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    if key.family() == jsonwebtoken::AlgorithmFamily::Hmac {
        return None;
    }
    let alg = jwk.common.key_algorithm.and_then(|a| Algorithm::try_from(a).ok());
    Some((key, alg))
}

/// The key under `kid` that fits `alg` (its family, and its own `alg` when the JWK names one).
fn pick(keys: &Keys, kid: &str, alg: Algorithm) -> Option<DecodingKey> {
    keys.by_kid
        .get(kid)?
        .iter()
        .find(|(key, bound)| key.family() == alg.family() && bound.is_none_or(|b| b == alg))
        .map(|(key, _)| key.clone())
}

/// jsonwebtoken's signature checks over ring. Verification only: this server never signs a JWT.
pub static RING_PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: no_signer,
    verifier_factory: ring_verifier,
    key_utils: KeyUtils {
        rsa_pub_components_from_private_key: |_| Err(JwtErrorKind::InvalidKeyFormat.into()),
        rsa_pub_components_from_public_key: |_| Err(JwtErrorKind::InvalidKeyFormat.into()),
        ec_pub_components_from_private_key: |_, _| Err(JwtErrorKind::InvalidKeyFormat.into()),
        ed_pub_components_from_private_key: |_, _| Err(JwtErrorKind::InvalidKeyFormat.into()),
        compute_digest: |data, hash| {
            use jsonwebtoken::jwk::ThumbprintHash;
            let alg = match hash {
                ThumbprintHash::SHA256 => &ring::digest::SHA256,
                ThumbprintHash::SHA384 => &ring::digest::SHA384,
                ThumbprintHash::SHA512 => &ring::digest::SHA512,
                _ => return Err(JwtErrorKind::InvalidAlgorithm.into()),
            };
            Ok(ring::digest::digest(alg, data).as_ref().to_vec())
        },
    },
};

/// Installs [`RING_PROVIDER`] for the process (a no-op when one is installed already).
pub fn install_provider() {
    let _ = RING_PROVIDER.install_default();
}

fn no_signer(_: &Algorithm, _: &EncodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    Err(JwtErrorKind::InvalidAlgorithm.into())
}

fn ring_verifier(alg: &Algorithm, key: &DecodingKey) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    if !ALGORITHMS.contains(alg) || key.family() != alg.family() {
        return Err(JwtErrorKind::InvalidAlgorithm.into());
    }
    Ok(Box::new(RingVerifier { alg: *alg, key: key.clone() }))
}

struct RingVerifier {
    alg: Algorithm,
    key: DecodingKey,
}

impl jsonwebtoken::signature::Verifier<Vec<u8>> for RingVerifier {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), jsonwebtoken::signature::Error> {
        use ring::signature as rs;
        let rsa: Option<&'static rs::RsaParameters> = match self.alg {
            Algorithm::RS256 => Some(&rs::RSA_PKCS1_2048_8192_SHA256),
            Algorithm::RS384 => Some(&rs::RSA_PKCS1_2048_8192_SHA384),
            Algorithm::RS512 => Some(&rs::RSA_PKCS1_2048_8192_SHA512),
            Algorithm::PS256 => Some(&rs::RSA_PSS_2048_8192_SHA256),
            Algorithm::PS384 => Some(&rs::RSA_PSS_2048_8192_SHA384),
            Algorithm::PS512 => Some(&rs::RSA_PSS_2048_8192_SHA512),
            _ => None,
        };
        let checked = match (rsa, self.key.kind()) {
            (Some(params), DecodingKeyKind::RsaModulusExponent { n, e }) => {
                rs::RsaPublicKeyComponents { n, e }.verify(params, msg, signature)
            }
            (Some(params), DecodingKeyKind::SecretOrDer(der)) => {
                rs::UnparsedPublicKey::new(params, der).verify(msg, signature)
            }
            (None, DecodingKeyKind::SecretOrDer(bytes)) => {
                let alg: &dyn rs::VerificationAlgorithm = match self.alg {
                    Algorithm::ES256 => &rs::ECDSA_P256_SHA256_FIXED,
                    Algorithm::ES384 => &rs::ECDSA_P384_SHA384_FIXED,
                    Algorithm::EdDSA => &rs::ED25519,
                    _ => return Err(jsonwebtoken::signature::Error::new()),
                };
                rs::UnparsedPublicKey::new(alg, bytes).verify(msg, signature)
            }
            (None, DecodingKeyKind::RsaModulusExponent { .. }) => return Err(jsonwebtoken::signature::Error::new()),
        };
        checked.map_err(|_| jsonwebtoken::signature::Error::new())
    }
}

impl JwtVerifier for RingVerifier {
    fn algorithm(&self) -> Algorithm {
        self.alg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_and_unknown_algorithms_are_refused_before_any_key_is_used() {
        install_provider();
        let key = DecodingKey::from_secret(b"shared").unwrap();
        assert!(ring_verifier(&Algorithm::HS256, &key).is_err());
        let rsa = DecodingKey::from_rsa_components("AQAB", "AQAB").unwrap();
        assert!(ring_verifier(&Algorithm::ES256, &rsa).is_err(), "an RSA key never verifies an EC algorithm");
        assert!(ring_verifier(&Algorithm::RS256, &rsa).is_ok());
    }

    #[test]
    fn a_key_bound_to_one_algorithm_is_not_used_for_another() {
        let rsa = DecodingKey::from_rsa_components("AQAB", "AQAB").unwrap();
        let keys = Keys {
            by_kid: HashMap::from([("k1".to_owned(), vec![(rsa, Some(Algorithm::RS256))])]),
            fetched_at: Instant::now(),
        };
        assert!(pick(&keys, "k1", Algorithm::RS256).is_some());
        assert!(pick(&keys, "k1", Algorithm::PS256).is_none());
        assert!(pick(&keys, "k2", Algorithm::RS256).is_none());
    }
}
