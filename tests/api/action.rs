//! The Auth0 post-login Action (`integrations/auth0-action`), run by Node's test runner
//! against this fleetgate, seeded as the JavaScript tests expect.

use std::process::Command;

use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::*;

const ACTION_SECRET: &str = "action-secret-for-the-node-tests-0123456789";

#[sqlx::test]
async fn the_post_login_action_passes_its_tests_against_fleetgate(pool: PgPool) {
    let app = TestApp::spawn_with(
        pool,
        TestTenant::start().await,
        &[("FLEETGATE_ACTION_SECRET", ACTION_SECRET.to_owned())],
    )
    .await;
    app.deploy("acme", &["acme.apps.example.com", "www.acme.com"])
        .await;
    let (status, _) = app
        .hook(&deployed(
            "paused",
            "auth0|owner-2",
            &["paused.apps.example.com"],
        ))
        .await;
    assert_eq!(status, 200);
    app.hook(&event("instance.suspended", "paused")).await;
    for grant in [
        json!({"user_id": "auth0|ann", "role": "admin"}),
        json!({"email": "bob@example.com"}),
    ] {
        let res = app
            .admin(Method::POST, "/v1/instances/acme/grants")
            .json(&grant)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
    }

    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/integrations/auth0-action");
    let addr = app.addr.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(["--test", "post-login.test.js"])
            .current_dir(dir)
            .env("FLEETGATE_URL", addr)
            .env("FLEETGATE_ACTION_SECRET", ACTION_SECRET)
            .output()
            .expect("node (18 or later) must be installed to test the Auth0 Action")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node --test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");
    assert!(!stdout.contains("# pass 0"), "{stdout}");
}
