//! Fault drills with the real `fleetgate` binary as separate processes, killed with SIGKILL.

use std::time::Instant;

use fleetgate_emulator::{EmulatorConfig, faults::Faults};
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::*;

async fn callbacks(tenant: &TestTenant, spa: &str) -> Vec<String> {
    fleetgate::domain::field::entries(&tenant.client(spa).await["callbacks"])
}

fn slow_tenant() -> EmulatorConfig {
    EmulatorConfig {
        rate_limit_burst: 1000,
        rate_limit_per_second: 1000.0,
        faults: Faults {
            latency_rate: 1.0,
            latency_ms: 800,
            ..Faults::default()
        },
        ..TestTenant::config()
    }
}

#[sqlx::test]
async fn a_replica_killed_mid_pass_converges_after_restart_and_keeps_foreign_entries(pool: PgPool) {
    // The registry, written by a fleetgate without the reconciler.
    let app = TestApp::spawn_with(
        pool.clone(),
        TestTenant::start_with(slow_tenant()).await,
        &[],
    )
    .await;
    let tenant = &app.tenant;
    let vars = tenant.reconciler_vars().await;
    let spa = vars[2].1.clone();
    let person = "https://person.example.com/cb".to_owned();
    tenant.person_sets(&spa, "callbacks", json!([person])).await;
    for n in 0..30 {
        app.deploy(&format!("i{n}"), &[&format!("www.i{n}.com")])
            .await;
    }
    let db = database_url(&pool).await;

    // Kill the reconciling process right after one of its writes reached Auth0, while its
    // pass is still reading the result back (emulator answers take up to 800 ms). A pass may
    // finish before the kill; then give a new process something to write and try again.
    let running = || async {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM reconcile_runs WHERE outcome = 'running'")
                .fetch_one(&pool)
                .await
                .unwrap();
        n
    };
    let patches = || async {
        tenant
            .stats()
            .await
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with("PATCH "))
            .filter_map(|(_, v)| v.as_u64())
            .sum::<u64>()
    };
    let mut killed_mid_pass = false;
    for attempt in 0..5 {
        if attempt > 0 {
            app.deploy(
                &format!("extra{attempt}"),
                &[&format!("www.extra{attempt}.com")],
            )
            .await;
        }
        let before = patches().await;
        let mut first = replica(&db, tenant, &vars, &format!("drill-{attempt}"));
        within(30, "a PATCH", || async { patches().await > before }).await;
        first.kill();
        // The process is gone: what the history says now stays.
        if running().await > 0 {
            killed_mid_pass = true;
            break;
        }
    }
    assert!(killed_mid_pass, "no attempt caught a pass in the middle");

    // More changes while no one reconciles; then a new process.
    for n in 30..40 {
        app.deploy(&format!("i{n}"), &[&format!("www.i{n}.com")])
            .await;
    }
    let mut second = replica(&db, tenant, &vars, "drill-second");
    within(60, "convergence after the restart", || async {
        let now = callbacks(tenant, &spa).await;
        (0..40).all(|n| now.contains(&cb(&format!("www.i{n}.com"))))
    })
    .await;
    let mut now = callbacks(tenant, &spa).await;
    now.retain(|u| !u.contains("www.extra"));
    assert!(
        now.contains(&person),
        "the person's entry survived: {now:?}"
    );
    assert_eq!(now.len(), 41, "{now:?}");
    // The killed pass is closed in the history, not left running.
    within(30, "the interrupted run closed", || async {
        running().await == 0
    })
    .await;
    let interrupted: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reconcile_runs WHERE error LIKE 'interrupted%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(interrupted, 1);
    second.kill();
}

#[sqlx::test]
async fn when_the_leader_is_killed_the_other_replica_takes_over(pool: PgPool) {
    let app = TestApp::spawn_with(pool.clone(), TestTenant::start_with(roomy()).await, &[]).await;
    let tenant = &app.tenant;
    let vars = tenant.reconciler_vars().await;
    let spa = vars[2].1.clone();
    let db = database_url(&pool).await;
    let mut a = replica(&db, tenant, &vars, "replica-a");
    let mut b = replica(&db, tenant, &vars, "replica-b");
    within(30, "a leader", || async {
        leader_of(&pool).await.is_some()
    })
    .await;
    let first_leader = leader_of(&pool).await;
    let first_leader = first_leader.unwrap();
    let (killed, other) = if first_leader == "replica-a" {
        (&mut a, "replica-b")
    } else {
        (&mut b, "replica-a")
    };
    killed.kill();
    let killed_at = Instant::now();
    // Postgres releases a dead session's locks when its socket closes; the other replica asks
    // again every LEADER_CHECK.
    within(15, "the other replica taking the lead", || async {
        leader_of(&pool).await.as_deref() == Some(other)
    })
    .await;
    eprintln!("{other} led {:?} after the kill", killed_at.elapsed());
    app.deploy("after", &["www.after.com"]).await;
    within(30, "the new leader reconciling", || async {
        callbacks(tenant, &spa).await.contains(&cb("www.after.com"))
    })
    .await;
}

fn cb(host: &str) -> String {
    format!("https://{host}/callback")
}
