//! What the soak checks once the traffic stops: nothing acknowledged lost, and the
//! allow-lists equal to the registry.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use serde_json::Value;
use sqlx::PgPool;

use crate::traffic::user_ids;

/// An administrator's reads of one replica.
pub(crate) struct Admin {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) token: String,
}

impl Admin {
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        Ok(res.error_for_status()?.json().await?)
    }
}

/// What was acknowledged and is not there: each instance's hosts and grants as last
/// acknowledged, each long-poll ending with its instance's grants (`held`, by instance), and
/// every event delivered (within a minute: the deliverer may be retrying one a kill cut off).
pub(crate) async fn lost(
    admin: &Admin,
    pool: &PgPool,
    last_hosts: &BTreeMap<usize, Vec<String>>,
    last_grants: &BTreeMap<usize, Vec<String>>,
    held: &[Vec<String>],
) -> anyhow::Result<Vec<String>> {
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    let mut lost = Vec::new();
    for (k, want) in last_hosts {
        let instance = admin.get(&format!("/v1/instances/u{k}")).await?;
        let have: Vec<String> = instance["domains"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(|d| d["hostname"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let (have, want) = (sorted(&have), sorted(want));
        if have != want {
            lost.push(format!("u{k}: hosts {have:?}, last acknowledged {want:?}"));
        }
    }
    for (k, want) in last_grants {
        let have = user_ids(&admin.get(&format!("/v1/instances/u{k}/grants")).await?);
        let want = sorted(want);
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
    let mut pending = i64::MAX;
    for _ in 0..120 {
        pending = sqlx::query_scalar("SELECT count(*) FROM events WHERE status <> 'delivered'")
            .fetch_one(pool)
            .await?;
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
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
    Ok(lost)
}

/// Whether a pass begun after now ends with every instance's URLs live (within two minutes).
pub(crate) async fn allow_lists_converge(admin: &Admin) -> anyhow::Result<bool> {
    let (converging, stopped_at) = (Instant::now(), chrono::Utc::now());
    let mut unsynced = Value::Null;
    let mut in_step = false;
    while converging.elapsed() < Duration::from_secs(120) {
        let status = admin.get("/v1/reconcile/status").await?;
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
        converging.elapsed().as_secs_f64()
    );
    Ok(in_step)
}
