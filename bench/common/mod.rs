//! What the benchmarks share: a throw-away database, settings from pairs, the servers under
//! test and the load generators as processes of their own, and the result table.
// Each benchmark is its own crate and uses only part of this module.
#![allow(dead_code)]

pub mod open_loop;
pub mod process;
pub mod report;
pub mod wrk;

use fleetgate::config::Settings;
use sqlx::{Connection, Executor, PgConnection};

/// The allocator fleetgate's binary uses (`src/main.rs`), here too: the reference server runs
/// from this executable, and a comparison with it should not be one of allocators.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    let res = signed_hook(http, url, signer, id, body).send().await;
    matches!(res, Ok(r) if r.status().is_success())
}

/// A deploy hook to `url` signed as the platform's sender signs it (Standard Webhooks), now.
pub fn signed_hook(
    http: &reqwest::Client,
    url: &str,
    signer: &fleetgate::auth::webhook::WebhookVerifier,
    id: &str,
    body: String,
) -> reqwest::RequestBuilder {
    let ts = chrono::Utc::now().timestamp();
    let sig = signer.sign(id, ts, body.as_bytes()).expect("signs");
    http.post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(body)
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
    process::rss_kib_of(std::process::id())
}

/// The roles a benchmark's child process can play (the reference server, the open-loop load
/// generator); true when this process was started as one and has done it.
pub fn child_role() -> anyhow::Result<bool> {
    let args: Vec<String> = std::env::args().collect();
    let after = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    if let Some(port) = after("--reference-server") {
        process::serve_reference(port.parse()?)?;
        return Ok(true);
    }
    if let Some(file) = after("--open-loop") {
        open_loop::generate(std::path::Path::new(file))?;
        return Ok(true);
    }
    Ok(false)
}

pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const ACTION_SECRET: &str = "bench-action-secret-0123456789abcdef0123";

pub const AUDIENCE: &str = "https://fleetgate.bench/api";

/// The Auth0 emulator, in this process (it only signs tokens and serves its keys here), with
/// an administrator's access token for fleetgate's API.
pub struct Tenant {
    pub base_url: String,
    pub admin_token: String,
    _stop: tokio_util::sync::DropGuard,
}

impl Tenant {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_action(None).await
    }

    /// [`Tenant::start`], running `action` on every login (the relay's benchmark: the Action
    /// binds each login to its instance, as the relay requires), with a Management API rate
    /// limit that does not slow the set-up.
    pub async fn start_with_action(
        action: Option<fleetgate_emulator::login::action::ActionConfig>,
    ) -> anyhow::Result<Self> {
        use fleetgate_emulator::{Emulator, EmulatorConfig, keys::SigningKey};
        let pem = include_str!("../../tests/fixtures/test-key.pem");
        let emulator = Emulator::build(EmulatorConfig {
            listen: "127.0.0.1:0".parse()?,
            api_audience: AUDIENCE.into(),
            instance_audience: "https://instances.fleetgate.bench/api".into(),
            signing_key_pem: Some(pem.into()),
            rate_limit_burst: if action.is_some() { 1000 } else { 2 },
            rate_limit_per_second: if action.is_some() { 1000.0 } else { 2.0 },
            action,
            ..EmulatorConfig::default()
        })?;
        let base_url = emulator.base_url().to_owned();
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(emulator.run_until_stopped(stop.clone()));
        let now = chrono::Utc::now().timestamp();
        let admin_token = SigningKey::from_pem(pem)?.sign(&serde_json::json!({
            "iss": format!("{base_url}/"), "sub": "auth0|bench-admin", "aud": AUDIENCE,
            "iat": now, "exp": now + 86_400, "azp": "bench", "permissions": ["fleet:admin"],
        }));
        Ok(Self {
            base_url,
            admin_token,
            _stop: stop.drop_guard(),
        })
    }
}

/// fleetgate's required settings for a benchmark (the reconciler off), defaults otherwise.
pub fn fleetgate_vars(db_url: &str, tenant: &Tenant) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", db_url.to_owned()),
        ("AUTH0_DOMAIN", tenant.base_url.clone()),
        ("AUTH0_AUDIENCE", AUDIENCE.to_owned()),
        (
            "FLEETGATE_INSTANCE_AUDIENCE",
            "https://instances.fleetgate.bench/api".to_owned(),
        ),
        ("FLEETGATE_PLATFORM_DOMAIN", "apps.example.com".to_owned()),
        ("FLEETGATE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("FLEETGATE_ACTION_SECRET", ACTION_SECRET.to_owned()),
        ("FLEETGATE_ADMIN_CLIENTS", "bench".to_owned()),
    ]
}

/// Deploys instance `id` on `host` (owner `auth0|owner`), issues its instance key and gives it
/// `grants` members (`auth0|user-0`, …), one change each: its grants revision is `grants`.
pub async fn polled_instance(
    pool: &sqlx::PgPool,
    id: &str,
    host: &str,
    grants: usize,
) -> anyhow::Result<secrecy::SecretString> {
    use fleetgate::{
        domain::{Actor, Hostname, InstanceId, UserId},
        grants::{Grants, Subject},
        registry::Registry,
    };
    let actor = Actor {
        name: "bench".into(),
        request_id: None,
    };
    let id = InstanceId::parse(id)?;
    let mut tx = pool.begin().await?;
    Registry::new(Some(Hostname::parse("apps.example.com")?))
        .deploy(
            &mut tx,
            &actor,
            &id,
            &UserId::parse("auth0|owner")?,
            &[Hostname::parse(host)?],
        )
        .await?;
    let key = fleetgate::keys::issue(&mut tx, id.as_str(), "bench").await?;
    tx.commit().await?;
    let store = Grants::new(vec!["member".into(), "admin".into()], 1000);
    for n in 0..grants {
        let mut tx = pool.begin().await?;
        let user = Subject::User(UserId::parse(&format!("auth0|user-{n}"))?);
        store.add(&mut tx, &actor, &id, &user, "member").await?;
        tx.commit().await?;
    }
    Ok(key)
}

/// A folder for one run's files (logs, request files), removed by the caller.
/// Migrates a bench's fresh database and records where it is (`grants::lineage`), as the
/// fleetgate that wrote the registry a bench then writes straight into it would have: without
/// it, fleetgate's first start would take the seeded revisions for a restore and move them.
pub async fn migrate(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    fleetgate::startup::migrate(pool).await?;
    fleetgate::grants::lineage::ensure(pool).await?;
    Ok(())
}

pub fn scratch(label: &str) -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("fleetgate-bench-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
