//! The reconciler over time: the lead moves when its replica dies, a person's edit right after
//! a write survives read-back, sync status follows passes, ownership of entries never written
//! is forgotten, and a failed pass is retried by itself.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;

use crate::helpers::*;

#[sqlx::test]
async fn one_replica_reconciles_and_another_takes_over_when_it_dies(pool: PgPool) {
    let tenant = TestTenant::start_with(roomy()).await;
    let vars = tenant.reconciler_vars().await;
    // Each replica has a pool of its own, as separate processes would.
    let replica = || spawn_process(&pool, &tenant.base_url, &vars).1;
    let startups = || async {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM reconcile_runs WHERE trigger = 'startup'")
                .fetch_one(&pool)
                .await
                .unwrap();
        n
    };
    let first = replica();
    let second = replica();
    let mut waited = 0;
    while startups().await < 1 && waited < 100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    tokio::time::sleep(fleetgate::reconcile::leader::LEADER_CHECK * 2).await;
    assert_eq!(startups().await, 1, "exactly one replica leads");

    // Stop both in turn: whichever led, the other must take over.
    first.cancel();
    let mut took_over = false;
    for _ in 0..100 {
        if startups().await == 2 {
            took_over = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !took_over {
        // The first was the follower; stopping the second must hand over to nobody, so
        // restart the first and stop the second instead.
        let again = replica();
        second.cancel();
        for _ in 0..100 {
            if startups().await == 2 {
                took_over = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        again.cancel();
    } else {
        second.cancel();
    }
    assert!(took_over, "another replica took over within 10 s");
}

#[sqlx::test]
async fn an_edit_made_right_after_a_write_is_seen_on_read_back_and_kept(pool: PgPool) {
    let f = lists_fleet(pool, roomy(), &[("FLEETGATE_WILDCARD", "false".into())]).await;
    // Let the startup pass finish, so that the next write is ours.
    f.run_finished("startup").await;
    f.app.tenant.http_put_faults(json!({"concurrent_edit": {"field": "callbacks", "entry": "https://person.example.com/cb"}})).await;
    f.app.deploy("acme", &["www.acme.com"]).await;
    // Whichever pass writes first (the leader's or this one) sees the edit on read-back, and
    // a repair pass follows it.
    f.reconcile().await;
    f.run_finished("repair").await;
    assert_eq!(
        f.list("callbacks").await,
        [
            cb("www.acme.com"),
            "https://person.example.com/cb".to_owned()
        ]
    );
    let (_, plan) = f.app.get_json("/v1/reconcile/plan").await;
    assert_eq!(
        plan["applications"][0]["fields"][0]["foreign"],
        json!(["https://person.example.com/cb"])
    );
}

#[sqlx::test]
async fn sync_status_says_pending_then_synced(pool: PgPool) {
    let f = lists_fleet(pool, roomy(), &[("FLEETGATE_WILDCARD", "false".into())]).await;
    f.reconcile().await;
    f.app.deploy("acme", &["www.acme.com"]).await;
    f.reconcile().await;
    let (status, sync) = f.app.get_json("/v1/instances/acme/sync").await;
    assert_eq!(status, 200, "{sync}");
    let urls = sync["urls"].as_array().unwrap();
    assert_eq!(urls.len(), 4);
    assert!(
        urls.iter()
            .all(|u| u["state"] == "synced" && u["live"] == true),
        "{sync}"
    );
    let (status, _) = f.app.get_json("/v1/instances/nobody/sync").await;
    assert_eq!(status, 404);
}

/// An entry fleetgate meant to add but never wrote (the write-ahead record of a pass that died
/// before its PATCH) is not fleetgate's once nobody wants it: a person adding the same URL
/// later keeps it.
#[sqlx::test]
async fn ownership_of_entries_never_written_is_forgotten(pool: PgPool) {
    let f = lists_fleet(
        pool.clone(),
        roomy(),
        &[("FLEETGATE_WILDCARD", "false".into())],
    )
    .await;
    f.reconcile().await;
    sqlx::query(
        "INSERT INTO allowlist_entries (client_id, field, entry) VALUES ($1, 'callbacks', $2)",
    )
    .bind(&f.spa)
    .bind(cb("www.acme.com"))
    .execute(&pool)
    .await
    .unwrap();
    f.reconcile().await;
    f.person_sets("callbacks", json!([cb("www.acme.com")]))
        .await;
    f.reconcile().await;
    assert_eq!(
        f.list("callbacks").await,
        [cb("www.acme.com")],
        "the person's entry is not mistaken for fleetgate's"
    );
}

/// A pass that failed (Auth0 answering nothing but errors) is tried again by itself once Auth0
/// is back, without another registry change or the cron (every 5 minutes).
#[sqlx::test]
async fn a_failed_pass_is_retried_by_itself(pool: PgPool) {
    // No cron pass (the default runs at every fifth minute) may do the retry's work meanwhile.
    let f = lists_fleet(
        pool,
        roomy(),
        &[
            ("FLEETGATE_WILDCARD", "false".into()),
            ("FLEETGATE_RECONCILE_CRON", "0 0 0 1 1 *".into()),
        ],
    )
    .await;
    f.reconcile().await;
    f.app
        .tenant
        .http_put_faults(json!({"error_rate": 1.0}))
        .await;
    f.app.deploy("acme", &["www.acme.com"]).await;
    let failed = || async {
        let (_, runs) = f.app.get_json("/v1/reconcile/runs").await;
        runs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["trigger"] == "notify" && r["outcome"] == "failed")
    };
    let mut waited = 0;
    while !failed().await {
        assert!(waited < 600, "no failed pass within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    f.app.tenant.http_put_faults(json!({})).await;
    f.eventually("the callback, applied by the retry", |l| {
        l.contains(&cb("www.acme.com"))
    })
    .await;
    f.run_finished("retry").await;
}
