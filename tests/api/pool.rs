//! The application pool over time: registering, moving and removing applications, instances
//! that outgrow theirs, assignments across restarts, and changes made during a pass.

use fleetgate_emulator::EmulatorConfig;
use reqwest::Method;
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::*;

#[sqlx::test]
async fn register_move_and_remove_applications(pool: PgPool) {
    let app = pool_fleet(pool, roomy_with(100), &[]).await;
    let spa = app.tenant.seeded().await["spa_client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let extra = app.tenant.create_application("extra").await;

    let res = app
        .admin(Method::POST, "/v1/applications")
        .json(&serde_json::json!({"client_id": "nosuchclient"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, "validation_failed").await;
    let res = app
        .admin(Method::POST, "/v1/applications")
        .json(&serde_json::json!({"client_id": extra}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    app.deploy("acme", &["www.acme.com"]).await;
    reconcile(&app).await;
    let (_, config) = app.get_json("/v1/instances/acme/config").await;
    assert_eq!(
        config["client_id"],
        spa.as_str(),
        "first with room: the primary"
    );

    let res = app
        .admin(Method::POST, "/v1/instances/acme/move")
        .json(&serde_json::json!({"client_id": extra}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    reconcile(&app).await;
    let (_, config) = app.get_json("/v1/instances/acme/config").await;
    assert_eq!(config["client_id"], extra.as_str());
    let lists = callbacks_by_app(&app).await;
    assert_eq!(lists[&extra], ["https://www.acme.com/callback"]);
    assert!(
        lists[&spa].is_empty(),
        "its entries left the old application"
    );
    let (_, audit) = app.get_json("/v1/audit?instance_id=acme").await;
    assert_eq!(audit["items"][0]["action"], "instance.moved");

    let res = app
        .admin(Method::DELETE, &format!("/v1/applications/{extra}"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 409, "application_in_use").await;
    let res = app
        .admin(Method::DELETE, &format!("/v1/applications/{spa}"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 409, "primary_application").await;
    app.admin(Method::POST, "/v1/instances/acme/move")
        .json(&serde_json::json!({"client_id": spa}))
        .send()
        .await
        .unwrap();
    reconcile(&app).await;
    let res = app
        .admin(Method::DELETE, &format!("/v1/applications/{extra}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = app
        .admin(Method::POST, "/v1/instances/acme/move")
        .json(&serde_json::json!({"client_id": extra}))
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, "validation_failed").await;
}

async fn outgrow(pool: PgPool, auto_move: bool) {
    let flag = if auto_move { "true" } else { "false" };
    let app = pool_fleet(
        pool,
        roomy_with(100),
        &[
            ("FLEETGATE_ALLOWLIST_CAP", "5"),
            ("FLEETGATE_AUTO_CREATE_APPLICATIONS", "true"),
            ("FLEETGATE_AUTO_MOVE", flag),
        ],
    )
    .await;
    app.deploy("a", &["a1.com", "a2.com", "a3.com"]).await;
    app.deploy("b", &["b1.com", "b2.com"]).await;
    reconcile(&app).await;
    let (_, before) = app.get_json("/v1/instances/a/config").await;
    app.deploy("a", &["a1.com", "a2.com", "a3.com", "a4.com"])
        .await;
    let run = reconcile(&app).await;
    let (_, after) = app.get_json("/v1/instances/a/config").await;
    let (_, b) = app.get_json("/v1/instances/b/config").await;
    let lists = callbacks_by_app(&app).await;
    assert!(
        lists[b["client_id"].as_str().unwrap()].contains(&"https://b1.com/callback".to_owned()),
        "b, which did not grow, stays live"
    );
    if auto_move {
        assert_ne!(run["outcome"], "failed", "{run}");
        assert_ne!(
            after["client_id"], before["client_id"],
            "moved to an application with room"
        );
        assert_eq!(lists[after["client_id"].as_str().unwrap()].len(), 4);
        let (_, audit) = app.get_json("/v1/audit?instance_id=a").await;
        let moved = audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == "instance.moved")
            .expect("the move is audited");
        assert_eq!(moved["actor"], "reconciler");
    } else {
        assert_eq!(run["outcome"], "failed");
        assert!(
            run["error"]
                .as_str()
                .unwrap()
                .contains("instance 'a' needs 4 callbacks entries"),
            "{run}"
        );
        assert_eq!(
            after["client_id"], before["client_id"],
            "an assignment never changes by itself"
        );
    }
}

#[sqlx::test]
async fn an_instance_that_outgrows_its_application_is_reported(pool: PgPool) {
    outgrow(pool, false).await;
}

#[sqlx::test]
async fn an_instance_that_outgrows_its_application_moves_when_configured(pool: PgPool) {
    outgrow(pool, true).await;
}

#[sqlx::test]
async fn assignments_survive_a_restart(pool: PgPool) {
    let tenant = TestTenant::start_with(roomy_with(100)).await;
    let mut vars = tenant.reconciler_vars().await;
    vars.extend([
        ("FLEETGATE_WILDCARD", "false".to_owned()),
        ("FLEETGATE_ALLOWLIST_CAP", "3".to_owned()),
        ("FLEETGATE_AUTO_CREATE_APPLICATIONS", "true".to_owned()),
    ]);
    let start = || spawn_process(&pool, &tenant.base_url, &vars);
    let http = reqwest::Client::new();
    let admin = tenant.sign(&tenant.claims(&["fleet:admin"]));
    let configs = |addr: String| {
        let (http, admin) = (http.clone(), admin.clone());
        async move {
            let mut out = Vec::new();
            for i in 0..7 {
                let c: Value = http
                    .get(format!("{addr}/v1/instances/r{i}/config"))
                    .bearer_auth(&admin)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                out.push(c["client_id"].as_str().unwrap_or("none").to_owned());
            }
            out
        }
    };
    let (addr, stop, handle) = start();
    let signer = |i: usize| {
        let body = serde_json::json!({"type": "instance.deployed", "data": {"instance_id": format!("r{i}"), "owner": "auth0|o", "domains": [format!("www.r{i}.com")]}}).to_string();
        let ts = chrono::Utc::now().timestamp();
        let id = format!("msg_r{i}");
        (body.clone(), ts, id.clone(), signature(&id, ts, &body))
    };
    for i in 0..7 {
        let (body, ts, id, sig) = signer(i);
        let res = http
            .post(format!("{addr}/v1/hooks/deploy"))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    http.post(format!("{addr}/v1/reconcile"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let before = configs(addr).await;
    assert_eq!(
        before
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        3,
        "7 instances at 3 per application: {before:?}"
    );
    stop.cancel();
    let _ = handle.await;

    let (addr, stop, _handle) = start();
    http.post(format!("{addr}/v1/reconcile"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        configs(addr).await,
        before,
        "every instance keeps its client id across a restart"
    );
    stop.cancel();
}

/// A pass surveys, then talks to Auth0 for a while, then records assignments: an admin's move
/// made in between must survive (the pass writes only from what it saw).
#[sqlx::test]
async fn an_admin_move_made_during_a_pass_is_not_undone(pool: PgPool) {
    let slow = EmulatorConfig {
        faults: fleetgate_emulator::faults::Faults {
            latency_rate: 1.0,
            latency_ms: 1500,
            ..Default::default()
        },
        ..roomy_with(100)
    };
    let app = pool_fleet(pool, slow, &[]).await;
    let extra = register_extra(&app).await;
    app.deploy("acme", &["www.acme.com"]).await;
    reconcile(&app).await;
    let (_, config) = app.get_json("/v1/instances/acme/config").await;
    assert_ne!(config["client_id"], extra.as_str(), "placed on the primary");

    // The move lands while the pass reads the applications from Auth0 (each answer takes up
    // to 1.5 s).
    let pass = reconcile(&app);
    let moved = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let res = app
            .admin(Method::POST, "/v1/instances/acme/move")
            .json(&serde_json::json!({"client_id": extra}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
    };
    tokio::join!(pass, moved);
    let (_, config) = app.get_json("/v1/instances/acme/config").await;
    assert_eq!(
        config["client_id"],
        extra.as_str(),
        "the admin's move stands"
    );
}

/// Waits until no pass is running and none started for a second (the leader's debounced
/// passes after the last change included).
async fn quiet(app: &TestApp) {
    let mut last = Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let (_, runs) = app.get_json("/v1/reconcile/runs").await;
        let running = runs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["finished_at"].is_null());
        if !running && runs["items"][0]["id"] == last["items"][0]["id"] {
            return;
        }
        last = runs;
    }
    panic!("passes kept running: {last}");
}

/// A pass that saw an instance deleted frees its slot only if it is still deleted when the
/// pass records: a redeploy landing meanwhile keeps the application the instance was configured
/// with (placed afresh it would go to the primary, the first with room).
#[sqlx::test]
async fn an_instance_redeployed_during_a_pass_that_saw_it_deleted_keeps_its_application(
    pool: PgPool,
) {
    let app = pool_fleet(pool.clone(), roomy_with(100), &[]).await;
    let extra = register_extra(&app).await;
    app.deploy("acme", &["www.acme.com"]).await;
    let res = app
        .admin(Method::POST, "/v1/instances/acme/move")
        .json(&serde_json::json!({"client_id": extra}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    reconcile(&app).await;
    let (_, config) = app.get_json("/v1/instances/acme/config").await;
    assert_eq!(config["client_id"], extra.as_str());
    quiet(&app).await;

    // Deleted, then redeployed while a pass that surveyed the deletion reads the two
    // applications from Auth0 (each answer now takes up to 4 s: both within 200 ms once in 800).
    app.tenant
        .http_put_faults(serde_json::json!({"latency_rate": 1.0, "latency_ms": 4000}))
        .await;
    app.hook(&event("instance.deleted", "acme")).await;
    let pass = reconcile(&app);
    let redeployed = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        app.deploy("acme", &["www.acme.com"]).await;
    };
    tokio::join!(pass, redeployed);
    let assigned: Option<String> =
        sqlx::query_scalar("SELECT client_id FROM assignments WHERE instance_id = 'acme'")
            .fetch_optional(&pool)
            .await
            .unwrap();
    assert_eq!(
        assigned.as_deref(),
        Some(extra.as_str()),
        "the redeployed instance was never taken off its application"
    );
    quiet(&app).await;
    let (_, config) = app.get_json("/v1/instances/acme/config").await;
    assert_eq!(config["client_id"], extra.as_str());
}

/// An instance that even an empty application could not hold (here: every application carries
/// the wildcard entries, which fill a cap of 1) makes the pass fail saying so, and creates no
/// application: before, the pass created applications until the tenant's limit.
#[sqlx::test]
async fn no_application_is_created_for_an_instance_no_application_could_hold(pool: PgPool) {
    let tenant = TestTenant::start_with(roomy_with(20)).await;
    let mut vars = tenant.reconciler_vars().await;
    vars.extend([
        ("FLEETGATE_WILDCARD", "true".to_owned()),
        ("FLEETGATE_ALLOWLIST_CAP", "1".to_owned()),
        ("FLEETGATE_AUTO_CREATE_APPLICATIONS", "true".to_owned()),
        ("FLEETGATE_RECONCILE_CRON", "0 0 0 1 1 *".to_owned()),
    ]);
    let app = TestApp::spawn_with(pool, tenant, &vars).await;
    app.deploy("acme", &["acme.apps.example.com"]).await;
    app.deploy("beta", &["www.beta.com"]).await;
    let run = reconcile(&app).await;
    assert_eq!(run["outcome"], "failed", "{run}");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.contains("beta") && error.contains("no application was created"),
        "{error}"
    );
    let (_, apps) = app.get_json("/v1/applications").await;
    assert_eq!(apps["items"].as_array().unwrap().len(), 1, "{apps}");
    let clients = app
        .tenant
        .management(Method::GET, "/clients")
        .send()
        .await
        .unwrap();
    let clients: Value = clients.json().await.unwrap();
    assert_eq!(
        clients.as_array().unwrap().len(),
        2,
        "the seeded SPA and M2M only: {clients}"
    );
}
