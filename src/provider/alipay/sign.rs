//! Alipay request signing and signature verification (OpenAPI v2, `docs/alipay.md` §2).
//!
//! The sign content ([`sign_content`]) is pure: every parameter except `sign`, empty values dropped,
//! sorted by key in byte order, `key=value` joined with `&`, values raw (not URL-encoded). The
//! signature is PKCS#1 v1.5 over that content's UTF-8 bytes, SHA-256 for `RSA2` and SHA-1 for
//! `RSA`, in standard base64 with padding; PKCS#1 v1.5 is deterministic, so the same key and content
//! always give the same signature (the tests compare ours with openssl's and Alipay's SDK's).
//!
//! Verification here takes the content as given; what content a reply or a notification signs is
//! worked out in `response.rs` and `notification.rs`, which call [`AlipayPublicKey::verify`].
//!
//! When a signature does not verify, [`AlipayPublicKey::diagnose`] tells the three causes apart
//! from the signature alone: opened with the public key (the raw RSA operation), a signature made
//! with the matching private key shows a well-formed PKCS#1 v1.5 block naming its digest algorithm,
//! so what failed was the content (altered after signing) or the algorithm; any other key leaves
//! no such block. That is what lets a client say "AP_PUB_KEY is not Alipay's key for this app"
//! rather than "the reply was tampered with".

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rsa::pkcs1v15::Signature;
use rsa::signature::{SignatureEncoding as _, Signer as _, Verifier as _};

use super::error::SignError;
use super::keys::{AlipayKeys, AlipayPublicKey, AppKey, BASE64, SignType, Signer, Verifier};

/// The DER `DigestInfo` prefix of a SHA-256 digest in a PKCS#1 v1.5 signature block (RFC 8017 §9.2).
const SHA256_INFO: [u8; 19] =
    [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];
/// The same for SHA-1.
const SHA1_INFO: [u8; 15] = [0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14];

/// Why a signature did not verify, as far as the signature itself tells ([`AlipayPublicKey::diagnose`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// Made with the matching private key and this algorithm, over other content: the content was
    /// changed after it was signed.
    ContentChanged,
    /// Made with the matching private key, but with the other algorithm (`RSA` against `RSA2`).
    OtherAlgorithm,
    /// Not made with the private key matching this public key (or not a signature at all).
    OtherKey,
}

/// The content a request's signature covers: every parameter except `sign` (`sign_type` is
/// included), parameters with an empty value dropped (they are not sent either), sorted by key in
/// byte order (stable, so the order of equal keys is kept), joined as `key=value` with `&`, values
/// raw.
pub fn sign_content<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    crate::sign::sorted_non_empty(params, &["sign"])
}

impl AppKey {
    /// Signs `content` (its UTF-8 bytes) with this key's algorithm: the signature in standard base64
    /// with padding.
    ///
    /// # Errors
    /// [`SignError::SigningFailed`] if the RSA operation fails (e.g. no randomness for blinding).
    pub fn sign(&self, content: &str) -> Result<String, SignError> {
        let signature: Result<Signature, _> = match &self.signer {
            Signer::Rsa2 { fast: Some(pair), .. } => return sign_with_ring(pair, content),
            Signer::Rsa2 { key, .. } => key.try_sign(content.as_bytes()),
            Signer::Rsa(key) => key.try_sign(content.as_bytes()),
        };
        let signature = signature.map_err(|e| SignError::SigningFailed { reason: e.to_string() })?;
        Ok(STANDARD.encode(signature.to_bytes()))
    }
}

/// `RSA2` with `ring` (why: `keys.rs`). `ring`'s PKCS#1 v1.5 takes no randomness; the `rng`
/// argument is there for PSS.
fn sign_with_ring(pair: &ring::rsa::KeyPair, content: &str) -> Result<String, SignError> {
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(&ring::signature::RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), content.as_bytes(), &mut signature)
        .map_err(|_| SignError::SigningFailed { reason: "the RSA operation failed".to_owned() })?;
    Ok(STANDARD.encode(signature))
}

impl AlipayPublicKey {
    /// Checks that `signature` (base64) is this key's signature of `content` under its algorithm.
    ///
    /// # Errors
    /// [`SignError::SignatureNotBase64`] or [`SignError::BadSignature`] (`what` names the kind of
    /// message, for the error text).
    pub fn verify(&self, content: &[u8], signature: &str, what: &'static str) -> Result<(), SignError> {
        let bytes = BASE64.decode(signature.trim()).map_err(|_| SignError::SignatureNotBase64 { what })?;
        let bad = || SignError::BadSignature { what, algorithm: self.sign_type.as_str() };
        let signature = Signature::try_from(bytes.as_slice()).map_err(|_| bad())?;
        let verified = match &self.verifier {
            Verifier::Rsa2(key) => key.verify(content, &signature),
            Verifier::Rsa(key) => key.verify(content, &signature),
        };
        verified.map_err(|_| bad())
    }
}

impl AlipayPublicKey {
    /// Why `signature` (base64), which did not verify, failed: the raw RSA public operation on it
    /// either yields a PKCS#1 v1.5 signature block (this key's partner signed it: the content or the
    /// algorithm differs) or it does not (another key signed it). Never call this to decide whether
    /// to trust something: only [`AlipayPublicKey::verify`] does that.
    pub fn diagnose(&self, signature: &str) -> Mismatch {
        let key = self.public_key();
        let Ok(bytes) = BASE64.decode(signature.trim()) else { return Mismatch::OtherKey };
        if bytes.len() != rsa::traits::PublicKeyParts::size(key) {
            return Mismatch::OtherKey;
        }
        let precision = rsa::traits::PublicKeyParts::n_bits_precision(key);
        let Ok(s) = rsa::BoxedUint::from_be_slice(&bytes, precision) else { return Mismatch::OtherKey };
        if s >= *rsa::traits::PublicKeyParts::n(key).as_ref() {
            return Mismatch::OtherKey;
        }
        let Ok(m) = rsa::hazmat::rsa_encrypt(key, &s) else { return Mismatch::OtherKey };
        let block = m.to_be_bytes();
        let block = block.get(block.len().saturating_sub(bytes.len())..).unwrap_or_default();
        match signed_digest(block) {
            Some(found) if found == self.sign_type => Mismatch::ContentChanged,
            Some(_) => Mismatch::OtherAlgorithm,
            None => Mismatch::OtherKey,
        }
    }
}

/// The digest algorithm a PKCS#1 v1.5 signature block names (`00 01 FF… 00 DigestInfo`), if it is
/// one.
fn signed_digest(block: &[u8]) -> Option<SignType> {
    let rest = block.strip_prefix(&[0x00, 0x01])?;
    let padding = rest.iter().take_while(|b| **b == 0xff).count();
    if padding < 8 {
        return None;
    }
    let info = rest.get(padding..)?.strip_prefix(&[0x00])?;
    match (info.strip_prefix(&SHA256_INFO), info.strip_prefix(&SHA1_INFO)) {
        (Some(digest), _) if digest.len() == 32 => Some(SignType::Rsa2),
        (_, Some(digest)) if digest.len() == 20 => Some(SignType::Rsa),
        _ => None,
    }
}

impl AlipayKeys {
    /// Signs `content` with the application's private key (see [`AppKey::sign`]).
    ///
    /// # Errors
    /// [`SignError::SigningFailed`].
    pub fn sign(&self, content: &str) -> Result<String, SignError> {
        self.app.sign(content)
    }

    /// The `sign` value for a request's parameters: [`sign_content`] of them, signed.
    ///
    /// # Errors
    /// [`SignError::SigningFailed`].
    pub fn sign_params<K: AsRef<str>, V: AsRef<str>>(&self, params: &[(K, V)]) -> Result<String, SignError> {
        self.app.sign(&sign_content(params))
    }
}
