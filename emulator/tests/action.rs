//! The post-login Action run for real on logins and refresh-token exchanges: Auth0's event,
//! its rules for claims, metadata kept on the refresh token, and denials.

use serde_json::{Value, json};

use crate::{
    browser::*,
    helpers::*,
    login::{APP, CALLBACK, code_for, code_form, exchange, exchange_code, setup},
};

#[tokio::test]
async fn the_action_runs_on_logins_and_refreshes_with_auth0s_event_and_rules() {
    let action = fleetgate_emulator::login::action::ActionConfig {
        file: crate::node::repository().join("tests/fixtures/probe-action.js"),
        secrets: [("GREETING".to_owned(), "hello".to_owned())].into(),
    };
    let (emu, spa, _) = setup(fleetgate_emulator::EmulatorConfig {
        action: Some(action),
        ..config()
    })
    .await;
    for (email, password) in [("stranger@example.com", "pw"), ("slow@example.com", "pw")] {
        let res = emu
            .http
            .post(emu.url("/emulator/users"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }
    // A denial ends at the redirect URI, with the reason; so does an Action that throws.
    for (email, reason) in [
        ("stranger@example.com", "not for you"),
        ("slow@example.com", "the Action broke"),
    ] {
        let mut b = Browser::new(&emu.base);
        let page = b.authorize(&spa, CALLBACK, &[]).await.text().await.unwrap();
        let (to, params) = redirected(&b.log_in(&page, email, "pw").await);
        assert_eq!(to, CALLBACK);
        assert_eq!(
            (
                params["error"].as_str(),
                params["error_description"].as_str(),
                params["state"].as_str()
            ),
            (Some("access_denied"), Some(reason), Some("st-1"))
        );
        assert!(params.get("code").is_none());
    }
    let mut b = Browser::new(&emu.base);
    let code = code_for(&mut b, &spa).await;
    let (status, tokens, _) = exchange_code(&emu, &spa, &code, None).await;
    assert_eq!(status, 200, "{tokens}");
    let access = claims(tokens["access_token"].as_str().unwrap());
    let probe = |c: &Value, k: &str| c[format!("https://probe.example.com/{k}")].clone();
    assert_eq!(probe(&access, "protocol"), "oidc-basic-profile");
    assert_eq!(probe(&access, "secret"), "hello");
    assert_eq!(probe(&access, "query_state"), "st-1");
    assert!(
        access.get("unnamespaced").is_none(),
        "un-namespaced claims are dropped"
    );
    assert_ne!(access["sub"], "evil", "restricted claims cannot be set");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(probe(&id, "redirect_uri"), CALLBACK);

    // On a refresh: no redirect URI in the transaction, the body as sent, the metadata set at
    // login; a denial is the exchange's error.
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, next, _) = exchange(
        &emu,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &spa),
            ("refresh_token", &rt),
            ("redirect_uri", APP),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{next}");
    let access = claims(next["access_token"].as_str().unwrap());
    assert_eq!(probe(&access, "redirect_uri"), "absent");
    assert_eq!(probe(&access, "instance"), "acme");
    assert_eq!(probe(&access, "body_redirect_uri"), APP);
    let rt = next["refresh_token"].as_str().unwrap().to_owned();
    let (status, denied, _) = exchange(
        &emu,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &spa),
            ("refresh_token", &rt),
            ("deny", "yes"),
        ],
        None,
    )
    .await;
    assert_eq!(
        (
            status,
            denied["error"].as_str(),
            denied["error_description"].as_str()
        ),
        (403, Some("access_denied"), Some("refused on refresh"))
    );
}

/// A confidential application that trusts the token endpoint's IP header (a relay logging
/// users in from a server) names the user's address in `auth0-forwarded-for`, and the Action
/// sees that address; an application that does not trust it, or a public one, cannot.
#[tokio::test]
async fn auth0_forwarded_for_is_the_users_address_only_for_a_confidential_client_that_trusts_it() {
    let action = fleetgate_emulator::login::action::ActionConfig {
        file: crate::node::repository().join("tests/fixtures/probe-action.js"),
        secrets: [("GREETING".to_owned(), "hello".to_owned())].into(),
    };
    let (emu, spa, _) = setup(fleetgate_emulator::EmulatorConfig {
        action: Some(action),
        ..config()
    })
    .await;
    let token = emu.management_token().await;
    let mut confidential = Vec::new();
    for trusted in [true, false] {
        let (status, client) = emu
            .call(
                reqwest::Method::POST,
                "/api/v2/clients",
                &token,
                Some(json!({
                    "name": format!("relay trusted={trusted}"),
                    "app_type": "regular_web",
                    "token_endpoint_auth_method": "client_secret_post",
                    "grant_types": ["authorization_code", "refresh_token"],
                    "callbacks": [CALLBACK],
                    "is_token_endpoint_ip_header_trusted": trusted,
                })),
            )
            .await;
        assert_eq!(status, 201, "{client}");
        confidential.push((
            trusted,
            client["client_id"].as_str().unwrap().to_owned(),
            client["client_secret"].as_str().unwrap().to_owned(),
        ));
    }
    let refreshed_ip = |client: String, secret: Option<String>| {
        let emu = &emu;
        async move {
            let mut b = Browser::new(&emu.base);
            let code = code_for(&mut b, &client).await;
            let mut form = code_form(&client, &code, CALLBACK, VERIFIER).to_vec();
            if let Some(s) = &secret {
                form.push(("client_secret", s));
            }
            let (status, tokens, _) = exchange(emu, &form, None).await;
            assert_eq!(status, 200, "{tokens}");
            let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("client_id", client.as_str()),
                ("refresh_token", rt.as_str()),
            ];
            if let Some(s) = &secret {
                form.push(("client_secret", s));
            }
            let res = emu
                .http
                .post(emu.url("/oauth/token"))
                .header("auth0-forwarded-for", "203.0.113.7")
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            let next: Value = res.json().await.unwrap();
            claims(next["access_token"].as_str().unwrap())["https://probe.example.com/ip"].clone()
        }
    };
    for (trusted, client, secret) in confidential {
        let ip = refreshed_ip(client, Some(secret)).await;
        let expected = if trusted { "203.0.113.7" } else { "127.0.0.1" };
        assert_eq!(ip, expected, "trusted: {trusted}");
    }
    assert_eq!(
        refreshed_ip(spa, None).await,
        "127.0.0.1",
        "a public client"
    );
}
