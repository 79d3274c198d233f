//! The real binary's life cycle: SIGTERM stops it without cutting anyone off.

use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;

use crate::{helpers::*, replicas::*};

/// A parked long-poll is answered ("no change", so the instance polls again, elsewhere) when
/// the process is told to stop, instead of being cut off when the grace period ends; then
/// the process exits cleanly.
#[sqlx::test]
async fn sigterm_answers_parked_long_polls_and_exits_cleanly(pool: PgPool) {
    let app = TestApp::spawn(pool.clone()).await;
    let deployed = app.deploy("acme", &["www.acme.com"]).await;
    let key = deployed["instance_key"].as_str().unwrap().to_owned();
    let db = database_url(&pool).await;
    let mut replica = replica(&db, &app.tenant, &[], "lifecycle");
    let http = reqwest::Client::new();
    let grants = format!("{}/v1/instances/acme/grants", replica.addr);
    let metric = |text: &str, name: &str| -> Option<i64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
    };
    // Serving from memory once its key and revision are loaded.
    within(30, "the replica's memory in step", || async {
        let Ok(res) = http.get(format!("{}/metrics", replica.addr)).send().await else {
            return false;
        };
        metric(
            &res.text().await.unwrap(),
            "fleetgate_grants_memory_in_step",
        ) == Some(1)
    })
    .await;
    let snapshot: Value = http
        .get(&grants)
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let revision = snapshot["revision"].as_i64().unwrap();

    let poll = tokio::spawn({
        let request = http
            .get(format!("{grants}?since={revision}&wait=60"))
            .bearer_auth(&key);
        async move { request.send().await }
    });
    within(30, "the poll parked", || async {
        let res = http
            .get(format!("{}/metrics", replica.addr))
            .send()
            .await
            .unwrap();
        metric(&res.text().await.unwrap(), "fleetgate_grants_parked_polls") == Some(1)
    })
    .await;
    replica.terminate();
    // Without the answer on shutdown the poll would wait out its 60 s, or be cut off after the
    // 10 s grace period; the bound here is only against a hang.
    let answered = tokio::time::timeout(Duration::from_secs(30), poll)
        .await
        .expect("the poll ends")
        .unwrap()
        .expect("the parked poll gets an answer, not a dropped connection");
    assert_eq!(answered.status(), 304);
    assert_eq!(
        answered.headers()["etag"].to_str().unwrap(),
        format!("\"{revision}\"")
    );
    let status = replica.exited(30).await;
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

/// With the default log filter, what anyone can cause is no warning: refused credentials
/// (answered before routing), and a pass waiting for another replica's pass to end.
#[sqlx::test]
async fn refused_credentials_and_waiting_for_a_pass_log_no_warnings(pool: PgPool) {
    let tenant = TestTenant::start().await;
    let vars = tenant.reconciler_vars().await;
    let admin = tenant.sign(&tenant.claims(&["fleet:admin"]));
    let db = database_url(&pool).await;
    let mut replica = logged_replica(&db, &tenant, &vars, "quiet");
    let http = reqwest::Client::new();
    within(30, "the replica serving", || async {
        http.get(format!("{}/readyz", replica.addr))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    for bearer in ["junk", "fgi_junk", "eyJhbGciOiJub25lIn0.e30."] {
        let res = http
            .get(format!("{}/v1/instances/acme", replica.addr))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    // Another replica's pass holds the lock for 1.5 s while this one is asked for a pass.
    let mut other = pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(fleetgate::reconcile::apply::PASS_LOCK)
        .execute(&mut *other)
        .await
        .unwrap();
    let asked = tokio::spawn(
        http.post(format!("{}/v1/reconcile", replica.addr))
            .bearer_auth(&admin)
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(fleetgate::reconcile::apply::PASS_LOCK)
        .execute(&mut *other)
        .await
        .unwrap();
    assert_eq!(asked.await.unwrap().unwrap().status(), 200);
    replica.terminate();
    assert!(replica.exited(30).await.success());
    let log = replica.log();
    assert!(log.contains("fleetgate serving"), "the log was kept: {log}");
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
}
