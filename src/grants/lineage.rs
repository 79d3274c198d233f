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

/// Moves every instance's revision past any handed out before, whatever the lineage says
/// (`fleetgate restored`, for a server that keeps its control data from fleetgate's role);
/// answers the revision they now share.
pub async fn force(pool: &PgPool) -> sqlx::Result<i64> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let to = moved(&mut tx, "told by `fleetgate restored`", None).await?;
    tx.commit().await?;
    Ok(to)
}

/// Moves every revision, audited.
async fn moved(tx: &mut sqlx::PgConnection, was: &str, now: Option<&str>) -> sqlx::Result<i64> {
    let at_least = chrono::Utc::now().timestamp_millis();
    let to = db::grants::jump_revisions(tx, at_least).await?;
    db::audit::record(
        tx,
        db::audit::NewEntry {
            actor: "fleetgate",
            action: "registry.lineage_changed",
            target_type: "registry",
            target_id: "grants",
            before: Some(serde_json::json!({ "lineage": was })),
            after: Some(serde_json::json!({ "lineage": now, "revision": to })),
            request_id: None,
        },
    )
    .await?;
    tracing::warn!(
        was,
        now,
        revision = to,
        "the database was restored or its primary changed: every instance's grants revision moved past any handed out before; polling instances get snapshots"
    );
    Ok(to)
}

/// Checks the database's lineage; answers the revision every instance was moved to, when it
/// had moved. The first check records it.
pub async fn ensure(pool: &PgPool) -> sqlx::Result<Option<i64>> {
    let mut conn = pool.acquire().await?;
    // Read apart from the transaction: a server that refuses it (a role without the
    // privilege, a managed service without the functions) must not stop anything else.
    let now = match db::deployment::lineage_now(&mut conn).await {
        Ok(now) => now,
        Err(e) => {
            tracing::warn!(error = %e, "where the database's rows are written cannot be read (pg_control_system, pg_current_wal_lsn): a restore from a dump will not be noticed; run `fleetgate restored` after one (docs/operating.md, 'Restoring from a backup')");
            return Ok(None);
        }
    };
    let mut tx = conn.begin().await?;
    let recorded = db::deployment::lineage_for_update(&mut tx).await?;
    let jumped = match recorded.as_deref() {
        Some(seen) if seen == now => return Ok(None),
        // Never recorded: a new database, or one restored from a dump taken before lineages
        // were (or upgraded from such a release). Revisions handed out already may be ahead.
        None if db::grants::any_revision(&mut tx).await? => {
            Some(moved(&mut tx, "not recorded", Some(&now)).await?)
        }
        None => None,
        Some(seen) => Some(moved(&mut tx, seen, Some(&now)).await?),
    };
    db::deployment::set_lineage(&mut tx, &now).await?;
    tx.commit().await?;
    Ok(jumped)
}
