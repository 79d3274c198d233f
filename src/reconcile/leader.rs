//! Which replica reconciles on its own, and when: the holder of a Postgres advisory lock
//! (kept on a dedicated connection, so it dies with the process) listens for registry
//! changes, lets a burst settle, then runs one pass; a cron schedule runs full passes too.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use sqlx::{Connection, PgConnection, postgres::PgListener};
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

use super::apply::Reconciler;
use crate::db::reconcile::REGISTRY_CHANNEL;

pub const LEADER_LOCK: i64 = 0x666c_6565_7467_6102;
/// How often a follower tries to become the leader, and the leader checks it still is.
pub const LEADER_CHECK: Duration = Duration::from_secs(2);
/// A burst of changes is applied once no change came for this long…
const QUIET: Duration = Duration::from_millis(300);
/// …or this long after its first change, whichever is first.
const MAX_DELAY: Duration = Duration::from_secs(3);

/// Runs until `shutdown`: follows, or leads while it holds the lock. A follower keeps one
/// connection and asks for the lock on it every [`LEADER_CHECK`].
pub async fn run(reconciler: Arc<Reconciler>, shutdown: CancellationToken) {
    let mut conn: Option<PgConnection> = None;
    while !shutdown.is_cancelled() {
        match try_lead(&reconciler, &mut conn).await {
            Ok(true) => {
                tracing::info!("this replica now reconciles");
                let lock = conn.take().expect("the lock is held on this connection");
                if let Err(e) = lead(&reconciler, lock, &shutdown).await {
                    tracing::warn!(error = %e, "reconciler leadership ended");
                }
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot contend for the reconciler lock");
                conn = None;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(LEADER_CHECK) => {}
        }
    }
}

/// Tries to take the leader lock on `conn` (connecting first if needed).
async fn try_lead(reconciler: &Reconciler, conn: &mut Option<PgConnection>) -> sqlx::Result<bool> {
    if conn.is_none() {
        *conn = Some(PgConnection::connect_with(&reconciler.pool.connect_options()).await?);
    }
    let c = conn.as_mut().expect("connected above");
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(LEADER_LOCK)
        .fetch_one(c)
        .await
}

async fn lead(
    reconciler: &Reconciler,
    mut lock: PgConnection,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut listener = PgListener::connect_with(&reconciler.pool).await?;
    listener.listen(REGISTRY_CHANNEL).await?;
    let (tick_tx, mut ticks) = mpsc::channel::<()>(1);
    let mut scheduler = JobScheduler::new().await?;
    scheduler
        .add(Job::new_async(
            reconciler.settings.cron.as_str(),
            move |_, _| {
                let tick_tx = tick_tx.clone();
                Box::pin(async move {
                    let _ = tick_tx.try_send(());
                })
            },
        )?)
        .await?;
    scheduler.start().await?;

    pass(reconciler, "startup").await;
    let mut burst: Option<(Instant, Instant)> = None;
    let mut check = tokio::time::interval(LEADER_CHECK);
    let result = loop {
        let due = burst.map(|(first, last)| (last + QUIET).min(first + MAX_DELAY));
        let settle = async {
            match due {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            note = listener.recv() => match note {
                Ok(_) => {
                    let now = Instant::now();
                    burst = Some(burst.map_or((now, now), |(first, _)| (first, now)));
                }
                Err(e) => {
                    // Notifications may have been lost while reconnecting: catch up.
                    tracing::warn!(error = %e, "registry notifications interrupted");
                    burst = Some((Instant::now(), Instant::now()));
                    // Do not spin while the database is away.
                    tokio::time::sleep(LEADER_CHECK).await;
                }
            },
            _ = settle => {
                burst = None;
                pass(reconciler, "notify").await;
            }
            Some(()) = ticks.recv() => pass(reconciler, "cron").await,
            _ = check.tick() => {
                if let Err(e) = sqlx::query("SELECT 1").execute(&mut lock).await {
                    break Err(anyhow::anyhow!("lost the lock connection: {e}"));
                }
            }
        }
    };
    let _ = scheduler.shutdown().await;
    result
}

/// One pass (and its repairs); failures are recorded in the run history, not raised.
async fn pass(reconciler: &Reconciler, trigger: &str) {
    if let Err(e) = reconciler.run_settled(trigger).await {
        tracing::warn!(error = %e, "reconcile pass could not be recorded");
    }
}
