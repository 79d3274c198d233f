//! The no-change poll's cost in instructions, not seconds: fleetgate (the real binary, default
//! settings) and the bare actix-web reference each run by valgrind's cachegrind, which counts
//! every instruction the server executes in user space. Each server is run twice, answering
//! `--polls` and then twice as many 304 polls (keep-alive, `--connections` at once, from this
//! process); the difference between the two runs is the cost of `--polls` polls alone, start-up
//! and connection set-up cancelling out. Unlike the `wrk` ratio (`bench/run grants`) this does
//! not move with what else the machine is doing, so a change of 1 % shows; it does not see the
//! kernel's share (the same reads and writes for both servers), so its ratio is not the
//! throughput ratio. Prints the two figures, their ratio, and where fleetgate's instructions
//! go (cachegrind's functions by cost).
//!
//! ```text
//! bench/run poll_cost [--polls 4000] [--connections 8] [--functions 25]
//! ```

use std::{path::Path, process::Command};

mod common;

use common::{process, report};
use secrecy::ExposeSecret;
use sqlx::PgPool;

fn main() -> anyhow::Result<()> {
    if common::child_role()? {
        return Ok(());
    }
    tokio::runtime::Runtime::new()?.block_on(run())
}

const POLL_PATH: &str = "/v1/instances/small/grants";

async fn run() -> anyhow::Result<()> {
    let polls = common::arg("--polls", 4_000) as usize;
    let connections = common::arg("--connections", 8) as usize;
    let functions = common::arg("--functions", 25) as usize;

    let db = common::BenchDb::create("pollcost").await?;
    let dir = common::scratch("pollcost")?;
    let pool = PgPool::connect(&db.url).await?;
    common::migrate(&pool).await?;
    let key = common::polled_instance(&pool, "small", "www.small.com", 3).await?;
    let key = key.expose_secret().to_owned();
    let tenant = common::Tenant::start().await?;
    let vars = common::fleetgate_vars(&db.url, &tenant);

    println!(
        "instructions per no-change poll, counted by cachegrind: {polls} and {} polls on {connections} keep-alive connections per run",
        2 * polls
    );
    let (mut per_poll, mut diffs) = (Vec::new(), Vec::new());
    for server in ["bare actix-web", "fleetgate"] {
        let mut outs = Vec::new();
        for n in [polls, 2 * polls] {
            let out = dir.join(format!("{}-{n}.cg", server.replace(' ', "-")));
            let prefix = cachegrind(&out);
            let running = match server {
                "fleetgate" => process::fleetgate_under(&prefix, &vars, &dir).await?.0,
                _ => process::reference_under(&prefix).await?,
            };
            poll(
                &format!("{}{POLL_PATH}", running.base),
                &key,
                n,
                connections,
            )
            .await?;
            running.stop()?;
            outs.push(out);
        }
        let cost = (total(&outs[1])? - total(&outs[0])?) as f64 / polls as f64;
        println!("   {server}: {cost:.0} instructions per poll");
        per_poll.push(cost);
        let diff = dir.join(format!("{}.cgdiff", server.replace(' ', "-")));
        cg_diff(&outs[0], &outs[1], &diff)?;
        println!(
            "   where its instructions go, per poll (self cost of the functions that cost most):"
        );
        for line in hot_functions(&diff, functions, polls)? {
            println!("      {line}");
        }
        diffs.push(diff);
    }
    let extra = dir.join("extra.cgdiff");
    cg_diff(&diffs[0], &diffs[1], &extra)?;
    println!(
        "   what fleetgate executes beyond the reference, per poll (by function, fleetgate minus bare):"
    );
    for line in hot_functions(&extra, functions, polls)? {
        println!("      {line}");
    }
    let (bare, ours) = (per_poll[0], per_poll[1]);
    report::row(
        "instructions per 304 poll, user space (bare actix-web)",
        format!("{ours:.0} ({bare:.0}): {:.2}x", ours / bare),
        "",
        None,
    );

    pool.close().await;
    db.drop().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// valgrind running a server under cachegrind (instruction counts only) into `out`.
fn cachegrind(out: &Path) -> Vec<String> {
    [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--quiet",
        &format!("--cachegrind-out-file={}", out.display()),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Sends `n` no-change polls from `connections` keep-alive connections; every one must be a 304.
async fn poll(url: &str, key: &str, n: usize, connections: usize) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let (client, url, key) = (client.clone(), url.to_owned(), key.to_owned());
            let share = n / connections + usize::from(c < n % connections);
            tokio::spawn(async move {
                for _ in 0..share {
                    let res = client
                        .get(&url)
                        .bearer_auth(&key)
                        .header("if-none-match", "\"3\"")
                        .send()
                        .await?;
                    anyhow::ensure!(res.status() == 304, "a poll answered {}", res.status());
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// The instruction count cachegrind wrote to `out`.
fn total(out: &Path) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(out)?;
    text.lines()
        .find_map(|l| l.strip_prefix("summary:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no summary in {}", out.display()))
}

/// What cachegrind counted in run `b` beyond run `a`, by function, written to `diff`
/// (function names without their hash, so two programs' runs compare too).
fn cg_diff(a: &Path, b: &Path, diff: &Path) -> anyhow::Result<()> {
    let out = Command::new("cg_diff")
        .arg("--mod-funcname=s/::h[0-9a-f]{16}$//")
        .args([a, b])
        .output()?;
    anyhow::ensure!(out.status.success(), "cg_diff failed");
    std::fs::write(diff, &out.stdout)?;
    Ok(())
}

/// The `limit` functions of `diff` that cost the most, per poll.
fn hot_functions(diff: &Path, limit: usize, polls: usize) -> anyhow::Result<Vec<String>> {
    let out = Command::new("cg_annotate")
        .args(["--auto=no", "--threshold=0"])
        .arg(diff)
        .output()?;
    anyhow::ensure!(out.status.success(), "cg_annotate failed");
    let text = String::from_utf8_lossy(&out.stdout);
    // After the column header, the totals, then "  1,234 (12.34%)  file:function" lines.
    Ok(text
        .lines()
        .filter_map(|l| {
            let (count, name) = l.trim().split_once(' ')?;
            let count: f64 = count.replace(',', "").parse().ok()?;
            let name = name.trim_start();
            let name = name.split_once(")  ").map_or(name, |(_, n)| n);
            Some(format!("{:>8.0}  {name}", count / polls as f64))
        })
        .skip(1)
        .take(limit)
        .collect())
}
