//! Reconciler benchmarks.
//!
//! 1. A burst of deploys against the Auth0 emulator at the Free-plan rate limit (burst 2,
//!    2/s): Management API calls and seconds until every URL is live, next to a naive
//!    baseline that does GET + PATCH per deploy (measured on a sample, extrapolated).
//! 2. Computing desired lists and plans for 100,000 instances (pure, in memory).
//!
//!     bench/run reconcile [--deploys 1000] [--instances 40] [--naive-sample 60]

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

mod common;

use fleetgate::{
    auth::webhook::WebhookVerifier,
    domain::{DomainKind, Field, Hostname, InstanceId, InstanceStatus, Templates, UserId},
    reconcile::{
        desired::{Options, desired},
        plan::plan_field,
    },
    registry::{Domain, Instance},
    startup::Application,
};
use fleetgate_emulator::{Emulator, EmulatorConfig};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

async fn emulator() -> anyhow::Result<(String, Value, CancellationToken)> {
    let emu = Emulator::build(EmulatorConfig {
        listen: "127.0.0.1:0".parse()?,
        ..EmulatorConfig::default()
    })?;
    let base = emu.base_url().to_owned();
    let stop = CancellationToken::new();
    tokio::spawn(emu.run_until_stopped(stop.clone()));
    let tenant: Value = reqwest::get(format!("{base}/emulator/tenant"))
        .await?
        .json()
        .await?;
    Ok((base, tenant, stop))
}

async fn management_token(
    http: &reqwest::Client,
    base: &str,
    tenant: &Value,
) -> anyhow::Result<String> {
    let body = json!({"grant_type": "client_credentials", "client_id": tenant["m2m_client_id"], "client_secret": tenant["m2m_client_secret"], "audience": format!("{base}/api/v2/")});
    let t: Value = http
        .post(format!("{base}/oauth/token"))
        .json(&body)
        .send()
        .await?
        .json()
        .await?;
    Ok(t["access_token"].as_str().unwrap_or_default().to_owned())
}

fn host(i: u64, instances: u64) -> String {
    format!("www.c{}-r{}.example.org", i % instances, i / instances)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let deploys = common::arg("--deploys", 1000);
    let instances = common::arg("--instances", 40);
    let naive_sample = common::arg("--naive-sample", 60);
    burst(deploys, instances).await?;
    naive(deploys, instances, naive_sample).await?;
    compute(100_000);
    Ok(())
}

async fn burst(deploys: u64, instances: u64) -> anyhow::Result<()> {
    let db = common::BenchDb::create("reconcile").await?;
    let db_url = db.url.clone();
    let (base, tenant, emu_stop) = emulator().await?;
    let vars = [
        ("DATABASE_URL", db_url.clone()),
        ("FLEETGATE_LISTEN", "127.0.0.1:0".to_owned()),
        ("AUTH0_DOMAIN", base.clone()),
        ("AUTH0_AUDIENCE", "https://fleetgate.local/api".to_owned()),
        (
            "FLEETGATE_INSTANCE_AUDIENCE",
            "https://instances.fleetgate.bench/api".to_owned(),
        ),
        ("FLEETGATE_WEBHOOK_SECRET", SECRET.to_owned()),
        (
            "AUTH0_CLIENT_ID",
            tenant["m2m_client_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ),
        (
            "AUTH0_CLIENT_SECRET",
            tenant["m2m_client_secret"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ),
        (
            "AUTH0_SPA_CLIENT_ID",
            tenant["spa_client_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        ),
    ];
    let settings = common::settings(&vars)?;
    let pool = PgPool::connect(&db_url).await?;
    common::migrate(&pool).await?;
    let app = Application::build(&settings, pool.clone())?;
    let hook_url = format!("http://127.0.0.1:{}/v1/hooks/deploy", app.port());
    let stop = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(stop.clone()));
    let http = reqwest::Client::new();
    // Let the startup pass finish.
    while sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM reconcile_runs WHERE finished_at IS NOT NULL",
    )
    .fetch_one(&pool)
    .await?
        == 0
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let signer = std::sync::Arc::new(WebhookVerifier::new(&SecretString::from(SECRET))?);
    println!(
        "burst: {deploys} deploys of {instances} custom-domain instances (each redeployed with a new host), emulator at the Free-plan limit"
    );
    let started = Instant::now();
    let send = |i: u64| {
        let (http, url, signer) = (http.clone(), hook_url.clone(), signer.clone());
        async move {
            let body = json!({"type": "instance.deployed", "data": {"instance_id": format!("c{}", i % instances), "owner": "auth0|bench", "domains": [host(i, instances)]}}).to_string();
            common::send_hook(&http, &url, &signer, &format!("msg_{i}"), body).await
        }
    };
    // A round redeploys every instance at once; rounds follow each other, so each
    // instance's last deploy is the last round's.
    let mut ok = 0;
    for round in 0..deploys.div_ceil(instances) {
        let ids = (round * instances..((round + 1) * instances).min(deploys)).map(send);
        ok += futures_util::future::join_all(ids)
            .await
            .into_iter()
            .filter(|sent| *sent)
            .count();
    }
    let accepted = started.elapsed();
    let want: BTreeSet<String> = (deploys.saturating_sub(instances)..deploys)
        .map(|i| format!("https://{}/callback", host(i, instances)))
        .collect();
    // Watched through fleetgate's own read-backs (Postgres), so that the watching spends none
    // of the tenant's Management API budget; checked once against Auth0 at the end.
    let converged = loop {
        let entries: Option<Value> =
            sqlx::query_scalar("SELECT entries FROM allowlist_snapshots WHERE field = 'callbacks'")
                .fetch_optional(&pool)
                .await?;
        let have: BTreeSet<String> = entries
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        if have == want {
            break started.elapsed();
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "did not converge in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let token = management_token(&http, &base, &tenant).await?;
    let spa = tenant["spa_client_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let c: Value = http
        .get(format!(
            "{base}/api/v2/clients/{spa}?fields=callbacks&include_fields=true"
        ))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let live: BTreeSet<String> = fleetgate::domain::field::entries(&c["callbacks"])
        .into_iter()
        .collect();
    anyhow::ensure!(live == want, "Auth0 disagrees with fleetgate's read-back");
    // fleetgate's own calls, from its run records.
    let fleetgate_calls: i64 = sqlx::query_scalar("SELECT coalesce(sum(api_calls), 0) FROM reconcile_runs WHERE started_at >= now() - make_interval(secs => $1)")
        .bind(converged.as_secs_f64() + 1.0)
        .fetch_one(&pool)
        .await?;
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM reconcile_runs")
        .fetch_one(&pool)
        .await?;
    println!(
        "  accepted {ok}/{deploys} deploys in {:.2} s",
        accepted.as_secs_f64()
    );
    println!(
        "  fleetgate: every URL live {:.2} s after the first deploy; {fleetgate_calls} Management API calls; {runs} passes in all",
        converged.as_secs_f64()
    );
    common::report::row(
        &format!("reconcile: {deploys} deploys at the Free-plan limit, every URL live after"),
        format!("{:.1} s ({fleetgate_calls} calls)", converged.as_secs_f64()),
        "",
        None,
    );
    stop.cancel();
    let _ = server.await;
    emu_stop.cancel();
    pool.close().await;
    db.drop().await?;
    Ok(())
}

/// What small scripts do: on each deploy, GET the list, swap the instance's entry, PATCH it back,
/// retrying 429s after the reset time.
async fn naive(deploys: u64, instances: u64, sample: u64) -> anyhow::Result<()> {
    let (base, tenant, emu_stop) = emulator().await?;
    let http = reqwest::Client::new();
    let token = management_token(&http, &base, &tenant).await?;
    let spa = tenant["spa_client_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let url = format!("{base}/api/v2/clients/{spa}");
    let started = Instant::now();
    let mut calls = 0u64;
    let send = |req: reqwest::RequestBuilder| async move { req.send().await };
    for i in 0..sample.min(deploys) {
        let prefix = format!("https://www.c{}-", i % instances);
        let list: Vec<String> = loop {
            calls += 1;
            let res = send(http.get(&url).bearer_auth(&token)).await?;
            if res.status() == 429 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            let c: Value = res.json().await?;
            break fleetgate::domain::field::entries(&c["callbacks"]);
        };
        let mut next: Vec<String> = list
            .into_iter()
            .filter(|e| !e.starts_with(&prefix))
            .collect();
        next.push(format!("https://{}/callback", host(i, instances)));
        loop {
            calls += 1;
            let res = send(
                http.patch(&url)
                    .bearer_auth(&token)
                    .json(&json!({"callbacks": next})),
            )
            .await?;
            if res.status() == 429 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            break;
        }
    }
    let took = started.elapsed().as_secs_f64();
    let per = took / sample as f64;
    println!(
        "  naive GET+PATCH per deploy: {sample} deploys took {took:.1} s and {calls} calls (429s included); \
         {deploys} deploys would take ~{:.0} s and ~{} calls",
        per * deploys as f64,
        calls * deploys / sample
    );
    emu_stop.cancel();
    Ok(())
}

/// desired + plan for `n` instances: 90% platform subdomains (one wildcard), 10% custom domains.
fn compute(n: usize) {
    let platform = Hostname::parse("apps.example.com").expect("valid");
    let templates = Templates::defaults();
    let fleet: Vec<Instance> = (0..n)
        .map(|i| {
            let host = if i % 10 == 0 {
                format!("www.customer{i}.com")
            } else {
                format!("t{i}.apps.example.com")
            };
            let hostname = Hostname::parse(&host).expect("valid");
            Instance {
                id: InstanceId::parse(&format!("t{i}")).expect("valid"),
                owner: UserId::parse("auth0|bench").expect("valid"),
                status: if i % 50 == 0 {
                    InstanceStatus::Suspended
                } else {
                    InstanceStatus::Active
                },
                domains: vec![Domain {
                    kind: DomainKind::of(&hostname, Some(&platform)),
                    hostname,
                }],
                created_at: chrono::DateTime::UNIX_EPOCH,
                updated_at: chrono::DateTime::UNIX_EPOCH,
                version: 0,
            }
        })
        .collect();
    let opts = Options {
        platform_domain: Some(&platform),
        wildcard: true,
        templates: &templates,
    };
    let started = Instant::now();
    let lists = desired(&fleet, opts);
    let desired_took = started.elapsed();
    // The application already holds all but the last 100 entries of each list.
    let actual: BTreeMap<Field, Vec<String>> = lists
        .iter()
        .map(|(f, l)| (*f, l[..l.len().saturating_sub(100)].to_vec()))
        .collect();
    let owned: BTreeMap<Field, BTreeSet<String>> = actual
        .iter()
        .map(|(f, l)| (*f, l.iter().cloned().collect()))
        .collect();
    let started = Instant::now();
    let mut over = 0;
    for field in Field::ALL {
        if plan_field(field, &lists[&field], &actual[&field], &owned[&field]).is_err() {
            over += 1;
        }
    }
    let plan_took = started.elapsed();
    println!(
        "compute: {n} instances ({} entries per list): desired {:.1} ms, plan of 4 lists {:.1} ms ({over} lists over the 100 cap, as expected without shards)",
        lists[&Field::Callbacks].len(),
        desired_took.as_secs_f64() * 1000.0,
        plan_took.as_secs_f64() * 1000.0
    );
}
