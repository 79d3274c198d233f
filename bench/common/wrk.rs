//! Closed-loop throughput from `wrk` (Debian's package; `bench/run` installs it), a process of
//! its own with two threads.

use std::{path::Path, process::Command};

pub struct WrkRun {
    pub requests: u64,
    pub per_second: f64,
    /// Answers that were not 2xx or 3xx, plus socket errors.
    pub errors: u64,
}

/// `wrk -t2 -c{connections} -d{seconds}s` on `url` with `headers`, or with a Lua `script`
/// (and its arguments) that makes the requests.
pub fn run(
    url: &str,
    headers: &[(&str, &str)],
    connections: usize,
    seconds: u64,
    script: Option<(&Path, &[String])>,
) -> anyhow::Result<WrkRun> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s")]);
    for (k, v) in headers {
        cmd.args(["-H", &format!("{k}: {v}")]);
    }
    if let Some((path, _)) = script {
        cmd.arg("-s").arg(path);
    }
    cmd.arg(url);
    if let Some((_, args)) = script {
        cmd.arg("--").args(args);
    }
    let out = cmd
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run wrk (apt-get install wrk): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(out.status.success(), "wrk failed: {text}");
    let number_after = |label: &str| -> Option<f64> {
        let line = text.lines().find(|l| l.contains(label))?;
        line.split(label)
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("unreadable wrk output: {text}"))?;
    let socket_errors: u64 = text
        .lines()
        .find(|l| l.contains("Socket errors:"))
        .map(|l| {
            l.split(|c: char| !c.is_ascii_digit())
                .filter_map(|n| n.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    let non_2xx = number_after("Non-2xx or 3xx responses:").unwrap_or(0.0) as u64;
    Ok(WrkRun {
        requests,
        per_second: number_after("Requests/sec:")
            .ok_or_else(|| anyhow::anyhow!("unreadable wrk output: {text}"))?,
        errors: socket_errors + non_2xx,
    })
}
