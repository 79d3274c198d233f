//! The real binary's life cycle: SIGTERM stops it without cutting anyone off.

use std::time::Duration;

use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::*;

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
        .bind(fleetgate::reconcile::PASS_LOCK)
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
        .bind(fleetgate::reconcile::PASS_LOCK)
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

/// SIGTERM ends the process within its bound whatever the reconciler is doing: with Auth0
/// failing (errors and 429s, so passes spend their time in retries and rate-limit waits), a
/// cron every 2 s and more instances than the applications hold, each of several replicas in
/// turn gets SIGTERM at a random point. Each exits cleanly (not by the bound's forced exit)
/// within the bound, leaves no run open, and the next one takes the lead at once.
#[sqlx::test]
async fn sigterm_ends_the_process_within_its_bound_whatever_the_reconciler_does(pool: PgPool) {
    use rand::Rng;
    let failing = fleetgate_emulator::EmulatorConfig {
        faults: fleetgate_emulator::faults::Faults {
            error_rate: 0.6,
            rate_limit_rate: 0.4,
            latency_rate: 0.5,
            latency_ms: 300,
            ..Default::default()
        },
        ..TestTenant::config()
    };
    let app = TestApp::spawn_with(pool.clone(), TestTenant::start_with(failing).await, &[]).await;
    for i in 0..6 {
        app.deploy(&format!("shop-{i}"), &[&format!("www.shop-{i}.com")])
            .await;
    }
    let mut vars = app.tenant.reconciler_vars().await;
    vars.extend([
        ("FLEETGATE_RECONCILE_CRON", "*/2 * * * * *".to_owned()),
        ("FLEETGATE_ALLOWLIST_CAP", "4".to_owned()),
        ("FLEETGATE_AUTO_CREATE_APPLICATIONS", "true".to_owned()),
    ]);
    let db = database_url(&pool).await;
    let http = reqwest::Client::new();
    let open_runs = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM reconcile_runs WHERE outcome = 'running'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let mut mid_pass = 0;
    const ROUNDS: usize = 6;
    for round in 0..ROUNDS {
        let mut replica = replica(&db, &app.tenant, &vars, &format!("stopped-{round}"));
        within(30, "the replica leading", || async {
            let Ok(res) = http.get(format!("{}/readyz", replica.addr)).send().await else {
                return false;
            };
            res.status() == 200 && open_runs().await > 0
        })
        .await;
        let pause = rand::thread_rng().gen_range(0..3000);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        mid_pass += usize::from(open_runs().await > 0);
        let signalled = std::time::Instant::now();
        replica.terminate();
        let status = replica
            .exited(fleetgate::startup::SHUTDOWN_BOUND.as_secs() + 5)
            .await;
        let took = signalled.elapsed();
        assert!(
            status.success(),
            "round {round}: exit status {status} after {took:?} (1: cut short by the bound)"
        );
        assert!(
            took <= fleetgate::startup::SHUTDOWN_BOUND,
            "round {round}: exited {took:?} after SIGTERM"
        );
        assert_eq!(open_runs().await, 0, "round {round}: a run was left open");
    }
    assert!(
        mid_pass >= ROUNDS / 2,
        "only {mid_pass} of {ROUNDS} signals landed mid-pass"
    );
    let interrupted: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reconcile_runs WHERE error LIKE 'interrupted:%'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(interrupted >= 1, "no pass was recorded as interrupted");
}
