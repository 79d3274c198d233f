//! Spreading instances over a pool of applications when one is full.

use std::collections::BTreeMap;

use fleetgate_emulator::EmulatorConfig;
use reqwest::Method;
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::*;

async fn fleet(pool: PgPool, emulator: EmulatorConfig, extra: &[(&str, &str)]) -> TestApp {
    let tenant = TestTenant::start_with(emulator).await;
    let mut vars = tenant.reconciler_vars().await;
    vars.push(("FLEETGATE_WILDCARD", "false".to_owned()));
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    TestApp::spawn_with(pool, tenant, &vars).await
}

fn roomy(max_clients: usize) -> EmulatorConfig {
    EmulatorConfig {
        rate_limit_burst: 1000,
        rate_limit_per_second: 1000.0,
        max_clients,
        ..TestTenant::config()
    }
}

async fn deploy_many(app: &TestApp, ids: std::ops::Range<usize>) {
    for chunk in ids.collect::<Vec<_>>().chunks(50) {
        let sends = chunk.iter().map(|i| async move {
            app.deploy(&format!("s{i:03}"), &[&format!("www.s{i:03}.com")])
                .await
        });
        futures_util::future::join_all(sends).await;
    }
}

async fn reconcile(app: &TestApp) -> Value {
    into_json(
        app.admin(Method::POST, "/v1/reconcile")
            .send()
            .await
            .unwrap(),
    )
    .await
    .1
}

/// Creates an application in the tenant (as a person would) and registers it in the pool.
async fn register_extra(app: &TestApp) -> String {
    let extra = app.tenant.create_application("extra").await;
    let res = app
        .admin(Method::POST, "/v1/applications")
        .json(&serde_json::json!({"client_id": extra}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    extra
}

/// Runs a pass that must not fail.
async fn reconciled(app: &TestApp) {
    let run = reconcile(app).await;
    assert_ne!(run["outcome"], "failed", "{run}");
}

/// client_id → callbacks, for every application of the tenant.
async fn callbacks_by_app(app: &TestApp) -> BTreeMap<String, Vec<String>> {
    let clients: Value = app
        .tenant
        .management(Method::GET, "/clients")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    clients
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["client_id"].as_str().unwrap().to_owned(),
                serde_json::from_value(c["callbacks"].clone()).unwrap_or_default(),
            )
        })
        .collect()
}

#[sqlx::test]
async fn three_hundred_instances_fill_exactly_three_applications(pool: PgPool) {
    let app = fleet(
        pool,
        roomy(100),
        &[("FLEETGATE_AUTO_CREATE_APPLICATIONS", "true")],
    )
    .await;
    deploy_many(&app, 0..300).await;
    reconciled(&app).await;
    let (_, pool_view) = app.get_json("/v1/applications").await;
    let apps = pool_view["items"].as_array().unwrap();
    assert_eq!(
        apps.len(),
        3,
        "ceil(300 slots / 100) applications: {pool_view}"
    );
    assert_eq!(apps[0]["origin"], "primary");
    assert!(apps[1..].iter().all(|a| a["origin"] == "created"));
    let lists = callbacks_by_app(&app).await;
    assert!(lists.values().all(|l| l.len() <= 100));
    // Every instance's URL is live on the application it is configured with.
    let mut assigned = BTreeMap::new();
    for i in (0..300).step_by(7) {
        let (status, config) = app.get_json(&format!("/v1/instances/s{i:03}/config")).await;
        assert_eq!(status, 200, "{config}");
        let client_id = config["client_id"].as_str().unwrap().to_owned();
        assert!(
            lists[&client_id].contains(&format!("https://www.s{i:03}.com/callback")),
            "s{i:03} on {client_id}"
        );
        assigned.insert(i, client_id);
    }
    // Assignments hold across passes.
    reconcile(&app).await;
    for (i, client_id) in &assigned {
        let (_, config) = app.get_json(&format!("/v1/instances/s{i:03}/config")).await;
        assert_eq!(config["client_id"].as_str(), Some(client_id.as_str()));
    }
    // Deleting frees room that new instances reuse: no fourth application.
    for i in 0..40 {
        app.hook(&event("instance.deleted", &format!("s{i:03}")))
            .await;
    }
    deploy_many(&app, 300..340).await;
    reconciled(&app).await;
    let (_, pool_view) = app.get_json("/v1/applications").await;
    assert_eq!(
        pool_view["items"].as_array().unwrap().len(),
        3,
        "{pool_view}"
    );
    assert_eq!(
        callbacks_by_app(&app)
            .await
            .values()
            .map(Vec::len)
            .sum::<usize>(),
        300
    );
}

#[sqlx::test]
async fn without_room_or_permission_to_create_the_reason_is_clear(pool: PgPool) {
    // The tenant may hold 3 applications: the seeded 2 and one more.
    let app = fleet(
        pool,
        roomy(3),
        &[("FLEETGATE_AUTO_CREATE_APPLICATIONS", "true")],
    )
    .await;
    deploy_many(&app, 0..250).await;
    let run = reconcile(&app).await;
    assert_eq!(run["outcome"], "failed");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.contains("creating another application failed")
            && error.contains("too_many_entities"),
        "{error}"
    );
    let (_, pool_view) = app.get_json("/v1/applications").await;
    assert_eq!(
        pool_view["items"].as_array().unwrap().len(),
        2,
        "the one it could create is used"
    );
    let (status, _) = app.get_json("/v1/instances/s249/config").await;
    assert_eq!(status, 409);
    let (_, sync) = app.get_json("/v1/instances/s249/sync").await;
    assert!(
        sync["urls"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["state"] == "failed"
                && u["reason"]
                    .as_str()
                    .unwrap()
                    .contains("raise the tenant's application limit")),
        "the instance's status says what to do: {sync}"
    );
}

/// An application fleetgate creates copies the primary's settings and says whose shard it
/// is; like every application of the pool, it carries the wildcard entries as soon as one of
/// its instances relies on them (room for them is kept on each).
#[sqlx::test]
async fn a_created_application_copies_the_primary_and_carries_the_wildcard(pool: PgPool) {
    let tenant = TestTenant::start_with(roomy(100)).await;
    let mut vars = tenant.reconciler_vars().await;
    vars.push(("FLEETGATE_AUTO_CREATE_APPLICATIONS", "true".to_owned()));
    let spa = vars[2].1.clone();
    let settings = serde_json::json!({
        "name": "Acme SPA",
        "grant_types": ["authorization_code", "refresh_token"],
        "oidc_conformant": true,
        "token_endpoint_auth_method": "none",
        "jwt_configuration": {"alg": "RS256", "lifetime_in_seconds": 600}
    });
    let res = tenant
        .management(Method::PATCH, &format!("/clients/{spa}"))
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let app = TestApp::spawn_with(pool, tenant, &vars).await;
    // The primary: the wildcard and 99 custom domains, full.
    app.deploy("plat", &[&format!("plat.{PLATFORM_DOMAIN}")])
        .await;
    deploy_many(&app, 0..99).await;
    reconciled(&app).await;
    // An instance with a custom domain and a platform subdomain goes to a new application.
    app.deploy(
        "mixed",
        &["www.mixed.com", &format!("mixed.{PLATFORM_DOMAIN}")],
    )
    .await;
    reconciled(&app).await;
    let (_, pool_view) = app.get_json("/v1/applications").await;
    let created = pool_view["items"][1]["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let primary = app.tenant.client(&spa).await;
    let shard = app.tenant.client(&created).await;
    for key in [
        "app_type",
        "token_endpoint_auth_method",
        "grant_types",
        "oidc_conformant",
        "jwt_configuration",
    ] {
        assert_eq!(shard[key], primary[key], "{key}");
    }
    assert_eq!(shard["name"], "Acme SPA (fleetgate shard 1)");
    assert_eq!(shard["client_metadata"]["fleetgate_shard_of"], spa.as_str());
    let callbacks = |client: &Value| fleetgate::domain::field::entries(&client["callbacks"]);
    let wildcard = format!("https://*.{PLATFORM_DOMAIN}/callback");
    assert_eq!(callbacks(&primary).len(), 100);
    assert!(callbacks(&primary).contains(&wildcard));
    assert_eq!(
        callbacks(&shard),
        [wildcard, "https://www.mixed.com/callback".to_owned()]
    );
    let (_, config) = app.get_json("/v1/instances/mixed/config").await;
    assert_eq!(config["client_id"], created.as_str());
}

/// Creating an application whose answer is lost (the connection cut after Auth0 made it) must
/// not make a second one: each counts against the tenant's limit.
#[sqlx::test]
async fn an_application_whose_creation_answer_was_lost_is_found_not_made_twice(pool: PgPool) {
    let app = fleet(
        pool,
        roomy(100),
        &[("FLEETGATE_AUTO_CREATE_APPLICATIONS", "true")],
    )
    .await;
    reconcile(&app).await;
    app.tenant
        .http_put_faults(serde_json::json!({"drop_next": "POST /api/v2/clients"}))
        .await;
    deploy_many(&app, 0..150).await;
    reconciled(&app).await;
    let stats = app.tenant.stats().await;
    assert_eq!(
        stats["POST /api/v2/clients 201"], 1,
        "one creation, its answer dropped: {stats}"
    );
    let (_, pool_view) = app.get_json("/v1/applications").await;
    assert_eq!(
        pool_view["items"].as_array().unwrap().len(),
        2,
        "{pool_view}"
    );
    let lists = callbacks_by_app(&app).await;
    assert_eq!(
        lists.len(),
        3,
        "the tenant holds the SPA, the M2M application and the one created: {lists:?}"
    );
    assert_eq!(lists.values().map(Vec::len).sum::<usize>(), 150);
}

/// A creation that was never recorded (the process died right after Auth0 made the
/// application) is settled by the next pass: that application joins the pool; no other is made.
#[sqlx::test]
async fn an_application_created_by_a_process_that_died_joins_the_pool(pool: PgPool) {
    let app = fleet(
        pool.clone(),
        roomy(100),
        &[("FLEETGATE_AUTO_CREATE_APPLICATIONS", "true")],
    )
    .await;
    reconcile(&app).await;
    // What the dead process left: its creation written ahead, the application in the tenant.
    // Also a creation that never reached Auth0, asked for 11 minutes ago (forgotten), and one
    // asked for just now (maybe still on its way: kept).
    sqlx::query(
        "INSERT INTO application_creations (mark, requested_at) VALUES \
         ('mark-1', now()), ('mark-stale', now() - interval '11 minutes'), ('mark-young', now())",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (status, made) = into_json(
        app.tenant
            .management(Method::POST, "/clients")
            .json(&serde_json::json!({
                "name": "primary (fleetgate shard 1)",
                "app_type": "spa",
                "client_metadata": {"fleetgate_creation": "mark-1"}
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let orphan = made["client_id"].as_str().unwrap().to_owned();
    deploy_many(&app, 0..150).await;
    reconciled(&app).await;
    let stats = app.tenant.stats().await;
    assert_eq!(
        stats["POST /api/v2/clients 201"], 1,
        "only the dead process's: {stats}"
    );
    let (_, pool_view) = app.get_json("/v1/applications").await;
    assert_eq!(
        pool_view["items"][1]["client_id"],
        orphan.as_str(),
        "{pool_view}"
    );
    assert_eq!(callbacks_by_app(&app).await[&orphan].len(), 50);
    let open: Vec<String> = sqlx::query_scalar("SELECT mark FROM application_creations")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(open, ["mark-young"]);
}

#[sqlx::test]
async fn foreign_entries_take_room_and_survive(pool: PgPool) {
    let app = fleet(
        pool,
        roomy(100),
        &[("FLEETGATE_AUTO_CREATE_APPLICATIONS", "true")],
    )
    .await;
    let spa = app.tenant.seeded().await["spa_client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let person: Vec<String> = (0..10)
        .map(|i| format!("https://person{i}.example.com/cb"))
        .collect();
    let res = app
        .tenant
        .management(Method::PATCH, &format!("/clients/{spa}"))
        .json(&serde_json::json!({"callbacks": person}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    reconcile(&app).await;
    deploy_many(&app, 0..95).await;
    reconciled(&app).await;
    let lists = callbacks_by_app(&app).await;
    assert_eq!(lists[&spa].len(), 100, "10 foreign + 90 instances");
    assert!(person.iter().all(|p| lists[&spa].contains(p)));
    assert_eq!(
        lists.values().map(Vec::len).sum::<usize>(),
        105,
        "5 instances went to a new application"
    );
}

#[sqlx::test]
async fn register_move_and_remove_applications(pool: PgPool) {
    let app = fleet(pool, roomy(100), &[]).await;
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
    let app = fleet(
        pool,
        roomy(100),
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
    let tenant = TestTenant::start_with(roomy(100)).await;
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
        ..roomy(100)
    };
    let app = fleet(pool, slow, &[]).await;
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
    let app = fleet(pool.clone(), roomy(100), &[]).await;
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
    let tenant = TestTenant::start_with(roomy(20)).await;
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
