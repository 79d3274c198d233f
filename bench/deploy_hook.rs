//! Deploy-hook latency at a steady open-loop rate: fleetgate as a process of its own at its
//! default settings, against a fresh database on the Postgres at DATABASE_URL; signed
//! `instance.deployed` events (unique webhook ids, 1,000 instances cycled, so the mix is
//! creates then real updates) sent by the open-loop generator, another process.
//!
//!     bench/run deploy_hook [--rate 500] [--seconds 20]

mod common;

use common::{open_loop, process, report};
use fleetgate::auth::webhook::{ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookVerifier};
use secrecy::SecretString;
use sqlx::PgPool;

fn main() -> anyhow::Result<()> {
    if common::child_role()? {
        return Ok(());
    }
    tokio::runtime::Runtime::new()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let rate = common::arg("--rate", 500);
    let seconds = common::arg("--seconds", 20);
    let db = common::BenchDb::create("hook").await?;
    let dir = common::scratch("hook")?;
    let tenant = common::Tenant::start().await?;
    let (server, _) = process::fleetgate(&common::fleetgate_vars(&db.url, &tenant), &dir).await?;
    let url = format!("{}/v1/hooks/deploy", server.base);

    let signer = WebhookVerifier::new(&SecretString::from(common::WEBHOOK_SECRET))?;
    let total = rate * seconds;
    let ts = chrono::Utc::now().timestamp();
    let requests = (0..total)
        .map(|i| {
            let n = i % 1000;
            let body = serde_json::json!({"type": "instance.deployed", "data": {
                "instance_id": format!("bench-{n}"), "owner": "auth0|bench",
                "domains": [format!("b{n}.apps.example.com"), format!("www.b{n}-{}.com", i / 1000 % 2)]}})
            .to_string();
            let id = format!("msg_{i}");
            let signature = signer.sign(&id, ts, body.as_bytes())?;
            Ok(open_loop::Request {
                method: "POST".into(),
                url: url.clone(),
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    (ID_HEADER.into(), id),
                    (TIMESTAMP_HEADER.into(), ts.to_string()),
                    (SIGNATURE_HEADER.into(), signature),
                ],
                body: Some(body),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    println!(
        "deploy hook: {rate} req/s for {seconds} s ({total} requests), open loop from another process"
    );
    let out = open_loop::run(&dir, rate, requests)?;
    println!(
        "sent {}, errors {}, achieved {:.0} req/s; latency ms: p50 {:.2}  p99 {:.2}  max {:.2}",
        out.sent, out.errors, out.achieved_per_second, out.p50_ms, out.p99_ms, out.max_ms
    );
    let pool = PgPool::connect(&db.url).await?;
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&pool)
        .await?;
    println!("audit entries written: {audited}");
    report::row(
        &format!("deploy hook p99 at {rate}/s open loop"),
        format!("{:.2} ms", out.p99_ms),
        "<= 5 ms",
        Some(out.p99_ms <= 5.0 && out.errors == 0),
    );

    drop(server);
    pool.close().await;
    db.drop().await?;
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(out.errors == 0, "{} requests failed", out.errors);
    Ok(())
}
