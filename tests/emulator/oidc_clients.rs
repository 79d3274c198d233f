//! Maintained OIDC libraries on Node (openid-client, express-oauth2-jwt-bearer, jose) against
//! the emulator: `tests/oidc/login.test.js`, run by Node's test runner. Its packages are
//! installed by `scripts/test` (`npm ci` in `tests/oidc`).

use std::process::Command;

use serde_json::json;

use crate::helpers::*;

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

    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc");
    assert!(
        std::path::Path::new(dir).join("node_modules").exists(),
        "run `npm ci` in tests/oidc first (scripts/test does)"
    );
    let (base, audience) = (
        emu.base.clone(),
        emu.tenant["api_audience"].as_str().unwrap().to_owned(),
    );
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(["--test", "login.test.js"])
            .current_dir(dir)
            .env("EMULATOR_URL", base)
            .env("CLIENT_ID", spa)
            .env("CALLBACK", CALLBACK)
            .env("API_AUDIENCE", audience)
            .env("USER_EMAIL", "oidc@example.com")
            .env("USER_PASSWORD", "pw-0123")
            .output()
            .expect("node (20 or later) runs the OIDC library tests")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node --test failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("# fail 0") && !stdout.contains("# pass 0"),
        "{stdout}"
    );
}
