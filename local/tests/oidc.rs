//! Optional OIDC sign-in over real HTTP: an issuer this test runs (discovery document and JWKS
//! on 127.0.0.1, RSA keys generated per run, `common::oidc`) and tokens it signs.
//!
//! - the verifier (`adapters::oidc`, shared by `ws-authorizer` and the local stack): valid,
//!   expired, wrong audience, wrong issuer, unknown `kid`, `alg: none`, HMAC with the public key,
//!   a changed payload; key rotation reads the JWKS again, random `kid`s do not hammer it;
//! - `POST /media/uploads` needs a valid bearer token and files the upload under
//!   `UPLOAD_PREFIX{sub}/`;
//! - `POST /media/tokens`: the bearer who owns a folder renews its tokens without one; others
//!   renew by the token they hold, on the same route;
//! - `$connect?access_token=`: a bad token is refused; a good one binds the connection to its
//!   `sub`, which may watch its own uploads without a read token, and nothing else without one.

mod common;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::oidc::{AUDIENCE, Issuer, Key, now, token};
use futures::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcpush_core::adapters::oidc::OidcVerifier;
use mcpush_core::config::OidcConfig;
use mcpush_core::domain::identity::IdentityError;
use mcpush_core::domain::token::ReadAccess;
use mcpush_core::ports::IdentityVerifier;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &[u8] = b"oidc-read-secret";

fn b64(bytes: &[u8]) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

#[tokio::test]
async fn the_verifier_accepts_only_tokens_the_issuer_signed_for_this_audience() {
    // GIVEN an issuer with one key, and the verifier pointed at it
    let key = Key::generate("k1");
    let stranger = Key::generate("k1");
    let issuer = Issuer::start(&[&key]).await;
    let verifier = OidcVerifier::new(issuer.config());
    let url = issuer.url.clone();

    // THEN a good token verifies, with its claims as API Gateway passes them
    let verified = verifier
        .verify(&token(&url, &key, "alice", |c| drop(c.insert("aud".into(), json!(["other", AUDIENCE])))))
        .await
        .unwrap();
    assert_eq!(verified.subject.as_str(), "alice");
    assert_eq!(verified.claims["aud"], format!("[other {AUDIENCE}]"));
    assert_eq!(verified.claims["iss"], url);
    // AND an access token with client_id instead of aud (Cognito's) verifies too
    let cognito = token(&url, &key, "bob", |c| {
        c.remove("aud");
        c.insert("client_id".into(), json!(AUDIENCE));
    });
    assert_eq!(verifier.verify(&cognito).await.unwrap().subject.as_str(), "bob");

    // AND everything else is refused, naming why
    let header = |alg: &str, kid: &str| b64(json!({"alg": alg, "typ": "JWT", "kid": kid}).to_string().as_bytes());
    let payload = b64(json!({"iss": url, "aud": AUDIENCE, "sub": "alice", "exp": now() + 600}).to_string().as_bytes());
    let hmac_with_public_key = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("k1".into());
        let public = serde_json::to_vec(&key.jwk).unwrap();
        jsonwebtoken::encode(
            &h,
            &json!({"iss": url, "aud": AUDIENCE, "sub": "alice", "exp": now() + 600}),
            &EncodingKey::from_secret(&public),
        )
        .unwrap()
    };
    let tampered = {
        let good = token(&url, &key, "alice", |_| {});
        let parts: Vec<&str> = good.split('.').collect();
        let evil =
            b64(json!({"iss": url, "aud": AUDIENCE, "sub": "mallory", "exp": now() + 600}).to_string().as_bytes());
        format!("{}.{evil}.{}", parts[0], parts[2])
    };
    let cases: Vec<(&str, String, IdentityError)> = vec![
        (
            "expired",
            token(&url, &key, "alice", |c| drop(c.insert("exp".into(), json!(now() - 3600)))),
            IdentityError::Expired,
        ),
        (
            "not yet valid",
            token(&url, &key, "alice", |c| drop(c.insert("nbf".into(), json!(now() + 3600)))),
            IdentityError::NotYetValid,
        ),
        (
            "wrong audience",
            token(&url, &key, "alice", |c| drop(c.insert("aud".into(), json!("someone-else")))),
            IdentityError::Audience,
        ),
        ("no audience", token(&url, &key, "alice", |c| drop(c.remove("aud"))), IdentityError::Audience),
        (
            "wrong issuer",
            token(&url, &key, "alice", |c| drop(c.insert("iss".into(), json!("https://evil.example")))),
            IdentityError::Issuer("https://evil.example".into()),
        ),
        ("unknown kid", token(&url, &key.renamed("k9"), "alice", |_| {}), IdentityError::UnknownKey("k9".into())),
        ("another key, same kid", token(&url, &stranger, "alice", |_| {}), IdentityError::Signature),
        ("alg none", format!("{}.{payload}.", header("none", "k1")), IdentityError::Algorithm("none".into())),
        ("HMAC with the public key", hmac_with_public_key, IdentityError::Algorithm("HS256".into())),
        ("changed payload", tampered, IdentityError::Signature),
        (
            "a sub that is no folder",
            token(&url, &key, "../bob", |_| {}),
            IdentityError::UnusableSubject("../bob".into()),
        ),
        ("no sub", token(&url, &key, "x", |c| drop(c.remove("sub"))), IdentityError::Malformed("no sub claim".into())),
        ("not a JWT", "abc".into(), IdentityError::Malformed("a JWT has three dot-separated parts".into())),
    ];
    for (name, jwt, expected) in cases {
        assert_eq!(verifier.verify(&jwt).await.map(|v| v.subject), Err(expected), "{name}");
    }
}

#[tokio::test]
async fn rotated_keys_are_fetched_and_random_kids_do_not_hammer_the_issuer() {
    // GIVEN a verifier that has read the issuer's one key
    let (old, new, forger) = (Key::generate("old"), Key::generate("new"), Key::generate("x"));
    let issuer = Issuer::start(&[&old]).await;
    let verifier = OidcVerifier::with_min_refresh(issuer.config(), Duration::from_millis(500));
    assert!(verifier.verify(&issuer.token(&old, "alice")).await.is_ok());
    assert_eq!(issuer.jwks_reads.load(Ordering::SeqCst), 1);

    // WHEN tokens name kids the issuer does not have, again and again
    for _ in 0..20 {
        let forged = issuer.token(&forger.renamed(&format!("x{}", fastrand::u32(..))), "alice");
        assert!(matches!(verifier.verify(&forged).await, Err(IdentityError::UnknownKey(_))));
    }
    // THEN the JWKS was read at most once more in that burst
    assert!(issuer.jwks_reads.load(Ordering::SeqCst) <= 2, "{}", issuer.jwks_reads.load(Ordering::SeqCst));

    // WHEN the issuer rotates to a new key
    issuer.keys.lock().unwrap().push(new.jwk.clone());
    tokio::time::sleep(Duration::from_millis(550)).await;
    // THEN a token signed with it verifies after one more read, and the old key still works
    assert_eq!(verifier.verify(&issuer.token(&new, "alice")).await.unwrap().subject.as_str(), "alice");
    assert!(verifier.verify(&issuer.token(&old, "alice")).await.is_ok());
    assert_eq!(verifier.fetches().await, issuer.jwks_reads.load(Ordering::SeqCst));
}

async fn start_stack(issuer: &Issuer) -> String {
    let (base, ..) = common::serve_stack("oidc", |options| {
        options.ws.access = ReadAccess::new(Some(SECRET.to_vec()));
        options.oidc = Some(issuer.config());
    })
    .await;
    base
}

async fn grant(base: &str, bearer: Option<&str>) -> (u16, Value) {
    let request = json!({"file_name": "clip.mp4", "content_type": "video/mp4", "size": 1000});
    common::post_json(&format!("{base}/media/uploads"), &request, bearer).await
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(base: &str, access_token: Option<&str>) -> Result<Socket, u16> {
    let mut url = format!("{}/ws", base.replace("http://", "ws://"));
    if let Some(jwt) = access_token {
        url.push_str(&format!("?access_token={jwt}"));
    }
    match tokio_tungstenite::connect_async(url).await {
        Ok((socket, _)) => Ok(socket),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("{e}"),
    }
}

/// Sends `subscribe` and answers the reply's `type` and, for errors, its message.
async fn subscribe(socket: &mut Socket, input_file: &str, token: Option<&str>) -> (String, String) {
    let mut message = json!({"action": "subscribe", "input_file": input_file});
    if let Some(token) = token {
        message["token"] = json!(token);
    }
    socket.send(Message::Text(message.to_string().into())).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(5), socket.next()).await.unwrap().unwrap().unwrap();
    let reply: Value = serde_json::from_str(reply.to_text().unwrap()).unwrap();
    common::protocol::assert_server_message(&reply);
    if reply["type"] != "error" {
        common::protocol::assert_client_message(&message);
    }
    (reply["type"].as_str().unwrap_or_default().to_owned(), reply["message"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_need_a_valid_token_and_land_in_the_users_home_folder() {
    // GIVEN the local stack with OIDC and read tokens on
    let key = Key::generate("k1");
    let issuer = Issuer::start(&[&key]).await;
    let base = start_stack(&issuer).await;

    // THEN an upload without, or with a bad, token is refused as HTTP API's authorizer would
    let expired = token(&issuer.url, &key, "alice", |c| drop(c.insert("exp".into(), json!(now() - 3600))));
    let foreign = token(&issuer.url, &key, "alice", |c| drop(c.insert("aud".into(), json!("other-app"))));
    for bearer in [None, Some("garbage"), Some(expired.as_str()), Some(foreign.as_str())] {
        assert_eq!(grant(&base, bearer).await, (401, json!({"message": "Unauthorized"})), "{bearer:?}");
    }
    // AND a valid token gets a key in the user's home folder, with its read token
    let (code, granted) = grant(&base, Some(&issuer.token(&key, "auth0|alice"))).await;
    assert_eq!(code, 200, "{granted}");
    let key_name = granted["input_file"].as_str().unwrap();
    assert!(key_name.starts_with("uploads/auth0|alice/") && key_name.ends_with("/clip.mp4"), "{key_name}");
    assert!(granted["token"].is_string());
    // AND the preflight needs no token and lets the Authorization header through
    let preflight = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{base}/media/uploads"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization,content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert!(preflight.headers()["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
}

async fn renew(base: &str, bearer: Option<&str>, body: Value) -> (u16, Value) {
    common::post_json(&format!("{base}/media/tokens"), &body, bearer).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_renews_a_token_by_bearer_and_everyone_else_by_token() {
    // GIVEN the local stack with OIDC and read tokens on
    let key = Key::generate("k1");
    let issuer = Issuer::start(&[&key]).await;
    let base = start_stack(&issuer).await;
    let alice = issuer.token(&key, "alice");
    let access = ReadAccess::new(Some(SECRET.to_vec()));

    // WHEN alice asks for a token for a file in her home folder, with her access token only
    let (code, body) = renew(&base, Some(&alice), json!({"input_file": "uploads/alice/1/a.mp4"})).await;
    // THEN she gets one
    assert_eq!(code, 200, "{body}");
    let now = mcpush_core::now_ms() / 1000;
    assert_eq!(access.check("uploads/alice/1/a.mp4", body["token"].as_str(), now), Ok(()));
    // AND her folder too, but nothing outside it without a token
    assert_eq!(renew(&base, Some(&alice), json!({"prefix": "uploads/alice/"})).await.0, 200);
    assert_eq!(renew(&base, Some(&alice), json!({"input_file": "uploads/bob/1/a.mp4"})).await.0, 403);
    // AND a caller without a bearer is served on the same route by the token they hold
    let held = mcpush_core::domain::token::issue(SECRET, "uploads/bob/1/a.mp4", now + 60);
    assert_eq!(renew(&base, None, json!({"input_file": "uploads/bob/1/a.mp4", "token": held})).await.0, 200);
    // AND a bearer that is not a valid access token is refused as such
    let (code, body) = renew(&base, Some("garbage"), json!({"input_file": "uploads/alice/1/a.mp4"})).await;
    assert_eq!(code, 401, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_connection_watches_its_own_uploads_without_read_tokens() {
    // GIVEN the local stack with OIDC and read tokens on
    let key = Key::generate("k1");
    let issuer = Issuer::start(&[&key]).await;
    let base = start_stack(&issuer).await;
    let alice = issuer.token(&key, "alice");

    // THEN a connection with a bad access token is refused before it opens
    let expired = token(&issuer.url, &key, "alice", |c| drop(c.insert("exp".into(), json!(now() - 3600))));
    let wrong_issuer =
        token(&issuer.url, &key, "alice", |c| drop(c.insert("iss".into(), json!("https://evil.example"))));
    for bad in [expired.as_str(), wrong_issuer.as_str(), "not-a-jwt"] {
        assert_eq!(connect(&base, Some(bad)).await.err(), Some(403), "{bad}");
    }

    // WHEN alice uploads a file and connects with her access token
    let (_, granted) = grant(&base, Some(&alice)).await;
    let mine = granted["input_file"].as_str().unwrap().to_owned();
    let mut socket = connect(&base, Some(&alice)).await.unwrap();

    // THEN she may watch it without a read token, and nobody else's without one
    assert_eq!(subscribe(&mut socket, &mine, None).await.0, "subscribed");
    let (kind, message) = subscribe(&mut socket, "uploads/bob/1/clip.mp4", None).await;
    assert_eq!((kind.as_str(), message.as_str()), ("error", "a \"token\" is required"));
    assert_eq!(subscribe(&mut socket, "uploads/alice2/1/clip.mp4", None).await.0, "error");
    let bobs = mcpush_core::domain::token::issue(SECRET, "uploads/bob/1/clip.mp4", now() + 60);
    assert_eq!(
        subscribe(&mut socket, "uploads/bob/1/clip.mp4", Some(&bobs)).await.0,
        "subscribed",
        "a read token still works"
    );

    // AND an anonymous connection needs read tokens even for alice's files
    let mut anonymous = connect(&base, None).await.unwrap();
    assert_eq!(subscribe(&mut anonymous, &mine, None).await.0, "error");
    assert_eq!(subscribe(&mut anonymous, &mine, granted["token"].as_str()).await.0, "subscribed");

    // WHEN her file is uploaded as granted
    let mut form = reqwest::multipart::Form::new();
    for (name, value) in granted["upload"]["fields"].as_object().unwrap() {
        form = form.text(name.clone(), value.as_str().unwrap().to_owned());
    }
    form = form.part("file", reqwest::multipart::Part::bytes(vec![b'x'; 1000]).file_name("clip.mp4"));
    let response =
        reqwest::Client::new().post(granted["upload"]["url"].as_str().unwrap()).multipart(form).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 204);

    // THEN her signed-in connection sees the job through to COMPLETE
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = tokio::time::timeout(left, socket.next()).await.expect("COMPLETE in time").unwrap().unwrap();
        let message: Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
        if message["type"] == "status" && message["input_file"] == mine && message["job_status"] == "COMPLETE" {
            break;
        }
    }
}

#[tokio::test]
async fn the_connect_authorizer_answers_in_api_gateways_policy_format() {
    use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
    use mcpush_core::handlers::ws_authorizer::authorize;
    let key = Key::generate("k1");
    let issuer = Issuer::start(&[&key]).await;
    let verifier = OidcVerifier::new(issuer.config());
    let request = |query: Value| -> ApiGatewayCustomAuthorizerRequestTypeRequest {
        serde_json::from_value(json!({
            "type": "REQUEST",
            "methodArn": "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/$connect",
            "headers": {"Host": "abc123.execute-api.eu-west-1.amazonaws.com"},
            "queryStringParameters": query,
            "requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "connectionId": "L0SM9cOFvHcCIhw=", "apiId": "abc123", "stage": "prod"},
        }))
        .unwrap()
    };
    let answer = |response| serde_json::to_value(response).unwrap();

    // THEN a good token is allowed, bound to its sub
    let signed_in =
        answer(authorize(&verifier, &request(json!({"access_token": issuer.token(&key, "alice")}))).await.unwrap());
    assert_eq!(signed_in["principalId"], "alice");
    assert_eq!(signed_in["context"], json!({"sub": "alice"}));
    assert_eq!(
        signed_in["policyDocument"],
        json!({"Version": "2012-10-17", "Statement": [{"Action": ["execute-api:Invoke"], "Effect": "Allow", "Resource": ["arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/$connect"]}]})
    );
    // AND no token is an anonymous pass, a bad one a Deny naming why
    let anonymous = answer(authorize(&verifier, &request(json!({}))).await.unwrap());
    assert_eq!(
        (anonymous["principalId"].clone(), anonymous["policyDocument"]["Statement"][0]["Effect"].clone()),
        (json!("anonymous"), json!("Allow"))
    );
    let expired = token(&issuer.url, &key, "alice", |c| drop(c.insert("exp".into(), json!(now() - 3600))));
    let refused = answer(authorize(&verifier, &request(json!({"access_token": expired}))).await.unwrap());
    assert_eq!(refused["policyDocument"]["Statement"][0]["Effect"], "Deny");
    assert_eq!(refused["context"]["reason"], "the token has expired");

    // AND an issuer that cannot be reached is an error (API Gateway answers 500), not a pass
    let gone = OidcVerifier::new(OidcConfig::new("http://127.0.0.1:9/", AUDIENCE).unwrap());
    let outcome =
        authorize(&gone, &request(json!({"access_token": token("http://127.0.0.1:9/", &key, "alice", |_| {})}))).await;
    assert!(matches!(outcome, Err(IdentityError::KeysUnavailable(_))), "{outcome:?}");
}
