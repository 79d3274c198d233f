//! The reconciler against the Auth0 emulator and a real Postgres.

use std::time::Duration;

use fleetgate_emulator::EmulatorConfig;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

struct Fleet {
    app: TestApp,
    spa: String,
}

/// fleetgate with the reconciler on, against an emulator with a roomy bucket (the Free-plan
/// bucket has tests of its own) and optional faults.
async fn fleet(pool: PgPool, emulator: EmulatorConfig, extra: &[(&str, String)]) -> Fleet {
    let tenant = TestTenant::start_with(emulator).await;
    let mut vars = tenant.reconciler_vars().await;
    let spa = vars[2].1.clone();
    vars.extend(extra.iter().cloned());
    Fleet {
        app: TestApp::spawn_with(pool, tenant, &vars).await,
        spa,
    }
}

fn roomy() -> EmulatorConfig {
    EmulatorConfig {
        rate_limit_burst: 1000,
        rate_limit_per_second: 1000.0,
        ..TestTenant::config()
    }
}

impl Fleet {
    async fn lists(&self) -> Value {
        self.app.tenant.client(&self.spa).await
    }

    async fn list(&self, field: &str) -> Vec<String> {
        fleetgate::domain::field::entries(&self.lists().await[field])
    }

    async fn reconcile(&self) -> Value {
        let (status, run) = into_json(
            self.app
                .admin(Method::POST, "/v1/reconcile")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{run}");
        run
    }

    /// The triggers of the finished runs, newest first.
    async fn finished_triggers(&self) -> Vec<String> {
        let (_, runs) = self.app.get_json("/v1/reconcile/runs").await;
        runs["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| !r["finished_at"].is_null())
            .map(|r| r["trigger"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits (bounded) until a run with this trigger has finished.
    async fn run_finished(&self, trigger: &str) {
        for _ in 0..100 {
            if self.finished_triggers().await.iter().any(|t| t == trigger) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no {trigger} run finished within 10 s: {:?}",
            self.finished_triggers().await
        );
    }

    async fn person_sets(&self, field: &str, entries: Value) {
        let res = self
            .app
            .tenant
            .management(Method::PATCH, &format!("/clients/{}", self.spa))
            .json(&json!({ field: entries }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }

    /// Waits (bounded) until `check` holds for the callbacks list.
    async fn eventually(&self, what: &str, check: impl Fn(&[String]) -> bool) {
        for _ in 0..100 {
            if check(&self.list("callbacks").await) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{what} did not happen within 10 s: {:?}",
            self.list("callbacks").await
        );
    }
}

fn cb(host: &str) -> String {
    format!("https://{host}/callback")
}

#[sqlx::test]
async fn urls_follow_deploys_domain_changes_and_status(pool: PgPool) {
    let f = fleet(pool, roomy(), &[("FLEETGATE_WILDCARD", "false".into())]).await;
    f.app
        .deploy("acme", &["acme.apps.example.com", "www.acme.com"])
        .await;
    // The leader may apply the change before this pass; either way the pass leaves it applied.
    let run = f.reconcile().await;
    assert_ne!(run["outcome"], "failed", "{run}");
    let lists = f.lists().await;
    assert_eq!(
        lists["callbacks"],
        json!([cb("acme.apps.example.com"), cb("www.acme.com")])
    );
    assert_eq!(
        lists["allowed_logout_urls"],
        json!(["https://acme.apps.example.com/", "https://www.acme.com/"])
    );
    assert_eq!(
        lists["web_origins"],
        json!(["https://acme.apps.example.com", "https://www.acme.com"])
    );
    assert_eq!(lists["allowed_origins"], lists["web_origins"]);

    f.app.deploy("acme", &["acme.apps.example.com"]).await;
    f.reconcile().await;
    assert_eq!(f.list("callbacks").await, [cb("acme.apps.example.com")]);

    f.app.hook(&event("instance.suspended", "acme")).await;
    f.reconcile().await;
    assert!(f.list("callbacks").await.is_empty());
    f.app.hook(&event("instance.resumed", "acme")).await;
    f.reconcile().await;
    assert_eq!(f.list("callbacks").await, [cb("acme.apps.example.com")]);

    let metrics = f.app.metrics().await;
    for needle in [
        "fleetgate_reconcile_runs_total{",
        r#"trigger="manual"}"#,
        r#"fleetgate_auth0_calls_total{method="PATCH",status="200"}"#,
        r#"fleetgate_allowlist_foreign_entries{client_id=""#,
        r#"fleetgate_http_requests_total{endpoint="/v1/reconcile",method="POST",status="200"}"#,
        r#"fleetgate_reconcile_pass_duration_seconds_bucket{trigger="manual",le="#,
        r#"fleetgate_auth0_call_duration_seconds_bucket{method="PATCH",le="#,
        "fleetgate_allowlist_fill_ratio{client_id=",
        "\nfleetgate_reconcile_leader 1\n",
    ] {
        assert!(metrics.contains(needle), "{needle} in {metrics}");
    }

    let again = f.reconcile().await;
    assert_eq!(
        (again["outcome"].as_str(), again["api_calls"].as_i64()),
        (Some("unchanged"), Some(1)),
        "a no-op pass is one GET: {again}"
    );
}

#[sqlx::test]
async fn foreign_entries_survive_every_pass(pool: PgPool) {
    let f = fleet(pool, roomy(), &[]).await;
    // A person's entry, and one a person added before fleetgate wanted it.
    f.person_sets(
        "callbacks",
        json!(["https://person.example.com/cb", cb("www.acme.com")]),
    )
    .await;
    f.app
        .deploy("acme", &["www.acme.com", "shop.acme.com"])
        .await;
    f.reconcile().await;
    assert_eq!(
        f.list("callbacks").await,
        [
            "https://person.example.com/cb".to_owned(),
            cb("www.acme.com"),
            cb("shop.acme.com")
        ]
    );

    let (_, plan) = f.app.get_json("/v1/reconcile/plan").await;
    let callbacks = &plan["applications"][0]["fields"][0];
    assert_eq!(callbacks["field"], "callbacks");
    assert_eq!(
        callbacks["foreign"],
        json!(["https://person.example.com/cb", cb("www.acme.com")])
    );

    f.app.hook(&event("instance.deleted", "acme")).await;
    f.reconcile().await;
    assert_eq!(
        f.list("callbacks").await,
        [
            "https://person.example.com/cb".to_owned(),
            cb("www.acme.com")
        ],
        "only what fleetgate added is removed"
    );
}

#[sqlx::test]
async fn wildcard_mode_collapses_platform_subdomains(pool: PgPool) {
    let f = fleet(pool, roomy(), &[]).await;
    for i in 0..5 {
        f.app
            .deploy(&format!("i{i}"), &[&format!("i{i}.apps.example.com")])
            .await;
    }
    f.app.deploy("deep", &["a.deep.apps.example.com"]).await;
    f.reconcile().await;
    assert_eq!(
        f.list("callbacks").await,
        [cb("*.apps.example.com"), cb("a.deep.apps.example.com")]
    );
    assert_eq!(
        f.list("web_origins").await,
        [
            "https://*.apps.example.com",
            "https://a.deep.apps.example.com"
        ]
    );
}

#[sqlx::test]
async fn an_instance_that_fits_nowhere_is_reported_and_the_rest_applied(pool: PgPool) {
    let f = fleet(pool, roomy(), &[]).await;
    for i in 0..3 {
        let hosts: Vec<String> = (0..34).map(|j| format!("h{j}.c{i}.com")).collect();
        let refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
        f.app.deploy(&format!("c{i}"), &refs).await;
    }
    let run = f.reconcile().await;
    assert_eq!(run["outcome"], "failed");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.contains(
            "instance 'c2' fits no application: set FLEETGATE_AUTO_CREATE_APPLICATIONS=true"
        ),
        "{run}"
    );
    assert_eq!(
        f.list("callbacks").await.len(),
        68,
        "the instances that fit are applied; no list exceeds the cap"
    );
    let (status, config) = f.app.get_json("/v1/instances/c2/config").await;
    assert_eq!(
        (status, config["code"].as_str()),
        (409, Some("not_assigned")),
        "{config}"
    );
    let (_, sync) = f.app.get_json("/v1/instances/c2/sync").await;
    assert!(
        sync["urls"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["state"] == "failed"),
        "{sync}"
    );
}

#[sqlx::test]
async fn a_burst_of_500_deploys_settles_with_a_few_patches(pool: PgPool) {
    let f = fleet(pool, roomy(), &[("FLEETGATE_WILDCARD", "false".into())]).await;
    f.reconcile().await;
    let before = f.app.tenant.stats().await;
    // 500 deploys: 40 instances, each redeployed with a new host 12 or 13 times, a round at a time.
    let host = |i: usize| format!("www.b{}-r{}.com", i % 40, i / 40);
    for round in 0..(500usize.div_ceil(40)) {
        let sends = (round * 40..((round + 1) * 40).min(500)).map(|i| {
            let (app, h) = (&f.app, host(i));
            async move { app.deploy(&format!("b{}", i % 40), &[h.as_str()]).await }
        });
        futures_util::future::join_all(sends).await;
    }
    let want: Vec<String> = (460..500).map(|i| cb(&host(i))).collect();
    f.eventually("the last round's 40 callbacks", |l| {
        let mut l = l.to_vec();
        l.sort();
        let mut w = want.clone();
        w.sort();
        l == w
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = f.app.tenant.stats().await;
    let patches = |s: &Value| s["PATCH /api/v2/clients/{id} 200"].as_u64().unwrap_or(0);
    let made = patches(&after) - patches(&before);
    // One application: a pass per settled burst (at most one per 3 s while deploys keep coming).
    assert!(
        (1..=6).contains(&made),
        "500 deploys cost {made} PATCH calls"
    );
    let (_, runs) = f.app.get_json("/v1/reconcile/runs").await;
    let triggers: Vec<&str> = runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["trigger"].as_str().unwrap())
        .collect();
    assert!(
        triggers.contains(&"notify") && triggers.contains(&"startup"),
        "{triggers:?}"
    );
}

#[sqlx::test]
async fn lists_converge_through_30_percent_faults(pool: PgPool) {
    let faults = fleetgate_emulator::faults::Faults {
        error_rate: 0.1,
        rate_limit_rate: 0.1,
        drop_rate: 0.1,
        ..Default::default()
    };
    let f = fleet(
        pool,
        EmulatorConfig { faults, ..roomy() },
        &[("FLEETGATE_WILDCARD", "false".into())],
    )
    .await;
    let person = "https://person.example.com/cb".to_owned();
    let res = f
        .app
        .tenant
        .management(Method::PATCH, &format!("/clients/{}", f.spa))
        .json(&json!({"callbacks": [person]}))
        .send()
        .await;
    // The person's own edit may meet a fault too; insist until it lands.
    if !res.is_ok_and(|r| r.status() == 200) {
        for _ in 0..20 {
            let r = f
                .app
                .tenant
                .management(Method::PATCH, &format!("/clients/{}", f.spa))
                .json(&json!({"callbacks": [person]}))
                .send()
                .await;
            if r.is_ok_and(|r| r.status() == 200) {
                break;
            }
        }
    }
    for i in 0..10 {
        f.app
            .deploy(&format!("f{i}"), &[&format!("www.f{i}.com")])
            .await;
    }
    let mut want: Vec<String> = vec![person.clone()];
    want.extend((0..10).map(|i| cb(&format!("www.f{i}.com"))));
    for _ in 0..10 {
        f.reconcile().await;
    }
    f.app.tenant.http_put_faults(json!({})).await;
    f.reconcile().await;
    let mut got = f.list("callbacks").await;
    got.sort();
    want.sort();
    assert_eq!(got, want);
}

#[sqlx::test]
async fn plan_and_runs_need_the_reconciler(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let res = app
        .admin(Method::GET, "/v1/reconcile/plan")
        .send()
        .await
        .unwrap();
    assert_problem(res, 409, "reconciler_disabled").await;
    let (status, runs) = app.get_json("/v1/reconcile/runs").await;
    assert_eq!((status, runs["items"].as_array().unwrap().len()), (200, 0));
}

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
    let f = fleet(pool, roomy(), &[("FLEETGATE_WILDCARD", "false".into())]).await;
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
    let f = fleet(pool, roomy(), &[("FLEETGATE_WILDCARD", "false".into())]).await;
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
    let f = fleet(
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
    let f = fleet(
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
