//! Real logins through the allow-lists fleetgate writes: the emulator's login side with the
//! project's own post-login Action (`integrations/auth0-action/post-login.js`, unchanged)
//! asking this fleetgate, whose reconciler keeps the application's lists.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::{browser::*, helpers::*};

const DENIED: &str = "You do not have access to this application.";

#[sqlx::test]
async fn logins_run_through_the_lists_fleetgate_keeps_and_the_action_binds_the_instance(
    pool: PgPool,
) {
    let w = world(pool).await;
    let base = w.app.tenant.base_url.clone();
    let claim =
        |token: &str, name: &str| payload(token)[format!("https://fleetgate.dev/{name}")].clone();

    // The owner, on the custom domain and on the platform subdomain (the wildcard entry).
    for callback in [
        "https://www.acme.com/callback",
        "https://acme.apps.example.com/callback",
    ] {
        let mut b = Browser::new(&base);
        let (to, params) = b.login(&w.spa, callback, "owner@example.com", "pw").await;
        assert_eq!(to, callback);
        let code = params["code"]
            .as_str()
            .unwrap_or_else(|| panic!("{params}"));
        let (status, tokens) = b.exchange(&w.spa, code, callback).await;
        assert_eq!(status, 200, "{tokens}");
        for token in ["access_token", "id_token"] {
            let token = tokens[token].as_str().unwrap();
            assert_eq!(claim(token, "instance"), "acme");
            assert_eq!(claim(token, "role"), "owner");
        }
        assert_eq!(
            payload(tokens["id_token"].as_str().unwrap())["sub"],
            w.owner.as_str()
        );
    }

    // A stranger is denied at the callback, with the Action's one message.
    let mut b = Browser::new(&base);
    let (to, params) = b
        .login(
            &w.spa,
            "https://www.acme.com/callback",
            "eve@example.com",
            "pw",
        )
        .await;
    assert_eq!(to, "https://www.acme.com/callback");
    assert_eq!(params["error"], "access_denied");
    assert_eq!(params["error_description"], DENIED);

    // Granted, the same person's next login works, with the role.
    let res = w
        .app
        .admin(Method::POST, "/v1/instances/acme/grants")
        .json(&json!({"user_id": w.member, "role": "member"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let mut b = Browser::new(&base);
    let (_, params) = b
        .login(
            &w.spa,
            "https://www.acme.com/callback",
            "max@example.com",
            "pw",
        )
        .await;
    let (_, tokens) = b
        .exchange(
            &w.spa,
            params["code"].as_str().unwrap(),
            "https://www.acme.com/callback",
        )
        .await;
    assert_eq!(
        claim(tokens["access_token"].as_str().unwrap(), "role"),
        "member"
    );
}

#[sqlx::test]
async fn a_url_the_reconciler_adds_works_at_the_next_login_and_one_it_removes_is_refused(
    pool: PgPool,
) {
    let w = world(pool).await;
    let fresh = "https://shop.acme-bakery.com/callback";
    let mut b = Browser::new(&w.app.tenant.base_url);
    let res = b.authorize(&w.spa, fresh, &[]).await;
    assert_eq!(res.status(), 400, "not listed yet");
    assert!(res.text().await.unwrap().contains("Callback URL mismatch"));

    let res = w
        .app
        .admin(Method::POST, "/v1/instances/acme/domains")
        .json(&json!({"hostname": "shop.acme-bakery.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    until_callback(&w, fresh, true).await;
    let (to, params) = b.login(&w.spa, fresh, "owner@example.com", "pw").await;
    assert_eq!(
        (to.as_str(), params["code"].is_string()),
        (fresh, true),
        "{params}"
    );

    let res = w
        .app
        .admin(
            Method::DELETE,
            "/v1/instances/acme/domains/shop.acme-bakery.com",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    until_callback(&w, fresh, false).await;
    let res = b.authorize(&w.spa, fresh, &[]).await;
    assert_eq!(
        res.status(),
        400,
        "removed: the login page refuses it, session or not"
    );
    assert!(res.headers().get("location").is_none());
}

async fn refresh(
    base: &str,
    client_id: &str,
    token: &str,
    body_redirect: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("client_id", client_id),
        ("refresh_token", token),
    ];
    if let Some(uri) = body_redirect {
        form.push(("redirect_uri", uri));
    }
    let res = reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

/// Refresh-token exchanges keep the instance of the login (recorded in the refresh token by
/// the Action), ask fleetgate again, and stop once the grant is gone.
#[sqlx::test]
async fn refreshes_keep_the_instance_and_stop_when_the_grant_goes(pool: PgPool) {
    let w = world(pool).await;
    let base = w.app.tenant.base_url.clone();
    let (status, grant) = into_json(
        w.app
            .admin(Method::POST, "/v1/instances/acme/grants")
            .json(&json!({"user_id": w.member, "role": "member"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    let callback = "https://www.acme.com/callback";
    let mut b = Browser::new(&base);
    let (_, params) = b.login(&w.spa, callback, "max@example.com", "pw").await;
    let (_, tokens) = b
        .exchange(&w.spa, params["code"].as_str().unwrap(), callback)
        .await;
    let mut rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    // auth0-spa-js sends a redirect_uri with every refresh; another host changes nothing.
    for sent in [
        Some(callback),
        Some("https://other.apps.example.com/callback"),
        None,
    ] {
        let (status, next) = refresh(&base, &w.spa, &rt, sent).await;
        assert_eq!(status, 200, "{sent:?}: {next}");
        let access = payload(next["access_token"].as_str().unwrap());
        assert_eq!(access["https://fleetgate.dev/instance"], "acme");
        assert_eq!(access["https://fleetgate.dev/role"], "member");
        rt = next["refresh_token"].as_str().unwrap().to_owned();
    }
    let res = w
        .app
        .admin(
            Method::DELETE,
            &format!(
                "/v1/instances/acme/grants/{}",
                grant["id"].as_str().unwrap()
            ),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (status, denied) = refresh(&base, &w.spa, &rt, Some(callback)).await;
    assert_eq!(
        (
            status,
            denied["error"].as_str(),
            denied["error_description"].as_str()
        ),
        (403, Some("access_denied"), Some(DENIED))
    );
}
