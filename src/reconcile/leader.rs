//! Which replica reconciles on its own, and when: the holder of a Postgres advisory lock
//! (kept on a dedicated connection, so it dies with the process) listens for registry
//! changes, lets a burst settle, then runs one pass; a cron schedule runs full passes too; a
//! pass that failed is tried again after a backoff.
//!
//! Shutdown comes first: once it is signalled no pass starts, a pass under way is abandoned
//! at its next await (its Management API retries and rate-limit waits with it; its run is
//! recorded as interrupted, and the pass lock goes with its connection), and the leader lock
//! is released.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use sqlx::{PgConnection, postgres::PgListener};
use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

use super::{Reconciler, Trigger};
use crate::db::reconcile::REGISTRY_CHANNEL;

pub const LEADER_LOCK: i64 = 0x666c_6565_7467_6102;
/// How often a follower tries to become the leader, and the leader checks it still is.
pub const LEADER_CHECK: Duration = Duration::from_secs(2);
/// A burst of changes is applied once no change came for this long…
const QUIET: Duration = Duration::from_millis(300);
/// …or this long after its first change, whichever is first.
const MAX_DELAY: Duration = Duration::from_secs(3);
/// How long an abandoned pass may take to be recorded, and the scheduler to stop.
const STOP_WITHIN: Duration = Duration::from_secs(1);
/// After a failed pass, the next is tried this long later, doubling while they keep failing…
const RETRY_FIRST: Duration = Duration::from_secs(5);
/// …up to this.
const RETRY_CAP: Duration = Duration::from_secs(300);

/// How long after the `failures`-th failed pass in a row to try again.
fn retry_delay(failures: u32) -> Duration {
    RETRY_FIRST
        .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16)))
        .min(RETRY_CAP)
}

/// Runs until `shutdown`: follows, or leads while it holds the lock. A follower keeps one
/// connection and asks for the lock on it every [`LEADER_CHECK`].
pub async fn run(reconciler: Arc<Reconciler>, shutdown: CancellationToken) {
    let mut conn: Option<PgConnection> = None;
    while !shutdown.is_cancelled() {
        let contended = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            r = try_lead(&reconciler, &mut conn) => r,
        };
        match contended {
            Ok(true) => {
                tracing::info!("this replica now reconciles");
                let lock = conn.take().expect("the lock is held on this connection");
                reconciler.metrics.reconcile_leader.set(1);
                if let Err(e) = lead(&reconciler, lock, &shutdown).await {
                    tracing::warn!(error = %e, "reconciler leadership ended");
                }
                reconciler.metrics.reconcile_leader.set(0);
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot contend for the reconciler lock");
                conn = None;
            }
        }
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(LEADER_CHECK) => {}
        }
    }
}

/// Tries to take the leader lock on `conn` (connecting first if needed).
async fn try_lead(reconciler: &Reconciler, conn: &mut Option<PgConnection>) -> sqlx::Result<bool> {
    crate::db::locks::try_lock(&reconciler.pool, conn, LEADER_LOCK).await
}

async fn lead(
    reconciler: &Reconciler,
    mut lock: PgConnection,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let (tick_tx, ticks) = mpsc::channel::<()>(1);
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
    // Polled only while shutdown has not been signalled: once it is, the leader's work (a
    // pass under way included) is dropped at its next await and never polled again.
    let result = tokio::select! {
        biased;
        _ = shutdown.cancelled() => Ok(()),
        r = lead_until_stopped(reconciler, &mut lock, ticks) => r,
    };
    reconciler.abandoned(STOP_WITHIN).await;
    let _ = tokio::time::timeout(STOP_WITHIN, scheduler.shutdown()).await;
    // Released at once rather than when the connection is dropped.
    let release = sqlx::query("SELECT pg_advisory_unlock($1)").bind(LEADER_LOCK);
    let _ = tokio::time::timeout(STOP_WITHIN, release.execute(&mut lock)).await;
    result
}

/// Leads until an error: a pass at start, then passes on notifications, cron ticks and retries.
async fn lead_until_stopped(
    reconciler: &Reconciler,
    lock: &mut PgConnection,
    mut ticks: mpsc::Receiver<()>,
) -> anyhow::Result<()> {
    let mut listener = PgListener::connect_with(&reconciler.pool).await?;
    listener.listen(REGISTRY_CHANNEL).await?;

    // Failed passes in a row, and when to try again.
    let mut failures = 0;
    let mut after = |ok: bool| {
        failures = if ok { 0 } else { failures + 1 };
        (failures > 0).then(|| Instant::now() + retry_delay(failures))
    };
    let mut retry = after(pass(reconciler, Trigger::Startup).await);
    let mut burst: Option<(Instant, Instant)> = None;
    let mut check = tokio::time::interval(LEADER_CHECK);
    loop {
        let due = burst.map(|(first, last)| (last + QUIET).min(first + MAX_DELAY));
        let settle = sleep_until(due);
        let retry_due = sleep_until(retry);
        tokio::select! {
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
            () = settle => {
                burst = None;
                retry = after(pass(reconciler, Trigger::Notify).await);
            }
            () = retry_due => retry = after(pass(reconciler, Trigger::Retry).await),
            Some(()) = ticks.recv() => retry = after(pass(reconciler, Trigger::Cron).await),
            _ = check.tick() => {
                if let Err(e) = sqlx::query("SELECT 1").execute(&mut *lock).await {
                    anyhow::bail!("lost the lock connection: {e}");
                }
            }
        }
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// One pass (and its repairs); failures are recorded in the run history, not raised. True
/// when it did not fail.
async fn pass(reconciler: &Reconciler, trigger: Trigger) -> bool {
    match reconciler.run_settled(trigger).await {
        Ok(result) => !result.failed(),
        Err(e) => {
            tracing::warn!(error = %e, "reconcile pass could not be recorded");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_passes_are_retried_with_a_doubling_capped_delay() {
        let delays: Vec<u64> = (1..=9).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(retry_delay(u32::MAX), RETRY_CAP);
    }
}
