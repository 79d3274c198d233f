//! The append-only `audit_log` table.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;

#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    pub actor: &'a str,
    pub action: &'a str,
    pub target_type: &'a str,
    pub target_id: &'a str,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub request_id: Option<&'a str>,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Entry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub request_id: Option<String>,
}

pub async fn record(conn: &mut PgConnection, e: NewEntry<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (actor, action, target_type, target_id, before, after, request_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(e.actor)
    .bind(e.action)
    .bind(e.target_type)
    .bind(e.target_id)
    .bind(e.before)
    .bind(e.after)
    .bind(e.request_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Newest first; `before_id` pages backwards.
pub async fn list(
    conn: &mut PgConnection,
    target: Option<(&str, &str)>,
    before_id: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<Entry>> {
    sqlx::query_as(
        "SELECT id, at, actor, action, target_type, target_id, before, after, request_id FROM audit_log \
         WHERE ($1::text IS NULL OR (target_type = $1 AND target_id = $2)) AND ($3::bigint IS NULL OR id < $3) \
         ORDER BY id DESC LIMIT $4",
    )
    .bind(target.map(|t| t.0))
    .bind(target.map(|t| t.1))
    .bind(before_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}
