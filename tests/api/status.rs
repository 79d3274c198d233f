//! The status page and what it shows: `/ui/` and its files, its login settings, logins through
//! its application (bound to no instance), and `GET /v1/reconcile/status`.

use fleetgate_emulator::faults::Faults;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

const SECRET: &str = "status-tests-action-secret-0123456789abcd";

#[sqlx::test]
async fn the_status_page_is_served_with_its_login_settings(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    for (path, kind, needle) in [
        ("/ui/", "text/html", "Your instances"),
        ("/ui/app.js", "text/javascript", "createAuth0Client"),
        (
            "/ui/auth0-spa-js.js",
            "text/javascript",
            "createAuth0Client",
        ),
    ] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
        assert!(res.text().await.unwrap().contains(needle), "{path}");
    }
    let page = app.http.get(app.url("/ui/")).send().await.unwrap();
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("frame-ancestors 'none'")
            && policy.contains(&format!("connect-src 'self' {}", app.tenant.base_url)),
        "{policy}"
    );
    let res = app.http.get(app.url("/ui/other.js")).send().await.unwrap();
    assert_problem(res, 404, "not_found").await;
    let res = app
        .http
        .get(app.url("/ui/config.json"))
        .send()
        .await
        .unwrap();
    assert!(
        assert_problem(res, 409, "ui_disabled")
            .await
            .contains("FLEETGATE_UI_CLIENT_ID")
    );

    let configured = TestApp::spawn_with(
        pool,
        TestTenant::start().await,
        &[
            ("FLEETGATE_UI_CLIENT_ID", "status-page-client".into()),
            ("FLEETGATE_ACTION_SECRET", SECRET.into()),
        ],
    )
    .await;
    let config: Value = configured
        .http
        .get(configured.url("/ui/config.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        config,
        json!({"domain": configured.tenant.base_url, "issuer": format!("{}/", configured.tenant.base_url), "clientId": "status-page-client", "audience": AUDIENCE, "roles": ["member", "admin"]})
    );
    // Its logins are no instance's: allowed, bound to none; any other application's are judged.
    let decide = |client_id: &str| {
        configured
            .http
            .post(configured.url("/v1/login-decisions"))
            .bearer_auth(SECRET)
            .json(&json!({"user_id": "auth0|ops", "redirect_uri": "https://fleetgate.example.com/ui/", "client_id": client_id}))
            .send()
    };
    let d: Value = decide("status-page-client")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        d,
        json!({"allow": true, "instance_id": null, "role": null, "reason": "operator_console"})
    );
    let d: Value = decide("spa").await.unwrap().json().await.unwrap();
    assert_eq!(
        (d["allow"].clone(), d["reason"].clone()),
        (json!(false), json!("unknown_host"))
    );
}

#[sqlx::test]
async fn the_reconciler_status_names_the_leader_and_the_instances_not_in_step(pool: PgPool) {
    let tenant = TestTenant::start_with(roomy()).await;
    let vars = tenant.reconciler_vars().await;
    let spa = vars[2].1.clone();
    let app = TestApp::spawn_with(pool, tenant, &vars).await;
    app.deploy("acme", &["www.acme.com"]).await;
    let reconcile = || async {
        app.admin(Method::POST, "/v1/reconcile")
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(reconcile().await, 200);
    within(10, "a leader", || async {
        app.get_json("/v1/reconcile/status").await.1["leader"]["name"].is_string()
    })
    .await;
    let (status, s) = app.get_json("/v1/reconcile/status").await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["unsynced_total"], 0, "{s}");
    assert_ne!(s["last_run"]["outcome"], "failed", "{s}");
    assert!(
        s["leader"]["name"]
            .as_str()
            .unwrap()
            .starts_with("fleetgate@"),
        "{s}"
    );

    // A person's entry shows as drift; an instance whose pass failed shows with the reason.
    let res = app
        .tenant
        .management(Method::PATCH, &format!("/clients/{spa}"))
        .json(&json!({"callbacks": ["https://www.acme.com/callback", "https://person.example.com/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(reconcile().await, 200);
    let (_, apps) = app.get_json("/v1/applications").await;
    assert_eq!(
        apps["items"][0]["lists"]["callbacks"]["foreign"],
        json!(["https://person.example.com/cb"]),
        "{apps}"
    );
    app.tenant
        .http_put_faults(
            serde_json::to_value(Faults {
                error_rate: 1.0,
                ..Faults::default()
            })
            .unwrap(),
        )
        .await;
    app.deploy("beta", &["www.beta.com"]).await;
    let _ = reconcile().await;
    let (_, s) = app.get_json("/v1/reconcile/status").await;
    assert_eq!(s["unsynced_total"], 1, "{s}");
    assert_eq!(s["unsynced"][0]["instance_id"], "beta");
    assert_eq!(s["unsynced"][0]["urls"][0]["state"], "failed", "{s}");
    assert!(s["unsynced"][0]["urls"][0]["reason"].is_string());
    // The status shows what the last pass recorded when it ended, not a fresh walk over every
    // instance; the next pass replaces the record.
    let recorded: Vec<(String, i64)> =
        sqlx::query_as("SELECT instance_id, run_id FROM unsynced_instances")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].0, "beta");
    assert!(
        recorded[0].1 >= s["last_run"]["id"].as_i64().unwrap(),
        "{recorded:?} {s}"
    );
    app.tenant.http_put_faults(json!({})).await;
    assert_eq!(reconcile().await, 200);
    let (_, s) = app.get_json("/v1/reconcile/status").await;
    assert_eq!(s["unsynced_total"], 0, "{s}");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM unsynced_instances")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}
