//! Restoring from a backup: a `pg_dump` taken while deploy hooks keep coming, more changes made
//! after it, the dump restored into a new database and fleetgate started on it. The restored
//! registry is what it serves and what it brings the tenant's lists back to; its keys and
//! grants work; instances that polled the lost history start again from a snapshot.

use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

/// Runs a PostgreSQL client tool (`pg_dump`, `pg_restore`), asserting it succeeds.
fn tool(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} (Debian's postgresql-client) is needed for the restore test: {e}")
        });
    assert!(
        out.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[sqlx::test]
async fn a_registry_restored_from_a_dump_is_served_and_brought_back_to_the_tenant(pool: PgPool) {
    let tenant = TestTenant::start_with(roomy()).await;
    let mut vars = tenant.reconciler_vars().await;
    vars.push(("FLEETGATE_WILDCARD", "false".to_owned()));
    let spa = tenant.seeded().await["spa_client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = tenant.sign(&tenant.claims(&["fleet:admin"]));
    let http = reqwest::Client::new();
    let call = |addr: &str, method: Method, path: &str, bearer: &str| {
        http.request(method, format!("{addr}{path}"))
            .bearer_auth(bearer.to_owned())
    };
    let callbacks =
        || async { fleetgate::domain::field::entries(&tenant.client(&spa).await["callbacks"]) };

    // Production, before the backup.
    let (live, stop_live, _task) = spawn_process(&pool, &tenant.base_url, &vars);
    until_ready(&http, &live).await;
    let hook = |id: &str, host: &str| {
        let event = deployed(id, "auth0|owner-1", &[host]);
        let (http, live) = (http.clone(), live.clone());
        async move { send_hook(&http, &live, &event).await }
    };
    let (status, acme) = hook("acme", "www.acme.com").await;
    assert_eq!(status, 200, "{acme}");
    let key = acme["instance_key"].as_str().unwrap().to_owned();
    let (status, _) = into_json(
        call(&live, Method::POST, "/v1/instances/acme/grants", &admin)
            .json(&json!({"user_id": "auth0|ann"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201);
    let person = "https://support.example.com/callback".to_owned();
    tenant.person_sets(&spa, "callbacks", json!([person])).await;
    assert_ne!(
        reconcile_at(&http, &live, &admin).await["outcome"],
        "failed"
    );

    // The dump, taken while deploys keep coming.
    let db = database_url(&pool).await;
    let dump =
        std::env::temp_dir().join(format!("fleetgate-restore-{}.dump", uuid::Uuid::new_v4()));
    let deploys = tokio::spawn({
        let (live, http) = (live.clone(), http.clone());
        async move {
            for n in 0..20 {
                let event = deployed(
                    &format!("i{n}"),
                    "auth0|owner-1",
                    &[&format!("www.i{n}.com")],
                );
                let (status, body) = send_hook(&http, &live, &event).await;
                assert_eq!(status, 200, "{body}");
            }
        }
    });
    let dumped = {
        let (db, dump) = (db.clone(), dump.clone());
        tokio::task::spawn_blocking(move || {
            tool(
                "pg_dump",
                &["--format=custom", "--file", dump.to_str().unwrap(), &db],
            )
        })
    };
    dumped.await.unwrap();
    deploys.await.unwrap();

    // After the backup: a new instance, and ann's grant removed, both seen by the instance.
    let (status, _) = hook("gamma", "www.gamma.com").await;
    assert_eq!(status, 200);
    let (_, grants) = into_json(
        call(&live, Method::GET, "/v1/instances/acme/grants", &key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let ann = grants["grants"][0]["id"].as_str().unwrap().to_owned();
    let res = call(
        &live,
        Method::DELETE,
        &format!("/v1/instances/acme/grants/{ann}"),
        &admin,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 204);
    let (_, after) = into_json(
        call(&live, Method::GET, "/v1/instances/acme/grants", &key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let seen = after["revision"].as_i64().unwrap();
    assert_eq!(after["grants"], json!([]));
    assert_ne!(
        reconcile_at(&http, &live, &admin).await["outcome"],
        "failed"
    );
    assert!(
        callbacks()
            .await
            .contains(&"https://www.gamma.com/callback".to_owned())
    );
    stop_live.cancel();

    // The dump restored into a new database, and fleetgate started on it.
    let restored_name = format!("_sqlx_test_restored_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE DATABASE {restored_name}"))
        .execute(&pool)
        .await
        .unwrap();
    let restored_url = format!("{}/{restored_name}", db.rsplit_once('/').unwrap().0);
    {
        let (url, dump) = (restored_url.clone(), dump.clone());
        tokio::task::spawn_blocking(move || {
            tool(
                "pg_restore",
                &["--no-owner", "--dbname", &url, dump.to_str().unwrap()],
            )
        })
        .await
        .unwrap();
    }
    let _ = std::fs::remove_file(&dump);
    let restored = PgPool::connect(&restored_url).await.unwrap();
    let (back, stop_back, _task) = spawn_process(&restored, &tenant.base_url, &vars);
    until_ready(&http, &back).await;

    // It serves the restored registry: the key from before, ann's grant as the dump had it.
    let res = call(&back, Method::GET, "/v1/instances/gamma", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "gamma came after the dump");
    // The instance polls with the revision it saw after the dump: a snapshot, never a delta
    // or "no change" from the lost history.
    let (status, gone) = into_json(
        call(
            &back,
            Method::GET,
            &format!("/v1/instances/acme/grants?since={seen}"),
            &key,
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 410, "{gone}");
    let (status, snapshot) = into_json(
        call(&back, Method::GET, "/v1/instances/acme/grants", &key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert!(snapshot["revision"].as_i64().unwrap() > seen, "{snapshot}");
    let users: Vec<&Value> = snapshot["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| &g["user_id"])
        .collect();
    assert_eq!(
        users,
        [&json!("auth0|ann")],
        "the restored registry's grants"
    );

    // One pass brings the lists back to the restored registry: the person's entry stays, and so
    // do gamma's, which this database never knew fleetgate wrote.
    let run = reconcile_at(&http, &back, &admin).await;
    assert_ne!(run["outcome"], "failed", "{run}");
    let now = callbacks().await;
    for kept in [
        person.as_str(),
        "https://www.acme.com/callback",
        "https://www.gamma.com/callback",
    ] {
        assert!(now.contains(&kept.to_owned()), "{kept} in {now:?}");
    }
    let restored_instances: i64 = sqlx::query_scalar("SELECT count(*) FROM instances")
        .fetch_one(&restored)
        .await
        .unwrap();
    for n in 0..restored_instances - 1 {
        let url = format!("https://www.i{n}.com/callback");
        assert!(now.contains(&url), "{url}: deployed before the dump");
    }
    stop_back.cancel();
    restored.close().await;
    sqlx::query(&format!(
        "DROP DATABASE IF EXISTS {restored_name} WITH (FORCE)"
    ))
    .execute(&pool)
    .await
    .unwrap();
}
