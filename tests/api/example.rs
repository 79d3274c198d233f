//! The example instance app (`examples/instance-app`) against this fleetgate and the emulator
//! running the project's Action: it serves its page, its login settings from fleetgate's
//! `/config`, and an API that lets in the owner's token for it and nobody else's.
//! Its own Node tests (the router) run from here too.

use std::process::{Child, Command, Stdio};

use serde_json::Value;
use sqlx::PgPool;

use crate::{browser::*, helpers::*};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[sqlx::test]
async fn the_example_instance_serves_its_page_and_lets_in_only_tokens_for_it(pool: PgPool) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/instance-app");
    assert!(
        std::path::Path::new(dir).join("node_modules").exists(),
        "run `npm ci` in examples/instance-app first (scripts/test does)"
    );
    // Instances are reached through the platform's router on one port (here only named).
    let templates = [
        (
            "FLEETGATE_TEMPLATE_CALLBACKS",
            "http://{host}:5080/callback".to_owned(),
        ),
        (
            "FLEETGATE_TEMPLATE_LOGOUT_URLS",
            "http://{host}:5080/".to_owned(),
        ),
        (
            "FLEETGATE_TEMPLATE_WEB_ORIGINS",
            "http://{host}:5080".to_owned(),
        ),
        (
            "FLEETGATE_TEMPLATE_ALLOWED_ORIGINS",
            "http://{host}:5080".to_owned(),
        ),
    ];
    let callback = "http://www.acme.com:5080/callback";
    let w = world_with(pool, &templates, callback).await;
    // acme's key: rotated by an admin (the deploy's answer went to the world's setup).
    let (status, rotated) = into_json(
        w.app
            .admin(reqwest::Method::POST, "/v1/instances/acme/keys/rotate")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _server = Killed(
        Command::new("node")
            .arg("server.js")
            .current_dir(dir)
            .env("FLEETGATE_URL", &w.app.addr)
            .env("FLEETGATE_INSTANCE_ID", "acme")
            .env(
                "FLEETGATE_INSTANCE_KEY",
                rotated["instance_key"].as_str().unwrap(),
            )
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("node runs the example"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    within(30, "the example serving", || async {
        http.get(format!("{base}/config.json"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let config: Value = http
        .get(format!("{base}/config.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["clientId"], w.spa.as_str());
    assert_eq!(config["audience"], INSTANCE_AUDIENCE);
    assert_eq!(config["domain"], w.app.tenant.base_url.as_str());
    // The owner is shown where to manage who may log in.
    assert_eq!(
        config["accessPage"],
        format!("{}/ui/#instance=acme", w.app.addr).as_str()
    );
    let page = http
        .get(format!("{base}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("/auth0-spa-js.js") && page.contains("/app.js"));
    let sdk = http
        .get(format!("{base}/auth0-spa-js.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(sdk.status(), 200);
    assert!(sdk.text().await.unwrap().contains("createAuth0Client"));

    // The owner logs in at acme (as the page does: code flow, the instances' audience).
    let mut b = Browser::new(&w.app.tenant.base_url);
    let res = b
        .authorize(&w.spa, callback, &[("audience", INSTANCE_AUDIENCE)])
        .await;
    let page = res.text().await.unwrap();
    let (_, params) = redirected(&b.log_in(&page, "owner@example.com", "pw").await);
    let (status, tokens) = b
        .exchange(&w.spa, params["code"].as_str().unwrap(), callback)
        .await;
    assert_eq!(status, 200, "{tokens}");
    let token = tokens["access_token"].as_str().unwrap();
    let me = http
        .get(format!("{base}/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(
        (me["role"].as_str(), me["instanceId"].as_str()),
        (Some("owner"), Some("acme"))
    );
    assert_eq!(me["userId"], w.owner.as_str());
    let refused = http.get(format!("{base}/api/me")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let admins = http
        .get(format!("{base}/api/me"))
        .bearer_auth(&w.app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        admins.status(),
        401,
        "fleetgate's own tokens are not the instances'"
    );
}

/// The example's own tests (`npm test`: the local router), run by Node's test runner.
#[tokio::test]
async fn the_example_apps_own_tests_pass() {
    crate::node::node_tests("examples/instance-app", &["test/"], Vec::new(), true).await;
}
