//! The login side over HTTP, as a browser and an SPA drive it (no browser needed): discovery,
//! `/authorize` and its callback matching, the login form and session, codes with PKCE,
//! refresh-token rotation, CORS, `/userinfo`, logout, and the post-login Action run for real.

use reqwest::{Method, header};
use serde_json::{Value, json};

use crate::{browser::*, helpers::*};

pub const APP: &str = "https://acme.apps.example.com";
pub const CALLBACK: &str = "https://acme.apps.example.com/callback";
/// The user [`setup`] makes: ann@example.com, whose password is this.
pub const ANN_PASSWORD: &str = "s3cret!";

/// The emulator with the seeded SPA's lists set for [`APP`] (its callback, a wildcard one and
/// an organization one; its logout URL, web origin and another allowed origin), and a user,
/// ann@example.com ([`ANN_PASSWORD`]); answers the emulator, the SPA's id and ann's user id.
pub async fn setup(config: fleetgate_emulator::EmulatorConfig) -> (TestEmulator, String, String) {
    let emu = TestEmulator::start(config).await;
    let spa = emu.tenant["spa_client_id"].as_str().unwrap().to_owned();
    let token = emu.management_token().await;
    let (status, _) = emu
        .call(
            Method::PATCH,
            &format!("/api/v2/clients/{spa}"),
            &token,
            Some(json!({
                "callbacks": [CALLBACK, "https://*.custom.example.com/callback", "https://{organization_name}.org.example.com/callback"],
                "allowed_logout_urls": [format!("{APP}/")],
                "web_origins": [APP],
                "allowed_origins": ["https://other.example.com"],
            })),
        )
        .await;
    assert_eq!(status, 200);
    let res = emu
        .http
        .post(emu.url("/emulator/users"))
        .json(&json!({"email": "ann@example.com", "password": "s3cret!", "email_verified": true, "name": "Ann"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let user: Value = res.json().await.unwrap();
    (emu, spa, user["user_id"].as_str().unwrap().to_owned())
}

pub async fn exchange(
    emu: &TestEmulator,
    form: &[(&str, &str)],
    origin: Option<&str>,
) -> (u16, Value, Option<String>) {
    let mut req = emu.http.post(emu.url("/oauth/token")).form(form);
    if let Some(o) = origin {
        req = req.header(header::ORIGIN, o);
    }
    let res = req.send().await.unwrap();
    let allowed = res
        .headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .map(|v| v.to_str().unwrap().to_owned());
    (res.status().as_u16(), res.json().await.unwrap(), allowed)
}

/// The token request that exchanges `code` with this redirect URI and PKCE verifier.
pub fn code_form<'a>(
    spa: &'a str,
    code: &'a str,
    redirect_uri: &'a str,
    verifier: &'a str,
) -> [(&'a str, &'a str); 5] {
    [
        ("grant_type", "authorization_code"),
        ("client_id", spa),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ]
}

/// Exchanges a code from [`code_for`] as the SPA does (PKCE, the same redirect URI).
pub async fn exchange_code(
    emu: &TestEmulator,
    spa: &str,
    code: &str,
    origin: Option<&str>,
) -> (u16, Value, Option<String>) {
    exchange(emu, &code_form(spa, code, CALLBACK, VERIFIER), origin).await
}

/// A code for Ann: through the login form, or at once with a session.
pub async fn code_for(b: &mut Browser, spa: &str) -> String {
    let (_, params) = b.login(spa, CALLBACK, "ann@example.com", "s3cret!").await;
    params["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn discovery_names_every_endpoint_under_the_tokens_issuer() {
    let emu = TestEmulator::start(config()).await;
    let doc: Value = emu.get_json("/.well-known/openid-configuration").await;
    assert_eq!(doc["issuer"], emu.tenant["issuer"]);
    for (field, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/.well-known/jwks.json"),
        ("end_session_endpoint", "/oidc/logout"),
    ] {
        assert_eq!(doc[field], emu.url(path), "{field}");
    }
    assert_eq!(
        doc["code_challenge_methods_supported"],
        json!(["S256", "plain"])
    );
    assert_eq!(
        doc["response_modes_supported"],
        json!(["query", "fragment", "form_post", "web_message"])
    );
}

#[tokio::test]
async fn a_login_runs_from_authorize_to_tokens_with_pkce() {
    let (emu, spa, user_id) = setup(config()).await;
    let mut b = Browser::new(&emu.base);
    let res = b
        .authorize(&spa, CALLBACK, &[("login_hint", "ann@example.com")])
        .await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("value=\"ann@example.com\""),
        "login_hint fills the form"
    );
    // A wrong password shows the form again, with an error.
    let res = b.log_in(&page, "ann@example.com", "wrong").await;
    assert_eq!(res.status(), 200);
    let again = res.text().await.unwrap();
    assert!(again.contains("Wrong email or password"));
    let res = b.log_in(&again, "ANN@example.com", "s3cret!").await;
    let (to, params) = redirected(&res);
    assert_eq!(
        (to.as_str(), params["state"].as_str()),
        (CALLBACK, Some("st-1"))
    );
    let code = params["code"].as_str().unwrap().to_owned();

    // The verifier and the redirect URI must match; a code works once.
    let wrong_verifier = "x".repeat(43);
    let form = code_form(&spa, &code, CALLBACK, &wrong_verifier);
    let (status, body, _) = exchange(&emu, &form, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_grant")),
        "{body}"
    );
    let code = code_for(&mut b, &spa).await;
    let other = "https://acme.apps.example.com/other";
    let (status, body, _) = exchange(&emu, &code_form(&spa, &code, other, VERIFIER), None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("invalid_grant")),
        "{body}"
    );
    let code = code_for(&mut b, &spa).await;
    let form = code_form(&spa, &code, CALLBACK, VERIFIER);
    let (status, tokens, _) = exchange(&emu, &form, None).await;
    assert_eq!(status, 200, "{tokens}");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(
        (id["sub"].as_str(), id["aud"].as_str(), id["nonce"].as_str()),
        (Some(user_id.as_str()), Some(spa.as_str()), Some("n-1"))
    );
    assert_eq!(
        (
            id["email"].as_str(),
            id["email_verified"].as_bool(),
            id["name"].as_str()
        ),
        (Some("ann@example.com"), Some(true), Some("Ann"))
    );
    assert_eq!(id["iss"], emu.tenant["issuer"]);
    assert!(
        tokens["refresh_token"].is_string(),
        "offline_access was asked"
    );
    let (status, again, _) = exchange(&emu, &form, None).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (403, Some("invalid_grant")),
        "a code works once"
    );

    // The access token is for /userinfo (no audience was asked).
    let info = emu
        .http
        .get(emu.url("/userinfo"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    let info: Value = info.json().await.unwrap();
    assert_eq!(
        (info["sub"].as_str(), info["email"].as_str()),
        (Some(user_id.as_str()), Some("ann@example.com"))
    );
    assert_eq!(
        emu.http
            .get(emu.url("/userinfo"))
            .bearer_auth("junk")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );

    // The session lets the next login skip the form, prompt=none included.
    let res = b.authorize(&spa, CALLBACK, &[("prompt", "none")]).await;
    let (_, params) = redirected(&res);
    assert!(params["code"].is_string(), "{params}");
    // An API audience gives an access token for it (and /userinfo, with openid).
    let api = emu.tenant["api_audience"].as_str().unwrap().to_owned();
    let res = b
        .authorize(&spa, CALLBACK, &[("audience", api.as_str())])
        .await;
    let (_, params) = redirected(&res);
    let code = params["code"].as_str().unwrap().to_owned();
    let (_, tokens, _) = exchange_code(&emu, &spa, &code, None).await;
    let access = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(access["aud"], json!([api, emu.url("/userinfo")]));
    assert_eq!(
        (access["azp"].as_str(), access["sub"].as_str()),
        (Some(spa.as_str()), Some(user_id.as_str()))
    );
}

#[tokio::test]
async fn redirect_uris_are_matched_as_auth0_matches_them_and_a_mismatch_never_redirects() {
    let (emu, spa, _) = setup(config()).await;
    let mut b = Browser::new(&emu.base);
    for (uri, why) in [
        ("https://evil.example.com/callback", "not listed"),
        (
            "https://a.b.custom.example.com/callback",
            "a wildcard stands for one label",
        ),
        ("https://acme.apps.example.com/callback/", "trailing slash"),
        (
            "https://acme.apps.example.com:8443/callback",
            "another port",
        ),
        ("http://acme.apps.example.com/callback", "another scheme"),
        (
            "https://acme.org.example.com/callback",
            "organization entries need an organization",
        ),
    ] {
        let res = b.authorize(&spa, CALLBACK, &[("redirect_uri", uri)]).await;
        assert_eq!(res.status(), 400, "{why}");
        assert!(
            res.headers().get("location").is_none(),
            "{why}: never a redirect"
        );
        let page = res.text().await.unwrap();
        assert!(page.contains("Callback URL mismatch"), "{why}: {page}");
    }
    let res = b.authorize("no-such-client", CALLBACK, &[]).await;
    assert_eq!(res.status(), 400);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("Unknown client: no-such-client")
    );
    // A wildcard entry matches one label.
    let res = b
        .authorize(
            &spa,
            CALLBACK,
            &[("redirect_uri", "https://shop.custom.example.com/callback")],
        )
        .await;
    assert_eq!(res.status(), 200, "the login form");
    // Errors after the check go back to the application, with the state.
    let res = b.authorize(&spa, CALLBACK, &[("prompt", "none")]).await;
    let (to, params) = redirected(&res);
    assert_eq!(to, CALLBACK);
    assert_eq!(
        (params["error"].as_str(), params["state"].as_str()),
        (Some("login_required"), Some("st-1"))
    );
    let res = b
        .authorize(
            &spa,
            CALLBACK,
            &[("audience", "https://unknown.example.com/api")],
        )
        .await;
    assert_eq!(redirected(&res).1["error"], "access_denied");
    let res = b
        .authorize(
            &spa,
            CALLBACK,
            &[("response_mode", "fragment"), ("prompt", "none")],
        )
        .await;
    assert!(
        res.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(&format!("{CALLBACK}#error=login_required"))
    );
}

#[tokio::test]
async fn web_message_posts_only_to_a_web_origin() {
    let (emu, spa, _) = setup(config()).await;
    let mut b = Browser::new(&emu.base);
    code_for(&mut b, &spa).await;
    let res = b
        .authorize(
            &spa,
            CALLBACK,
            &[("response_mode", "web_message"), ("prompt", "none")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("authorization_response") && page.contains(&format!("\"{APP}\"")),
        "{page}"
    );
    // A callback whose origin is not a web origin may not receive web messages.
    let res = b
        .authorize(
            &spa,
            CALLBACK,
            &[
                ("response_mode", "web_message"),
                ("redirect_uri", "https://shop.custom.example.com/callback"),
            ],
        )
        .await;
    assert_eq!(res.status(), 400);
    assert!(!res.text().await.unwrap().contains("postMessage"));
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let (emu, spa, _) = setup(config()).await;
    let mut b = Browser::new(&emu.base);
    let code = code_for(&mut b, &spa).await;
    let (_, tokens, _) = exchange_code(&emu, &spa, &code, None).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |rt: String| {
        let (emu, spa) = (&emu, spa.clone());
        async move {
            exchange(
                emu,
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", &spa),
                    ("refresh_token", &rt),
                ],
                None,
            )
            .await
        }
    };
    let (status, next, _) = refresh(first.clone()).await;
    assert_eq!(status, 200, "{next}");
    let second = next["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second, "rotation: a new refresh token each time");
    assert!(next["id_token"].is_string() && next["access_token"].is_string());
    let (status, third, _) = refresh(second.clone()).await;
    assert_eq!(status, 200, "{third}");
    let third = third["refresh_token"].as_str().unwrap().to_owned();
    // The first, used again: refused, and the whole family with it.
    let (status, reused, _) = refresh(first).await;
    assert_eq!(
        (status, reused["error"].as_str()),
        (403, Some("invalid_grant"))
    );
    let (status, _, _) = refresh(third).await;
    assert_eq!(status, 403, "the family is revoked");
    let (status, _, _) = refresh("junk".into()).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn cors_allows_callback_origins_and_allowed_origins_only() {
    let (emu, spa, _) = setup(config()).await;
    let mut b = Browser::new(&emu.base);
    for (origin, allowed) in [
        (APP, true),
        ("https://other.example.com", true),
        ("https://evil.example.com", false),
        ("https://acme.apps.example.com:8443", false),
    ] {
        let pre = emu
            .http
            .request(Method::OPTIONS, emu.url("/oauth/token"))
            .header(header::ORIGIN, origin)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        let header = pre
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            header.as_deref(),
            allowed.then_some(origin),
            "preflight from {origin}"
        );
        let code = code_for(&mut b, &spa).await;
        let (status, body, header) = exchange_code(&emu, &spa, &code, Some(origin)).await;
        assert_eq!(
            header.as_deref(),
            allowed.then_some(origin),
            "POST from {origin}"
        );
        assert_eq!(status == 200, allowed, "{origin}: {body}");
    }
}

#[tokio::test]
async fn logout_returns_only_to_allowed_logout_urls_and_ends_the_session() {
    let (emu, spa, _) = setup(config()).await;
    let mut b = Browser::new(&emu.base);
    code_for(&mut b, &spa).await;
    let bad = emu.url(&format!(
        "/v2/logout?client_id={spa}&returnTo=https%3A%2F%2Fevil.example.com%2F"
    ));
    let res = b.get(&bad).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("Allowed Logout URLs"));
    let res = b.authorize(&spa, CALLBACK, &[("prompt", "none")]).await;
    assert!(
        redirected(&res).1["code"].is_string(),
        "a refused logout keeps the session"
    );
    let good = emu.url(&format!(
        "/v2/logout?client_id={spa}&returnTo=https%3A%2F%2Facme.apps.example.com%2F%3Fbye%3D1"
    ));
    let res = b.get(&good).await;
    assert_eq!(res.status(), 302);
    assert_eq!(
        res.headers()["location"],
        "https://acme.apps.example.com/?bye=1"
    );
    let res = b.authorize(&spa, CALLBACK, &[("prompt", "none")]).await;
    assert_eq!(
        redirected(&res).1["error"],
        "login_required",
        "the session ended"
    );
    // /oidc/logout names the URL post_logout_redirect_uri and passes state back.
    code_for(&mut b, &spa).await;
    let res = b
        .get(&emu.url(&format!("/oidc/logout?client_id={spa}&post_logout_redirect_uri=https%3A%2F%2Facme.apps.example.com%2F&state=xyz")))
        .await;
    assert_eq!(
        res.headers()["location"],
        "https://acme.apps.example.com/?state=xyz"
    );
}
