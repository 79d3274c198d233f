//! Admin tokens: RS256 from the tenant's JWKS, issuer, audience, time, permission.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

async fn call(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let req = app.http.get(app.url("/v1/instances"));
    match token {
        Some(t) => req.bearer_auth(t),
        None => req,
    }
    .send()
    .await
    .unwrap()
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

#[sqlx::test]
async fn valid_admin_tokens_are_accepted(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    assert_eq!(call(&app, Some(&app.admin_token)).await.status(), 200);
    // The permission may come in `scope` instead of `permissions`, and `aud` may be a string.
    let claims = app.tenant.claims(&[]);
    let claims = with(
        with(claims, "scope", json!("openid fleet:admin")),
        "aud",
        json!(AUDIENCE),
    );
    assert_eq!(
        call(&app, Some(&app.tenant.sign(&claims))).await.status(),
        200
    );
}

#[sqlx::test]
async fn missing_or_bad_tokens_are_401_with_a_challenge(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let t = &app.tenant;
    let now = chrono::Utc::now().timestamp();
    let good = t.claims(&["fleet:admin"]);
    let header_b64 = |h: Value| URL_SAFE_NO_PAD.encode(h.to_string());
    let body_b64 = URL_SAFE_NO_PAD.encode(good.to_string());

    let res = call(&app, None).await;
    assert_eq!(
        res.headers()["www-authenticate"],
        r#"Bearer realm="fleetgate""#
    );
    assert_problem(res, 401, "unauthorized").await;

    let hs256_with_public_key = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(t.kid().into());
        jsonwebtoken::encode(&h, &good, &EncodingKey::from_secret(TEST_PUBLIC_KEY)).unwrap()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("garbage", "not-a-jwt".into(), "well-formed"),
        (
            "alg none",
            format!(
                "{}.{body_b64}.",
                header_b64(json!({"alg": "none", "typ": "JWT", "kid": t.kid()}))
            ),
            "well-formed",
        ),
        (
            "HS256 signed with the public key",
            hs256_with_public_key,
            "RS256",
        ),
        ("no kid", sign_with(TEST_KEY, None, &good), "kid"),
        (
            "unknown kid",
            sign_with(OTHER_KEY, Some("someone-else"), &good),
            "not signed by a key of the tenant",
        ),
        (
            "right kid, wrong key",
            sign_with(OTHER_KEY, Some(t.kid()), &good),
            "bad signature",
        ),
        (
            "wrong issuer",
            t.sign(&with(
                good.clone(),
                "iss",
                json!("https://evil.example.com/"),
            )),
            "wrong issuer",
        ),
        (
            "issuer without trailing slash",
            t.sign(&with(good.clone(), "iss", json!(t.base_url))),
            "wrong issuer",
        ),
        (
            "wrong audience",
            t.sign(&with(
                good.clone(),
                "aud",
                json!(["https://other.api", "x"]),
            )),
            "wrong audience",
        ),
        (
            "expired",
            t.sign(&with(good.clone(), "exp", json!(now - 120))),
            "expired",
        ),
        (
            "not yet valid",
            t.sign(&with(good.clone(), "nbf", json!(now + 600))),
            "not valid yet",
        ),
        (
            "no exp",
            t.sign(&{
                let mut c = good.clone();
                c.as_object_mut().unwrap().remove("exp");
                c
            }),
            "required claim",
        ),
        (
            "tampered payload",
            {
                let real = t.sign(&good);
                let parts: Vec<&str> = real.split('.').collect();
                let evil = URL_SAFE_NO_PAD
                    .encode(with(good.clone(), "sub", json!("auth0|mallory")).to_string());
                format!("{}.{evil}.{}", parts[0], parts[2])
            },
            "bad signature",
        ),
    ];
    for (name, token, needle) in cases {
        let res = call(&app, Some(&token)).await;
        let challenge = res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.starts_with(r#"Bearer realm="fleetgate", error="invalid_token""#),
            "{name}: {challenge}"
        );
        let detail = assert_problem(res, 401, "unauthorized").await;
        assert!(detail.contains(needle), "{name}: {detail}");
    }
    let res = app
        .http
        .get(app.url("/v1/instances"))
        .header("authorization", format!("Basic {}", app.admin_token))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
}

#[sqlx::test]
async fn a_valid_token_without_the_permission_is_403(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for perms in [&[][..], &["fleet:read"][..], &["fleet:admins"][..]] {
        let res = call(&app, Some(&app.tenant.sign(&app.tenant.claims(perms)))).await;
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("insufficient_scope")
        );
        assert_problem(res, 403, "forbidden").await;
    }
}

#[sqlx::test]
async fn junk_key_ids_cannot_hammer_the_tenant(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    assert_eq!(call(&app, Some(&app.admin_token)).await.status(), 200);
    for i in 0..25 {
        let token = sign_with(
            OTHER_KEY,
            Some(&format!("junk-{i}")),
            &app.tenant.claims(&["fleet:admin"]),
        );
        assert_eq!(call(&app, Some(&token)).await.status(), 401);
    }
    assert_eq!(call(&app, Some(&app.admin_token)).await.status(), 200);
    let fetches = app.tenant.jwks_fetches().await;
    assert_eq!(
        fetches, 1,
        "one fetch at first use, none for junk kids within the refetch interval"
    );
}

#[sqlx::test]
async fn credentials_are_checked_before_the_body(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let post = |token: Option<&str>| {
        let req = app
            .http
            .post(app.url("/v1/instances"))
            .header("content-type", "application/json")
            .body("{broken");
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    };
    assert_problem(post(None).send().await.unwrap(), 401, "unauthorized").await;
    assert_problem(
        post(Some("junk")).send().await.unwrap(),
        401,
        "unauthorized",
    )
    .await;
    let reader = app.tenant.sign(&app.tenant.claims(&[]));
    assert_problem(post(Some(&reader)).send().await.unwrap(), 403, "forbidden").await;
    assert_problem(
        post(Some(&app.admin_token)).send().await.unwrap(),
        400,
        "invalid_json",
    )
    .await;
}

/// A token is accepted only when it was issued to one of fleetgate's own applications
/// (`azp`, or `client_id` in the RFC 9068 profile): the status page's and
/// `FLEETGATE_ADMIN_CLIENTS`. A token the instances' SPA obtained (a login at an instance the
/// Action let through without the instance claim, asking for fleetgate's audience) is refused
/// for admins and owners alike, whatever its permissions.
#[sqlx::test]
async fn only_tokens_issued_to_fleetgates_own_applications_are_accepted(pool: PgPool) {
    let tenant = TestTenant::start().await;
    let mut vars = tenant.reconciler_vars().await;
    let spa = vars[2].1.clone();
    vars.push(("FLEETGATE_UI_CLIENT_ID", "status-console".into()));
    let app = TestApp::spawn_with(pool, tenant, &vars).await;
    app.deploy("acme", &["acme.apps.example.com"]).await;
    let t = &app.tenant;
    let issued_to = |claims: Value, key: &str, client: Option<&str>| {
        let mut claims = claims;
        let object = claims.as_object_mut().unwrap();
        object.remove("azp");
        if let Some(client) = client {
            object.insert(key.into(), json!(client));
        }
        t.sign(&claims)
    };
    let admin = t.claims(&["fleet:admin"]);
    for (azp_or_client_id, client, status) in [
        ("azp", Some(ADMIN_CLIENT), 200),
        ("client_id", Some(ADMIN_CLIENT), 200),
        ("azp", Some("status-console"), 200),
        ("azp", Some(spa.as_str()), 401),
        ("azp", Some("some-other-app"), 401),
        ("azp", None, 401),
    ] {
        let res = call(
            &app,
            Some(&issued_to(admin.clone(), azp_or_client_id, client)),
        )
        .await;
        assert_eq!(res.status(), status, "{azp_or_client_id} {client:?}");
        if status == 401 {
            let detail = assert_problem(res, 401, "unauthorized").await;
            assert!(detail.contains("FLEETGATE_ADMIN_CLIENTS"), "{detail}");
        }
    }
    // Two claims naming two applications name none.
    let mut both = admin.clone();
    both["client_id"] = json!(spa);
    assert_eq!(call(&app, Some(&t.sign(&both))).await.status(), 401);
    // The owner, with a token from a login at acme's SPA: no key rotated, nothing changed.
    let owner = with(t.claims(&[]), "sub", json!("auth0|owner-1"));
    let before = app.snapshot().await;
    let rotate = |token: String| {
        app.http
            .post(app.url("/v1/instances/acme/keys/rotate"))
            .bearer_auth(token)
            .send()
    };
    let res = rotate(issued_to(owner.clone(), "azp", Some(&spa)))
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
    assert_eq!(app.snapshot().await, before);
    let res = rotate(issued_to(owner, "azp", Some(ADMIN_CLIENT)))
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "the same owner through an admin client");
}

/// The whole path a person trying fleetgate locally takes: the emulator mints a user token
/// and fleetgate, pointed at the emulator, accepts it.
#[sqlx::test]
async fn fleetgate_accepts_tokens_minted_by_the_emulator(pool: PgPool) {
    let tenant = TestTenant::start().await;
    let base = tenant.base_url.clone();
    // The tokens are issued to the seeded M2M application, named one of fleetgate's own.
    let m2m = tenant.seeded().await["m2m_client_id"].clone();
    let own = [("FLEETGATE_ADMIN_CLIENTS", m2m.as_str().unwrap().to_owned())];
    let app = fleetgate::startup::Application::build(&settings_with(&base, &own), pool).unwrap();
    let addr = format!("http://127.0.0.1:{}", app.port());
    let app_stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(app.run_until_stopped(app_stop.clone()));
    let _app_stop = app_stop.drop_guard();

    let http = reqwest::Client::new();
    let mint = |permissions: Vec<&str>| {
        let req = http
            .post(format!("{base}/emulator/users/token"))
            .json(&json!({"sub": "auth0|alice", "permissions": permissions, "client_id": m2m}));
        async move {
            req.send().await.unwrap().json::<Value>().await.unwrap()["access_token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let admin = mint(vec!["fleet:admin"]).await;
    let res = http
        .get(format!("{addr}/v1/instances"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let user = mint(vec![]).await;
    let res = http
        .get(format!("{addr}/v1/instances"))
        .bearer_auth(&user)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

/// Tokens users get by logging in at an instance are for that instance's API only: fleetgate
/// refuses a token for the instances' audience, and one carrying the instance claim the
/// post-login Action sets, even with `fleet:admin` (an admin who logs in at a customer's
/// instance hands it that token), and says why in the 401.
#[sqlx::test]
async fn tokens_minted_at_an_instance_are_refused(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.deploy("alpha", &["alpha.apps.example.com"]).await;
    let t = &app.tenant;
    let admin = t.claims(&["fleet:admin"]);
    let refused = [
        (
            "instances' audience",
            with(admin.clone(), "aud", json!(INSTANCE_AUDIENCE)),
            "wrong audience",
        ),
        (
            "both audiences",
            with(admin.clone(), "aud", json!([AUDIENCE, INSTANCE_AUDIENCE])),
            "instances' API",
        ),
        (
            "instance claim",
            with(
                admin.clone(),
                "https://fleetgate.dev/instance",
                json!("beta"),
            ),
            "instance claim",
        ),
    ];
    for (what, claims, says) in refused {
        // Creating a grant is what the probe managed with a token from another instance.
        let res = app
            .http
            .post(app.url("/v1/instances/alpha/grants"))
            .bearer_auth(t.sign(&claims))
            .json(&json!({"user_id": "auth0|mallory", "role": "admin"}))
            .send()
            .await
            .unwrap();
        assert!(
            res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("invalid_token"),
            "{what}"
        );
        let detail = assert_problem(res, 401, "unauthorized").await;
        assert!(detail.contains(says), "{what}: {detail}");
    }
    let (_, grants) = app.get_json("/v1/instances/alpha/grants").await;
    assert_eq!(grants["grants"], json!([]));

    // The claim of another namespace is not ours to judge; the configured one is.
    let other_namespace = with(admin.clone(), "https://example.org/instance", json!("beta"));
    assert_eq!(
        call(&app, Some(&t.sign(&other_namespace))).await.status(),
        200
    );
    let custom = TestApp::spawn_with(
        app.pool.clone(),
        TestTenant::start().await,
        &[("FLEETGATE_CLAIM_NAMESPACE", "https://example.org".into())],
    )
    .await;
    let claims = with(
        custom.tenant.claims(&["fleet:admin"]),
        "https://example.org/instance",
        json!("beta"),
    );
    assert_eq!(
        call(&custom, Some(&custom.tenant.sign(&claims)))
            .await
            .status(),
        401
    );
}

/// The other direction: instances are told the instances' audience (never fleetgate's) and
/// the claim to check, and the tenant mints tokens for that audience.
#[sqlx::test]
async fn instances_are_told_their_own_audience(pool: PgPool) {
    let tenant = TestTenant::start().await;
    let vars = tenant.reconciler_vars().await;
    let app = TestApp::spawn_with(pool, tenant, &vars).await;
    let deployed = app.deploy("alpha", &["alpha.apps.example.com"]).await;
    let key = deployed["instance_key"].as_str().unwrap();
    let mut config = Value::Null;
    for _ in 0..100 {
        let res = app
            .http
            .get(app.url("/v1/instances/alpha/config"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            config = res.json().await.unwrap();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(config["audience"], INSTANCE_AUDIENCE, "{config}");
    assert_eq!(config["instance_claim"], "https://fleetgate.dev/instance");
    let minted: Value = app
        .http
        .post(format!("{}/emulator/users/token", app.tenant.base_url))
        .json(&json!({"sub": "auth0|owner-1", "audience": INSTANCE_AUDIENCE}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = minted["access_token"]
        .as_str()
        .expect("a token for the instances' API");
    assert_eq!(call(&app, Some(token)).await.status(), 401);
}
