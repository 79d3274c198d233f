//! What a strict OpenID Connect client library checks beyond the login itself: `max_age` and
//! `prompt=login` (re-authentication and `auth_time`, OIDC Core 3.1.2.1), `Cache-Control:
//! no-store` on token answers (RFC 6749 5.1), the claims each scope gives, RBAC `permissions`
//! on login tokens for the seeded API only, and the logout error naming the parameter sent.

use reqwest::header;
use serde_json::{Value, json};

use crate::{
    browser::*,
    helpers::*,
    login::{ANN_PASSWORD, APP, CALLBACK, setup},
};

/// The tokens of a login in `b` (with a session, or through the form) with `extra` parameters.
async fn tokens(b: &mut Browser, spa: &str, extra: &[(&str, &str)]) -> Value {
    let mut res = b.authorize(spa, CALLBACK, extra).await;
    if res.status() == 200 {
        let page = res.text().await.unwrap();
        res = b.log_in(&page, "ann@example.com", ANN_PASSWORD).await;
    }
    let (_, params) = redirected(&res);
    let code = params["code"].as_str().expect("a code").to_owned();
    let (status, tokens) = b.exchange(spa, &code, CALLBACK).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

fn id_token(tokens: &Value) -> Value {
    claims(tokens["id_token"].as_str().unwrap())
}

#[tokio::test]
async fn max_age_and_prompt_login_authenticate_again_and_put_auth_time_in_the_id_token() {
    let (emu, spa, _) = setup(config()).await;
    let mut b = Browser::new(&emu.base);
    let first = id_token(&tokens(&mut b, &spa, &[]).await);
    assert!(first["auth_time"].is_null(), "not asked for: {first}");

    // A session younger than max_age is used as it is; the token says when the password was
    // entered.
    let before = chrono::Utc::now().timestamp();
    let again = id_token(&tokens(&mut b, &spa, &[("max_age", "3600")]).await);
    let auth_time = again["auth_time"].as_i64().expect("auth_time with max_age");
    assert!(auth_time <= before && before - auth_time < 60, "{again}");

    // max_age=0 and prompt=login show the form again, even with a session.
    for extra in [[("max_age", "0")], [("prompt", "login")]] {
        let res = b.authorize(&spa, CALLBACK, &extra).await;
        assert_eq!(res.status(), 200, "{extra:?} shows the login form");
        let page = res.text().await.unwrap();
        assert!(page.contains("name=\"password\""), "{extra:?}");
        let res = b.log_in(&page, "ann@example.com", ANN_PASSWORD).await;
        let (_, params) = redirected(&res);
        let code = params["code"].as_str().unwrap().to_owned();
        let (_, tokens) = b.exchange(&spa, &code, CALLBACK).await;
        assert!(id_token(&tokens)["auth_time"].as_i64().unwrap() >= auth_time);
    }
    // Without a form to show, a session too old for max_age is login_required.
    let res = b
        .authorize(&spa, CALLBACK, &[("prompt", "none"), ("max_age", "0")])
        .await;
    assert_eq!(redirected(&res).1["error"], "login_required");
    // A max_age that is not a number of seconds goes back to the application.
    let res = b.authorize(&spa, CALLBACK, &[("max_age", "-1")]).await;
    let (to, params) = redirected(&res);
    assert_eq!(
        (to.as_str(), params["error"].as_str()),
        (CALLBACK, Some("invalid_request")),
        "{params}"
    );
    // A refresh keeps the login's auth_time.
    let login = tokens(&mut b, &spa, &[("max_age", "3600")]).await;
    let (status, refreshed) = emu
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("client_id", &spa),
            ("refresh_token", login["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        id_token(&refreshed)["auth_time"],
        id_token(&login)["auth_time"]
    );
}

#[tokio::test]
async fn token_answers_are_never_cached() {
    let (emu, spa, _) = setup(config()).await;
    let (id, secret) = emu.m2m();
    let api = emu.tenant["api_audience"].as_str().unwrap().to_owned();
    for form in [
        vec![
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", secret.as_str()),
            ("audience", api.as_str()),
        ],
        vec![
            ("grant_type", "authorization_code"),
            ("client_id", spa.as_str()),
            ("code", "no-such-code"),
        ],
    ] {
        let res = emu
            .http
            .post(emu.url("/oauth/token"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(matches!(res.status().as_u16(), 200 | 403), "{form:?}");
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store", "{form:?}");
        assert_eq!(res.headers()[header::PRAGMA], "no-cache", "{form:?}");
    }
}

#[tokio::test]
async fn each_scope_gives_its_claims_and_every_id_token_names_its_session() {
    let (emu, spa, user_id) = setup(config()).await;
    let mut b = Browser::new(&emu.base);
    let full = tokens(&mut b, &spa, &[]).await;
    let id = id_token(&full);
    assert_eq!(
        (id["name"].as_str(), id["nickname"].as_str()),
        (Some("Ann"), Some("ann"))
    );
    assert!(
        id["picture"]
            .as_str()
            .unwrap()
            .starts_with("https://s.gravatar.com/avatar/"),
        "{id}"
    );
    let updated = id["updated_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(updated).is_ok(),
        "{id}"
    );
    assert_eq!(
        (id["email"].as_str(), id["email_verified"].as_bool()),
        (Some("ann@example.com"), Some(true))
    );
    let sid = id["sid"].as_str().expect("sid").to_owned();
    // /userinfo answers what the token's scope gives.
    let info: Value = emu
        .http
        .get(emu.url("/userinfo"))
        .bearer_auth(full["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (info["sub"].as_str(), info["nickname"].as_str()),
        (Some(user_id.as_str()), Some("ann"))
    );
    assert_eq!(info["picture"], id["picture"]);

    // openid alone: who, and which session, nothing of the profile.
    let bare = id_token(&tokens(&mut b, &spa, &[("scope", "openid")]).await);
    assert_eq!(bare["sub"], json!(user_id));
    assert_eq!(bare["sid"], json!(sid), "the same session");
    for claim in ["name", "nickname", "picture", "updated_at", "email"] {
        assert!(bare[claim].is_null(), "{claim} without its scope: {bare}");
    }
}

#[tokio::test]
async fn login_tokens_carry_rbac_permissions_for_the_seeded_api_only() {
    let (emu, spa, _) = setup(config()).await;
    let res = emu
        .http
        .post(emu.url("/emulator/users"))
        .json(&json!({"email": "ops@example.com", "password": "ops-pw-1", "permissions": ["fleet:admin"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let api = emu.tenant["api_audience"].as_str().unwrap().to_owned();
    let instances = emu.tenant["instance_audience"].as_str().unwrap().to_owned();
    let access = |tokens: &Value| claims(tokens["access_token"].as_str().unwrap());

    let mut ann = Browser::new(&emu.base);
    let for_api = tokens(&mut ann, &spa, &[("audience", &api)]).await;
    assert_eq!(
        access(&for_api)["permissions"],
        json!([]),
        "Auth0 sends the claim, empty, for a user with none"
    );
    let for_instances = tokens(&mut ann, &spa, &[("audience", &instances)]).await;
    assert!(
        access(&for_instances).get("permissions").is_none(),
        "an API without RBAC has no permissions claim"
    );
    let mut ops = Browser::new(&emu.base);
    let res = ops
        .authorize(&spa, CALLBACK, &[("audience", api.as_str())])
        .await;
    let page = res.text().await.unwrap();
    let res = ops.log_in(&page, "ops@example.com", "ops-pw-1").await;
    let code = redirected(&res).1["code"].as_str().unwrap().to_owned();
    let (_, tokens) = ops.exchange(&spa, &code, CALLBACK).await;
    assert_eq!(access(&tokens)["permissions"], json!(["fleet:admin"]));
}

#[tokio::test]
async fn a_refused_logout_names_the_parameter_that_was_sent() {
    let (emu, spa, _) = setup(config()).await;
    let mut b = Browser::new(&emu.base);
    for (path, parameter) in [
        ("/v2/logout", "returnTo"),
        ("/oidc/logout", "post_logout_redirect_uri"),
    ] {
        let url = format!("{path}?client_id={spa}&{parameter}=https%3A%2F%2Fevil.example.com%2F");
        let res = b.get(&emu.url(&url)).await;
        assert_eq!(res.status(), 400);
        let page = res.text().await.unwrap();
        assert!(
            page.contains(&format!(
                "The &quot;{parameter}&quot; querystring parameter"
            )),
            "{page}"
        );
    }
    // The allowed one still works (APP/ is on the list).
    let res = b
        .get(&emu.url(&format!(
            "/oidc/logout?client_id={spa}&post_logout_redirect_uri={}",
            urlencode(&format!("{APP}/"))
        )))
        .await;
    assert_eq!(res.status(), 302);
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).unwrap()[1..].to_owned()
}
