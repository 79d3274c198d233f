//! The Auth0 post-login Action (`integrations/auth0-action`), run by Node's test runner
//! against this fleetgate, seeded as the JavaScript tests expect.

use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

use crate::{helpers::*, node::node_tests};

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

    node_tests(
        "integrations/auth0-action",
        &["post-login.test.js"],
        vec![
            ("FLEETGATE_URL".into(), app.addr.clone()),
            ("FLEETGATE_ACTION_SECRET".into(), ACTION_SECRET.into()),
        ],
        false,
    )
    .await;
}
