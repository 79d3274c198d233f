//! Grants under load, in one run on this machine (server and load generator share its cores):
//!
//! 1. the no-change poll (304 from memory, instance key) next to a minimal actix-web handler
//!    that answers 304: requests/s and p50/p99 for each, closed loop;
//! 2. a snapshot of an instance with 10,000 grants;
//! 3. 10,000 concurrent long-polls woken by one change: time until all answered, and the
//!    server's memory while they wait (the polls come from a child process, so that each
//!    process stays within its open-file limit);
//! 4. login decisions per second and p50/p99.
//!
//!     bench/run grants [--seconds 10] [--connections 64] [--long-polls 10000] [--grants 10000]

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

mod common;

use common::ms;

use actix_web::{App, HttpResponse, HttpServer, web};
use fleetgate::{
    auth::instance_key,
    domain::{Hostname, InstanceId, UserId},
    grants::{Grants, Subject},
    registry::{Actor, Registry},
    startup::Application,
};
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const ACTION_SECRET: &str = "bench-action-secret-0123456789abcdef0123";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--long-poll-client") {
        return long_poll_client().await;
    }
    let seconds = common::arg("--seconds", 10);
    let connections = common::arg("--connections", 64) as usize;
    let long_polls = common::arg("--long-polls", 10_000) as usize;
    let grants = common::arg("--grants", 10_000) as usize;

    let db = common::BenchDb::create("grants").await?;
    let vars = [
        ("DATABASE_URL", db.url.clone()),
        ("FLEETGATE_LISTEN", "127.0.0.1:0".to_owned()),
        ("AUTH0_DOMAIN", "bench.auth0.invalid".to_owned()),
        ("AUTH0_AUDIENCE", "https://fleetgate.bench/api".to_owned()),
        (
            "FLEETGATE_INSTANCE_AUDIENCE",
            "https://instances.fleetgate.bench/api".to_owned(),
        ),
        ("FLEETGATE_PLATFORM_DOMAIN", "apps.example.com".to_owned()),
        (
            "FLEETGATE_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
        ),
        ("FLEETGATE_ACTION_SECRET", ACTION_SECRET.to_owned()),
        ("FLEETGATE_DB_MAX_CONNECTIONS", "20".to_owned()),
        // The long-polls below all come from one instance.
        (
            "FLEETGATE_MAX_PARKED_POLLS_PER_CALLER",
            long_polls.max(1).to_string(),
        ),
    ];
    let settings = common::settings(&vars)?;
    let pool = PgPool::connect(&db.url).await?;
    fleetgate::startup::migrate(&pool).await?;

    // Two instances: `small` (a few grants, polled) and `big` (`grants` grants).
    let registry = Registry::new(Some(Hostname::parse("apps.example.com")?));
    let actor = Actor {
        name: "bench".into(),
        request_id: None,
    };
    let store = Grants::new(vec!["member".into(), "admin".into()], 1000);
    let mut keys = Vec::new();
    for (id, host) in [("small", "www.small.com"), ("big", "www.big.com")] {
        let mut tx = pool.begin().await?;
        let id = InstanceId::parse(id)?;
        registry
            .deploy(
                &mut tx,
                &actor,
                &id,
                &UserId::parse("auth0|owner")?,
                &[Hostname::parse(host)?],
            )
            .await?;
        keys.push(instance_key::issue(&mut tx, id.as_str(), "bench").await?);
        tx.commit().await?;
    }
    let small = InstanceId::parse("small")?;
    let big = InstanceId::parse("big")?;
    let add = |n: usize, id: InstanceId| {
        let (pool, store, actor) = (pool.clone(), store.clone(), actor.clone());
        async move {
            let mut tx = pool.begin().await?;
            let user = Subject::User(UserId::parse(&format!("auth0|user-{n}"))?);
            let (_, revision) = store.add(&mut tx, &actor, &id, &user, "member").await?;
            tx.commit().await?;
            anyhow::Ok(revision)
        }
    };
    for n in 0..3 {
        add(n, small.clone()).await?;
    }
    let setup = Instant::now();
    let mut tx = pool.begin().await?;
    for n in 0..grants {
        let user = Subject::User(UserId::parse(&format!("auth0|user-{n}"))?);
        store.add(&mut tx, &actor, &big, &user, "member").await?;
    }
    tx.commit().await?;
    println!(
        "setup: {grants} grants on one instance written in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    let app = Application::build(&settings, pool.clone())?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let stop = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(stop.clone()));
    let baseline = HttpServer::new(|| {
        App::new().route(
            "/304",
            web::get().to(|| async {
                HttpResponse::NotModified()
                    .insert_header(("etag", "\"3\""))
                    .finish()
            }),
        )
    })
    .bind("127.0.0.1:0")?;
    let baseline_url = format!("http://{}/304", baseline.addrs()[0]);
    let baseline = baseline.disable_signals().run();
    let baseline_handle = baseline.handle();
    tokio::spawn(baseline);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .build()?;
    // Ready once the memory of revisions and keys is loaded (the first 304 answers).
    let small_key = keys[0].expose_secret().to_owned();
    let poll_url = format!("{base}/v1/instances/small/grants");
    for _ in 0..100 {
        let res = client
            .get(&poll_url)
            .bearer_auth(&small_key)
            .header("if-none-match", "\"3\"")
            .send()
            .await?;
        if res.status() == 304 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    println!(
        "\n1. no-change poll vs minimal actix-web 304, {connections} connections, {seconds} s each"
    );
    // Alternating halves, so that drift in the machine's state affects both alike.
    let (mut plain, mut ours) = (Run::default(), Run::default());
    for _ in 0..2 {
        plain.absorb(
            closed_loop(connections, seconds / 2, {
                let (client, url) = (client.clone(), baseline_url.clone());
                move || {
                    let req = client.get(&url).header("if-none-match", "\"3\"");
                    async move { req.send().await.is_ok_and(|r| r.status() == 304) }
                }
            })
            .await,
        );
        ours.absorb(
            closed_loop(connections, seconds / 2, {
                let (client, url, key) = (client.clone(), poll_url.clone(), small_key.clone());
                move || {
                    let req = client
                        .get(&url)
                        .bearer_auth(&key)
                        .header("if-none-match", "\"3\"");
                    async move { req.send().await.is_ok_and(|r| r.status() == 304) }
                }
            })
            .await,
        );
    }
    plain.print("minimal actix-web 304");
    ours.print("fleetgate poll, 304");
    println!(
        "   fleetgate / minimal: {:.0}% of the throughput (target: at least 80%)",
        100.0 * ours.rate() / plain.rate()
    );

    println!("\n2. snapshot of an instance with {grants} grants");
    let big_key = keys[1].expose_secret().to_owned();
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let body = client
            .get(format!("{base}/v1/instances/big/grants"))
            .bearer_auth(&big_key)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        times.push(t.elapsed());
        bytes = body.len();
    }
    let first = times.remove(0);
    times.sort();
    println!(
        "   {bytes} bytes; first fetch (read from the database) {:.1} ms; the next 19 (the same revision, shared answer) p50 {:.1} ms",
        ms(first),
        ms(times[9]),
    );

    println!("\n3. {long_polls} concurrent long-polls (wait=60) woken by one change");
    let rss_before = common::rss_kib();
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "--long-poll-client",
            &poll_url,
            &small_key,
            &long_polls.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let sent = tokio::task::spawn_blocking(move || {
        let first = lines.next();
        (first, lines)
    })
    .await?;
    let (first, mut lines) = sent;
    anyhow::ensure!(
        first.transpose()?.as_deref() == Some("sent"),
        "the long-poll client failed"
    );
    // Let every request reach the server and park.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_parked = common::rss_kib();
    let changed_at = epoch_micros();
    add(99, small.clone()).await?;
    let answered = tokio::task::spawn_blocking(move || lines.next())
        .await?
        .transpose()?
        .unwrap_or_default();
    let _ = child.wait();
    let mut parts = answered.split_whitespace();
    let (ok, last): (usize, u128) = (
        parts.next().unwrap_or("0").parse()?,
        parts.next().unwrap_or("0").parse()?,
    );
    println!(
        "   {ok}/{long_polls} answered 200 with the change; the last {:.0} ms after the commit",
        (last.saturating_sub(changed_at)) as f64 / 1000.0
    );
    println!(
        "   server process memory: {} MiB before, {} MiB with all parked ({:.1} KiB per parked poll, client excluded)",
        rss_before / 1024,
        rss_parked / 1024,
        (rss_parked.saturating_sub(rss_before)) as f64 / long_polls as f64
    );

    println!("\n4. login decisions, {connections} connections, {seconds} s");
    let decisions = closed_loop(connections, seconds, {
        let (client, url) = (client.clone(), format!("{base}/v1/login-decisions"));
        let mut n = 0u64;
        move || {
            n += 1;
            // Owner, granted user, stranger, in turn.
            let user = match n % 3 {
                0 => "auth0|owner".to_owned(),
                1 => format!("auth0|user-{}", n % 3),
                _ => "auth0|stranger".to_owned(),
            };
            let req = client
                .post(&url)
                .bearer_auth(ACTION_SECRET)
                .json(&serde_json::json!({
                    "user_id": user, "email": null, "email_verified": false,
                    "redirect_uri": "https://www.small.com/callback", "client_id": "spa",
                }));
            async move { req.send().await.is_ok_and(|r| r.status() == 200) }
        }
    })
    .await;
    decisions.print("login decisions");

    let errors = plain.errors + ours.errors + decisions.errors + (long_polls - ok) as u64;
    baseline_handle.stop(false).await;
    stop.cancel();
    let _ = server.await;
    pool.close().await;
    db.drop().await?;
    anyhow::ensure!(errors == 0, "{errors} requests failed");
    Ok(())
}

#[derive(Default)]
struct Run {
    latencies: Vec<Duration>,
    errors: u64,
    elapsed: Duration,
}

impl Run {
    fn absorb(&mut self, other: Run) {
        self.latencies.extend(other.latencies);
        self.latencies.sort();
        self.errors += other.errors;
        self.elapsed += other.elapsed;
    }

    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&self, label: &str) {
        let pct = |p: f64| common::percentile(&self.latencies, p);
        println!(
            "   {label:<24} {:>8.0} req/s  p50 {:.2} ms  p99 {:.2} ms  errors {}",
            self.rate(),
            ms(pct(0.50)),
            ms(pct(0.99)),
            self.errors
        );
    }
}

/// `connections` loops sending one request after another for `seconds`.
async fn closed_loop<F, Fut>(connections: usize, seconds: u64, make: F) -> Run
where
    F: FnMut() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let mut make = make.clone();
            tokio::spawn(async move {
                let (mut lat, mut errors) = (Vec::new(), 0u64);
                while Instant::now() < until {
                    let t = Instant::now();
                    if !make().await {
                        errors += 1;
                    }
                    lat.push(t.elapsed());
                }
                (lat, errors)
            })
        })
        .collect();
    let mut run = Run {
        latencies: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        let (lat, errors) = t.await.expect("load task");
        run.latencies.extend(lat);
        run.errors += errors;
    }
    run.elapsed = started.elapsed();
    run.latencies.sort();
    run
}

/// The child: opens `n` long-polls, says `sent`, then `<answered 200> <epoch µs of the last>`.
async fn long_poll_client() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let at = args
        .iter()
        .position(|a| a == "--long-poll-client")
        .expect("flag");
    let (url, key, n): (String, String, usize) = (
        args[at + 1].clone(),
        args[at + 2].clone(),
        args[at + 3].parse()?,
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(90))
        .build()?;
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        if i % 500 == 499 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let req = client
            .get(format!("{url}?wait=60"))
            .bearer_auth(&key)
            .header("if-none-match", "\"3\"");
        tasks.push(tokio::spawn(async move {
            let ok = req.send().await.is_ok_and(|r| r.status() == 200);
            (ok, epoch_micros())
        }));
    }
    println!("sent");
    std::io::stdout().flush()?;
    let (mut ok, mut last) = (0usize, 0u128);
    for t in tasks {
        let (good, at) = t.await?;
        if good {
            ok += 1;
            last = last.max(at);
        }
    }
    println!("{ok} {last}");
    Ok(())
}

fn epoch_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros()
}
