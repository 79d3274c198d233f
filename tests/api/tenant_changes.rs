//! What happens to the tenant behind fleetgate's back: a list emptied or an application deleted
//! by hand, a primary replaced, an application marked by another deployment (staging and
//! production on one tenant), a copy of a deployment's database.

use serde_json::json;
use sqlx::PgPool;

use crate::helpers::*;

/// Two deployments pointed at one application (staging and production on one tenant): the
/// application carries the first one's mark, so the other leaves it alone and fails its passes
/// naming both; taking it over is deliberate (a setting) and audited.
#[sqlx::test]
async fn an_application_another_deployment_marked_is_left_alone_until_taken_over(pool: PgPool) {
    let f = lists_fleet(pool.clone(), roomy(), &[]).await;
    f.app.deploy("acme", &["www.acme.com"]).await;
    let run = f.reconcile().await;
    assert_ne!(run["outcome"], "failed", "{run}");
    let ours: String = sqlx::query_scalar("SELECT id::text FROM deployment")
        .fetch_one(&pool)
        .await
        .unwrap();
    let mark =
        |client: &serde_json::Value| client["client_metadata"]["fleetgate_deployment"].clone();
    assert_eq!(
        mark(&f.lists().await),
        json!(ours),
        "marked as this deployment's"
    );

    // Another deployment, on a database of its own, marked the application as its own.
    f.person_sets(
        "client_metadata",
        json!({"fleetgate_deployment": "staging-0001"}),
    )
    .await;
    f.app.deploy("beta", &["www.beta.com"]).await;
    let run = f.reconcile().await;
    assert_eq!(run["outcome"], "failed", "{run}");
    let error = run["error"].as_str().unwrap();
    for named in [
        f.spa.as_str(),
        "staging-0001",
        ours.as_str(),
        "FLEETGATE_TAKE_OVER_APPLICATIONS",
    ] {
        assert!(error.contains(named), "{named} in: {error}");
    }
    assert!(
        !f.list("callbacks").await.contains(&cb("www.beta.com")),
        "left alone"
    );
    let (_, plan) = f.app.get_json("/v1/reconcile/plan").await;
    assert!(
        plan["applications"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["client_id"] != json!(f.spa)),
        "no pass will change it, so the plan shows nothing for it: {plan}"
    );
    assert_eq!(mark(&f.lists().await), json!("staging-0001"));

    // Registering another of the other deployment's applications is refused at once.
    let theirs = f
        .app
        .tenant
        .create_application_with(json!({"name": "staging", "app_type": "spa", "client_metadata": {"fleetgate_deployment": "staging-0001"}}))
        .await;
    let res = f
        .app
        .admin(reqwest::Method::POST, "/v1/applications")
        .json(&json!({ "client_id": theirs }))
        .send()
        .await
        .unwrap();
    let detail = assert_problem(res, 409, "application_managed_elsewhere").await;
    assert!(
        detail.contains("staging-0001") && detail.contains(&ours),
        "{detail}"
    );
    let (_, apps) = f.app.get_json("/v1/applications").await;
    assert_eq!(
        apps["items"].as_array().unwrap().len(),
        1,
        "nothing registered: {apps}"
    );

    // A replica told to take it over does, and says so in the audit log.
    let mut vars = f.app.tenant.reconciler_vars().await;
    vars.push(("FLEETGATE_TAKE_OVER_APPLICATIONS", f.spa.clone()));
    let (taker, _stop, _task) = spawn_process(&pool, &f.app.tenant.base_url, &vars);
    let run = reconcile_at(&f.app.http, &taker, &f.app.admin_token).await;
    assert_eq!(run["outcome"].as_str(), Some("applied"), "{run}");
    assert_eq!(mark(&f.lists().await), json!(ours));
    assert!(f.list("callbacks").await.contains(&cb("www.beta.com")));
    let taken: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'application.taken_over' AND target_id = $1",
    )
    .bind(&f.spa)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(taken, 1);
    // From now on every replica of this deployment manages it again.
    assert_ne!(f.reconcile().await["outcome"], "failed");
}

/// A tenant that lost its lists: entries fleetgate wrote and someone removed (a whole list
/// emptied) are written back, counted and audited; an application deleted in the tenant leaves
/// the pool and its instances are placed again (the pass says so once); the primary deleted
/// fails every pass naming it.
#[sqlx::test]
async fn lists_emptied_or_applications_deleted_by_hand_are_restored_or_replaced(pool: PgPool) {
    let f = lists_fleet(pool.clone(), roomy(), &[]).await;
    f.app.deploy("acme", &["www.acme.com"]).await;
    f.app.deploy("beta", &["www.beta.com"]).await;
    assert_ne!(f.reconcile().await["outcome"], "failed");
    let audited = |action: &'static str, target: String| {
        let pool = pool.clone();
        async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM audit_log WHERE action = $1 AND target_id = $2",
            )
            .bind(action)
            .bind(target)
            .fetch_one(&pool)
            .await
            .unwrap();
            n
        }
    };

    // A person empties the callbacks: the next pass writes them back, and says so.
    f.person_sets("callbacks", json!([])).await;
    assert_ne!(f.reconcile().await["outcome"], "failed");
    let callbacks = f.list("callbacks").await;
    assert!(
        callbacks.contains(&cb("www.acme.com")) && callbacks.contains(&cb("www.beta.com")),
        "{callbacks:?}"
    );
    assert_eq!(audited("application.list_restored", f.spa.clone()).await, 1);
    let metrics = f.app.metrics().await;
    assert!(
        metrics.contains(r#"fleetgate_allowlist_entries_restored_total{field="callbacks"} 2"#),
        "{metrics}"
    );

    // An application of the pool deleted in the tenant: its instance goes back to one that exists.
    let extra = f.app.tenant.create_application("extra").await;
    let res = f
        .app
        .admin(reqwest::Method::POST, "/v1/applications")
        .json(&json!({ "client_id": extra }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = f
        .app
        .admin(reqwest::Method::POST, "/v1/instances/beta/move")
        .json(&json!({ "client_id": extra }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_ne!(f.reconcile().await["outcome"], "failed");
    assert!(
        !f.list("callbacks").await.contains(&cb("www.beta.com")),
        "beta moved"
    );
    let res = f
        .app
        .tenant
        .management(reqwest::Method::DELETE, &format!("/clients/{extra}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let run = f.reconcile().await;
    assert_eq!(run["outcome"], "failed", "said once: {run}");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.contains(&extra) && error.contains("no longer exists"),
        "{error}"
    );
    assert!(
        f.list("callbacks").await.contains(&cb("www.beta.com")),
        "placed again"
    );
    let (_, apps) = f.app.get_json("/v1/applications").await;
    assert!(
        apps["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["client_id"] != json!(extra))
    );
    assert_eq!(audited("application.vanished", extra.clone()).await, 1);
    let metrics = f.app.metrics().await;
    assert!(
        !metrics.contains(&format!("client_id=\"{extra}\"")),
        "its gauges went with it: {metrics}"
    );
    assert_ne!(
        f.reconcile().await["outcome"],
        "failed",
        "the next pass is clean"
    );

    // The primary deleted: no pass can place instances for it; each fails naming it.
    let res = f
        .app
        .tenant
        .management(reqwest::Method::DELETE, &format!("/clients/{}", f.spa))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let run = f.reconcile().await;
    assert_eq!(run["outcome"], "failed");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.contains(&f.spa) && error.contains("AUTH0_SPA_CLIENT_ID"),
        "{error}"
    );
    // Its replacement named in the setting: the deleted one leaves the pool, the instances go
    // to the new one.
    let replacement = f.app.tenant.create_application("replacement").await;
    let mut vars = f.app.tenant.reconciler_vars().await;
    vars.retain(|(k, _)| *k != "AUTH0_SPA_CLIENT_ID");
    vars.push(("AUTH0_SPA_CLIENT_ID", replacement.clone()));
    let (replica, _stop, _task) = spawn_process(&pool, &f.app.tenant.base_url, &vars);
    let run = reconcile_at(&f.app.http, &replica, &f.app.admin_token).await;
    let error = run["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&f.spa) && error.contains("no longer exists"),
        "said once: {run}"
    );
    let callbacks =
        fleetgate::domain::field::entries(&f.app.tenant.client(&replacement).await["callbacks"]);
    assert!(callbacks.contains(&cb("www.acme.com")), "{callbacks:?}");
    assert_eq!(audited("application.vanished", f.spa.clone()).await, 1);
}

/// A copy of a deployment's database (staging seeded from production's dump) shares its
/// deployment id; `fleetgate restored --new-deployment` gives it one of its own, after which
/// the original's applications are left alone, and its pollers start from snapshots.
#[sqlx::test]
async fn a_copied_database_made_a_deployment_of_its_own_leaves_the_originals_applications_alone(
    pool: PgPool,
) {
    let f = lists_fleet(pool.clone(), roomy(), &[]).await;
    f.app.deploy("acme", &["www.acme.com"]).await;
    assert_ne!(f.reconcile().await["outcome"], "failed");
    let id = || async {
        let id: String = sqlx::query_scalar("SELECT id::text FROM deployment")
            .fetch_one(&pool)
            .await
            .unwrap();
        id
    };
    let original = id().await;

    let db = database_url(&pool).await;
    let mut cmd = fleetgate(&db, &f.app.tenant, &[]);
    cmd.args(["restored", "--new-deployment"]);
    let out = succeeded(cmd).await;
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let renewed = id().await;
    assert_ne!(renewed, original);
    assert!(
        said.contains("grants revision is now") && said.contains(&renewed),
        "{said}"
    );

    let run = f.reconcile().await;
    assert_eq!(run["outcome"], "failed", "{run}");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.contains(&original) && error.contains(&renewed),
        "{error}"
    );
}
