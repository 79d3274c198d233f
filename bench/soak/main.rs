//! A soak: two fleetgate replicas (the real binary, processes of their own, the reconciler and
//! outbound events on) sharing one database for half an hour of ordinary mixed traffic —
//! deploy hooks moving custom domains, grant changes, short polls, long-polls, login decisions,
//! the status page — with the reconciler's leader SIGKILLed and started again every ten
//! minutes, as a node failure and its process manager would.
//!
//! Every ten seconds it samples each replica's resident memory, open files, sockets, threads
//! and parked polls, and the database's connections, grant change log, pending events and
//! stored rows (written to `soak-samples.csv` under Cargo's target tmp dir). At the end it
//! prints each series' slope after the warm-up (per hour) and whether it is flat, the requests
//! that failed outside the kill windows (none may), and checks that nothing acknowledged was
//! lost: every instance has the hosts and grants of its last acknowledged change, every
//! long-polling instance ends with its last grants, every event was delivered, and the
//! allow-lists converge to the registry.
//!
//!     bench/run soak [--minutes 30] [--kill-every 10] [--warm-up 5] [--instances 200]
//!
//! Not in `bench/run all` (it takes the half hour); docs/performance.md has its figures.

use std::{
    io::Write,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

mod checks;
#[path = "../common/mod.rs"]
mod common;
mod replicas;
mod traffic;
mod trend;

use common::{process, report};
use fleetgate::auth::webhook::WebhookVerifier;
use replicas::{
    DATABASE_SERIES, REPLICA_SERIES, Replica, database_sample, kill_the_leader, replica_sample,
    start,
};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use traffic::{Front, GRANTED, Load, Tally, deploy_body, grants, hooks, long_poll, steady};
use trend::{Series, Verdict, periods};

/// The events' signing secret (the receiver's `--secret`).
const EVENTS_SECRET: &str = "whsec_c29hay1ldmVudHMtc2VjcmV0LTAxMjM0NTY3ODk=";
/// Revisions of its grant change log each instance keeps: small, so that the log reaches its
/// steady size within the warm-up and any growth after it is a leak.
const CHANGES_KEPT: usize = 20;
/// How long after a kill the replicas' series are left out of their trends.
const SETTLE: Duration = Duration::from_secs(120);

fn main() -> anyhow::Result<()> {
    if common::child_role()? {
        return Ok(());
    }
    tokio::runtime::Runtime::new()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let minutes = common::arg("--minutes", 30);
    let kill_every = common::arg("--kill-every", 10);
    let warm_up = common::arg("--warm-up", 5) as f64 * 60.0;
    let instances = common::arg("--instances", 200) as usize;
    anyhow::ensure!(instances >= GRANTED, "--instances: at least {GRANTED}");
    let db = common::BenchDb::create("soak").await?;
    let dir = common::scratch("soak")?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .connect_with(
            db.url
                .parse::<sqlx::postgres::PgConnectOptions>()?
                .application_name("fleetgate-soak"),
        )
        .await?;
    common::migrate(&pool).await?;
    let tenant = common::Tenant::start().await?;
    let seeded: Value = reqwest::get(format!("{}/emulator/tenant", tenant.base_url))
        .await?
        .json()
        .await?;
    let text = |k: &str| seeded[k].as_str().unwrap_or_default().to_owned();

    // The receiver of the outbound events: fleetgate's own `events listen`.
    let events_port = process::free_port()?;
    let _receiver = process::Server {
        child: std::process::Command::new(env!("CARGO_BIN_EXE_fleetgate"))
            .args(["events", "listen", "--secret", EVENTS_SECRET, "--port"])
            .arg(events_port.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(dir.join("events.log"))?)
            .spawn()?,
        base: format!("http://127.0.0.1:{events_port}"),
        log: None,
    };

    let mut vars = common::fleetgate_vars(&db.url, &tenant);
    vars.extend([
        ("AUTH0_CLIENT_ID", text("m2m_client_id")),
        ("AUTH0_CLIENT_SECRET", text("m2m_client_secret")),
        ("AUTH0_SPA_CLIENT_ID", text("spa_client_id")),
        ("FLEETGATE_AUTO_CREATE_APPLICATIONS", "true".into()),
        ("FLEETGATE_RECONCILE_CRON", "*/10 * * * * *".into()),
        ("FLEETGATE_GRANT_CHANGES_KEPT", CHANGES_KEPT.to_string()),
        (
            "FLEETGATE_EVENTS_URL",
            format!("http://127.0.0.1:{events_port}/"),
        ),
        ("FLEETGATE_EVENTS_SECRET", EVENTS_SECRET.into()),
    ]);
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let port = process::free_port()?;
        replicas.push(Replica {
            server: Some(start(&vars, port, &dir).await?),
            lives: 1,
            port,
        });
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;

    // The fleet: each instance's first deploy (which answers its key).
    let signer = WebhookVerifier::new(&SecretString::from(common::WEBHOOK_SECRET))?;
    let mut keys = Vec::with_capacity(instances);
    for k in 0..instances {
        let base = &replicas[k % 2].server.as_ref().expect("started").base;
        let answer: Value = common::signed_hook(
            &http,
            &format!("{base}/v1/hooks/deploy"),
            &signer,
            &format!("msg_seed_{k}"),
            deploy_body(k, 0),
        )
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
        keys.push(
            answer["instance_key"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let load = Arc::new(Load {
        front: Front {
            addrs: replicas
                .iter()
                .map(|r| format!("http://127.0.0.1:{}", r.port))
                .collect(),
            next: AtomicUsize::new(0),
            down: Mutex::new(Vec::new()),
        },
        tally: Tally::default(),
        stop: AtomicBool::new(false),
        http: http.clone(),
        admin: tenant.admin_token.clone(),
        hooks_signer: signer,
        keys,
        instances,
    });
    println!(
        "soak: 2 replicas, {minutes} min, {instances} instances; per second 10 deploy hooks, 10 grant changes, 50 short polls, 50 login decisions, 1 status read; {GRANTED} instances long-polling; the leader SIGKILLed every {kill_every} min; samples every 10 s, judged after {:.0} min of warm-up",
        warm_up / 60.0
    );

    let hooks = tokio::spawn(hooks(load.clone(), 10));
    let granted = tokio::spawn(grants(load.clone(), 10));
    let pollers: Vec<_> = (0..GRANTED)
        .map(|k| tokio::spawn(long_poll(load.clone(), k)))
        .collect();
    let polls = tokio::spawn(steady(
        load.clone(),
        "poll",
        50,
        |load, n, addr| {
            let k = n * 7 % load.instances;
            load.http
                .get(format!("{addr}/v1/instances/u{k}/grants"))
                .bearer_auth(&load.keys[k])
                .header("if-none-match", "\"0\"")
        },
        |s| s == StatusCode::OK || s == StatusCode::NOT_MODIFIED,
    ));
    let decisions = tokio::spawn(steady(
        load.clone(),
        "decision",
        50,
        |load, n, addr| {
            let k = n * 13 % load.instances;
            load.http
                .post(format!("{addr}/v1/login-decisions"))
                .bearer_auth(common::ACTION_SECRET)
                .json(&json!({
                    "user_id": format!("auth0|user-{}", n % 400), "email": null, "email_verified": false,
                    "redirect_uri": format!("https://u{k}.apps.example.com/callback"), "client_id": "spa",
                }))
        },
        |s| s == StatusCode::OK,
    ));
    let status = tokio::spawn(steady(
        load.clone(),
        "status",
        1,
        |load, _, addr| {
            load.http
                .get(format!("{addr}/v1/reconcile/status"))
                .bearer_auth(&load.admin)
        },
        |s| s == StatusCode::OK,
    ));

    // Sampling, and the leader's kills.
    let samples_path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("soak-samples.csv");
    let mut csv = std::io::BufWriter::new(std::fs::File::create(&samples_path)?);
    let mut header = vec!["seconds".to_owned()];
    for i in 0..replicas.len() {
        header.push(format!("r{i}_life"));
        header.extend(REPLICA_SERIES.iter().map(|s| format!("r{i}_{s}")));
    }
    header.extend(DATABASE_SERIES.iter().map(|s| s.to_string()));
    writeln!(csv, "{}", header.join(","))?;
    // Each replica's series (its lives one after another), the database's; when kills were.
    let mut by_replica: Vec<Vec<Series>> =
        vec![vec![Vec::new(); REPLICA_SERIES.len()]; replicas.len()];
    let mut database: Vec<Series> = vec![Vec::new(); DATABASE_SERIES.len()];
    let started = Instant::now();
    let run_for = Duration::from_secs(minutes * 60);
    let mut next_kill = Duration::from_secs(kill_every * 60);
    let (mut kills, mut killed) = (Vec::new(), Vec::new());
    let mut sample_tick = tokio::time::interval(Duration::from_secs(10));
    while started.elapsed() < run_for {
        sample_tick.tick().await;
        let t = started.elapsed().as_secs_f64();
        let mut row = vec![format!("{t:.0}")];
        for (i, r) in replicas.iter().enumerate() {
            row.push(r.lives.to_string());
            match &r.server {
                Some(server) => {
                    let values = replica_sample(&http, server).await;
                    for (s, v) in values.iter().enumerate() {
                        by_replica[i][s].push((t, *v));
                        row.push(format!("{v:.1}"));
                    }
                }
                None => row.extend(REPLICA_SERIES.iter().map(|_| String::new())),
            }
        }
        let values = database_sample(&pool).await?;
        for (s, v) in values.iter().enumerate() {
            database[s].push((t, *v));
            row.push(format!("{v:.0}"));
        }
        writeln!(csv, "{}", row.join(","))?;
        csv.flush()?;

        if kill_every > 0 && started.elapsed() >= next_kill && started.elapsed() < run_for {
            next_kill += Duration::from_secs(kill_every * 60);
            match kill_the_leader(&http, &mut replicas, &load.front, &vars, &dir, started).await? {
                Some(kill) => {
                    println!("   {}", kill.line);
                    killed.push(kill.at);
                    kills.push(kill);
                }
                None => println!("   {t:.0} s: no replica leads; no kill this time"),
            }
        }
    }

    // The end of the traffic: every long-poll answers and every worker returns.
    load.stop.store(true, Ordering::Relaxed);
    let (last_hosts, deployed) = hooks.await?;
    let (last_grants, changed) = granted.await?;
    let mut held = Vec::new();
    for p in pollers {
        held.push(p.await?);
    }
    let (polls, decisions, status) = (polls.await?, decisions.await?, status.await?);
    let sent = load.tally.sent.load(Ordering::Relaxed);
    let failures = load.tally.failures.lock().unwrap().clone();
    let (excused, unexcused): (Vec<_>, Vec<_>) = failures
        .iter()
        .partition(|(replica, at, _)| load.front.excused(*replica, *at));
    println!(
        "requests: {sent} ({deployed} deploy hooks and {changed} grant changes acknowledged, {polls} short polls, {decisions} decisions, {status} status reads answered, long-polls), {} failed at a killed replica, {} elsewhere",
        excused.len(),
        unexcused.len()
    );
    for (replica, at, what) in unexcused.iter().take(10) {
        println!(
            "   replica {replica}, {:.1} s: {what}",
            (*at - started).as_secs_f64()
        );
    }
    report::row(
        "soak: requests failed outside kill windows",
        unexcused.len(),
        "0",
        Some(unexcused.is_empty()),
    );
    report::row(
        "soak: leader kills after which another replica led",
        format!(
            "{} of {}",
            kills.iter().filter(|k| k.moved).count(),
            kills.len()
        ),
        "all",
        Some(kills.iter().all(|k| k.moved)),
    );

    // Nothing acknowledged is lost, and the allow-lists converge once the traffic stops.
    let admin = checks::Admin {
        http: http.clone(),
        base: load.front.addrs[0].clone(),
        token: tenant.admin_token.clone(),
    };
    let lost = checks::lost(&admin, &pool, &last_hosts, &last_grants, &held).await?;
    report::row(
        "soak: acknowledged changes lost (hosts, grants, long-polls, events)",
        lost.len(),
        "0",
        Some(lost.is_empty()),
    );
    let in_step = checks::allow_lists_converge(&admin).await?;
    report::row(
        "soak: allow-lists equal to the registry after the traffic",
        if in_step { "yes" } else { "no" },
        "yes",
        Some(in_step),
    );

    // The series: flat after the warm-up, steps at the kills aside?
    let periods = periods(
        started.elapsed().as_secs_f64(),
        warm_up,
        SETTLE.as_secs_f64(),
        &killed,
    );
    let shown: Vec<String> = periods
        .iter()
        .map(|(from, to)| format!("{:.1}–{:.1}", from / 60.0, to / 60.0))
        .collect();
    println!(
        "trends within minutes {} (samples: {})",
        shown.join(", "),
        samples_path.display()
    );
    let verdicts = trend::judge_all(&by_replica, &database, &periods);
    let growing: Vec<&String> = verdicts
        .iter()
        .filter(|(v, _)| *v == Verdict::Growing)
        .map(|(_, l)| l)
        .collect();
    let unjudged = verdicts.iter().any(|(v, _)| *v == Verdict::TooShort);

    drop(replicas);
    pool.close().await;
    db.drop().await?;
    let passed =
        unexcused.is_empty() && lost.is_empty() && in_step && growing.is_empty() && !unjudged;
    if passed {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("the replicas' logs: {}", dir.display());
    }
    anyhow::ensure!(
        passed,
        "the soak failed: {} requests failed outside kill windows, {} changes lost, allow-lists {}, growing: {growing:?}{}",
        unexcused.len(),
        lost.len(),
        if in_step { "in step" } else { "not in step" },
        if unjudged {
            "; too short to judge every trend (run longer than the warm-up and two minutes after each kill)"
        } else {
            ""
        }
    );
    Ok(())
}
