//! fleetgate with a large registry: 100,000 instances (each with a key, two hosts and ten
//! grants) written straight into a fresh database, then fleetgate started as a process of its
//! own: seconds until `/readyz` answers 200 (the memory of keys, revisions, instances and grants
//! loaded), its resident memory next to the same process on an empty registry, the time
//! `GET /v1/reconcile/status` and `GET /v1/applications` take, and the no-change poll of 10,000
//! of those instances (each with its own key, `wrk` with `bench/poll.lua`) next to the bare
//! actix-web 304 fed the same requests.
//!
//!     bench/run scale [--instances 100000] [--grants 10] [--polling 10000] [--seconds 5]
//!                     [--rounds 5]

mod common;

use common::{process, report, wrk};
use fleetgate::keys;
use secrecy::ExposeSecret;
use sqlx::PgPool;

fn main() -> anyhow::Result<()> {
    if common::child_role()? {
        return Ok(());
    }
    tokio::runtime::Runtime::new()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let instances = common::arg("--instances", 100_000) as usize;
    let grants = common::arg("--grants", 10) as usize;
    let polling = (common::arg("--polling", 10_000) as usize).min(instances);
    let seconds = common::arg("--seconds", 5);
    let rounds = common::arg("--rounds", 5);
    let db = common::BenchDb::create("scale").await?;
    let dir = common::scratch("scale")?;
    let pool = PgPool::connect(&db.url).await?;
    common::migrate(&pool).await?;
    let tenant = common::Tenant::start().await?;
    let vars = common::fleetgate_vars(&db.url, &tenant);

    let (empty, _) = process::fleetgate(&vars, &dir).await?;
    let rss_empty = empty.rss_kib();
    drop(empty);

    let seeding = std::time::Instant::now();
    let keys = seed(&pool, instances, grants).await?;
    println!(
        "seeded {instances} instances (key, two hosts, {grants} grants each) in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );

    let (server, startup) = process::fleetgate(&vars, &dir).await?;
    let rss_ready = server.rss_kib();
    let per_instance = (rss_ready.saturating_sub(rss_empty)) as f64 * 1024.0 / instances as f64;
    println!(
        "started in {:.2} s; resident memory {} MiB ({} MiB with an empty registry: {per_instance:.0} bytes per instance)",
        startup.as_secs_f64(),
        rss_ready / 1024,
        rss_empty / 1024
    );
    report::row(
        &format!("start-up with {instances} instances × {grants} grants, until /readyz is 200"),
        format!("{:.2} s", startup.as_secs_f64()),
        "<= 5 s",
        Some(startup.as_secs_f64() <= 5.0),
    );
    report::row(
        &format!("resident memory with {instances} instances × {grants} grants"),
        format!("{} MiB", rss_ready / 1024),
        "<= 400 MiB",
        Some(rss_ready <= 400 * 1024),
    );
    report::row(
        "memory per instance",
        format!("{per_instance:.0} bytes"),
        "",
        None,
    );

    let list = dir.join("pollers.txt");
    std::fs::write(
        &list,
        keys[..polling]
            .iter()
            .map(|(id, key)| format!("{id} {key}\n"))
            .collect::<String>(),
    )?;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/poll.lua");
    let args = [list.display().to_string(), "3".to_owned()];
    let reference = process::reference().await?;
    println!("{polling} instances polling, wrk -t2 -c64 -d{seconds}s, {rounds} rounds alternating");
    let mut ratios = Vec::new();
    let mut errors = 0;
    for round in 1..=rounds {
        let bare = wrk::run(&reference.base, &[], 64, seconds, Some((&script, &args)))?;
        let ours = wrk::run(&server.base, &[], 64, seconds, Some((&script, &args)))?;
        errors += bare.errors + ours.errors;
        let ratio = ours.per_second / bare.per_second;
        println!(
            "   round {round}: bare {:.0}/s, fleetgate {:.0}/s: {ratio:.2}x",
            bare.per_second, ours.per_second
        );
        ratios.push(ratio);
    }
    let ratio = report::median(ratios);
    report::row(
        &format!("304 poll of {polling} instances / bare actix-web 304 (median)"),
        format!("{ratio:.2}x"),
        ">= 0.90x",
        Some(ratio >= 0.9 && errors == 0),
    );
    println!(
        "resident memory after polling: {} MiB",
        server.rss_kib() / 1024
    );
    drop(server);

    // The status page's reads, with the reconciler on: its first pass cannot place 100,000
    // custom domains on the tenant's one application (no creations allowed here), so it fails
    // and leaves (almost) every instance out of step — the most the status can have to show.
    let seeded: serde_json::Value = reqwest::get(format!("{}/emulator/tenant", tenant.base_url))
        .await?
        .json()
        .await?;
    let text = |k: &str| seeded[k].as_str().unwrap_or_default().to_owned();
    let mut reconciling = vars.clone();
    reconciling.extend([
        ("AUTH0_CLIENT_ID", text("m2m_client_id")),
        ("AUTH0_CLIENT_SECRET", text("m2m_client_secret")),
        ("AUTH0_SPA_CLIENT_ID", text("spa_client_id")),
    ]);
    let (server, _) = process::fleetgate(&reconciling, &dir).await?;
    let client = reqwest::Client::new();
    let admin = |path: &str| {
        client
            .get(format!("{}{path}", server.base))
            .bearer_auth(&tenant.admin_token)
    };
    let started = std::time::Instant::now();
    let run = loop {
        let runs: serde_json::Value = admin("/v1/reconcile/runs").send().await?.json().await?;
        let first = &runs["items"][0];
        if !first["finished_at"].is_null() {
            break first.clone();
        }
        anyhow::ensure!(
            started.elapsed().as_secs() < 600,
            "no pass finished in 10 minutes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    println!(
        "first pass: {} after {:.1} s",
        run["outcome"],
        started.elapsed().as_secs_f64()
    );
    for path in ["/v1/reconcile/status", "/v1/applications"] {
        let mut took = Vec::new();
        let mut shown = String::new();
        for _ in 0..5 {
            let t = std::time::Instant::now();
            let res = admin(path).send().await?;
            anyhow::ensure!(res.status().is_success(), "{path}: {}", res.status());
            let body: serde_json::Value = res.json().await?;
            took.push(common::ms(t.elapsed()));
            if let Some(n) = body.get("unsynced_total") {
                shown = format!(" ({n} instances out of step)");
            }
        }
        let median = report::median(took.clone());
        println!("GET {path}{shown}: {took:.1?} ms");
        report::row(
            &format!("GET {path} with {instances} instances (median of 5)"),
            format!("{median:.1} ms"),
            "<= 50 ms",
            Some(median <= 50.0),
        );
    }
    drop(server);
    pool.close().await;
    db.drop().await?;
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(errors == 0, "{errors} polls failed");
    Ok(())
}

/// Writes `n` instances `s0…` with a key, two hosts and `grants` grants (at revision 3), in a
/// few statements; answers each instance's id and key.
async fn seed(pool: &PgPool, n: usize, grants: usize) -> anyhow::Result<Vec<(String, String)>> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO instances (id, owner) SELECT 's' || i, 'auth0|owner-' || i FROM generate_series(0, $1 - 1) i",
    )
    .bind(n as i64)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO domains (hostname, instance_id, kind) \
         SELECT 's' || i || '.apps.example.com', 's' || i, 'platform' FROM generate_series(0, $1 - 1) i \
         UNION ALL SELECT 'www.shop-' || i || '.com', 's' || i, 'custom' FROM generate_series(0, $1 - 1) i",
    )
    .bind(n as i64)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO grants (instance_id, user_id, role) \
         SELECT 's' || i, 'auth0|user-' || i || '-' || k, 'member' \
         FROM generate_series(0, $1 - 1) i, generate_series(1, $2) k",
    )
    .bind(n as i64)
    .bind(grants as i64)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO grant_revisions (instance_id, revision, log_floor) \
         SELECT 's' || i, 3, 3 FROM generate_series(0, $1 - 1) i",
    )
    .bind(n as i64)
    .execute(&mut *tx)
    .await?;
    let mut keys = Vec::with_capacity(n);
    let mut hashes = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let (key, hash) = keys::generate();
        let id = format!("s{i}");
        keys.push((id.clone(), key.expose_secret().to_owned()));
        hashes.push(hash.to_vec());
        ids.push(id);
    }
    sqlx::query(
        "INSERT INTO instance_keys (hash, instance_id, minted_by) \
         SELECT h, i, 'bench' FROM UNNEST($1::bytea[], $2::text[]) AS k(h, i)",
    )
    .bind(&hashes)
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(keys)
}
