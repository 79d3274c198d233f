//! The reconciler against the Auth0 emulator and a real Postgres.

use std::time::Duration;

use fleetgate_emulator::EmulatorConfig;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

#[sqlx::test]
async fn urls_follow_deploys_domain_changes_and_status(pool: PgPool) {
    let f = lists_fleet(pool, roomy(), &[("FLEETGATE_WILDCARD", "false".into())]).await;
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
    let f = lists_fleet(pool, roomy(), &[]).await;
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
    let f = lists_fleet(pool, roomy(), &[]).await;
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
    let f = lists_fleet(pool, roomy(), &[]).await;
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
    let f = lists_fleet(pool, roomy(), &[("FLEETGATE_WILDCARD", "false".into())]).await;
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
    let f = lists_fleet(
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
