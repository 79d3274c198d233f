//! The `unsynced_instances` table: what the last pass left out of step.

use serde_json::Value;
use sqlx::PgConnection;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UnsyncedRow {
    pub instance_id: String,
    pub status: String,
    pub client_id: Option<String>,
    /// The URLs not live as wanted (`UrlSync` objects).
    pub urls: Value,
}

/// Replaces the set with `rows`, recorded by pass `run_id`.
pub async fn replace(
    conn: &mut PgConnection,
    run_id: i64,
    rows: &[UnsyncedRow],
) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM unsynced_instances")
        .execute(&mut *conn)
        .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&UnsyncedRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let urls: Vec<Value> = rows.iter().map(|r| r.urls.clone()).collect();
    sqlx::query(
        "INSERT INTO unsynced_instances (instance_id, status, client_id, urls, run_id) \
         SELECT i, s, c, u, $5 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::jsonb[]) AS t(i, s, c, u)",
    )
    .bind(column(|r| Some(r.instance_id.clone())))
    .bind(column(|r| Some(r.status.clone())))
    .bind(column(|r| r.client_id.clone()))
    .bind(&urls)
    .bind(run_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// How many instances are out of step, and the first `limit` of them by id.
pub async fn first(conn: &mut PgConnection, limit: i64) -> sqlx::Result<(i64, Vec<UnsyncedRow>)> {
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM unsynced_instances")
        .fetch_one(&mut *conn)
        .await?;
    let rows = sqlx::query_as(
        "SELECT instance_id, status, client_id, urls FROM unsynced_instances \
         ORDER BY instance_id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok((total, rows))
}
