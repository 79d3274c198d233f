//! Keeps every replica's memory of revisions and instance keys equal to the database:
//! LISTEN first, then load, then apply each notification. When the connection drops, the
//! memory is marked out of step (callers fall back to the database) until it is reloaded.

use std::{sync::Arc, time::Duration};

use sqlx::{PgPool, postgres::PgListener};
use tokio_util::sync::CancellationToken;

use super::Live;
use crate::db;

pub const GRANTS_CHANNEL: &str = "fleetgate_grants";
pub const KEYS_CHANNEL: &str = "fleetgate_keys";

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
            listener.listen_all([GRANTS_CHANNEL, KEYS_CHANNEL]).await?;
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
    live.revisions
        .load(db::grants::all_revisions(&mut conn).await?);
    live.mark_loaded();
    Ok(())
}

/// Applies notifications until the connection is lost.
async fn follow(pool: &PgPool, live: &Live, listener: &mut PgListener) -> anyhow::Result<()> {
    loop {
        let Some(note) = listener.try_recv().await? else {
            anyhow::bail!("the notification connection was lost");
        };
        match note.channel() {
            GRANTS_CHANNEL => match note.payload().split_once(' ') {
                Some((id, rev)) => match rev.parse::<i64>() {
                    Ok(rev) => live.revisions.observe(id, rev),
                    Err(_) => tracing::warn!(payload = note.payload(), "unreadable notification"),
                },
                None => tracing::warn!(payload = note.payload(), "unreadable notification"),
            },
            KEYS_CHANNEL => {
                let id = note.payload();
                crate::keys::refresh(&mut *pool.acquire().await?, &live.keys, id).await?;
            }
            _ => {}
        }
    }
}
