//! An open-loop load generator in a process of its own: the benchmark writes the requests to
//! a file and starts its own executable with `--open-loop <file>`; the child sends request `i`
//! at `start + i / rate` whatever the earlier ones are doing, and counts each one's latency
//! from when it was due (so a stalled server cannot hide behind a waiting generator), and how
//! late it was itself in sending (`late_p99_ms`: part of every latency, not the server's). At
//! most [`CONNECTIONS`] requests are in flight; a request due while all are busy waits for
//! one (its wait counted in its latency), as a client with a connection pool would.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Spec {
    rate: u64,
    requests: Vec<Request>,
    /// Request `i` is counted in group `i % groups`, each with an outcome of its own.
    groups: usize,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Outcome {
    pub sent: usize,
    /// Answers other than 2xx and 3xx, and requests that got no answer.
    pub errors: usize,
    pub achieved_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// How late the generator itself handed requests over (part of their latency).
    pub late_p99_ms: f64,
}

/// Sends `requests` at `rate` per second from a child process; answers what it measured.
pub fn run(dir: &Path, rate: u64, requests: Vec<Request>) -> anyhow::Result<Outcome> {
    let mut outcomes = send(dir, rate, requests, 1)?;
    outcomes.pop().ok_or_else(|| anyhow::anyhow!("no outcome"))
}

/// Sends `a` and `b` interleaved (`a[0]`, `b[0]`, `a[1]`, …), each at `rate` per second, from
/// one child process; answers each one's outcome. The two meet the same machine, moment by
/// moment: what one costs beyond the other is not a drift between two runs.
pub fn run_paired(
    dir: &Path,
    rate: u64,
    a: Vec<Request>,
    b: Vec<Request>,
) -> anyhow::Result<(Outcome, Outcome)> {
    anyhow::ensure!(a.len() == b.len(), "paired runs need as many of each");
    let requests = a.into_iter().zip(b).flat_map(|(a, b)| [a, b]).collect();
    let mut outcomes = send(dir, rate * 2, requests, 2)?.into_iter();
    match (outcomes.next(), outcomes.next()) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => anyhow::bail!("the load generator answered fewer than two outcomes"),
    }
}

fn send(
    dir: &Path,
    rate: u64,
    requests: Vec<Request>,
    groups: usize,
) -> anyhow::Result<Vec<Outcome>> {
    let file = dir.join(format!("open-loop-{}.json", std::process::id()));
    let spec = Spec {
        rate,
        requests,
        groups,
    };
    std::fs::write(&file, serde_json::to_vec(&spec)?)?;
    let out = Command::new(std::env::current_exe()?)
        .arg("--open-loop")
        .arg(&file)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    let _ = std::fs::remove_file(&file);
    anyhow::ensure!(out.status.success(), "the load generator failed");
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The child's side: sends the file's requests and prints an [`Outcome`] per group as JSON.
pub fn generate(file: &Path) -> anyhow::Result<()> {
    let spec: Spec = serde_json::from_slice(&std::fs::read(file)?)?;
    let outcome = tokio::runtime::Runtime::new()?.block_on(send_all(spec))?;
    println!("{}", serde_json::to_string(&outcome)?);
    Ok(())
}

/// Requests in flight at most, each on a connection of its own.
pub const CONNECTIONS: usize = 64;

async fn send_all(spec: Spec) -> anyhow::Result<Vec<Outcome>> {
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(CONNECTIONS));
    // A redirect is an answer (the login relay's hops answer with them), not to be followed.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let interval = Duration::from_secs_f64(1.0 / spec.rate as f64);
    let total = spec.requests.len();
    let groups = spec.groups.max(1);
    // The pace is kept by a thread of its own sleeping with the system's fine-grained timer:
    // tokio's timer counts whole milliseconds, which would send each request up to a
    // millisecond (or two) late and charge that to the server.
    let (due_tx, mut due_rx) = tokio::sync::mpsc::unbounded_channel();
    let started = Instant::now();
    let pacer = std::thread::spawn(move || {
        for (i, r) in spec.requests.into_iter().enumerate() {
            let due = started + interval * i as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if due_tx.send((due, r)).is_err() {
                return;
            }
        }
    });
    let mut tasks = Vec::with_capacity(total);
    let mut late = Vec::with_capacity(total);
    while let Some((due, r)) = due_rx.recv().await {
        late.push(due.elapsed());
        let mut req = client.request(r.method.parse()?, &r.url);
        for (k, v) in &r.headers {
            req = req.header(k, v);
        }
        if let Some(body) = r.body {
            req = req.body(body);
        }
        let in_flight = in_flight.clone();
        tasks.push(tokio::spawn(async move {
            let _slot = in_flight.acquire_owned().await.expect("never closed");
            let ok = match req.send().await {
                Ok(res) => {
                    let ok = res.status().is_success() || res.status().is_redirection();
                    // Read the body: the answer is complete only then.
                    res.bytes().await.is_ok() && ok
                }
                Err(_) => false,
            };
            (ok, due.elapsed())
        }));
    }
    pacer
        .join()
        .map_err(|_| anyhow::anyhow!("the pacing thread panicked"))?;
    let mut latencies = vec![Vec::with_capacity(total / groups + 1); groups];
    let mut errors = vec![0; groups];
    for (i, t) in tasks.into_iter().enumerate() {
        let (ok, latency) = t.await?;
        errors[i % groups] += usize::from(!ok);
        latencies[i % groups].push(latency);
    }
    let elapsed = started.elapsed();
    late.sort();
    let late_p99_ms = super::ms(super::percentile(&late, 0.99));
    Ok(latencies
        .into_iter()
        .zip(errors)
        .map(|(mut latencies, errors)| {
            latencies.sort();
            let pct = |p: f64| super::ms(super::percentile(&latencies, p));
            Outcome {
                sent: latencies.len(),
                errors,
                achieved_per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
                p50_ms: pct(0.50),
                p99_ms: pct(0.99),
                max_ms: latencies.last().map_or(0.0, |d| super::ms(*d)),
                late_p99_ms,
            }
        })
        .collect())
}
