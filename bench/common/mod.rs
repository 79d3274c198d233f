//! What the benchmarks share: a throw-away database and settings from pairs.
// Each benchmark is its own crate and uses only part of this module.
#![allow(dead_code)]

use fleetgate::config::Settings;
use sqlx::{Connection, Executor, PgConnection};

/// A fresh database on the Postgres server at `DATABASE_URL`, dropped by [`BenchDb::drop`].
pub struct BenchDb {
    pub url: String,
    name: String,
    admin: PgConnection,
}

impl BenchDb {
    pub async fn create(label: &str) -> anyhow::Result<Self> {
        let server = std::env::var("DATABASE_URL")
            .map_err(|_| anyhow::anyhow!("DATABASE_URL: set it to a Postgres server URL"))?;
        let name = format!("fleetgate_bench_{label}_{}", std::process::id());
        let mut admin = PgConnection::connect(&server).await?;
        admin
            .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
            .await?;
        let base = server.rsplit_once('/').map(|(b, _)| b).unwrap_or(&server);
        Ok(Self {
            url: format!("{base}/{name}"),
            name,
            admin,
        })
    }

    pub async fn drop(mut self) -> anyhow::Result<()> {
        self.admin
            .execute(format!(r#"DROP DATABASE "{}" WITH (FORCE)"#, self.name).as_str())
            .await?;
        Ok(())
    }
}

pub fn settings(vars: &[(&str, String)]) -> anyhow::Result<Settings> {
    Ok(Settings::from_lookup(|k| {
        vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    })?)
}

/// The number after `name` on the command line, or `default`.
pub fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Signs and sends one deploy-hook event; true when it was accepted.
pub async fn send_hook(
    http: &reqwest::Client,
    url: &str,
    signer: &fleetgate::auth::webhook::WebhookVerifier,
    id: &str,
    body: String,
) -> bool {
    let ts = chrono::Utc::now().timestamp();
    let sig = signer.sign(id, ts, body.as_bytes()).expect("signs");
    let res = http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(body)
        .send()
        .await;
    matches!(res, Ok(r) if r.status().is_success())
}

/// The `p` quantile (0–1) of latencies sorted ascending (nearest rank).
pub fn percentile(sorted: &[std::time::Duration], p: f64) -> std::time::Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1)]
}

pub fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// This process's resident memory, KiB.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
