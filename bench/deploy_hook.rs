//! Deploy-hook latency at a steady, open-loop request rate.
//!
//! Starts fleetgate in-process against a fresh database on the Postgres at DATABASE_URL,
//! then sends signed `instance.deployed` events (unique webhook ids, 1,000 instances cycled,
//! so the mix is creates then real updates) at a fixed rate, each at its scheduled time
//! whatever the earlier ones are doing, and prints latency percentiles.
//!
//!     bench/run deploy_hook [--rate 200] [--seconds 20]

use std::time::{Duration, Instant};

mod common;

use fleetgate::{auth::webhook::WebhookVerifier, startup::Application};
use secrecy::SecretString;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rate = common::arg("--rate", 200);
    let seconds = common::arg("--seconds", 20);
    let db = common::BenchDb::create("hook").await?;
    let db_url = db.url.clone();

    let vars = [
        ("DATABASE_URL", db_url.clone()),
        ("FLEETGATE_LISTEN", "127.0.0.1:0".to_owned()),
        ("AUTH0_DOMAIN", "bench.auth0.invalid".to_owned()),
        ("AUTH0_AUDIENCE", "https://fleetgate.bench/api".to_owned()),
        (
            "FLEETGATE_INSTANCE_AUDIENCE",
            "https://instances.fleetgate.bench/api".to_owned(),
        ),
        ("FLEETGATE_PLATFORM_DOMAIN", "apps.example.com".to_owned()),
        ("FLEETGATE_WEBHOOK_SECRET", SECRET.to_owned()),
    ];
    let settings = common::settings(&vars)?;
    let pool = PgPool::connect(&db_url).await?;
    fleetgate::startup::migrate(&pool).await?;
    let app = Application::build(&settings, pool.clone())?;
    let url = format!("http://127.0.0.1:{}/v1/hooks/deploy", app.port());
    let stop = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(stop.clone()));

    let signer = std::sync::Arc::new(WebhookVerifier::new(&SecretString::from(SECRET))?);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    println!(
        "deploy hook: {rate} req/s for {seconds} s ({total} requests), server and load generator on this machine"
    );
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = started + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let (client, url, signer) = (client.clone(), url.clone(), signer.clone());
        tasks.push(tokio::spawn(async move {
            let n = i % 1000;
            let body = serde_json::json!({"type": "instance.deployed", "data": {
                "instance_id": format!("bench-{n}"), "owner": "auth0|bench",
                "domains": [format!("b{n}.apps.example.com"), format!("www.b{n}-{}.com", i / 1000 % 2)]}})
            .to_string();
            let sent = Instant::now();
            let ok = common::send_hook(&client, &url, &signer, &format!("msg_{i}"), body).await;
            // Latency counted from when the request was due, so a stalled server cannot hide.
            (ok, due.elapsed().max(sent.elapsed()))
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut errors = 0;
    for t in tasks {
        let (ok, latency) = t.await?;
        if !ok {
            errors += 1;
        }
        latencies.push(latency);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| common::percentile(&latencies, p);
    let ms = common::ms;
    println!(
        "sent {total}, errors {errors}, achieved {:.0} req/s",
        total as f64 / elapsed.as_secs_f64()
    );
    println!(
        "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        ms(pct(0.50)),
        ms(pct(0.90)),
        ms(pct(0.99)),
        ms(*latencies.last().unwrap())
    );
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&pool)
        .await?;
    println!("audit entries written: {audited}");

    stop.cancel();
    let _ = server.await;
    pool.close().await;
    db.drop().await?;
    anyhow::ensure!(errors == 0, "{errors} requests failed");
    Ok(())
}
