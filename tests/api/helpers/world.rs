//! Real logins through the allow-lists fleetgate writes: the emulator runs the project's
//! post-login Action against this fleetgate, whose reconciler keeps the application's lists.

use std::time::{Duration, Instant};

use fleetgate_emulator::{EmulatorConfig, login::action::ActionConfig};
use serde_json::{Value, json};
use sqlx::PgPool;

use super::*;

/// The Action's secret in the login tests' world.
pub const WORLD_ACTION_SECRET: &str = "login-tests-action-secret-0123456789abcdef";

pub struct World {
    pub app: TestApp,
    pub spa: String,
    pub owner: String,
    pub member: String,
}

async fn user(tenant: &TestTenant, email: &str) -> String {
    let res = reqwest::Client::new()
        .post(format!("{}/emulator/users", tenant.base_url))
        .json(&json!({"email": email, "password": "pw", "email_verified": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Waits until the application's callbacks hold (or no longer hold) `callback`.
pub async fn until_callback(w: &World, callback: &str, present: bool) {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let client = w.app.tenant.client(&w.spa).await;
        let listed = fleetgate::domain::field::entries(&client["callbacks"])
            .iter()
            .any(|c| c == callback);
        if listed == present {
            return;
        }
        assert!(Instant::now() < until, "{callback} listed: {listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The emulator runs the project's Action against this fleetgate, whose port is chosen first;
/// `acme` (owner `owner@example.com`) is deployed and its callbacks are listed.
pub async fn world(pool: PgPool) -> World {
    world_with(pool, &[], "https://www.acme.com/callback").await
}

/// A port for fleetgate, chosen first, and the emulator running the project's Action against
/// the fleetgate that will listen there, with owner@example.com, max@example.com and
/// eve@example.com (password `pw`).
pub struct ActionTenant {
    pub port: u16,
    pub tenant: TestTenant,
    pub owner: String,
    pub member: String,
}

pub async fn action_tenant() -> ActionTenant {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let action = ActionConfig {
        file: concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/integrations/auth0-action/post-login.js"
        )
        .into(),
        secrets: [
            (
                "FLEETGATE_URL".to_owned(),
                format!("http://127.0.0.1:{port}"),
            ),
            (
                "FLEETGATE_ACTION_SECRET".to_owned(),
                WORLD_ACTION_SECRET.to_owned(),
            ),
        ]
        .into(),
    };
    let tenant = TestTenant::start_with(EmulatorConfig {
        rate_limit_burst: 1000,
        rate_limit_per_second: 1000.0,
        action: Some(action),
        ..TestTenant::config()
    })
    .await;
    let owner = user(&tenant, "owner@example.com").await;
    let member = user(&tenant, "max@example.com").await;
    user(&tenant, "eve@example.com").await;
    ActionTenant {
        port,
        tenant,
        owner,
        member,
    }
}

/// Like [`world`], with more settings for fleetgate, waiting for `callback` to be listed.
pub async fn world_with(pool: PgPool, extra: &[(&str, String)], callback: &str) -> World {
    let ActionTenant {
        port,
        tenant,
        owner,
        member,
    } = action_tenant().await;
    let mut vars = tenant.reconciler_vars().await;
    let spa = vars[2].1.clone();
    vars.extend([
        ("FLEETGATE_LISTEN", format!("127.0.0.1:{port}")),
        ("FLEETGATE_ACTION_SECRET", WORLD_ACTION_SECRET.to_owned()),
    ]);
    vars.extend(extra.iter().cloned());
    let app = TestApp::spawn_with(pool, tenant, &vars).await;
    let (status, _) = app
        .hook(&deployed(
            "acme",
            &owner,
            &["acme.apps.example.com", "www.acme.com"],
        ))
        .await;
    assert_eq!(status, 200);
    let w = World {
        app,
        spa,
        owner,
        member,
    };
    until_callback(&w, callback, true).await;
    w
}
