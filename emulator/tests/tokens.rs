//! `/oauth/token`, the JWKS and key rotation, dev-user tokens, Management API authentication.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn client_credentials_tokens_have_auth0_claims() {
    let emu = TestEmulator::start(config()).await;
    let (id, secret) = emu.m2m();
    let audience = format!("{}/api/v2/", emu.base);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
        ("audience", audience.as_str()),
    ];
    let (status, body) = emu.token_request(&form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86400);
    assert_eq!(
        body["scope"],
        "read:clients update:clients create:clients delete:clients"
    );

    let token = body["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let jwks: JwkSet = emu
        .http
        .get(emu.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the signing key is published");
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[&audience]);
    v.set_issuer(&[format!("{}/", emu.base)]);
    let c = jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &v)
        .unwrap()
        .claims;
    assert_eq!(c["sub"], format!("{id}@clients"));
    assert_eq!(c["azp"], id);
    assert_eq!(c["gty"], "client-credentials");
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        86400
    );

    // JSON bodies and client_secret_basic work too.
    let res = emu.http.post(emu.url("/oauth/token")).json(&json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret, "audience": audience})).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let res = emu
        .http
        .post(emu.url("/oauth/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("audience", audience.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn token_errors_have_oauth_shape_and_auth0_statuses() {
    let emu = TestEmulator::start(config()).await;
    let (id, secret) = emu.m2m();
    let mgmt = format!("{}/api/v2/", emu.base);
    let api = emu.tenant["api_audience"].as_str().unwrap().to_owned();
    let spa = emu.tenant["spa_client_id"].as_str().unwrap().to_owned();
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![
                ("client_id", &id),
                ("client_secret", &secret),
                ("audience", &mgmt),
            ],
            400,
            "invalid_request",
            "grant_type",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
            400,
            "unsupported_grant_type",
            "password",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_secret", &secret),
                ("audience", &mgmt),
            ],
            400,
            "invalid_request",
            "client_id",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", "wrong"),
                ("audience", &mgmt),
            ],
            401,
            "access_denied",
            "Unauthorized",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "nobody"),
                ("client_secret", &secret),
                ("audience", &mgmt),
            ],
            401,
            "access_denied",
            "Unauthorized",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
            403,
            "access_denied",
            "No audience",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("audience", "https://nope/"),
            ],
            403,
            "access_denied",
            "Service not found",
        ),
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
                ("audience", &api),
            ],
            403,
            "access_denied",
            "client-grant",
        ),
    ];
    for (form, status, error, needle) in cases {
        let (got, body) = emu.token_request(&form).await;
        assert_eq!(
            (got, body["error"].as_str().unwrap()),
            (status, error),
            "{form:?}: {body}"
        );
        assert!(
            body["error_description"].as_str().unwrap().contains(needle),
            "{body}"
        );
    }
    // A SPA has no client_credentials grant type.
    let spa_secret = {
        let token = emu.management_token().await;
        let (_, c) = emu
            .call(Method::GET, &format!("/api/v2/clients/{spa}"), &token, None)
            .await;
        c["client_secret"].as_str().unwrap().to_owned()
    };
    let (got, body) = emu
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", &spa),
            ("client_secret", &spa_secret),
            ("audience", &mgmt),
        ])
        .await;
    assert_eq!(
        (got, body["error"].as_str().unwrap()),
        (403, "unauthorized_client")
    );
}

#[tokio::test]
async fn management_api_checks_token_and_scope() {
    let emu = TestEmulator::start(config()).await;
    let get = |token: Option<String>| {
        let req = emu.http.get(emu.url("/api/v2/clients"));
        async move {
            let res = match token {
                Some(t) => req.bearer_auth(t),
                None => req,
            }
            .send()
            .await
            .unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    assert_mgmt_error(&get(None).await, 401, None, "Missing authentication");
    assert_mgmt_error(&get(Some("junk".into())).await, 401, None, "Invalid token");
    // A user token for another API is not a Management API token.
    let user: Value = emu
        .http
        .post(emu.url("/emulator/users/token"))
        .json(&json!({"sub": "auth0|u1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_mgmt_error(
        &get(Some(user["access_token"].as_str().unwrap().into())).await,
        401,
        None,
        "Invalid token",
    );
    // Expired, and signed by the right key.
    let now = chrono::Utc::now().timestamp();
    let expired = sign(
        &json!({"iss": format!("{}/", emu.base), "aud": format!("{}/api/v2/", emu.base), "sub": "x@clients", "iat": now - 100, "exp": now - 10, "scope": "read:clients"}),
    );
    assert_mgmt_error(
        &get(Some(expired)).await,
        401,
        None,
        "Expired token received for JSON Web Token validation",
    );
    // Read-only token: GET works, PATCH is 403 with Auth0's body.
    let read_only = sign(
        &json!({"iss": format!("{}/", emu.base), "aud": format!("{}/api/v2/", emu.base), "sub": "x@clients", "iat": now, "exp": now + 60, "scope": "read:clients"}),
    );
    assert_eq!(get(Some(read_only.clone())).await.0, 200);
    let spa = emu.tenant["spa_client_id"].as_str().unwrap();
    let got = emu
        .call(
            Method::PATCH,
            &format!("/api/v2/clients/{spa}"),
            &read_only,
            Some(json!({"callbacks": []})),
        )
        .await;
    assert_mgmt_error(
        &got,
        403,
        Some("insufficient_scope"),
        "Insufficient scope, expected any of: update:clients",
    );
    for (method, path, scope) in [
        (Method::POST, "/api/v2/clients".to_owned(), "create:clients"),
        (
            Method::DELETE,
            format!("/api/v2/clients/{spa}"),
            "delete:clients",
        ),
    ] {
        let got = emu
            .call(method, &path, &read_only, Some(json!({"name": "x"})))
            .await;
        assert_mgmt_error(&got, 403, Some("insufficient_scope"), scope);
    }
}

fn sign(claims: &Value) -> String {
    let key = fleetgate_emulator::keys::SigningKey::from_pem(FIXTURE_KEY).unwrap();
    key.sign(claims)
}

#[tokio::test]
async fn key_rotation_keeps_the_previous_key_published_for_a_while() {
    let emu = TestEmulator::start(config()).await;
    let old_token = emu.management_token().await;
    let kids = |jwks: Value| {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let jwks: Value = emu
        .http
        .get(emu.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = kids(jwks.clone());
    assert_eq!(first.len(), 1);
    let key = &jwks["keys"][0];
    for field in ["n", "e", "kid"] {
        assert!(key[field].is_string(), "{key}");
    }
    assert_eq!(
        (
            key["kty"].as_str(),
            key["alg"].as_str(),
            key["use"].as_str()
        ),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );

    let rotated: Value = emu
        .http
        .post(emu.url("/emulator/keys/rotate"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks: Value = emu
        .http
        .get(emu.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let both = kids(jwks);
    assert_eq!(both.len(), 2);
    assert!(both.contains(&first[0]));
    let new_token = emu.management_token().await;
    assert_eq!(
        jsonwebtoken::decode_header(&new_token)
            .unwrap()
            .kid
            .as_deref(),
        rotated["signing_kid"].as_str()
    );
    assert_eq!(
        emu.call(Method::GET, "/api/v2/clients", &old_token, None)
            .await
            .0,
        200,
        "old key still published"
    );

    emu.http
        .post(emu.url("/emulator/keys/rotate"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_mgmt_error(
        &emu.call(Method::GET, "/api/v2/clients", &old_token, None)
            .await,
        401,
        None,
        "Invalid token",
    );
    assert_eq!(
        emu.call(Method::GET, "/api/v2/clients", &new_token, None)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn dev_user_tokens_carry_sub_audience_and_permissions() {
    let emu = TestEmulator::start(config()).await;
    let api = emu.tenant["api_audience"].as_str().unwrap();
    let res: Value = emu
        .http
        .post(emu.url("/emulator/users/token"))
        .json(&json!({"sub": "auth0|alice", "permissions": ["fleet:admin"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let c = claims(res["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], "auth0|alice");
    assert_eq!(c["aud"], json!([api, format!("{}/userinfo", emu.base)]));
    assert_eq!(c["permissions"], json!(["fleet:admin"]));
    assert_eq!(c["iss"], format!("{}/", emu.base));
    let res: Value = emu
        .http
        .post(emu.url("/emulator/users/token"))
        .json(&json!({"sub": "auth0|bob", "scope": "read:things"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        claims(res["access_token"].as_str().unwrap())["aud"],
        json!(api),
        "without openid, aud is a string"
    );
    let res = emu
        .http
        .post(emu.url("/emulator/users/token"))
        .json(&json!({"sub": "auth0|x", "audience": "https://unknown"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}
