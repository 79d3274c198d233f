//! The replicas as processes: started (again, after a kill) on their own port, which one
//! leads, and what each holds now.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use sqlx::PgPool;

use crate::{common::process, traffic::Front};

/// One replica: its process (None while it is down), and how many times it has started.
pub(crate) struct Replica {
    pub(crate) server: Option<process::Server>,
    pub(crate) lives: usize,
    pub(crate) port: u16,
}

pub(crate) async fn start(
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
pub(crate) async fn leader(http: &reqwest::Client, replicas: &[Replica]) -> Option<usize> {
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
pub(crate) async fn metric(http: &reqwest::Client, base: &str, name: &str) -> Option<f64> {
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
pub(crate) const REPLICA_SERIES: [&str; 5] =
    ["rss_mib", "open_files", "sockets", "threads", "parked"];
pub(crate) const DATABASE_SERIES: [&str; 6] = [
    "db_connections",
    "grant_changes",
    "events_pending",
    "events",
    "webhook_deliveries",
    "audit_log",
];

/// What one replica's process holds now.
pub(crate) async fn replica_sample(http: &reqwest::Client, server: &process::Server) -> [f64; 5] {
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

pub(crate) async fn database_sample(pool: &PgPool) -> anyhow::Result<[f64; 6]> {
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

/// A kill of the leader: when (seconds since the start), what happened, and whether another
/// replica led afterwards.
pub(crate) struct Kill {
    pub(crate) at: f64,
    pub(crate) line: String,
    pub(crate) moved: bool,
}

/// SIGKILLs the replica leading the reconciler and starts it again two seconds later (a
/// process manager's restart), marking it down in `front` meanwhile; None when none leads.
pub(crate) async fn kill_the_leader(
    http: &reqwest::Client,
    replicas: &mut [Replica],
    front: &Front,
    vars: &[(&'static str, String)],
    dir: &Path,
    started: Instant,
) -> anyhow::Result<Option<Kill>> {
    let Some(victim) = leader(http, replicas).await else {
        return Ok(None);
    };
    let killed_at = Instant::now();
    front.down.lock().unwrap().push((victim, killed_at, None));
    let mut server = replicas[victim].server.take().expect("the leader runs");
    let _ = server.child.kill();
    let _ = server.child.wait();
    if let Some(log) = server.log.take() {
        let kept = log.with_extension(format!("life{}.log", replicas[victim].lives));
        std::fs::rename(&log, kept)?;
    }
    drop(server);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let server = start(vars, replicas[victim].port, dir).await?;
    let back = Instant::now();
    if let Some(window) = front.down.lock().unwrap().last_mut() {
        window.2 = Some(back);
    }
    replicas[victim].server = Some(server);
    replicas[victim].lives += 1;
    let mut moved = None;
    for _ in 0..300 {
        if let Some(l) = leader(http, replicas).await {
            moved = Some((l, killed_at.elapsed()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let at = (killed_at - started).as_secs_f64();
    let line = format!(
        "{at:.0} s: killed the leader, replica {victim}; it was serving again after {:.1} s; {}",
        (back - killed_at).as_secs_f64(),
        match moved {
            Some((l, after)) => format!(
                "replica {l} leads ({:.1} s after the kill)",
                after.as_secs_f64()
            ),
            None => "no replica leads 30 s on".to_owned(),
        }
    );
    Ok(Some(Kill {
        at,
        line,
        moved: moved.is_some(),
    }))
}
