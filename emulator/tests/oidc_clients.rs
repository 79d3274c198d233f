//! Maintained OIDC libraries on Node (openid-client, express-oauth2-jwt-bearer, jose) against
//! the emulator: `tests/oidc/login.test.js`, run by Node's test runner. Its packages are
//! installed by `scripts/test` (`npm ci` in `tests/oidc`).

use serde_json::json;

use crate::{helpers::*, node::node_tests};

const CALLBACK: &str = "http://localhost:5173/callback";

#[tokio::test]
async fn oidc_client_libraries_log_in_through_the_emulator() {
    let emu = TestEmulator::start(config()).await;
    let spa = emu.tenant["spa_client_id"].as_str().unwrap().to_owned();
    let token = emu.management_token().await;
    let (status, _) = emu
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v2/clients/{spa}"),
            &token,
            Some(json!({ "callbacks": [CALLBACK] })),
        )
        .await;
    assert_eq!(status, 200);
    let res = emu
        .http
        .post(emu.url("/emulator/users"))
        .json(&json!({"email": "oidc@example.com", "password": "pw-0123", "email_verified": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    let envs = [
        ("EMULATOR_URL", emu.base.clone()),
        ("CLIENT_ID", spa),
        ("CALLBACK", CALLBACK.to_owned()),
        (
            "API_AUDIENCE",
            emu.tenant["api_audience"].as_str().unwrap().to_owned(),
        ),
        ("USER_EMAIL", "oidc@example.com".to_owned()),
        ("USER_PASSWORD", "pw-0123".to_owned()),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .into();
    node_tests("tests/oidc", &["login.test.js"], envs, true).await;
}
