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
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

mod common;

use common::{process, report};
use fleetgate::auth::webhook::WebhookVerifier;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;

/// The events' signing secret (the receiver's `--secret`).
const EVENTS_SECRET: &str = "whsec_c29hay1ldmVudHMtc2VjcmV0LTAxMjM0NTY3ODk=";
/// Revisions of its grant change log each instance keeps: small, so that the log reaches its
/// steady size within the warm-up and any growth after it is a leak.
const CHANGES_KEPT: usize = 20;
/// Instances whose grants change, each long-polling them.
const GRANTED: usize = 50;
/// Users in each of those instances' grants at any time.
const GRANT_WINDOW: usize = 5;
/// How long after a kill the replicas' series are left out of their trends.
const SETTLE: Duration = Duration::from_secs(120);

fn main() -> anyhow::Result<()> {
    if common::child_role()? {
        return Ok(());
    }
    tokio::runtime::Runtime::new()?.block_on(run())
}

/// The replicas, requests going to each in turn (a Service's endpoints), and when each was
/// down: from its kill until it answered `/readyz` again.
struct Front {
    addrs: Vec<String>,
    next: AtomicUsize,
    down: Mutex<Vec<(usize, Instant, Option<Instant>)>>,
}

impl Front {
    fn pick(&self) -> (usize, &str) {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.addrs.len();
        (i, &self.addrs[i])
    }

    /// Whether a request to replica `i` that failed at `at` failed because it was down (or
    /// within two seconds of its coming back: a connection pooled before the kill).
    fn excused(&self, i: usize, at: Instant) -> bool {
        let grace = Duration::from_secs(2);
        self.down.lock().unwrap().iter().any(|(r, from, until)| {
            *r == i && at >= *from && until.is_none_or(|until| at <= until + grace)
        })
    }
}

/// Every request's outcome.
#[derive(Default)]
struct Tally {
    sent: AtomicUsize,
    failures: Mutex<Vec<(usize, Instant, String)>>,
}

struct Load {
    front: Front,
    tally: Tally,
    stop: AtomicBool,
    http: reqwest::Client,
    admin: String,
    hooks_signer: WebhookVerifier,
    /// Each instance's key (`u{k}`: `keys[k]`).
    keys: Vec<String>,
    instances: usize,
}

impl Load {
    fn ok(&self) {
        self.tally.sent.fetch_add(1, Ordering::Relaxed);
    }

    fn failed(&self, replica: usize, what: String) {
        self.tally.sent.fetch_add(1, Ordering::Relaxed);
        self.tally
            .failures
            .lock()
            .unwrap()
            .push((replica, Instant::now(), what));
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

fn hosts(k: usize, generation: usize) -> Vec<String> {
    vec![
        format!("u{k}.apps.example.com"),
        format!("www.u{k}-{}.com", generation % 3),
    ]
}

fn deploy_body(k: usize, generation: usize) -> String {
    json!({"type": "instance.deployed", "data": {
        "instance_id": format!("u{k}"), "owner": "auth0|owner", "domains": hosts(k, generation)}})
    .to_string()
}

fn users(from: usize) -> Vec<String> {
    (from..from + GRANT_WINDOW)
        .map(|n| format!("auth0|user-{n}"))
        .collect()
}

/// Sends `request` (built again for each attempt) to the replicas in turn until one answers
/// with a status `done` accepts; failures are tallied.
async fn until_done(
    load: &Load,
    what: &str,
    request: impl Fn(&str) -> reqwest::RequestBuilder,
    done: impl Fn(StatusCode) -> bool,
) -> Option<reqwest::Response> {
    loop {
        let (replica, addr) = load.front.pick();
        match request(addr).send().await {
            Ok(res) if done(res.status()) => {
                load.ok();
                return Some(res);
            }
            Ok(res) => {
                let status = res.status();
                let body = res.text().await.unwrap_or_default();
                load.failed(replica, format!("{what}: {status} {body}"));
            }
            Err(e) => load.failed(replica, format!("{what}: {e}")),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Deploy hooks at `per_second`, each instance's custom domain moving among three; each sent
/// until acknowledged (a Standard Webhooks sender's retries, same id): the hosts each instance
/// was last acknowledged with, and how many deliveries were.
async fn hooks(load: Arc<Load>, per_second: u64) -> (BTreeMap<usize, Vec<String>>, usize) {
    let mut last = BTreeMap::new();
    let mut pace = pacer(per_second);
    let mut n = load.instances;
    while !load.stopping() {
        pace.tick().await;
        let (k, generation) = (n % load.instances, n / load.instances);
        let (id, body) = (format!("msg_soak_{n}"), deploy_body(k, generation));
        until_done(
            &load,
            &id,
            |addr| hook(&load.http, addr, &load.hooks_signer, &id, &body),
            |s| s == StatusCode::OK,
        )
        .await;
        last.insert(k, hosts(k, generation));
        n += 1;
    }
    (last, n - load.instances)
}

fn hook(
    http: &reqwest::Client,
    addr: &str,
    signer: &WebhookVerifier,
    id: &str,
    body: &str,
) -> reqwest::RequestBuilder {
    let ts = chrono::Utc::now().timestamp();
    let signature = signer.sign(id, ts, body.as_bytes()).expect("signs");
    http.post(format!("{addr}/v1/hooks/deploy"))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .body(body.to_owned())
}

/// Grant changes at `per_second`: the first [`GRANTED`] instances in turn get their whole set
/// replaced by a window of users one further on (one user added, one removed; a `PUT` is
/// idempotent, so it is sent until acknowledged): the users each was last acknowledged with,
/// and how many changes were.
async fn grants(load: Arc<Load>, per_second: u64) -> (BTreeMap<usize, Vec<String>>, usize) {
    let mut last = BTreeMap::new();
    let mut pace = pacer(per_second);
    let mut n = 0;
    while !load.stopping() {
        pace.tick().await;
        let (k, from) = (n % GRANTED, n / GRANTED + 1);
        let body = json!({"grants": users(from).iter().map(|u| json!({"user_id": u, "role": "member"})).collect::<Vec<_>>()});
        until_done(
            &load,
            &format!("grants of u{k}"),
            |addr| {
                load.http
                    .put(format!("{addr}/v1/instances/u{k}/grants"))
                    .bearer_auth(&load.admin)
                    .json(&body)
            },
            |s| s == StatusCode::OK,
        )
        .await;
        last.insert(k, users(from));
        n += 1;
    }
    (last, n)
}

/// Instance `u{k}` long-polling its grants (`wait` seconds, with the revision it holds), as the
/// instance kit does: the users it holds when told to stop, once it is no longer behind.
async fn long_poll(load: Arc<Load>, k: usize) -> Vec<String> {
    let (mut etag, mut held) = (String::new(), Vec::new());
    loop {
        let (replica, addr) = load.front.pick();
        let mut req = load
            .http
            .get(format!("{addr}/v1/instances/u{k}/grants?wait=10"))
            .bearer_auth(&load.keys[k]);
        if !etag.is_empty() {
            req = req.header("if-none-match", &etag);
        }
        match req.send().await {
            Ok(res) if res.status() == StatusCode::OK => {
                let tag = res.headers()["etag"]
                    .to_str()
                    .unwrap_or_default()
                    .to_owned();
                match res.json::<Value>().await {
                    Ok(body) => {
                        load.ok();
                        etag = tag;
                        held = user_ids(&body);
                    }
                    Err(e) => load.failed(replica, format!("long-poll of u{k}: {e}")),
                }
            }
            Ok(res) if res.status() == StatusCode::NOT_MODIFIED => {
                load.ok();
                if load.stopping() {
                    return held;
                }
            }
            Ok(res) => {
                let status = res.status();
                load.failed(replica, format!("long-poll of u{k}: {status}"));
            }
            Err(e) => load.failed(replica, format!("long-poll of u{k}: {e}")),
        }
    }
}

fn user_ids(snapshot: &Value) -> Vec<String> {
    let mut users: Vec<String> = snapshot["grants"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|g| g["user_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    users.sort();
    users
}

/// Requests at `per_second`, each made by `request(n, addr)` once (not retried) and expected
/// to be answered with a status `ok` accepts: how many were.
async fn steady(
    load: Arc<Load>,
    what: &'static str,
    per_second: u64,
    request: impl Fn(&Load, usize, &str) -> reqwest::RequestBuilder,
    ok: impl Fn(StatusCode) -> bool,
) -> usize {
    let (mut pace, mut n, mut answered) = (pacer(per_second), 0, 0);
    while !load.stopping() {
        pace.tick().await;
        let (replica, addr) = load.front.pick();
        match request(&load, n, addr).send().await {
            Ok(res) if ok(res.status()) => {
                let _ = res.bytes().await;
                load.ok();
                answered += 1;
            }
            Ok(res) => load.failed(replica, format!("{what}: {}", res.status())),
            Err(e) => load.failed(replica, format!("{what}: {e}")),
        }
        n += 1;
    }
    answered
}

/// An interval of `per_second` ticks that does not burst to catch up.
fn pacer(per_second: u64) -> tokio::time::Interval {
    let mut pace = tokio::time::interval(Duration::from_secs_f64(1.0 / per_second as f64));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    pace
}

/// One replica: its process (None while it is down), and how many times it has started.
struct Replica {
    server: Option<process::Server>,
    lives: usize,
    port: u16,
}

async fn start(
    vars: &[(&'static str, String)],
    port: u16,
    dir: &Path,
) -> anyhow::Result<process::Server> {
    let mut vars = vars.to_vec();
    vars.push(("FLEETGATE_LISTEN", format!("127.0.0.1:{port}")));
    let (server, _) = process::fleetgate(&vars, dir).await?;
    Ok(server)
}

/// Which replica leads the reconciler now (its `fleetgate_reconcile_leader` is 1), if one does.
async fn leader(http: &reqwest::Client, replicas: &[Replica]) -> Option<usize> {
    for (i, r) in replicas.iter().enumerate() {
        let Some(server) = &r.server else { continue };
        if let Some(v) = metric(http, &server.base, "fleetgate_reconcile_leader").await
            && v == 1.0
        {
            return Some(i);
        }
    }
    None
}

/// A metric without labels, as the replica at `base` shows it.
async fn metric(http: &reqwest::Client, base: &str, name: &str) -> Option<f64> {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// One sample's columns, in order (`r{i}_…` per replica).
const REPLICA_SERIES: [&str; 5] = ["rss_mib", "open_files", "sockets", "threads", "parked"];
const DATABASE_SERIES: [&str; 6] = [
    "db_connections",
    "grant_changes",
    "events_pending",
    "events",
    "webhook_deliveries",
    "audit_log",
];

/// What one replica's process holds now.
async fn replica_sample(http: &reqwest::Client, server: &process::Server) -> [f64; 5] {
    let pid = server.child.id();
    let fds: Vec<PathBuf> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    let sockets = fds
        .iter()
        .filter(|p| std::fs::read_link(p).is_ok_and(|t| t.to_string_lossy().starts_with("socket:")))
        .count();
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map_or(0, |d| d.count());
    let parked = metric(http, &server.base, "fleetgate_grants_parked_polls")
        .await
        .unwrap_or(f64::NAN);
    [
        server.rss_kib() as f64 / 1024.0,
        fds.len() as f64,
        sockets as f64,
        threads as f64,
        parked,
    ]
}

async fn database_sample(pool: &PgPool) -> anyhow::Result<[f64; 6]> {
    // The bench's own connections (this pool) are not counted.
    let row: (i64, i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                   AND pid <> ALL(SELECT pid FROM pg_stat_activity WHERE application_name = 'fleetgate-soak')), \
                (SELECT count(*) FROM grant_changes), \
                (SELECT count(*) FROM events WHERE status = 'pending'), \
                (SELECT count(*) FROM events), \
                (SELECT count(*) FROM webhook_deliveries), \
                (SELECT count(*) FROM audit_log)",
    )
    .fetch_one(pool)
    .await?;
    Ok([
        row.0 as f64,
        row.1 as f64,
        row.2 as f64,
        row.3 as f64,
        row.4 as f64,
        row.5 as f64,
    ])
}

/// Samples of one series: (seconds since the start, value).
type Series = Vec<(f64, f64)>;

/// The stretches of the run a trend is judged in: from `warm_up` after the start, and from
/// `settle` after each kill, to the next kill or the `end`. A kill moves work between the
/// replicas (the leader's passes, the events' deliveries, half the clients' connections): a
/// step in their memory and sockets, not a trend.
fn periods(end: f64, warm_up: f64, settle: f64, kills: &[f64]) -> Vec<(f64, f64)> {
    let mut starts = vec![warm_up];
    starts.extend(kills.iter().map(|k| k + settle));
    let mut ends: Vec<f64> = kills.to_vec();
    ends.push(end);
    starts
        .into_iter()
        .zip(ends)
        .filter(|(from, to)| to > from)
        .collect()
}

/// The trend of `points` within `periods`: the least-squares slope they share, each period at
/// its own level (per second), the seconds the periods' samples span, and the mean.
fn trend(points: &[(f64, f64)], periods: &[(f64, f64)]) -> (f64, f64, f64) {
    let (mut sxy, mut sxx, mut span, mut sum, mut n) = (0.0, 0.0, 0.0, 0.0, 0);
    for (from, to) in periods {
        let inside: Vec<(f64, f64)> = points
            .iter()
            .copied()
            .filter(|(t, v)| t >= from && t <= to && !v.is_nan())
            .collect();
        if inside.len() < 2 {
            continue;
        }
        let count = inside.len() as f64;
        let mx = inside.iter().map(|p| p.0).sum::<f64>() / count;
        let my = inside.iter().map(|p| p.1).sum::<f64>() / count;
        for (x, y) in &inside {
            sxy += (x - mx) * (y - my);
            sxx += (x - mx) * (x - mx);
        }
        span += inside[inside.len() - 1].0 - inside[0].0;
        sum += my * count;
        n += inside.len();
    }
    let slope = if sxx == 0.0 { 0.0 } else { sxy / sxx };
    (slope, span, if n == 0 { 0.0 } else { sum / n as f64 })
}

/// How much a series may rise over the measured window and still be flat: `relative` of its
/// mean, or `absolute`, whichever is larger.
struct Flat {
    unit: &'static str,
    relative: f64,
    absolute: f64,
}

fn flat_rule(series: &str) -> Option<Flat> {
    let (unit, relative, absolute) = match series {
        "rss_mib" => ("MiB", 0.05, 4.0),
        "open_files" | "sockets" => ("", 0.05, 8.0),
        "threads" => ("", 0.0, 2.0),
        "parked" => ("", 0.10, 10.0),
        "db_connections" => ("", 0.10, 4.0),
        "grant_changes" => ("rows", 0.05, 100.0),
        "events_pending" => ("", 0.0, 50.0),
        // Kept for days by design (the audit log for good): these grow with the traffic.
        _ => return None,
    };
    Some(Flat {
        unit,
        relative,
        absolute,
    })
}

/// What the trend of a series says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Flat,
    Growing,
    /// It grows with the traffic by design (kept for days, or for good).
    ByDesign,
    /// Its samples within the periods span less than a minute: the run was too short.
    TooShort,
}

/// Judges one series: prints its trend within `periods`.
fn judge(label: &str, series: &str, points: &[(f64, f64)], periods: &[(f64, f64)]) -> Verdict {
    let (per_second, span, mean) = trend(points, periods);
    let per_hour = per_second * 3600.0;
    let minutes = span / 60.0;
    let Some(rule) = flat_rule(series) else {
        println!(
            "   {label}: {per_hour:+.0}/h over {minutes:.0} min (grows with the traffic by design; mean {mean:.0})"
        );
        return Verdict::ByDesign;
    };
    if span < 60.0 {
        println!("   {label}: samples over {minutes:.1} min only, not judged");
        return Verdict::TooShort;
    }
    let rise = per_second * span;
    let allowed = (rule.relative * mean).max(rule.absolute);
    let flat = rise <= allowed;
    println!(
        "   {label}: {per_hour:+.2} {}/h over {minutes:.1} min, rise {rise:+.1} (allowed {allowed:.1}; mean {mean:.1}): {}",
        rule.unit,
        if flat { "flat" } else { "GROWING" }
    );
    report::row(
        &format!("soak: {label}, trend after warm-up"),
        format!("{per_hour:+.2} {}/h (mean {mean:.1})", rule.unit),
        &format!("flat (rise <= {allowed:.1} over {minutes:.0} min)"),
        Some(flat),
    );
    if flat {
        Verdict::Flat
    } else {
        Verdict::Growing
    }
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
        let answer: Value = hook(
            &http,
            base,
            &signer,
            &format!("msg_seed_{k}"),
            &deploy_body(k, 0),
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
            let Some(victim) = leader(&http, &replicas).await else {
                println!("   {:.0} s: no replica leads; no kill this time", t);
                continue;
            };
            let killed_at = Instant::now();
            killed.push((killed_at - started).as_secs_f64());
            load.front
                .down
                .lock()
                .unwrap()
                .push((victim, killed_at, None));
            let mut server = replicas[victim].server.take().expect("the leader runs");
            let _ = server.child.kill();
            let _ = server.child.wait();
            if let Some(log) = server.log.take() {
                std::fs::rename(
                    &log,
                    log.with_extension(format!("life{}.log", replicas[victim].lives)),
                )?;
            }
            drop(server);
            // A process manager's restart delay.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let server = start(&vars, replicas[victim].port, &dir).await?;
            let back = Instant::now();
            if let Some(window) = load.front.down.lock().unwrap().last_mut() {
                window.2 = Some(back);
            }
            replicas[victim].server = Some(server);
            replicas[victim].lives += 1;
            let mut moved = None;
            for _ in 0..300 {
                if let Some(l) = leader(&http, &replicas).await {
                    moved = Some((l, killed_at.elapsed()));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let line = format!(
                "{t:.0} s: killed the leader, replica {victim}; it was serving again after {:.1} s; {}",
                (back - killed_at).as_secs_f64(),
                match moved {
                    Some((l, after)) => format!(
                        "replica {l} leads ({:.1} s after the kill)",
                        after.as_secs_f64()
                    ),
                    None => "no replica leads 30 s on".to_owned(),
                }
            );
            println!("   {line}");
            kills.push((line, moved.is_some()));
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
            kills.iter().filter(|(_, moved)| *moved).count(),
            kills.len()
        ),
        "all",
        Some(kills.iter().all(|(_, moved)| *moved)),
    );

    // Nothing acknowledged is lost.
    let base = load.front.addrs[0].clone();
    let admin_get = |path: String| {
        let req = http
            .get(format!("{base}{path}"))
            .bearer_auth(&tenant.admin_token);
        async move {
            anyhow::Ok(
                req.send()
                    .await?
                    .error_for_status()?
                    .json::<Value>()
                    .await?,
            )
        }
    };
    let mut lost = Vec::new();
    for (k, want) in &last_hosts {
        let instance = admin_get(format!("/v1/instances/u{k}")).await?;
        let mut have: Vec<String> = instance["domains"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(|d| d["hostname"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        have.sort();
        let mut want = want.clone();
        want.sort();
        if have != want {
            lost.push(format!("u{k}: hosts {have:?}, last acknowledged {want:?}"));
        }
    }
    for (k, want) in &last_grants {
        let have = user_ids(&admin_get(format!("/v1/instances/u{k}/grants")).await?);
        let mut want = want.clone();
        want.sort();
        if have != want {
            lost.push(format!("u{k}: grants {have:?}, last acknowledged {want:?}"));
        }
        if held[*k] != want {
            lost.push(format!(
                "u{k}'s long-poll ended holding {:?}, not {want:?}",
                held[*k]
            ));
        }
    }
    // Every event delivered (bounded: the deliverer may be retrying one a kill interrupted).
    let mut pending = i64::MAX;
    for _ in 0..120 {
        pending = sqlx::query_scalar("SELECT count(*) FROM events WHERE status <> 'delivered'")
            .fetch_one(&pool)
            .await?;
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await?;
    if pending > 0 {
        lost.push(format!(
            "{pending} of {events} events not delivered 60 s after the traffic"
        ));
    }
    println!(
        "checked: {} instances' hosts, {} instances' grants and their long-polls, {events} events",
        last_hosts.len(),
        last_grants.len()
    );
    for l in &lost {
        println!("   LOST: {l}");
    }
    report::row(
        "soak: acknowledged changes lost (hosts, grants, long-polls, events)",
        lost.len(),
        "0",
        Some(lost.is_empty()),
    );

    // The allow-lists converge to the registry once the traffic stops.
    let (converged, stopped_at) = (Instant::now(), chrono::Utc::now());
    let mut unsynced = Value::Null;
    let mut in_step = false;
    while converged.elapsed() < Duration::from_secs(120) {
        let status = admin_get("/v1/reconcile/status".into()).await?;
        let run = &status["last_run"];
        let after_stop = run["started_at"]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .is_some_and(|s| s > stopped_at);
        unsynced = status["unsynced_total"].clone();
        if after_stop
            && (run["outcome"] == "applied" || run["outcome"] == "unchanged")
            && unsynced == 0
        {
            in_step = true;
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!(
        "allow-lists: {} ({:.1} s after the traffic stopped; out of step: {unsynced})",
        if in_step {
            "equal to the registry"
        } else {
            "NOT in step"
        },
        converged.elapsed().as_secs_f64()
    );
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
    let mut verdicts = Vec::new();
    for (replica, series) in by_replica.iter().enumerate() {
        for (s, points) in series.iter().enumerate() {
            let label = format!("replica {replica} {}", REPLICA_SERIES[s]);
            verdicts.push((judge(&label, REPLICA_SERIES[s], points, &periods), label));
        }
    }
    for (s, points) in database.iter().enumerate() {
        let label = format!("database {}", DATABASE_SERIES[s]);
        verdicts.push((judge(&label, DATABASE_SERIES[s], points, &periods), label));
    }
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
