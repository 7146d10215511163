//! Unit tests of the Alipay signing core: the sign-content and response vectors of
//! `docs/alipay.md`, key parsing in every accepted shape and every refusal, reply extraction edge
//! cases, and notification verification. The TEST-ONLY keys are in `fixtures/alipay`; the
//! openssl and Alipay-SDK interoperability tests are in `interop_tests.rs`.

use super::response::extract_signed_response;
use super::*;

pub(super) const APP_PRIVATE_PEM: &str = include_str!("../../../fixtures/alipay/test_app_private_key.pem");
pub(super) const APP_PRIVATE_PKCS1_PEM: &str = include_str!("../../../fixtures/alipay/test_app_private_key_pkcs1.pem");
pub(super) const APP_PUBLIC_PEM: &str = include_str!("../../../fixtures/alipay/test_app_public_key.pem");
pub(super) const ALIPAY_PRIVATE_PEM: &str = include_str!("../../../fixtures/alipay/test_alipay_private_key.pem");
pub(super) const ALIPAY_PUBLIC_PEM: &str = include_str!("../../../fixtures/alipay/test_alipay_public_key.pem");
const ALIPAY_PUBLIC_PKCS1_PEM: &str = include_str!("../../../fixtures/alipay/test_alipay_public_key_pkcs1.pem");
const EXPONENT3_PRIVATE_PEM: &str = include_str!("../../../fixtures/alipay/test_exponent3_private_key.pem");
const SHORT_PRIVATE_PEM: &str = include_str!("../../../fixtures/alipay/test_short_1024_private_key.pem");
const SHORT_ENCRYPTED_PEM: &str = include_str!("../../../fixtures/alipay/test_short_1024_private_key_encrypted.pem");

/// The base64 body of a PEM text, as `AP_APP_KEY` / `AP_PUB_KEY` are usually given.
pub(super) fn body(pem: &str) -> String {
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

/// The test application's keys (app key pair for requests, the test "Alipay" public key).
pub(super) fn keys(sign_type: SignType) -> AlipayKeys {
    AlipayKeys::new(&body(APP_PRIVATE_PEM), &body(ALIPAY_PUBLIC_PEM), sign_type).unwrap()
}

/// Signs as the test "Alipay" would (its private key), to make replies and notifications.
pub(super) fn alipay_signer(sign_type: SignType) -> AppKey {
    AppKey::parse(&body(ALIPAY_PRIVATE_PEM), sign_type).unwrap()
}

// ---- sign content -------------------------------------------------------------------------------

const DOCS_QUERY: &str = r#"app_id=2021000122671080&biz_content={"out_trade_no":"ORDER-20250102-0001"}&charset=utf-8&format=JSON&method=alipay.trade.query&sign_type=RSA2&timestamp=2025-01-02 03:04:05&version=1.0"#;
const DOCS_WAP_PAY: &str = r#"app_id=2021000122671080&biz_content={"out_trade_no":"ORDER-20250102-0001","total_amount":"0.01","subject":"测试订单","product_code":"QUICK_WAP_WAY"}&charset=utf-8&format=JSON&method=alipay.trade.wap.pay&notify_url=https://example.com/notify&return_url=https://example.com/return&sign_type=RSA2&timestamp=2025-01-02 03:04:05&version=1.0"#;

#[test]
fn sign_content_matches_the_docs_query_vector() {
    let params = [
        ("version", "1.0"),
        ("timestamp", "2025-01-02 03:04:05"),
        ("sign_type", "RSA2"),
        ("sign", "must-not-be-signed"),
        ("method", "alipay.trade.query"),
        ("format", "JSON"),
        ("charset", "utf-8"),
        ("biz_content", r#"{"out_trade_no":"ORDER-20250102-0001"}"#),
        ("app_auth_token", ""),
        ("app_id", "2021000122671080"),
    ];
    assert_eq!(sign_content(&params), DOCS_QUERY);
}

#[test]
fn sign_content_matches_the_docs_wap_pay_vector() {
    let params = [
        ("app_id", "2021000122671080"),
        ("method", "alipay.trade.wap.pay"),
        ("format", "JSON"),
        ("return_url", "https://example.com/return"),
        ("charset", "utf-8"),
        ("sign_type", "RSA2"),
        ("timestamp", "2025-01-02 03:04:05"),
        ("version", "1.0"),
        ("notify_url", "https://example.com/notify"),
        (
            "biz_content",
            r#"{"out_trade_no":"ORDER-20250102-0001","total_amount":"0.01","subject":"测试订单","product_code":"QUICK_WAP_WAY"}"#,
        ),
    ];
    assert_eq!(sign_content(&params), DOCS_WAP_PAY);
}

#[test]
fn sign_content_sorts_by_bytes_and_keeps_values_raw() {
    let params = [("ab", "1"), ("a_b", "x=y&z"), ("aB", "100%+ 中"), ("A", " "), ("empty", "")];
    assert_eq!(sign_content(&params), "A= &aB=100%+ 中&a_b=x=y&z&ab=1");
    assert_eq!(notification_content(&[("sign_type", "RSA2"), ("b", "2"), ("sign", "s"), ("a", "1")]), "a=1&b=2");
    assert_eq!(sign_content(&[("sign_type", "RSA2"), ("sign", "s")]), "sign_type=RSA2");
}

// ---- signing ------------------------------------------------------------------------------------

#[test]
fn signatures_round_trip_deterministically_and_only_under_their_algorithm() {
    let app_public_rsa2 = AlipayPublicKey::parse(&body(APP_PUBLIC_PEM), SignType::Rsa2).unwrap();
    let app_public_rsa = AlipayPublicKey::parse(&body(APP_PUBLIC_PEM), SignType::Rsa).unwrap();
    let rsa2 = keys(SignType::Rsa2);
    let rsa = keys(SignType::Rsa);
    let sign2 = rsa2.sign(DOCS_QUERY).unwrap();
    let sign1 = rsa.sign(DOCS_QUERY).unwrap();
    assert_eq!(sign2.len(), 344, "2048-bit signature, padded base64");
    assert!(sign2.ends_with('='));
    assert_eq!(sign2, rsa2.sign(DOCS_QUERY).unwrap(), "PKCS#1 v1.5 is deterministic");
    assert_ne!(sign1, sign2);
    app_public_rsa2.verify(DOCS_QUERY.as_bytes(), &sign2, "content").unwrap();
    app_public_rsa.verify(DOCS_QUERY.as_bytes(), &sign1, "content").unwrap();
    let bad = SignError::BadSignature { what: "content", algorithm: "RSA2" };
    assert_eq!(app_public_rsa2.verify(DOCS_QUERY.as_bytes(), &sign1, "content"), Err(bad.clone()));
    assert_eq!(app_public_rsa2.verify(DOCS_WAP_PAY.as_bytes(), &sign2, "content"), Err(bad.clone()));
    assert_eq!(app_public_rsa2.verify(DOCS_QUERY.as_bytes(), "AAAA", "content"), Err(bad));
    assert_eq!(
        app_public_rsa2.verify(DOCS_QUERY.as_bytes(), "not base64!", "content"),
        Err(SignError::SignatureNotBase64 { what: "content" })
    );
    let params = [("method", "alipay.trade.query"), ("app_id", "2021000122671080"), ("sign", "old")];
    assert_eq!(rsa2.sign_params(&params).unwrap(), rsa2.sign(&sign_content(&params)).unwrap());
}

/// `RSA2` is signed by `ring` for speed (`keys.rs`); RustCrypto's `rsa` must give the very same
/// bytes for the same key and content, for every key shape and any content.
#[test]
fn ring_and_rustcrypto_sign_rsa2_identically() {
    use base64::Engine as _;
    use rsa::signature::{SignatureEncoding as _, Signer as _};
    for pem in [APP_PRIVATE_PEM, APP_PRIVATE_PKCS1_PEM, ALIPAY_PRIVATE_PEM] {
        let key = AppKey::parse(&body(pem), SignType::Rsa2).unwrap();
        let keys::Signer::Rsa2 { key: slow, fast } = &key.signer else { panic!("RSA2 key expected") };
        assert!(fast.is_some(), "ring loads a 2048-bit key with e = 65537, PKCS#8 or PKCS#1");
        let mut runner = proptest::test_runner::TestRunner::new(proptest::test_runner::Config::with_cases(24));
        runner
            .run(&proptest::string::string_regex("[\\PC]{0,300}").unwrap(), |content| {
                let expected =
                    base64::engine::general_purpose::STANDARD.encode(slow.sign(content.as_bytes()).to_bytes());
                proptest::prop_assert_eq!(key.sign(&content).unwrap(), expected);
                Ok(())
            })
            .unwrap();
    }
}

/// A key `ring` refuses (public exponent 3) is still accepted and signs, with RustCrypto's `rsa`.
#[test]
fn keys_ring_refuses_still_sign() {
    use base64::Engine as _;
    let key = AppKey::parse(&body(EXPONENT3_PRIVATE_PEM), SignType::Rsa2).unwrap();
    assert!(matches!(&key.signer, keys::Signer::Rsa2 { fast: None, .. }), "ring refuses e = 3");
    let public = rsa::PublicKey::from(key.private_key());
    let spki = rsa::pkcs8::EncodePublicKey::to_public_key_der(&public).unwrap();
    let verifier =
        AlipayPublicKey::parse(&base64::engine::general_purpose::STANDARD.encode(spki.as_bytes()), SignType::Rsa2)
            .unwrap();
    verifier.verify(DOCS_QUERY.as_bytes(), &key.sign(DOCS_QUERY).unwrap(), "content").unwrap();
}

// ---- keys ---------------------------------------------------------------------------------------

#[test]
fn private_keys_are_accepted_in_every_shape_users_paste() {
    let reference = keys(SignType::Rsa2).sign(DOCS_QUERY).unwrap();
    let pkcs8 = body(APP_PRIVATE_PEM);
    let shapes = [
        pkcs8.clone(),
        APP_PRIVATE_PEM.to_owned(),
        APP_PRIVATE_PKCS1_PEM.to_owned(),
        body(APP_PRIVATE_PKCS1_PEM),
        format!("  {}\n", APP_PRIVATE_PEM.replace('\n', "\r\n")),
        APP_PRIVATE_PEM.replace('\n', "\\n"),
        APP_PRIVATE_PEM.replace('\n', ""),
        pkcs8.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join("\n  "),
        pkcs8.trim_end_matches('=').to_owned(),
    ];
    for (i, shape) in shapes.iter().enumerate() {
        let key = AppKey::parse(shape, SignType::Rsa2).unwrap_or_else(|e| panic!("shape {i}: {e}"));
        assert_eq!(key.bits(), 2048);
        assert_eq!(key.sign(DOCS_QUERY).unwrap(), reference, "shape {i}");
    }
    let signature = alipay_signer(SignType::Rsa2).sign(DOCS_QUERY).unwrap();
    for shape in [
        body(ALIPAY_PUBLIC_PEM),
        ALIPAY_PUBLIC_PEM.to_owned(),
        ALIPAY_PUBLIC_PEM.replace('\n', "\\n"),
        ALIPAY_PUBLIC_PKCS1_PEM.to_owned(),
        body(ALIPAY_PUBLIC_PKCS1_PEM),
    ] {
        let key = AlipayPublicKey::parse(&shape, SignType::Rsa2).unwrap();
        assert_eq!(key.bits(), 2048);
        key.verify(DOCS_QUERY.as_bytes(), &signature, "content").unwrap();
    }
}

#[test]
fn key_errors_name_the_variable_and_the_fault() {
    let app = |text: &str| AppKey::parse(text, SignType::Rsa2).unwrap_err();
    let public = |text: &str| AlipayPublicKey::parse(text, SignType::Rsa2).unwrap_err();
    let (a, p) = (KeyVar::AppKey, KeyVar::PubKey);

    assert_eq!(app(""), SignError::KeyEmpty { var: a });
    assert_eq!(app("-----BEGIN PRIVATE KEY-----\n\n-----END PRIVATE KEY-----\n"), SignError::KeyEmpty { var: a });
    assert_eq!(public("  \n"), SignError::KeyEmpty { var: p });
    assert_eq!(app("MIIEv*not-base64*"), SignError::KeyNotBase64 { var: a });
    assert_eq!(public("your-alipay-public-key"), SignError::KeyNotBase64 { var: p });
    assert_eq!(app("aGVsbG8gd29ybGQ="), SignError::NotAKey { var: a });
    assert_eq!(public("aGVsbG8gd29ybGQ="), SignError::NotAKey { var: p });
    assert_eq!(app(&body(SHORT_PRIVATE_PEM)), SignError::KeyTooShort { var: a, bits: 1024 });
    assert_eq!(app(SHORT_ENCRYPTED_PEM), SignError::KeyEncrypted { var: a });
    assert_eq!(app(&body(SHORT_ENCRYPTED_PEM)), SignError::KeyEncrypted { var: a }, "no armour left to say so");
    assert_eq!(app(&body(APP_PUBLIC_PEM)), SignError::WrongKind { var: a, found: "a public key" });
    let certificate = "-----BEGIN CERTIFICATE-----\nMIIDazCCAlOgAwIBAgIU\n-----END CERTIFICATE-----\n";
    assert!(
        matches!(public(certificate), SignError::WrongKind { var: KeyVar::PubKey, found } if found.contains("certificate mode"))
    );
    assert!(matches!(public(&body(APP_PRIVATE_PEM)), SignError::WrongKind { var: KeyVar::PubKey, .. }));
    assert!(matches!(public(APP_PRIVATE_PKCS1_PEM), SignError::WrongKind { var: KeyVar::PubKey, .. }));
    assert_eq!(
        AlipayKeys::new(&body(APP_PRIVATE_PEM), &body(APP_PUBLIC_PEM), SignType::Rsa2).unwrap_err(),
        SignError::OwnPublicKey
    );

    let message = app(&body(SHORT_PRIVATE_PEM)).to_string();
    assert!(message.starts_with("AP_APP_KEY is a 1024-bit RSA key"), "{message}");
    assert!(message.contains("at least 2048 bits"), "{message}");
    let message = public("your-alipay-public-key").to_string();
    assert!(message.starts_with("AP_PUB_KEY is not base64"), "{message}");
    assert!(message.contains("MIIBIjAN"), "{message}");
    assert!(app("aGVsbG8gd29ybGQ=").to_string().starts_with("AP_APP_KEY is base64 but not an RSA key"));
    assert!(app(&body(APP_PUBLIC_PEM)).to_string().starts_with("AP_APP_KEY holds a public key"));
    assert!(SignError::OwnPublicKey.to_string().contains("支付宝公钥"));
}

#[test]
fn nothing_prints_key_material() {
    let keys = keys(SignType::Rsa2);
    let debug = format!("{keys:?}");
    assert_eq!(
        debug,
        "AlipayKeys { app: AppKey(RSA2, 2048-bit RSA private key), alipay: AlipayPublicKey(RSA2, 2048-bit RSA public key) }"
    );
    // Errors say what is wrong, never what was given.
    for given in ["c2VjcmV0LWtleS1tYXRlcmlhbA==", "secret key material!", &body(SHORT_PRIVATE_PEM)] {
        for error in [
            AppKey::parse(given, SignType::Rsa2).unwrap_err(),
            AlipayPublicKey::parse(given, SignType::Rsa2).unwrap_err(),
        ] {
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains(given), "{shown}");
            assert!(!shown.contains(&given[given.len() / 2..given.len() / 2 + 8]), "{shown}");
        }
    }
}

#[test]
fn the_algorithm_setting_reads_rsa2_by_default() {
    assert_eq!(SignType::from_setting(None), Ok(SignType::Rsa2));
    assert_eq!(SignType::from_setting(Some("")), Ok(SignType::Rsa2));
    assert_eq!(SignType::from_setting(Some(" rsa2 ")), Ok(SignType::Rsa2));
    assert_eq!(SignType::from_setting(Some("RSA")), Ok(SignType::Rsa));
    let err = SignType::from_setting(Some("SHA256")).unwrap_err();
    assert_eq!(err, SignError::UnknownSignType { value: "SHA256".into() });
    assert!(err.to_string().contains("RSA2"));
    assert_eq!((SignType::Rsa2.as_str(), SignType::Rsa.to_string().as_str()), ("RSA2", "RSA"));
    assert_eq!(keys(SignType::Rsa).sign_type(), SignType::Rsa);
}

// ---- replies: the docs' known answer --------------------------------------------------------------

const DOCS_PUBLIC_KEY: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAk7LzhmMa2c4qQd4fqAqenfbuFoA7stPKvoS1LrZEsVnOOGUUjwoa1oU9xsSPjcOWhIerU/VAN4J95GIAXx59ipcleIyfLn2FhHXPgLJpvo+b2jJFyn/1/DbeJDh+0yDVAOf50Z7HhI0mdUhFMkXlT7BU0ZMtJf/TmISFEfhDU/w6qFd6D42L97byAkq0K6LroglSVF24GqJEa7hSeUIkZWj7RasykXrc2uVJ1+ejkXE0LyPxa2AHykMGbJLf5SiZvaNzUZgnKIR36mLOHpQ/2JCXxhXZYUWHzy0kMH54JcUEeksFWBYLGvLjV1phbcUIc3Q76tIuqApY6E222OoZZQIDAQAB";
const DOCS_SIGNED_TEXT: &str = r#"{"code":"10000","msg":"Success","file_id":"CAxAToWB1JsAAAAAAAAAAAAADgSLAQBr"}"#;
const DOCS_SIGN: &str = "F+LDzpTNiavn7xVZPGuPCSSVRSmWzJGgtuji6tVELGEaqMaNj0jRKXUEr5nloZJBBmwEnddOyCjjepMmrTKTvoOqQ0Efxpr/R1iEeHTHVbb/Q8TTh6Up5gHJDkILdaWS2q1cWeQ6VT+HQY9P3WRXS7uhILHuDODIhpAyCu5KhWGt0rMCIG+Im6NODJP2oohtSCtmTFXg58HH587Z2y2bdbjzOxLvzD9IrU1imghXQ2S/Q+wMIvRk9on6cWnBLkrNvJKapA2ReNGWOwyuASvB9zDVzhMPbR+3mfRGkVDxsq5HYLjBKGskJMXHw0HuugZij6ScRuaLPODhmHwr/pJ9yw==";
const DOCS_METHOD: &str = "alipay.open.file.upload";

fn docs_body(signed_text: &str, sign: &str) -> String {
    format!(r#"{{"alipay_open_file_upload_response":{signed_text},"sign":"{sign}"}}"#)
}

fn docs_key() -> AlipayPublicKey {
    AlipayPublicKey::parse(DOCS_PUBLIC_KEY, SignType::Rsa2).unwrap()
}

#[test]
fn the_docs_response_vector_verifies() {
    let body = docs_body(DOCS_SIGNED_TEXT, DOCS_SIGN);
    assert!(body.contains("\"file_id\":\"CAxAToWB1JsAAAAAAAAAAAAADgSLAQBr\"},\"sign\":\"F+LDzp"));
    assert_eq!(response_key(DOCS_METHOD), "alipay_open_file_upload_response");
    let verified = docs_key().verify_response(&body, DOCS_METHOD).unwrap();
    assert_eq!(verified.content(), DOCS_SIGNED_TEXT);
    assert_eq!(verified.key(), "alipay_open_file_upload_response");
    assert!(!verified.is_error_response());
}

#[test]
fn the_docs_response_vector_fails_with_any_other_sign_or_body() {
    let key = docs_key();
    let bad = Err(SignError::BadSignature { what: "reply", algorithm: "RSA2" });
    // Another well-formed signature: a real one, of something else.
    let other = alipay_signer(SignType::Rsa2).sign(DOCS_SIGNED_TEXT).unwrap();
    assert_eq!(key.verify_response(&docs_body(DOCS_SIGNED_TEXT, &other), DOCS_METHOD), bad);
    let flipped = DOCS_SIGN.replacen('F', "G", 1);
    assert_eq!(key.verify_response(&docs_body(DOCS_SIGNED_TEXT, &flipped), DOCS_METHOD), bad);
    let tampered = DOCS_SIGNED_TEXT.replace("10000", "10001");
    assert_eq!(key.verify_response(&docs_body(&tampered, DOCS_SIGN), DOCS_METHOD), bad);
    let respaced = DOCS_SIGNED_TEXT.replace(",", ", ");
    assert_eq!(key.verify_response(&docs_body(&respaced, DOCS_SIGN), DOCS_METHOD), bad, "spacing is signed");
    assert_eq!(
        key.verify_response(&docs_body(DOCS_SIGNED_TEXT, "%%%"), DOCS_METHOD),
        Err(SignError::SignatureNotBase64 { what: "reply" })
    );
    assert_eq!(
        key.verify_response(&docs_body(DOCS_SIGNED_TEXT, ""), DOCS_METHOD),
        Err(SignError::Unsigned { what: "reply" })
    );
    let unsigned = format!(r#"{{"alipay_open_file_upload_response":{DOCS_SIGNED_TEXT}}}"#);
    assert_eq!(key.verify_response(&unsigned, DOCS_METHOD), Err(SignError::Unsigned { what: "reply" }));
    assert_eq!(
        key.verify_response(&docs_body(DOCS_SIGNED_TEXT, DOCS_SIGN), "alipay.trade.query"),
        Err(SignError::NoResponseObject { key: "alipay_trade_query_response".into() })
    );
    // The test "Alipay" key is not the docs' key.
    let ours = AlipayPublicKey::parse(ALIPAY_PUBLIC_PEM, SignType::Rsa2).unwrap();
    assert_eq!(ours.verify_response(&docs_body(DOCS_SIGNED_TEXT, DOCS_SIGN), DOCS_METHOD), bad);
}

// ---- replies: extraction edge cases -------------------------------------------------------------

const QUERY: &str = "alipay.trade.query";

fn extract(body: &str) -> (String, String, Option<String>) {
    let parts = extract_signed_response(body, QUERY).unwrap();
    (parts.key, parts.signed_text.to_owned(), parts.sign)
}

#[test]
fn extraction_tolerates_whitespace_around_colons_and_members() {
    let body = "\u{feff} \r\n{ \"alipay_trade_query_response\" \t:\n {\"code\" : \"10000\" , \"msg\":\"Success\"}\n ,\n \"sign\" :  \"c2ln\" } \n";
    let (key, text, sign) = extract(body);
    assert_eq!(key, "alipay_trade_query_response");
    assert_eq!(text, "{\"code\" : \"10000\" , \"msg\":\"Success\"}");
    assert_eq!(sign.as_deref(), Some("c2ln"));
}

#[test]
fn extraction_keeps_escaped_slashes_and_unescapes_only_the_sign() {
    let text = r#"{"qr_code":"https:\/\/qr.alipay.com\/bax0","subject":"\u6d4b\u8bd5","quote":"a\"b"}"#;
    let body = format!(r#"{{"alipay_trade_query_response":{text},"sign":"ab\/cd+=="}}"#);
    let (_, extracted, sign) = extract(&body);
    assert_eq!(extracted, text, "raw bytes, never re-serialised");
    assert_eq!(sign.as_deref(), Some("ab/cd+=="));
}

#[test]
fn extraction_is_not_confused_by_a_nested_sign_or_a_key_inside_values() {
    let text = r#"{"sign":"inner","code":"10000","extend":{"sign":"deeper","alipay_trade_query_response":{}}}"#;
    let body = format!(
        r#"{{"note":"alipay_trade_query_response\"sign\":","other":{{"alipay_trade_query_response":{{"code":"1"}}}},"alipay_trade_query_response":{text},"sign":"outer"}}"#
    );
    let (_, extracted, sign) = extract(&body);
    assert_eq!(extracted, text);
    assert_eq!(sign.as_deref(), Some("outer"));
    // The sign may come first, too.
    let (_, extracted, sign) = extract(&format!(r#"{{"sign":"first","alipay_trade_query_response":{text}}}"#));
    assert_eq!((extracted.as_str(), sign.as_deref()), (text, Some("first")));
}

#[test]
fn extraction_counts_braces_outside_strings_only() {
    let text = r#"{"memo":"}{ \"}\" {{","path":"C:\\","list":[{"a":"]"},{"b":[1,2,{"c":null}]}],"n":-1.5e3,"t":true}"#;
    let body = format!(r#"{{"alipay_trade_query_response":{text},"sign":"s"}}"#);
    assert_eq!(extract(&body).1, text);
    assert!(serde_json::from_str::<serde_json::Value>(text).is_ok());
}

#[test]
fn extraction_falls_back_to_error_response() {
    let text =
        r#"{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id","sub_msg":"无效的AppID参数"}"#;
    let (key, extracted, sign) = extract(&format!(r#"{{"error_response":{text},"sign":"s"}}"#));
    assert_eq!((key.as_str(), extracted.as_str(), sign.as_deref()), ("error_response", text, Some("s")));
    let (key, _, sign) = extract(&format!(r#"{{"error_response":{text}}}"#));
    assert_eq!((key.as_str(), sign), ("error_response", None));
    // The method's own response wins over error_response.
    let both = format!(r#"{{"error_response":{text},"alipay_trade_query_response":{{"code":"10000"}},"sign":"s"}}"#);
    assert_eq!(extract(&both).1, r#"{"code":"10000"}"#);
}

#[test]
fn a_missing_sign_is_not_trusted() {
    let body = r#"{"alipay_trade_query_response":{"code":"10000"}}"#;
    assert_eq!(extract(body).2, None);
    assert_eq!(keys(SignType::Rsa2).verify_response(body, QUERY), Err(SignError::Unsigned { what: "reply" }));
}

#[test]
fn ambiguous_or_malformed_replies_are_refused() {
    let err = |body: &str| extract_signed_response(body, QUERY).unwrap_err();
    let twice =
        r#"{"alipay_trade_query_response":{"code":"40004"},"alipay_trade_query_response":{"code":"10000"},"sign":"s"}"#;
    assert_eq!(err(twice), SignError::Duplicate { what: "reply", key: "alipay_trade_query_response".into() });
    let two_signs = r#"{"alipay_trade_query_response":{"code":"10000"},"sign":"a","sign":"b"}"#;
    assert_eq!(err(two_signs), SignError::Duplicate { what: "reply", key: "sign".into() });
    assert_eq!(
        err(r#"{"other_response":{},"sign":"s"}"#),
        SignError::NoResponseObject { key: "alipay_trade_query_response".into() }
    );
    for (body, reason) in [
        ("", "the body does not start with '{'"),
        ("<html>502 Bad Gateway</html>", "the body does not start with '{'"),
        (r#"{"alipay_trade_query_response":{"code":"10000"}"#, "expected ',' or '}'"),
        (r#"{"alipay_trade_query_response":{"code":"10000","sign":"s""#, "unbalanced braces"),
        (r#"{"alipay_trade_query_response":{"code":"10000}}"#, "an unterminated string"),
        (r#"{"alipay_trade_query_response":{"code":"1"}} trailing"#, "text after the object"),
        (r#"{"alipay_trade_query_response" {"code":"1"}}"#, "expected ':'"),
        (r#"{alipay_trade_query_response:{}}"#, "expected a member name"),
        (r#"{"alipay_trade_query_response":,"sign":"s"}"#, "expected a value"),
        (r#"{"alipay_trade_query_response":"encrypted","sign":"s"}"#, "the response member is not an object"),
    ] {
        assert!(
            matches!(err(body), SignError::MalformedReply { reason: r, .. } if r == reason),
            "{body}: {:?}",
            err(body)
        );
    }
    assert!(matches!(
        err(r#"{"alipay_trade_query_response":{},"sign":123}"#),
        SignError::SignatureNotBase64 { what: "reply" }
    ));
}

#[test]
fn replies_signed_over_their_raw_bytes_verify_and_one_changed_escape_fails() {
    let signer = alipay_signer(SignType::Rsa2);
    let text = r#"{"code":"10000", "msg":"Success","qr_code":"https:\/\/qr.alipay.com\/bax0","memo":"{\"sign\":\"}\"}","subject":"测试"}"#;
    let body = |text: &str, sign: &str| {
        format!("{{ \"alipay_trade_precreate_response\" : {text} ,\n\"sign\" : \"{}\" }}", sign.replace('/', "\\/"))
    };
    let sign = signer.sign(text).unwrap();
    let keys = keys(SignType::Rsa2);
    let raw = body(text, &sign);
    let verified = keys.verify_response(&raw, "alipay.trade.precreate").unwrap();
    assert_eq!(verified.content(), text);
    let parsed: serde_json::Value = serde_json::from_str(verified.content()).unwrap();
    assert_eq!(parsed["qr_code"], "https://qr.alipay.com/bax0");
    // The same JSON value, escaped differently, is not what was signed.
    let unescaped = text.replace(r"\/", "/");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&unescaped).unwrap(), parsed);
    assert_eq!(
        keys.verify_response(&body(&unescaped, &sign), "alipay.trade.precreate"),
        Err(SignError::BadSignature { what: "reply", algorithm: "RSA2" })
    );
    // An RSA (SHA1) application verifies RSA signatures, and only those.
    let rsa = alipay_signer(SignType::Rsa).sign(text).unwrap();
    assert!(self::keys(SignType::Rsa).verify_response(&body(text, &rsa), "alipay.trade.precreate").is_ok());
    assert!(keys.verify_response(&body(text, &rsa), "alipay.trade.precreate").is_err());
}

// ---- notifications ------------------------------------------------------------------------------

pub(super) fn signed_notification(fields: &[(&str, &str)], signer: &AppKey) -> String {
    let sign = signer.sign(&notification_content(fields)).unwrap();
    let mut all: Vec<(&str, &str)> = fields.to_vec();
    all.push(("sign", &sign));
    serde_urlencoded::to_string(&all).unwrap()
}

pub(super) const NOTIFICATION: &[(&str, &str)] = &[
    ("app_id", "2021000122671080"),
    ("out_trade_no", "ORDER-20250102-0001"),
    ("trade_no", "2025010222001446880500000001"),
    ("total_amount", "0.01"),
    ("trade_status", "TRADE_SUCCESS"),
    ("subject", "100% 纯棉 A&B=1+1"),
    ("passback_params", "a%3Db"),
    ("gmt_payment", "2025-01-02 03:04:20"),
    ("sign_type", "RSA2"),
    ("fund_bill_list", ""),
];

#[test]
fn notifications_verify_over_values_decoded_once() {
    let raw = signed_notification(NOTIFICATION, &alipay_signer(SignType::Rsa2));
    assert!(raw.contains("subject=100%25+%E7%BA%AF%E6%A3%89+A%26B%3D1%2B1"), "{raw}");
    let keys = keys(SignType::Rsa2);
    let verified = keys.verify_notification(&raw).unwrap();
    assert_eq!(verified.get("subject"), Some("100% 纯棉 A&B=1+1"));
    assert_eq!(verified.get("passback_params"), Some("a%3Db"), "decoded once, not twice");
    assert_eq!(verified.get("total_amount"), Some("0.01"));
    assert_eq!(verified.get("sign_type"), Some("RSA2"));
    assert_eq!(verified.get("sign"), None);
    assert_eq!(verified.fields().len(), NOTIFICATION.len());
    // As a URL's query too.
    assert!(keys.verify_notification(&format!("https://shop.example/notify?{raw}")).is_ok());
    // sign_type is not signed, so it does not choose the algorithm: the configured one does.
    assert!(keys.verify_notification(&raw.replace("sign_type=RSA2", "sign_type=RSA")).is_ok());
}

#[test]
fn altered_unsigned_or_ambiguous_notifications_are_refused() {
    let keys = keys(SignType::Rsa2);
    let raw = signed_notification(NOTIFICATION, &alipay_signer(SignType::Rsa2));
    let bad = Err(SignError::BadSignature { what: "notification", algorithm: "RSA2" });
    let tampered = raw.replace("total_amount=0.01", "total_amount=100.00");
    assert_ne!(tampered, raw);
    assert_eq!(keys.verify_notification(&tampered), bad);
    let added = format!("{raw}&refund_fee=0.01");
    assert_eq!(keys.verify_notification(&added), bad);
    let by_the_app = signed_notification(NOTIFICATION, &AppKey::parse(APP_PRIVATE_PEM, SignType::Rsa2).unwrap());
    assert_eq!(keys.verify_notification(&by_the_app), bad, "signed by the wrong key");
    let sha1 = signed_notification(NOTIFICATION, &alipay_signer(SignType::Rsa));
    assert_eq!(keys.verify_notification(&sha1), bad, "signed with the other algorithm");
    let unsigned = raw.split("&sign=").next().unwrap();
    assert_eq!(keys.verify_notification(unsigned), Err(SignError::Unsigned { what: "notification" }));
    assert_eq!(keys.verify_notification(""), Err(SignError::Unsigned { what: "notification" }));
    let twice = format!("total_amount=100.00&{raw}");
    assert_eq!(
        keys.verify_notification(&twice),
        Err(SignError::Duplicate { what: "notification", key: "total_amount".into() })
    );
}

#[test]
fn a_failed_signature_says_whether_the_content_the_key_or_the_algorithm_differs() {
    let key = AlipayPublicKey::parse(&body(ALIPAY_PUBLIC_PEM), SignType::Rsa2).unwrap();
    let signed = alipay_signer(SignType::Rsa2).sign("{\"total_amount\":\"0.01\"}").unwrap();
    assert!(key.verify(b"{\"total_amount\":\"0.01\"}", &signed, "reply").is_ok());
    assert_eq!(key.diagnose(&signed), Mismatch::ContentChanged, "altered content, right key");
    let by_the_app = AppKey::parse(APP_PRIVATE_PEM, SignType::Rsa2).unwrap().sign("x").unwrap();
    assert_eq!(key.diagnose(&by_the_app), Mismatch::OtherKey);
    let sha1 = alipay_signer(SignType::Rsa).sign("x").unwrap();
    assert_eq!(key.diagnose(&sha1), Mismatch::OtherAlgorithm);
    for junk in ["", "not base64!", "AAAA", &"A".repeat(344)] {
        assert_eq!(key.diagnose(junk), Mismatch::OtherKey, "{junk}");
    }
    let rsa = AlipayPublicKey::parse(&body(ALIPAY_PUBLIC_PEM), SignType::Rsa).unwrap();
    assert_eq!(rsa.diagnose(&sha1), Mismatch::ContentChanged);
    assert_eq!(rsa.diagnose(&signed), Mismatch::OtherAlgorithm);
}
