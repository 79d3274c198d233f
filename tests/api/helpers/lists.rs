//! fleetgate with its reconciler on against the emulator: the fixtures of the reconciler's and
//! the application pool's tests.

use std::{collections::BTreeMap, time::Duration};

use fleetgate_emulator::EmulatorConfig;
use reqwest::Method;
use serde_json::Value;
use sqlx::PgPool;

use super::*;

/// fleetgate with the reconciler on, and the SPA application whose lists it keeps.
pub struct Lists {
    pub app: TestApp,
    pub spa: String,
}

/// fleetgate with the reconciler on, against an emulator with a roomy bucket (the Free-plan
/// bucket has tests of its own) and optional faults.
pub async fn lists_fleet(
    pool: PgPool,
    emulator: EmulatorConfig,
    extra: &[(&str, String)],
) -> Lists {
    let tenant = TestTenant::start_with(emulator).await;
    let mut vars = tenant.reconciler_vars().await;
    let spa = vars[2].1.clone();
    vars.extend(extra.iter().cloned());
    Lists {
        app: TestApp::spawn_with(pool, tenant, &vars).await,
        spa,
    }
}

pub fn roomy() -> EmulatorConfig {
    EmulatorConfig {
        rate_limit_burst: 1000,
        rate_limit_per_second: 1000.0,
        ..TestTenant::config()
    }
}

impl Lists {
    pub async fn lists(&self) -> Value {
        self.app.tenant.client(&self.spa).await
    }

    pub async fn list(&self, field: &str) -> Vec<String> {
        fleetgate::domain::field::entries(&self.lists().await[field])
    }

    pub async fn reconcile(&self) -> Value {
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
    pub async fn finished_triggers(&self) -> Vec<String> {
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
    pub async fn run_finished(&self, trigger: &str) {
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

    pub async fn person_sets(&self, field: &str, entries: Value) {
        self.app.tenant.person_sets(&self.spa, field, entries).await;
    }

    /// Waits (bounded) until `check` holds for the callbacks list.
    pub async fn eventually(&self, what: &str, check: impl Fn(&[String]) -> bool) {
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

pub fn cb(host: &str) -> String {
    format!("https://{host}/callback")
}

/// fleetgate with the reconciler on and wildcards off (every host an entry), for the pool's tests.
pub async fn pool_fleet(pool: PgPool, emulator: EmulatorConfig, extra: &[(&str, &str)]) -> TestApp {
    let tenant = TestTenant::start_with(emulator).await;
    let mut vars = tenant.reconciler_vars().await;
    vars.push(("FLEETGATE_WILDCARD", "false".to_owned()));
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    TestApp::spawn_with(pool, tenant, &vars).await
}

/// A roomy bucket and at most `max_clients` applications in the tenant.
pub fn roomy_with(max_clients: usize) -> EmulatorConfig {
    EmulatorConfig {
        rate_limit_burst: 1000,
        rate_limit_per_second: 1000.0,
        max_clients,
        ..TestTenant::config()
    }
}

pub async fn deploy_many(app: &TestApp, ids: std::ops::Range<usize>) {
    for chunk in ids.collect::<Vec<_>>().chunks(50) {
        let sends = chunk.iter().map(|i| async move {
            app.deploy(&format!("s{i:03}"), &[&format!("www.s{i:03}.com")])
                .await
        });
        futures_util::future::join_all(sends).await;
    }
}

pub async fn reconcile(app: &TestApp) -> Value {
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
pub async fn register_extra(app: &TestApp) -> String {
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
pub async fn reconciled(app: &TestApp) {
    let run = reconcile(app).await;
    assert_ne!(run["outcome"], "failed", "{run}");
}

/// client_id → callbacks, for every application of the tenant.
pub async fn callbacks_by_app(app: &TestApp) -> BTreeMap<String, Vec<String>> {
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
