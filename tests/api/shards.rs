//! Spreading instances over a pool of applications when one is full.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::*;

#[sqlx::test]
async fn three_hundred_instances_fill_exactly_three_applications(pool: PgPool) {
    let app = pool_fleet(
        pool,
        roomy_with(100),
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
    let app = pool_fleet(
        pool,
        roomy_with(3),
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
    let tenant = TestTenant::start_with(roomy_with(100)).await;
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
    let app = pool_fleet(
        pool,
        roomy_with(100),
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
    let app = pool_fleet(
        pool.clone(),
        roomy_with(100),
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
    let app = pool_fleet(
        pool,
        roomy_with(100),
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
