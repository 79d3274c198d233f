//! A mixed workload for a minute on loopback: deploy hooks, admin reads, grant writes, 304
//! polls, long-polls and login decisions, each at its own open-loop rate (long-polls: a closed
//! loop per instance). Prints per route: requests, errors, p50/p99/max; then the process's
//! memory (server and load generator share it). Fails if any request failed.
//!
//! With `--reconciler 1`, the reconciler runs too, against the emulator at the Free-plan rate
//! limit (applications created as needed), and the run ends by measuring how long after the
//! load the allow-lists equal the registry.
//!
//!     bench/run load [--seconds 60] [--instances 200] [--reconciler 0]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

mod common;

use common::{ms, percentile};
use fleetgate::{auth::webhook::WebhookVerifier, startup::Application};
use fleetgate_emulator::{Emulator, EmulatorConfig};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ACTION_SECRET: &str = "load-action-secret-0123456789abcdef0123";
const AUDIENCE: &str = "https://fleetgate.load/api";

type Outcomes = Vec<(bool, Duration)>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds = common::arg("--seconds", 60);
    let instances = common::arg("--instances", 200) as usize;
    let db = common::BenchDb::create("load").await?;
    let stop = CancellationToken::new();
    let emulator = Emulator::build(EmulatorConfig {
        listen: "127.0.0.1:0".parse()?,
        api_audience: AUDIENCE.into(),
        instance_audience: "https://instances.fleetgate.load/api".into(),
        ..EmulatorConfig::default()
    })?;
    let tenant = emulator.base_url().to_owned();
    tokio::spawn(emulator.run_until_stopped(stop.clone()));
    let seeded: Value = reqwest::get(format!("{tenant}/emulator/tenant"))
        .await?
        .json()
        .await?;
    let text = |k: &str| seeded[k].as_str().unwrap_or_default().to_owned();
    // The admin token below is issued to the seeded M2M application.
    let admin_client = text("m2m_client_id");
    let mut vars = vec![
        ("DATABASE_URL", db.url.clone()),
        ("FLEETGATE_LISTEN", "127.0.0.1:0".into()),
        ("AUTH0_DOMAIN", tenant.clone()),
        ("AUTH0_AUDIENCE", AUDIENCE.into()),
        (
            "FLEETGATE_INSTANCE_AUDIENCE",
            "https://instances.fleetgate.load/api".into(),
        ),
        ("FLEETGATE_PLATFORM_DOMAIN", "apps.example.com".into()),
        ("FLEETGATE_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
        ("FLEETGATE_ACTION_SECRET", ACTION_SECRET.into()),
        ("FLEETGATE_DB_MAX_CONNECTIONS", "20".into()),
        ("FLEETGATE_ADMIN_CLIENTS", admin_client.clone()),
    ];
    let reconciling = common::arg("--reconciler", 0) == 1;
    if reconciling {
        vars.extend([
            ("AUTH0_CLIENT_ID", text("m2m_client_id")),
            ("AUTH0_CLIENT_SECRET", text("m2m_client_secret")),
            ("AUTH0_SPA_CLIENT_ID", text("spa_client_id")),
            ("FLEETGATE_AUTO_CREATE_APPLICATIONS", "true".into()),
        ]);
    }
    let settings = common::settings(&vars)?;
    let pool = PgPool::connect(&db.url).await?;
    common::migrate(&pool).await?;
    let app = Application::build(&settings, pool.clone())?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let server = tokio::spawn(app.run_until_stopped(stop.clone()));
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .timeout(Duration::from_secs(30))
        .build()?;
    let signer = Arc::new(WebhookVerifier::new(&SecretString::from(WEBHOOK_SECRET))?);
    let hooks_url = format!("{base}/v1/hooks/deploy");

    // The fleet: instances (keys from their first deploy), an admin token.
    let mut keys = Vec::with_capacity(instances);
    for n in 0..instances {
        let body = deploy_event(n, 0);
        let res = common::signed_hook(&http, &hooks_url, &signer, &format!("seed_{n}"), body)
            .send()
            .await?
            .error_for_status()?;
        let answer: Value = res.json().await?;
        keys.push(
            answer["instance_key"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let keys = Arc::new(keys);
    let minted: Value = http
        .post(format!("{tenant}/emulator/users/token"))
        .json(&json!({"sub": "auth0|load-admin", "audience": AUDIENCE, "permissions": ["fleet:admin"], "client_id": admin_client}))
        .send()
        .await?
        .json()
        .await?;
    let admin = Arc::new(
        minted["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    );
    println!(
        "load: {seconds} s on loopback, {instances} instances, reconciler {}; server, load generator and Postgres on this machine",
        if reconciling {
            "on (emulator at the Free-plan limit)"
        } else {
            "off"
        }
    );

    let run = Duration::from_secs(seconds);
    let hooks = open_loop(
        40,
        run,
        {
            let (http, url, signer) = (http.clone(), hooks_url.clone(), signer.clone());
            move |i| {
                let body = deploy_event(i % instances, 1 + i / instances);
                common::signed_hook(&http, &url, &signer, &format!("load_{i}"), body).send()
            }
        },
        |s| s == 200,
    );
    let admin_reads = open_loop(
        40,
        run,
        {
            let (http, base, admin) = (http.clone(), base.clone(), admin.clone());
            move |i| {
                let path = if i % 2 == 0 {
                    "/v1/instances?limit=50".to_owned()
                } else {
                    format!("/v1/instances/load-{}", i % instances)
                };
                http.get(format!("{base}{path}"))
                    .bearer_auth(admin.as_str())
                    .send()
            }
        },
        |s| s == 200,
    );
    let grant_writes = open_loop(
        10,
        run,
        {
            let (http, base, admin) = (http.clone(), base.clone(), admin.clone());
            move |i| {
                http.post(format!("{base}/v1/instances/load-{}/grants", i % instances))
                    .bearer_auth(admin.as_str())
                    .json(&json!({"user_id": format!("auth0|member-{i}")}))
                    .send()
            }
        },
        |s| s == 201,
    );
    let polls = open_loop(
        400,
        run,
        {
            let (http, base, keys) = (http.clone(), base.clone(), keys.clone());
            move |i| {
                let n = i % instances;
                http.get(format!("{base}/v1/instances/load-{n}/grants"))
                    .bearer_auth(&keys[n])
                    .header("if-none-match", "\"0\"")
                    .send()
            }
        },
        |s| s == 304 || s == 200,
    );
    let decisions = open_loop(
        100,
        run,
        {
            let (http, base) = (http.clone(), base.clone());
            move |i| {
                let n = i % instances;
                let user = if i % 2 == 0 {
                    "auth0|owner".to_owned()
                } else {
                    format!("auth0|member-{i}")
                };
                http.post(format!("{base}/v1/login-decisions"))
                    .bearer_auth(ACTION_SECRET)
                    .json(&json!({"user_id": user, "email_verified": false,
                    "redirect_uri": format!("https://l{n}.apps.example.com/callback")}))
                    .send()
            }
        },
        |s| s == 200,
    );
    let long_polls = long_polls(&http, &base, &keys, run);
    let (hooks, admin_reads, grant_writes, polls, decisions, long_polls) = tokio::join!(
        hooks,
        admin_reads,
        grant_writes,
        polls,
        decisions,
        long_polls
    );

    let mut errors = 0;
    println!(
        "{:<22} {:>8} {:>7} {:>9} {:>9} {:>9}",
        "route", "requests", "errors", "p50 ms", "p99 ms", "max ms"
    );
    for (label, outcomes) in [
        ("deploy hooks", hooks),
        ("admin reads", admin_reads),
        ("grant writes", grant_writes),
        ("polls (304)", polls),
        ("long-polls (wait=10)", long_polls),
        ("login decisions", decisions),
    ] {
        let failed = outcomes.iter().filter(|(ok, _)| !ok).count();
        errors += failed;
        let mut lat: Vec<Duration> = outcomes.iter().map(|(_, d)| *d).collect();
        lat.sort();
        println!(
            "{label:<22} {:>8} {failed:>7} {:>9.2} {:>9.2} {:>9.2}",
            lat.len(),
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.99)),
            ms(*lat.last().unwrap_or(&Duration::ZERO))
        );
        common::report::row(
            &format!("mixed load: {label}, p99 (errors)"),
            format!("{:.2} ms ({failed})", ms(percentile(&lat, 0.99))),
            "",
            None,
        );
    }
    println!(
        "memory at the end: {} MiB resident (server and load generator)",
        common::rss_kib() / 1024
    );
    if reconciling {
        converged(&http, &base, &admin, &pool).await?;
    }
    stop.cancel();
    let _ = server.await;
    pool.close().await;
    db.drop().await?;
    anyhow::ensure!(errors == 0, "{errors} requests failed");
    Ok(())
}

/// Waits until a plan shows nothing to add or remove; prints how long that took after the
/// load ended and what the passes did.
async fn converged(
    http: &reqwest::Client,
    base: &str,
    admin: &str,
    pool: &PgPool,
) -> anyhow::Result<()> {
    let load_ended = Instant::now();
    loop {
        let plan: Value = http
            .get(format!("{base}/v1/reconcile/plan"))
            .bearer_auth(admin)
            .send()
            .await?
            .json()
            .await?;
        let pending = plan["applications"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|a| a["fields"].as_array().into_iter().flatten())
            .any(|f| {
                f["added"].as_array().is_some_and(|v| !v.is_empty())
                    || f["removed"].as_array().is_some_and(|v| !v.is_empty())
            });
        if !pending {
            break;
        }
        anyhow::ensure!(
            load_ended.elapsed() < Duration::from_secs(300),
            "the allow-lists did not converge within 300 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let runs: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT outcome, count(*), sum(api_calls)::int8 FROM reconcile_runs GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(pool)
    .await?;
    let apps: i64 = sqlx::query_scalar("SELECT count(*) FROM applications")
        .fetch_one(pool)
        .await?;
    println!(
        "allow-lists equal to the registry {:.1} s after the load ended; {apps} applications; passes by outcome (count, Management API calls): {runs:?}",
        load_ended.elapsed().as_secs_f64()
    );
    Ok(())
}

fn deploy_event(n: usize, round: usize) -> String {
    json!({"type": "instance.deployed", "data": {
        "instance_id": format!("load-{n}"), "owner": "auth0|owner",
        "domains": [format!("l{n}.apps.example.com"), format!("www.l{n}-{}.com", round % 2)]}})
    .to_string()
}

/// Sends `make(i)` at `rate` per second for `run`, each at its scheduled time whatever the
/// earlier ones are doing; latency counts from the scheduled time.
async fn open_loop<F, Fut>(rate: u64, run: Duration, mut make: F, ok: fn(u16) -> bool) -> Outcomes
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
{
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let total = (run.as_secs_f64() * rate as f64) as usize;
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let due = started + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let fut = make(i);
        tasks.push(tokio::spawn(async move {
            let good = fut.await.is_ok_and(|r| ok(r.status().as_u16()));
            (good, due.elapsed())
        }));
    }
    let mut out = Vec::with_capacity(total);
    for t in tasks {
        out.push(t.await.unwrap_or((false, Duration::ZERO)));
    }
    out
}

/// One poller per instance following its grants with `since` and `wait=10`.
async fn long_polls(
    http: &reqwest::Client,
    base: &str,
    keys: &Arc<Vec<String>>,
    run: Duration,
) -> Outcomes {
    let until = Instant::now() + run;
    let tasks: Vec<_> = (0..keys.len())
        .map(|n| {
            let (http, base, keys) = (http.clone(), base.to_owned(), keys.clone());
            tokio::spawn(async move {
                let mut since = 0i64;
                let mut out = Vec::new();
                while Instant::now() < until {
                    let t = Instant::now();
                    let res = http
                        .get(format!(
                            "{base}/v1/instances/load-{n}/grants?since={since}&wait=10"
                        ))
                        .bearer_auth(&keys[n])
                        .send()
                        .await;
                    let good = match res {
                        Ok(r) if r.status() == 304 => true,
                        Ok(r) if r.status() == 200 => match r.json::<Value>().await {
                            Ok(delta) => {
                                since = delta["revision"].as_i64().unwrap_or(since);
                                true
                            }
                            Err(_) => false,
                        },
                        _ => false,
                    };
                    out.push((good, t.elapsed()));
                }
                out
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.extend(t.await.unwrap_or_default());
    }
    out
}
