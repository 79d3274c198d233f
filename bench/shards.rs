//! 10,000 custom-domain instances against the emulator at the Free-plan rate limit: how many
//! applications fleetgate uses next to the lower bound, Management API calls, and seconds
//! until every URL is live.
//!
//!     bench/run shards [--instances 10000]

mod common;

use std::time::{Duration, Instant};

use fleetgate::{auth::webhook::WebhookVerifier, startup::Application};
use fleetgate_emulator::{Emulator, EmulatorConfig};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let instances = common::arg("--instances", 10_000);
    let db = common::BenchDb::create("shards").await?;
    let emu = Emulator::build(EmulatorConfig {
        listen: "127.0.0.1:0".parse()?,
        max_clients: 1000,
        ..EmulatorConfig::default()
    })?;
    let base = emu.base_url().to_owned();
    let stop = CancellationToken::new();
    tokio::spawn(emu.run_until_stopped(stop.clone()));
    let http = reqwest::Client::new();
    let tenant: Value = http
        .get(format!("{base}/emulator/tenant"))
        .send()
        .await?
        .json()
        .await?;
    let text = |k: &str| tenant[k].as_str().unwrap_or_default().to_owned();
    let settings = common::settings(&[
        ("DATABASE_URL", db.url.clone()),
        ("FLEETGATE_LISTEN", "127.0.0.1:0".to_owned()),
        ("AUTH0_DOMAIN", base.clone()),
        ("AUTH0_AUDIENCE", "https://fleetgate.local/api".to_owned()),
        (
            "FLEETGATE_INSTANCE_AUDIENCE",
            "https://instances.fleetgate.bench/api".to_owned(),
        ),
        ("FLEETGATE_WEBHOOK_SECRET", SECRET.to_owned()),
        ("AUTH0_CLIENT_ID", text("m2m_client_id")),
        ("AUTH0_CLIENT_SECRET", text("m2m_client_secret")),
        ("AUTH0_SPA_CLIENT_ID", text("spa_client_id")),
        ("FLEETGATE_AUTO_CREATE_APPLICATIONS", "true".to_owned()),
    ])?;
    let pool = PgPool::connect(&db.url).await?;
    common::migrate(&pool).await?;
    let app = Application::build(&settings, pool.clone())?;
    let hook_url = format!("http://127.0.0.1:{}/v1/hooks/deploy", app.port());
    tokio::spawn(app.run_until_stopped(stop.clone()));
    let signer = std::sync::Arc::new(WebhookVerifier::new(&SecretString::from(SECRET))?);

    println!(
        "shards: {instances} custom-domain instances (1 host each, default templates), emulator at the Free-plan limit"
    );
    let started = Instant::now();
    for chunk in (0..instances).collect::<Vec<_>>().chunks(100) {
        let sends = chunk.iter().map(|i| {
            let (http, url, signer) = (http.clone(), hook_url.clone(), signer.clone());
            async move {
                let body = json!({"type": "instance.deployed", "data": {"instance_id": format!("t{i:05}"), "owner": "auth0|bench", "domains": [format!("www.t{i:05}.example.org")]}}).to_string();
                common::send_hook(&http, &url, &signer, &format!("msg_{i}"), body).await
            }
        });
        let ok = futures_util::future::join_all(sends)
            .await
            .into_iter()
            .filter(|x| *x)
            .count();
        anyhow::ensure!(ok == chunk.len(), "some deploys failed");
    }
    println!("  deployed in {:.1} s", started.elapsed().as_secs_f64());
    // Live = every instance's callback in fleetgate's read-back of its application.
    let converged = loop {
        let live: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM assignments a JOIN allowlist_snapshots s ON s.client_id = a.client_id AND s.field = 'callbacks' \
             WHERE s.entries ? ('https://www.' || a.instance_id || '.example.org/callback')",
        )
        .fetch_one(&pool)
        .await?;
        if live as u64 == instances {
            break started.elapsed();
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "not converged after an hour ({live} live)"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let apps: i64 = sqlx::query_scalar("SELECT count(*) FROM applications")
        .fetch_one(&pool)
        .await?;
    let calls: i64 = sqlx::query_scalar("SELECT coalesce(sum(api_calls), 0) FROM reconcile_runs")
        .fetch_one(&pool)
        .await?;
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM reconcile_runs")
        .fetch_one(&pool)
        .await?;
    let lower_bound = instances.div_ceil(100);
    println!(
        "  every URL live {:.1} s after the first deploy",
        converged.as_secs_f64()
    );
    println!(
        "  applications used: {apps} (lower bound ceil({instances} slots / 100) = {lower_bound})"
    );
    println!("  Management API calls: {calls} in {runs} passes (token requests not counted)");
    common::report::row(
        &format!("shards: {instances} custom-domain instances, applications used"),
        format!("{apps} (lower bound {lower_bound})"),
        "",
        None,
    );
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    pool.close().await;
    db.drop().await?;
    Ok(())
}
