//! OAuth resource-server mode on `serve --http`: RS256 access tokens signed here with TEST-ONLY
//! keys (fixtures/oauth), the issuer's JWK set served by an in-process HTTP server, and the
//! server's verdicts: a good token's scope applies; an expired one, one for another audience or
//! issuer, or one signed by a key the issuer does not publish is refused with a Bearer challenge
//! pointing at the protected-resource metadata; a rotated key is fetched when first seen.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};

use crate::http_support::*;

const ISSUER: &str = "https://issuer.test.example";

fn key(file: &str) -> rsa::PrivateKey {
    let pem = std::fs::read_to_string(format!("{}/fixtures/oauth/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
    rsa::PrivateKey::from_pkcs8_der(&der).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The public JWK of `key` under `kid`.
fn jwk(key: &rsa::PrivateKey, kid: &str) -> Value {
    let public = key.to_public_key();
    json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": b64(&public.n_bytes()), "e": b64(&public.e_bytes())})
}

/// An RS256 JWT over `claims`, signed with `key` under `kid`.
fn sign(key: &rsa::PrivateKey, kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let message = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone());
    let signature = signer.sign(message.as_bytes()).to_vec();
    format!("{message}.{}", b64(&signature))
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The issuer's `jwks_uri`: serves whatever set the test puts in, counting fetches.
struct Jwks {
    url: String,
    set: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

async fn jwks_server(initial: Value) -> Jwks {
    let set = Arc::new(Mutex::new(initial));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (s, f) = (set.clone(), fetches.clone());
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let (s, f) = (s.clone(), f.clone());
            async move {
                f.fetch_add(1, Ordering::SeqCst);
                axum::Json(s.lock().unwrap().clone())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Jwks { url, set, fetches }
}

/// Claims for a token the server should accept, before a test spoils one of them.
fn claims(audience: &str, scope: &str) -> Value {
    json!({"iss": ISSUER, "sub": "agent-7", "aud": audience, "scope": scope, "iat": now(), "exp": now() + 300})
}

#[tokio::test]
async fn access_tokens_are_checked_against_the_issuers_keys_audience_and_lifetime() {
    let (a, b) = (key("test_issuer_key_a.pem"), key("test_issuer_key_b.pem"));
    let jwks = jwks_server(json!({"keys": [jwk(&a, "key-a")]})).await;
    let server = HttpServer::start(
        Start::default()
            .with_gateway()
            .await
            .env("PAYMENT_OAUTH_ISSUER", ISSUER)
            .env("PAYMENT_OAUTH_JWKS_URL", &jwks.url),
    )
    .await;
    let resource = server.mcp_url();
    let metadata_url = format!("{}/.well-known/oauth-protected-resource/mcp", server.base);

    // The protected-resource metadata (RFC 9728) and the challenge that points at it.
    let metadata: Value = server.raw().get(&metadata_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(metadata["resource"], resource.as_str());
    assert_eq!(metadata["authorization_servers"], json!([ISSUER]));
    assert!(metadata["scopes_supported"].as_array().unwrap().contains(&json!("payments:read")));
    let missing = post_mcp(&server, initialize_body().to_string(), &[]).await;
    assert_eq!(missing.status(), 401);
    let challenge = missing.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")), "{challenge}");

    // A good token: its scope (openid is the identity provider's own, ignored) applies.
    let good = sign(&a, "key-a", &claims(&resource, "openid payments:read"));
    let client = server.connect(Some(&good), true).await.expect("a valid token connects");
    let names = tool_names(&client).await;
    assert!(names.contains(&"query_payment_order".to_owned()) && !names.contains(&"create_payment_order".to_owned()));
    assert!(server.stderr().contains("caller=oauth:agent-7"));

    let refused = |token: String, why: &'static str| {
        let server = &server;
        async move {
            let r =
                post_mcp(server, initialize_body().to_string(), &[("authorization", &format!("Bearer {token}"))]).await;
            assert_eq!(r.status(), 401, "{why}");
            let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
            assert!(
                challenge.contains("error=\"invalid_token\"") && challenge.contains("resource_metadata="),
                "{challenge}"
            );
            assert!(challenge.contains(why), "{challenge} should say {why}");
        }
    };
    let mut expired = claims(&resource, "payments:read");
    expired["iat"] = json!(now() - 3600);
    expired["exp"] = json!(now() - 600);
    refused(sign(&a, "key-a", &expired), "expired").await;
    refused(sign(&a, "key-a", &claims("https://other-service.example/mcp", "payments:read")), "another audience").await;
    let mut foreign = claims(&resource, "payments:read");
    foreign["iss"] = json!("https://evil.example");
    refused(sign(&a, "key-a", &foreign), "another issuer").await;
    let mut early = claims(&resource, "payments:read");
    early["nbf"] = json!(now() + 3600);
    refused(sign(&a, "key-a", &early), "not valid yet").await;
    // Key b is not published yet: a token signed with it, even claiming key a's id, is refused.
    refused(sign(&b, "key-a", &claims(&resource, "payments:read")), "signature").await;
    let mut tampered = good.clone();
    tampered.insert(tampered.len() - 2, 'A');
    assert_eq!(
        post_mcp(&server, initialize_body().to_string(), &[("authorization", &format!("Bearer {tampered}"))])
            .await
            .status(),
        401
    );

    // A token whose scope grants no tool of this server: 403 insufficient_scope.
    let nothing = sign(&a, "key-a", &claims(&resource, "openid profile"));
    let r = post_mcp(&server, initialize_body().to_string(), &[("authorization", &format!("Bearer {nothing}"))]).await;
    assert_eq!(r.status(), 403);
    assert!(r.headers()["www-authenticate"].to_str().unwrap().contains("error=\"insufficient_scope\""));

    // Rotation: the issuer publishes key b and signs with it; the server fetches the new set.
    let fetched = jwks.fetches.load(Ordering::SeqCst);
    *jwks.set.lock().unwrap() = json!({"keys": [jwk(&a, "key-a"), jwk(&b, "key-b")]});
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await; // past the refetch interval
    let rotated = sign(&b, "key-b", &claims(&resource, "payments:read payments:create"));
    let client = server.connect(Some(&rotated), false).await.expect("a token signed with the new key connects");
    assert!(tool_names(&client).await.contains(&"create_payment_order".to_owned()));
    assert!(jwks.fetches.load(Ordering::SeqCst) > fetched, "the key set was fetched again");
}

#[tokio::test]
async fn an_unreachable_key_set_is_a_503_not_a_bad_token() {
    // A loopback port nobody listens on: the issuer's jwks_uri is down.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let server = HttpServer::start(
        Start::default()
            .env("PAYMENT_OAUTH_ISSUER", ISSUER)
            .env("PAYMENT_OAUTH_JWKS_URL", &format!("http://{closed}/jwks.json")),
    )
    .await;
    let token = sign(&key("test_issuer_key_a.pem"), "key-a", &claims(&server.mcp_url(), "payments:read"));
    let r = post_mcp(&server, initialize_body().to_string(), &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    assert!(r.text().await.unwrap().contains("key set could not be fetched"));
}
