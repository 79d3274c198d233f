//! The `instance_keys` table: hashes of instance keys.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub hash: Vec<u8>,
    pub instance_id: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A key as operators see it: who minted it and when, never the key or its hash.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct KeyInfo {
    pub id: uuid::Uuid,
    pub minted_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn insert(
    conn: &mut PgConnection,
    instance_id: &str,
    hash: &[u8],
    minted_by: &str,
) -> sqlx::Result<uuid::Uuid> {
    sqlx::query_scalar(
        "INSERT INTO instance_keys (hash, instance_id, minted_by) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(hash)
    .bind(instance_id)
    .bind(minted_by)
    .fetch_one(conn)
    .await
}

/// Inserts a key unless the instance has a live one; true when it was inserted.
pub async fn insert_unless_live(
    conn: &mut PgConnection,
    instance_id: &str,
    hash: &[u8],
    minted_by: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO instance_keys (hash, instance_id, minted_by) SELECT $1, $2, $3 \
         WHERE NOT EXISTS (SELECT 1 FROM instance_keys WHERE instance_id = $2 \
                           AND (expires_at IS NULL OR expires_at > now()))",
    )
    .bind(hash)
    .bind(instance_id)
    .bind(minted_by)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The live keys of an instance, newest first.
pub async fn infos(conn: &mut PgConnection, instance_id: &str) -> sqlx::Result<Vec<KeyInfo>> {
    sqlx::query_as(
        "SELECT id, minted_by, created_at, expires_at FROM instance_keys \
         WHERE instance_id = $1 AND (expires_at IS NULL OR expires_at > now()) \
         ORDER BY created_at DESC, id",
    )
    .bind(instance_id)
    .fetch_all(conn)
    .await
}

/// Sets every live key of the instance to expire within `grace_secs` (never later than it
/// already would) and forgets expired ones; answers when the last of them expires.
pub async fn retire(
    conn: &mut PgConnection,
    instance_id: &str,
    grace_secs: i64,
) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query("DELETE FROM instance_keys WHERE instance_id = $1 AND expires_at <= now()")
        .bind(instance_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query_scalar(
        "UPDATE instance_keys SET expires_at = \
           LEAST(COALESCE(expires_at, 'infinity'), now() + make_interval(secs => $2)) \
         WHERE instance_id = $1 RETURNING expires_at",
    )
    .bind(instance_id)
    .bind(grace_secs as f64)
    .fetch_all(conn)
    .await
    .map(|v: Vec<Option<DateTime<Utc>>>| v.into_iter().flatten().max())
}

/// Forgets every key of the instance: they stop working at once (deletion, a new owner, a
/// rotation that revokes the previous keys).
pub async fn revoke_all(conn: &mut PgConnection, instance_id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM instance_keys WHERE instance_id = $1")
        .bind(instance_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The live keys of one instance, or of all when `instance_id` is None.
pub async fn live(conn: &mut PgConnection, instance_id: Option<&str>) -> sqlx::Result<Vec<KeyRow>> {
    sqlx::query_as(
        "SELECT hash, instance_id, expires_at FROM instance_keys \
         WHERE ($1::text IS NULL OR instance_id = $1) AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(instance_id)
    .fetch_all(conn)
    .await
}

/// The key with this hash, if live.
pub async fn find(conn: &mut PgConnection, hash: &[u8]) -> sqlx::Result<Option<KeyRow>> {
    sqlx::query_as(
        "SELECT hash, instance_id, expires_at FROM instance_keys \
         WHERE hash = $1 AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind(hash)
    .fetch_optional(conn)
    .await
}
