//! fleetgate's own applications (the status page's, `FLEETGATE_ADMIN_CLIENTS`) are never
//! applications instances log in through: not the SPA (checked with the settings), not one
//! of the pool (refused when registered, and at start).

use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::*;

#[sqlx::test]
async fn fleetgates_own_applications_cannot_join_the_pool(pool: PgPool) {
    let tenant = TestTenant::start().await;
    let console = tenant.create_application("fleetgate status").await;
    let tool = tenant.create_application("admin tool").await;
    let mut vars = tenant.reconciler_vars().await;
    vars.push(("FLEETGATE_UI_CLIENT_ID", console.clone()));
    vars.push(("FLEETGATE_ADMIN_CLIENTS", format!("{ADMIN_CLIENT},{tool}")));
    let app = TestApp::spawn_with(pool, tenant, &vars).await;
    for own in [&console, &tool] {
        let before = app.snapshot().await;
        let res = app
            .admin(Method::POST, "/v1/applications")
            .json(&json!({ "client_id": own }))
            .send()
            .await
            .unwrap();
        let detail = assert_problem(res, 409, "application_reserved").await;
        assert!(detail.contains("FLEETGATE_UI_CLIENT_ID"), "{detail}");
        assert_eq!(app.snapshot().await, before, "nothing changed");
    }
    let (_, pool_view) = app.get_json("/v1/applications").await;
    assert_eq!(
        pool_view["items"].as_array().unwrap().len(),
        1,
        "{pool_view}"
    );
}

/// An application already in the pool named as the status page's (or an admin client) stops
/// the start, naming the setting.
#[sqlx::test]
async fn a_console_in_the_pool_stops_the_start(pool: PgPool) {
    let tenant = TestTenant::start().await;
    let vars = tenant.reconciler_vars().await;
    let extra = tenant.create_application("extra").await;
    let app = TestApp::spawn_with(pool.clone(), tenant, &vars).await;
    let res = app
        .admin(Method::POST, "/v1/applications")
        .json(&json!({ "client_id": extra }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let db = database_url(&pool).await;
    for var in ["FLEETGATE_UI_CLIENT_ID", "FLEETGATE_ADMIN_CLIENTS"] {
        let mut with = vars.clone();
        with.push((var, extra.clone()));
        let mut cmd = fleetgate(&db, &app.tenant, &with);
        cmd.args(["serve", "--no-migrate"]);
        let out = output(cmd).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{var} in the pool was accepted");
        assert!(stderr.contains(var) && stderr.contains(&extra), "{stderr}");
    }
}
