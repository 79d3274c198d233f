//! Grants under load, fleetgate and the reference server each a process of their own, the
//! load from other processes (`wrk`, the open-loop generator, the long-poll client):
//!
//! 1. the no-change poll (304 from memory, instance key, default settings and log level) next
//!    to the reference, a bare actix-web handler answering 304 on the same route: `wrk`
//!    rounds alternating the two, median ratio; bytes of log per 10,000 polls;
//! 2. replacing an instance's grants with 10,000 in one `PUT`, then with another 10,000;
//! 3. a snapshot of that instance;
//! 4. 10,000 concurrent long-polls woken by one change: time until all are answered after the
//!    commit, and the server's memory per parked poll;
//! 5. login decisions, open loop;
//! 6. login decisions next to no-change polls of the same server: `wrk` rounds alternating the
//!    two, median ratio.
//!
//! ```text
//! bench/run grants [--seconds 5] [--rounds 5] [--connections 64] [--long-polls 10000]
//!                  [--grants 10000] [--decisions 5000]
//! ```

use std::{
    io::{BufRead, BufReader, Write},
    process::{Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

mod common;

use common::{open_loop, process, report, wrk};
use fleetgate::{
    domain::{Actor, InstanceId, UserId},
    grants::{Grants, Subject},
};
use secrecy::ExposeSecret;
use serde_json::json;
use sqlx::PgPool;

fn main() -> anyhow::Result<()> {
    if common::child_role()? {
        return Ok(());
    }
    tokio::runtime::Runtime::new()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--long-poll-client") {
        return long_poll_client().await;
    }
    let seconds = common::arg("--seconds", 5);
    let rounds = common::arg("--rounds", 5);
    let connections = common::arg("--connections", 64) as usize;
    let long_polls = common::arg("--long-polls", 10_000) as usize;
    let grants = common::arg("--grants", 10_000) as usize;
    let decisions = common::arg("--decisions", 5_000);

    let db = common::BenchDb::create("grants").await?;
    let dir = common::scratch("grants")?;
    let pool = PgPool::connect(&db.url).await?;
    common::migrate(&pool).await?;

    // Two instances: `small` (three grants, polled) and `big` (given `grants` grants by PUT).
    let keys = [
        common::polled_instance(&pool, "small", "www.small.com", 3).await?,
        common::polled_instance(&pool, "big", "www.big.com", 0).await?,
    ];
    let actor = Actor {
        name: "bench".into(),
        request_id: None,
    };
    let store = Grants::new(vec!["member".into(), "admin".into()], 1000);
    let small = InstanceId::parse("small")?;
    let add = |n: usize| {
        let (pool, store, actor, small) =
            (pool.clone(), store.clone(), actor.clone(), small.clone());
        async move {
            let mut tx = pool.begin().await?;
            let user = Subject::User(UserId::parse(&format!("auth0|user-{n}"))?);
            let (_, revision) = store.add(&mut tx, &actor, &small, &user, "member").await?;
            tx.commit().await?;
            anyhow::Ok(revision)
        }
    };

    let tenant = common::Tenant::start().await?;
    let mut vars = common::fleetgate_vars(&db.url, &tenant);
    // The long-polls below all come from one instance.
    vars.push((
        "FLEETGATE_MAX_PARKED_POLLS_PER_CALLER",
        long_polls.max(1).to_string(),
    ));
    let (server, _) = process::fleetgate(&vars, &dir).await?;
    let reference = process::reference().await?;
    let base = server.base.clone();
    let small_key = keys[0].expose_secret().to_owned();
    let poll_path = "/v1/instances/small/grants";
    let auth = format!("Bearer {small_key}");
    let poll_headers = [("Authorization", auth.as_str()), ("If-None-Match", "\"3\"")];

    println!(
        "1. no-change poll: fleetgate next to the bare actix-web 304, wrk -t2 -c{connections} -d{seconds}s, {rounds} rounds alternating"
    );
    let (mut ratios, mut log_per_10k) = (Vec::new(), Vec::new());
    let mut errors = 0;
    for round in 1..=rounds {
        let bare = wrk::run(
            &format!("{}{poll_path}", reference.base),
            &poll_headers,
            connections,
            seconds,
            None,
        )?;
        let logged = server.log_bytes();
        let ours = wrk::run(
            &format!("{base}{poll_path}"),
            &poll_headers,
            connections,
            seconds,
            None,
        )?;
        let bytes = server.log_bytes() - logged;
        errors += bare.errors + ours.errors;
        let ratio = ours.per_second / bare.per_second;
        println!(
            "   round {round}: bare {:.0}/s, fleetgate {:.0}/s: {ratio:.2}x; {bytes} bytes of log for {} polls",
            bare.per_second, ours.per_second, ours.requests
        );
        ratios.push(ratio);
        log_per_10k.push(bytes as f64 * 10_000.0 / ours.requests as f64);
    }
    let ratio = report::median(ratios);
    report::row(
        "304 poll / bare actix-web 304 (median)",
        format!("{ratio:.2}x"),
        ">= 0.90x",
        Some(ratio >= 0.9),
    );
    let logged = report::median(log_per_10k);
    report::row(
        "log bytes per 10,000 polls (default level)",
        format!("{logged:.0}"),
        "0",
        Some(logged == 0.0),
    );

    let client = reqwest::Client::new();
    println!("\n2. one PUT of {grants} grants on instance big");
    for (label, offset) in [("adding", 0), ("replacing half", grants / 2)] {
        let body = json!({ "grants": (offset..offset + grants).map(|n| json!({
            "user_id": format!("auth0|user-{n}"),
            "role": if n % 10 == 0 { "admin" } else { "member" },
        })).collect::<Vec<_>>() });
        let t = Instant::now();
        let res = client
            .put(format!("{base}/v1/instances/big/grants"))
            .bearer_auth(&tenant.admin_token)
            .json(&body)
            .send()
            .await?;
        let took = t.elapsed();
        let status = res.status();
        let answer: serde_json::Value = res.json().await.unwrap_or_default();
        println!(
            "   {label}: {status} in {:.0} ms: {answer}",
            common::ms(took)
        );
        if !status.is_success() {
            errors += 1;
        }
        report::row(
            &format!("PUT {grants} grants, {label}"),
            format!("{:.2} s", took.as_secs_f64()),
            "<= 2 s",
            Some(status.is_success() && took <= Duration::from_secs(2)),
        );
    }

    println!("\n3. snapshot of an instance with {grants} grants");
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
        common::ms(first),
        common::ms(times[9]),
    );
    report::row(
        &format!("snapshot of {grants} grants, first fetch"),
        format!("{:.0} ms", common::ms(first)),
        "",
        None,
    );

    println!("\n4. {long_polls} concurrent long-polls (wait=60) woken by one change");
    let metrics_url = format!("{base}/metrics");
    let ours = park_and_wake(
        &format!("{base}{poll_path}"),
        &small_key,
        long_polls,
        || server.rss_kib(),
        || server.cpu_seconds(),
        async || {
            let metrics = client.get(&metrics_url).send().await?.text().await?;
            Ok(metrics
                .lines()
                .find(|l| l.starts_with("fleetgate_grants_parked_polls "))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0) as usize)
        },
        async || add(99).await.map(drop),
    )
    .await?;
    ours.print("fleetgate", long_polls);
    let bare = park_and_wake(
        &format!("{}/park/small/grants", reference.base),
        &small_key,
        long_polls,
        || reference.rss_kib(),
        || reference.cpu_seconds(),
        async || {
            Ok(client
                .get(format!("{}/parked", reference.base))
                .send()
                .await?
                .text()
                .await?
                .parse()?)
        },
        async || {
            client
                .post(format!("{}/wake", reference.base))
                .send()
                .await?;
            Ok(())
        },
    )
    .await?;
    bare.print("bare actix-web, held on one Notify", long_polls);
    drop(reference);
    errors += (long_polls - ours.ok) as u64;
    report::row(
        &format!(
            "{long_polls} parked polls: all answered after the commit (bare actix-web after the wake)"
        ),
        format!("{:.2} s ({:.2} s)", ours.after, bare.after),
        "<= 0.5 s",
        Some(ours.ok == long_polls && ours.after <= 0.5),
    );
    report::row(
        "server memory per parked poll (bare actix-web per held request)",
        format!(
            "{:.1} KiB ({:.1} KiB)",
            ours.per_poll_kib, bare.per_poll_kib
        ),
        "<= 10 KiB",
        Some(ours.per_poll_kib <= 10.0),
    );

    println!("\n5. login decisions, open loop at {decisions}/s for 10 s");
    let requests = (0..decisions * 10)
        .map(|n| {
            // Owner, granted user, stranger, in turn.
            let user = match n % 3 {
                0 => "auth0|owner".to_owned(),
                1 => format!("auth0|user-{}", n % 3),
                _ => "auth0|stranger".to_owned(),
            };
            open_loop::Request {
                method: "POST".into(),
                url: format!("{base}/v1/login-decisions"),
                headers: vec![
                    (
                        "authorization".into(),
                        format!("Bearer {}", common::ACTION_SECRET),
                    ),
                    ("content-type".into(), "application/json".into()),
                ],
                body: Some(
                    json!({
                        "user_id": user, "email": null, "email_verified": false,
                        "redirect_uri": "https://www.small.com/callback", "client_id": "spa",
                    })
                    .to_string(),
                ),
            }
        })
        .collect();
    let out = open_loop::run(&dir, decisions, requests)?;
    println!("   {out:?}");
    errors += out.errors as u64;
    // The rate is counted until the last answer, so a server that keeps up falls short of
    // the offered rate by the last answer's latency: within 1 % counts as keeping up.
    report::row(
        &format!("login decisions answered, {decisions}/s offered"),
        format!("{:.0}/s, {} errors", out.achieved_per_second, out.errors),
        ">= 5000/s, none failed",
        Some(
            decisions >= 5000
                && out.errors == 0
                && out.achieved_per_second >= 0.99 * decisions as f64,
        ),
    );
    report::row(
        "login decisions, p99",
        format!("{:.1} ms", out.p99_ms),
        "<= 5 ms",
        Some(out.p99_ms <= 5.0),
    );

    println!(
        "\n6. login decisions next to no-change polls of the same server: wrk -t2 -c{connections} -d{seconds}s, 3 rounds alternating"
    );
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/decision.lua");
    let script_args = [
        common::ACTION_SECRET.to_owned(),
        "https://www.small.com/callback".to_owned(),
        "auth0|user-1".to_owned(),
    ];
    let mut ratios = Vec::new();
    for round in 1..=3 {
        let polls = wrk::run(
            &format!("{base}{poll_path}"),
            &poll_headers,
            connections,
            seconds,
            None,
        )?;
        let decided = wrk::run(
            &base,
            &[],
            connections,
            seconds,
            Some((&script, &script_args)),
        )?;
        errors += polls.errors + decided.errors;
        let ratio = decided.per_second / polls.per_second;
        println!(
            "   round {round}: polls {:.0}/s, decisions {:.0}/s: {ratio:.2}",
            polls.per_second, decided.per_second
        );
        ratios.push(ratio);
    }
    let ratio = report::median(ratios);
    report::row(
        "login decisions/s over no-change polls/s, same server (median of 3)",
        format!("{ratio:.2}"),
        ">= 0.5",
        Some(ratio >= 0.5),
    );

    drop(server);
    pool.close().await;
    db.drop().await?;
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(errors == 0, "{errors} requests failed");
    Ok(())
}

/// What holding `n` long-polls and answering them at once measured.
struct Held {
    ok: usize,
    /// Seconds from the change until the client had the last answer.
    after: f64,
    per_poll_kib: f64,
    /// Processor time from the change until the last answer, seconds: the server's and the
    /// client's (they share the machine's two cores).
    server_cpu: f64,
    client_cpu: f64,
}

impl Held {
    fn print(&self, label: &str, n: usize) {
        println!(
            "   {label}: {}/{n} answered 200, the last {:.0} ms after the change; {:.1} KiB of server memory per held request; processor time meanwhile: server {:.2} s, client {:.2} s",
            self.ok,
            self.after * 1000.0,
            self.per_poll_kib,
            self.server_cpu,
            self.client_cpu,
        );
    }
}

/// Opens `n` long-polls on `url` from a child process, waits until `parked` counts them all,
/// makes the change with `change`, and waits for the answers.
async fn park_and_wake(
    url: &str,
    key: &str,
    n: usize,
    rss_kib: impl Fn() -> u64,
    cpu_seconds: impl Fn() -> f64,
    parked: impl AsyncFn() -> anyhow::Result<usize>,
    change: impl AsyncFn() -> anyhow::Result<()>,
) -> anyhow::Result<Held> {
    let rss_before = rss_kib();
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--long-poll-client", url, key, &n.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let (first, mut lines) = tokio::task::spawn_blocking(move || (lines.next(), lines)).await?;
    anyhow::ensure!(
        first.transpose()?.as_deref() == Some("sent"),
        "the long-poll client failed"
    );
    for _ in 0..300 {
        if parked().await? >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rss_parked = rss_kib();
    let (server_before, client_before) = (cpu_seconds(), process::cpu_seconds_of(child.id()));
    let changed_at = epoch_micros();
    change().await?;
    let answered = tokio::task::spawn_blocking(move || lines.next())
        .await?
        .transpose()?
        .unwrap_or_default();
    // Its last line is written: read before it is waited for (its own count ends there).
    let (server_cpu, client_cpu) = (
        cpu_seconds() - server_before,
        process::cpu_seconds_of(child.id()) - client_before,
    );
    let _ = child.wait();
    let mut parts = answered.split_whitespace();
    let (ok, last): (usize, u128) = (
        parts.next().unwrap_or("0").parse()?,
        parts.next().unwrap_or("0").parse()?,
    );
    Ok(Held {
        ok,
        after: last.saturating_sub(changed_at) as f64 / 1e6,
        per_poll_kib: rss_parked.saturating_sub(rss_before) as f64 / n as f64,
        server_cpu,
        client_cpu,
    })
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
    // Each poll on a connection of its own, kept open once answered, as an instance keeps its
    // connection to poll again: closing 10,000 connections is not part of answering them.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(n)
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
