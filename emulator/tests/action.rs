//! The post-login Action run for real on logins and refresh-token exchanges: Auth0's event,
//! its rules for claims, metadata kept on the refresh token, and denials.

use serde_json::{Value, json};

use crate::{
    browser::*,
    helpers::*,
    login::{APP, CALLBACK, code_for, exchange, exchange_code, setup},
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
