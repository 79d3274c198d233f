//! Keeps every replica's memory of revisions, instance keys and the roster (instances and their
//! grants, for login decisions) equal to the database: LISTEN first, then load, then apply each
//! notification. When the connection drops, the memory is marked out of step (callers fall
//! back to the database) until it is reloaded.

use std::{sync::Arc, time::Duration};

use sqlx::{PgPool, postgres::PgListener};
use tokio_util::sync::CancellationToken;

use foldhash::HashMap;
use futures_util::FutureExt;

use super::{
    Live,
    roster::{GrantSets, InstanceFacts, Subjects},
};
use crate::db;

pub const GRANTS_CHANNEL: &str = "fleetgate_grants";
pub const KEYS_CHANNEL: &str = "fleetgate_keys";
pub const INSTANCES_CHANNEL: &str = "fleetgate_instances";

/// Instances read again in one statement at most (a bulk change notifies each).
const REREAD_BATCH: usize = 1000;

/// Runs until `shutdown`, reconnecting as needed.
pub async fn run(
    pool: PgPool,
    live: Arc<Live>,
    in_step: prometheus::IntGauge,
    shutdown: CancellationToken,
) {
    loop {
        let session = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener
                .listen_all([GRANTS_CHANNEL, KEYS_CHANNEL, INSTANCES_CHANNEL])
                .await?;
            // A restored database, or a promoted replica, first: see `lineage`.
            super::lineage::ensure(&pool).await?;
            load(&pool, &live).await?;
            in_step.set(1);
            tracing::debug!("grants memory in step with the database");
            follow(&pool, &live, &mut listener).await
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            result = session => {
                live.mark_unsynced();
                in_step.set(0);
                if let Err(e) = result {
                    tracing::warn!(error = %e, "grants notifications interrupted; retrying");
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn load(pool: &PgPool, live: &Live) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    crate::keys::reload(&mut conn, &live.keys).await?;
    // Revisions, instances and grants from one snapshot.
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let revisions = db::grants::all_revisions(&mut tx).await?;
    let facts = db::roster::facts(&mut tx, None).await?;
    let mut sets = GrantSets::default();
    let mut subjects: HashMap<String, Subjects> = HashMap::default();
    db::roster::each_grant(&mut tx, |g| {
        let to = subjects.entry(g.instance_id).or_default();
        sets.add(to, g.user_id, g.email, &g.role);
    })
    .await?;
    tx.commit().await?;

    let revision_of: HashMap<String, i64> = revisions.iter().cloned().collect();
    let grants = subjects
        .into_iter()
        .map(|(id, s)| {
            let revision = revision_of.get(&id).copied().unwrap_or(0);
            (id, GrantSets::finish(revision, s))
        })
        .collect();
    let facts = facts
        .into_iter()
        .map(InstanceFacts::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    live.roster.load(facts, grants, &revision_of, sets);
    live.revisions.load(revisions);
    live.mark_loaded();
    Ok(())
}

/// Applies notifications until the connection is lost. Instances to read again are gathered
/// from every notification already received (up to `REREAD_BATCH`), then read in one
/// statement.
async fn follow(pool: &PgPool, live: &Live, listener: &mut PgListener) -> anyhow::Result<()> {
    loop {
        let Some(mut note) = listener.try_recv().await? else {
            anyhow::bail!("the notification connection was lost");
        };
        let mut stale: Vec<String> = Vec::new();
        loop {
            match note.channel() {
                GRANTS_CHANNEL => match parse(note.payload()) {
                    Some((id, rev)) => live.revisions.observe(id, rev),
                    None => tracing::warn!(payload = note.payload(), "unreadable notification"),
                },
                KEYS_CHANNEL => {
                    let id = note.payload();
                    crate::keys::refresh(&mut *pool.acquire().await?, &live.keys, id).await?;
                }
                INSTANCES_CHANNEL => match parse(note.payload()) {
                    // This replica made the change, or read it already: nothing to read.
                    Some((id, version)) if live.roster.version(id) >= Some(version) => {}
                    Some((id, _)) => stale.push(id.to_owned()),
                    None => tracing::warn!(payload = note.payload(), "unreadable notification"),
                },
                _ => {}
            }
            if stale.len() >= REREAD_BATCH {
                break;
            }
            // What has arrived already, without waiting (`try_recv` is cancel-safe since sqlx
            // 0.8.1: a notification not taken now is taken by the next call).
            match listener.try_recv().now_or_never() {
                Some(Ok(Some(next))) => note = next,
                Some(Ok(None)) => anyhow::bail!("the notification connection was lost"),
                Some(Err(e)) => return Err(e.into()),
                None => break,
            }
        }
        if !stale.is_empty() {
            stale.sort_unstable();
            stale.dedup();
            let rows = db::roster::facts(&mut *pool.acquire().await?, Some(&stale)).await?;
            for row in rows {
                live.roster.apply(InstanceFacts::try_from(row)?);
            }
        }
    }
}

/// A notification's `<instance> <number>`.
fn parse(payload: &str) -> Option<(&str, i64)> {
    let (id, n) = payload.split_once(' ')?;
    Some((id, n.parse().ok()?))
}
