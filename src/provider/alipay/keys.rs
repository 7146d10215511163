//! Alipay's RSA keys, parsed once: the application's private key (`AP_APP_KEY`), which signs
//! requests, and Alipay's public key (`AP_PUB_KEY`), which verifies replies and notifications.
//!
//! Users copy these keys out of Alipay's key tool or the open platform, so the text arrives in many
//! shapes: the bare base64 body (the usual form), the whole PEM text, the body broken over lines or
//! with `\n` escapes left in by a `.env` file. All of those are accepted; what is refused is said
//! precisely (which variable, and whether it is not base64, not a key, the wrong kind of key,
//! encrypted, or shorter than 2048 bits) without ever quoting the key.
//!
//! Parsing builds the PKCS#1 v1.5 signing and verifying keys for the configured algorithm
//! ([`SignType`]) once, so nothing is parsed per call. The types' `Debug` shows only the algorithm
//! and the key length. Signing and verification themselves live in `sign.rs`.
//!
//! RustCrypto's `rsa` parses and checks every key, verifies every signature and signs `RSA`
//! (SHA-1). For `RSA2` the same key is also loaded into `ring` once, and `ring` makes the signature:
//! one RSA-2048 private-key operation per request is the whole cost of talking to Alipay, and on the
//! reference machine it takes 1.7–1.9 ms with `rsa` 0.10 (crypto-bigint, opt-level 3, blinded or not)
//! against 0.5 ms with `ring` (BENCHMARKS.md, issue 13), which is what brings the create overhead
//! under its 1.5 ms target. `ring` is already linked for TLS (rustls), so this adds no code to the
//! build. PKCS#1 v1.5 is deterministic: both libraries must give the same bytes for the same key and
//! content, and a property test holds them to it (`tests.rs`). A key `ring` refuses (it takes
//! 2048–4096-bit moduli with an exponent of at least 65537) is signed with `rsa` instead.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rsa::pkcs1::{RsaPrivateKeyRef, RsaPublicKeyRef};
use rsa::pkcs1v15::{SigningKey, VerifyingKey};
use rsa::pkcs8::der::Decode as _;
use rsa::pkcs8::{PrivateKeyInfoRef, SubjectPublicKeyInfoRef};
use rsa::traits::PublicKeyParts;
use rsa::{PrivateKey, PublicKey};
use secrecy::zeroize::Zeroizing;
use sha1::Sha1;
use sha2::Sha256;

use super::error::{KeyVar, SignError};

/// The shortest RSA modulus accepted, in bits (Alipay's requirement for RSA2).
pub const MIN_KEY_BITS: usize = 2048;

/// Standard base64 that does not insist on padding: keys are copied by hand and the `=` at the end
/// is what gets lost first. (Signatures are decoded the same way; a signature's bytes are verified
/// whatever their encoding.)
pub(super) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The signature algorithm (`sign_type`), from `AP_ENCRYPTION_ALGO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignType {
    /// `RSA2`: SHA256withRSA, PKCS#1 v1.5. The default, and what Alipay recommends.
    #[default]
    Rsa2,
    /// `RSA`: SHA1withRSA, PKCS#1 v1.5, for applications still configured that way.
    Rsa,
}

impl SignType {
    /// Reads `AP_ENCRYPTION_ALGO`: unset or blank means `RSA2`; `RSA2` and `RSA` in any case.
    ///
    /// # Errors
    /// [`SignError::UnknownSignType`] for anything else.
    pub fn from_setting(value: Option<&str>) -> Result<SignType, SignError> {
        let value = value.map(str::trim).unwrap_or_default();
        if value.is_empty() || value.eq_ignore_ascii_case("RSA2") {
            Ok(SignType::Rsa2)
        } else if value.eq_ignore_ascii_case("RSA") {
            Ok(SignType::Rsa)
        } else {
            Err(SignError::UnknownSignType { value: value.to_owned() })
        }
    }

    /// The value of the `sign_type` request parameter: `RSA2` or `RSA`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignType::Rsa2 => "RSA2",
            SignType::Rsa => "RSA",
        }
    }
}

impl fmt::Display for SignType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The PKCS#1 v1.5 signing key for one algorithm, built once.
#[derive(Clone)]
pub(super) enum Signer {
    /// `RSA2`: `fast` is the same key in `ring`, which signs when it accepted the key (module doc).
    Rsa2 {
        key: SigningKey<Sha256>,
        fast: Option<Arc<ring::rsa::KeyPair>>,
    },
    Rsa(SigningKey<Sha1>),
}

/// The PKCS#1 v1.5 verifying key for one algorithm, built once.
#[derive(Clone)]
pub(super) enum Verifier {
    Rsa2(VerifyingKey<Sha256>),
    Rsa(VerifyingKey<Sha1>),
}

/// The application's private key (`AP_APP_KEY`), ready to sign with one algorithm.
#[derive(Clone)]
pub struct AppKey {
    pub(super) signer: Signer,
    pub(super) sign_type: SignType,
    bits: usize,
}

/// Alipay's public key (`AP_PUB_KEY`), ready to verify with one algorithm.
#[derive(Clone)]
pub struct AlipayPublicKey {
    pub(super) verifier: Verifier,
    pub(super) sign_type: SignType,
    bits: usize,
}

/// Both keys of an Alipay application, parsed and checked once at configuration time: the
/// application's private key signs requests, Alipay's public key verifies what Alipay sends.
#[derive(Clone)]
pub struct AlipayKeys {
    pub(super) app: AppKey,
    pub(super) alipay: AlipayPublicKey,
}

impl AppKey {
    /// Parses `AP_APP_KEY`: a PKCS#8 or PKCS#1 RSA private key, as a base64 body or PEM text, of at
    /// least 2048 bits.
    ///
    /// # Errors
    /// A [`SignError`] naming `AP_APP_KEY` and what is wrong, never quoting the key.
    pub fn parse(text: &str, sign_type: SignType) -> Result<AppKey, SignError> {
        let var = KeyVar::AppKey;
        let der = der_from_text(text, var)?;
        // The key as PKCS#1 `RSAPrivateKey` DER, the form both libraries load.
        let (pkcs1, pkcs1_der) = match PrivateKeyInfoRef::from_der(&der) {
            Ok(info) if info.algorithm.oid != rsa::pkcs1::ALGORITHM_OID => return Err(SignError::NotAKey { var }),
            Ok(info) => (
                RsaPrivateKeyRef::try_from(info.private_key).map_err(|_| SignError::NotAKey { var })?,
                info.private_key.as_bytes(),
            ),
            Err(_) => match RsaPrivateKeyRef::from_der(&der) {
                Ok(key) => (key, der.as_slice()),
                Err(_) if is_encrypted_pkcs8(&der) => return Err(SignError::KeyEncrypted { var }),
                Err(_) if is_public_key(&der) => return Err(SignError::WrongKind { var, found: "a public key" }),
                Err(_) => return Err(SignError::NotAKey { var }),
            },
        };
        let bits = modulus_bits(pkcs1.modulus.as_bytes());
        if bits < MIN_KEY_BITS {
            return Err(SignError::KeyTooShort { var, bits });
        }
        let key = PrivateKey::try_from(pkcs1).map_err(|_| SignError::NotAKey { var })?;
        let signer = match sign_type {
            SignType::Rsa2 => Signer::Rsa2 {
                key: SigningKey::new(key),
                fast: ring::rsa::KeyPair::from_der(pkcs1_der).ok().map(Arc::new),
            },
            SignType::Rsa => Signer::Rsa(SigningKey::new(key)),
        };
        Ok(AppKey { signer, sign_type, bits })
    }

    /// The algorithm this key signs with.
    pub fn sign_type(&self) -> SignType {
        self.sign_type
    }

    /// The modulus length in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    pub(super) fn private_key(&self) -> &PrivateKey {
        match &self.signer {
            Signer::Rsa2 { key, .. } => key.as_ref(),
            Signer::Rsa(key) => key.as_ref(),
        }
    }
}

impl AlipayPublicKey {
    /// Parses `AP_PUB_KEY`: an SPKI (or PKCS#1) RSA public key, as a base64 body or PEM text, of at
    /// least 2048 bits.
    ///
    /// # Errors
    /// A [`SignError`] naming `AP_PUB_KEY` and what is wrong, never quoting the key.
    pub fn parse(text: &str, sign_type: SignType) -> Result<AlipayPublicKey, SignError> {
        let var = KeyVar::PubKey;
        let der = der_from_text(text, var)?;
        let pkcs1 = match SubjectPublicKeyInfoRef::from_der(&der) {
            Ok(spki) if spki.algorithm.oid != rsa::pkcs1::ALGORITHM_OID => return Err(SignError::NotAKey { var }),
            Ok(spki) => spki
                .subject_public_key
                .as_bytes()
                .and_then(|bytes| RsaPublicKeyRef::from_der(bytes).ok())
                .ok_or(SignError::NotAKey { var })?,
            Err(_) => match RsaPublicKeyRef::from_der(&der) {
                Ok(key) => key,
                Err(_) if is_private_key(&der) => {
                    return Err(SignError::WrongKind { var, found: "a private key (never put a private key here)" });
                }
                Err(_) => return Err(SignError::NotAKey { var }),
            },
        };
        let bits = modulus_bits(pkcs1.modulus.as_bytes());
        if bits < MIN_KEY_BITS {
            return Err(SignError::KeyTooShort { var, bits });
        }
        let key = PublicKey::try_from(pkcs1).map_err(|_| SignError::NotAKey { var })?;
        let verifier = match sign_type {
            SignType::Rsa2 => Verifier::Rsa2(VerifyingKey::new(key)),
            SignType::Rsa => Verifier::Rsa(VerifyingKey::new(key)),
        };
        Ok(AlipayPublicKey { verifier, sign_type, bits })
    }

    /// The algorithm this key verifies.
    pub fn sign_type(&self) -> SignType {
        self.sign_type
    }

    /// The modulus length in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    pub(super) fn public_key(&self) -> &PublicKey {
        match &self.verifier {
            Verifier::Rsa2(key) => key.as_ref(),
            Verifier::Rsa(key) => key.as_ref(),
        }
    }
}

impl AlipayKeys {
    /// Parses `AP_APP_KEY` and `AP_PUB_KEY` for `sign_type` (from `AP_ENCRYPTION_ALGO`, see
    /// [`SignType::from_setting`]) and checks that `AP_PUB_KEY` is not simply the public half of
    /// `AP_APP_KEY`, the usual mix-up, under which no reply would ever verify.
    ///
    /// # Errors
    /// The first [`SignError`] of either key, or [`SignError::OwnPublicKey`].
    pub fn new(app_key: &str, alipay_public_key: &str, sign_type: SignType) -> Result<AlipayKeys, SignError> {
        let app = AppKey::parse(app_key, sign_type)?;
        let alipay = AlipayPublicKey::parse(alipay_public_key, sign_type)?;
        let (own, theirs) = (app.private_key(), alipay.public_key());
        if own.n_bytes() == theirs.n_bytes() && own.e_bytes() == theirs.e_bytes() {
            return Err(SignError::OwnPublicKey);
        }
        Ok(AlipayKeys { app, alipay })
    }

    /// The algorithm both keys use.
    pub fn sign_type(&self) -> SignType {
        self.app.sign_type
    }

    /// The application's private key.
    pub fn app_key(&self) -> &AppKey {
        &self.app
    }

    /// Alipay's public key.
    pub fn alipay_key(&self) -> &AlipayPublicKey {
        &self.alipay
    }
}

impl fmt::Debug for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AppKey({}, {}-bit RSA private key)", self.sign_type, self.bits)
    }
}

impl fmt::Debug for AlipayPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AlipayPublicKey({}, {}-bit RSA public key)", self.sign_type, self.bits)
    }
}

impl fmt::Debug for AlipayKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlipayKeys").field("app", &self.app).field("alipay", &self.alipay).finish()
    }
}

/// The DER bytes of a key given as a base64 body or PEM text. PEM armour (`-----BEGIN …-----`,
/// `-----END …-----`, even run together on one line), whitespace anywhere and literal `\n` / `\r`
/// escapes are removed before decoding. The bytes are wiped when dropped.
fn der_from_text(text: &str, var: KeyVar) -> Result<Zeroizing<Vec<u8>>, SignError> {
    let mut body = Zeroizing::new(String::with_capacity(text.len()));
    let mut rest = text;
    while let Some(start) = rest.find("-----") {
        body.push_str(rest.get(..start).unwrap_or_default());
        let after = rest.get(start + 5..).unwrap_or_default();
        let Some(end) = after.find("-----") else {
            // An unterminated marker: keep the text, base64 decoding will refuse it.
            body.push_str(rest.get(start..).unwrap_or_default());
            rest = "";
            break;
        };
        let label = after.get(..end).unwrap_or_default();
        if label.contains("ENCRYPTED") {
            return Err(SignError::KeyEncrypted { var });
        }
        if label.contains("CERTIFICATE") {
            return Err(SignError::WrongKind {
                var,
                found: "a certificate (Alipay's certificate mode, 公钥证书模式, is not supported: use public-key mode, 公钥模式)",
            });
        }
        rest = after.get(end + 5..).unwrap_or_default();
    }
    body.push_str(rest);
    // Legacy encrypted PEM carries `Proc-Type: 4,ENCRYPTED` headers inside the armour.
    if body.contains("Proc-Type:") || body.contains("DEK-Info:") {
        return Err(SignError::KeyEncrypted { var });
    }
    let compact: Zeroizing<String> =
        Zeroizing::new(body.replace("\\n", "\n").replace("\\r", "\r").chars().filter(|c| !c.is_whitespace()).collect());
    if compact.is_empty() {
        return Err(SignError::KeyEmpty { var });
    }
    BASE64.decode(compact.as_bytes()).map(Zeroizing::new).map_err(|_| SignError::KeyNotBase64 { var })
}

/// The length in bits of a big-endian unsigned integer (leading zero bytes ignored).
fn modulus_bits(be: &[u8]) -> usize {
    let significant: &[u8] = match be.iter().position(|b| *b != 0) {
        Some(first) => be.get(first..).unwrap_or_default(),
        None => &[],
    };
    match significant.first() {
        Some(top) => (significant.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
        None => 0,
    }
}

/// Whether `der` is a public key (SPKI or PKCS#1), to say so when it is given as the private key.
fn is_public_key(der: &[u8]) -> bool {
    SubjectPublicKeyInfoRef::from_der(der).is_ok() || RsaPublicKeyRef::from_der(der).is_ok()
}

/// Whether `der` is a private key (PKCS#8 or PKCS#1), to say so when it is given as the public key.
fn is_private_key(der: &[u8]) -> bool {
    PrivateKeyInfoRef::from_der(der).is_ok() || RsaPrivateKeyRef::from_der(der).is_ok()
}

/// Whether `der` is a PKCS#8 `EncryptedPrivateKeyInfo`: a SEQUENCE of an AlgorithmIdentifier
/// (PBES2, OID 1.2.840.113549.1.5.13) and an OCTET STRING. Recognised by the PBES2 OID's bytes near
/// the start, which is enough to give the right advice; such a key is refused either way.
fn is_encrypted_pkcs8(der: &[u8]) -> bool {
    const PBES2: [u8; 11] = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d];
    der.get(..32).unwrap_or(der).windows(PBES2.len()).any(|w| w == PBES2)
}
