//! Revisions never go backwards for a polling instance. An instance polls with the revision it
//! has; a database restored from a dump (or a replica promoted after losing its primary's last
//! commits) is at an older revision than some instances saw, and the same numbers would be
//! reused for other changes: such an instance would be answered "no change", or a delta, from
//! a history that no longer exists, and keep grants that were removed. So fleetgate records
//! where the database's rows are written (`db::deployment::lineage_now`) and, finding it moved,
//! moves every instance's revision past any handed out before (to the time in milliseconds,
//! or one past the highest), with the log floor there: every poller is then answered a
//! snapshot (410 for a `since`, 200 for an old ETag). Checked before this replica's memory is
//! loaded: at start and after every reconnection of its notifications.

use sqlx::{Acquire, PgPool};

use crate::db;

/// Checks the database's lineage; answers the revision every instance was moved to, when it
/// had moved. The first check records it.
pub async fn ensure(pool: &PgPool) -> sqlx::Result<Option<i64>> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let now = db::deployment::lineage_now(&mut tx).await?;
    let recorded = db::deployment::lineage_for_update(&mut tx).await?;
    let moved = match recorded.as_deref() {
        Some(seen) if seen == now => return Ok(None),
        None => None,
        Some(seen) => {
            let at_least = chrono::Utc::now().timestamp_millis();
            let to = db::grants::jump_revisions(&mut tx, at_least).await?;
            db::audit::record(
                &mut tx,
                db::audit::NewEntry {
                    actor: "fleetgate",
                    action: "registry.lineage_changed",
                    target_type: "registry",
                    target_id: "grants",
                    before: Some(serde_json::json!({ "lineage": seen })),
                    after: Some(serde_json::json!({ "lineage": now, "revision": to })),
                    request_id: None,
                },
            )
            .await?;
            tracing::warn!(
                was = seen,
                now,
                revision = to,
                "the database was restored or its primary changed: every instance's grants revision moved past any handed out before; polling instances get snapshots"
            );
            Some(to)
        }
    };
    db::deployment::set_lineage(&mut tx, &now).await?;
    tx.commit().await?;
    Ok(moved)
}
