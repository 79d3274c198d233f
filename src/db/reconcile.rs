//! Owned allow-list entries, read-back snapshots and the reconcile run history.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;

/// The channel registry changes are announced on.
pub const REGISTRY_CHANNEL: &str = "fleetgate_registry";

/// Entries fleetgate owns on an application, by field name.
pub async fn owned(
    conn: &mut PgConnection,
    client_id: &str,
) -> sqlx::Result<BTreeMap<String, BTreeSet<String>>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT field, entry FROM allowlist_entries WHERE client_id = $1")
            .bind(client_id)
            .fetch_all(conn)
            .await?;
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (field, entry) in rows {
        out.entry(field).or_default().insert(entry);
    }
    Ok(out)
}

pub async fn own(
    conn: &mut PgConnection,
    client_id: &str,
    field: &str,
    entries: &[String],
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO allowlist_entries (client_id, field, entry) SELECT $1, $2, unnest($3::text[]) ON CONFLICT DO NOTHING",
    )
    .bind(client_id)
    .bind(field)
    .bind(entries)
    .execute(conn)
    .await?;
    Ok(())
}

/// Makes `entries` exactly what fleetgate owns on this list.
pub async fn set_owned(
    conn: &mut PgConnection,
    client_id: &str,
    field: &str,
    entries: &[String],
) -> sqlx::Result<()> {
    sqlx::query(
        "DELETE FROM allowlist_entries WHERE client_id = $1 AND field = $2 AND entry <> ALL($3)",
    )
    .bind(client_id)
    .bind(field)
    .bind(entries)
    .execute(&mut *conn)
    .await?;
    own(conn, client_id, field, entries).await
}

pub async fn save_snapshot(
    conn: &mut PgConnection,
    client_id: &str,
    field: &str,
    entries: &[String],
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO allowlist_snapshots (client_id, field, entries, read_at) VALUES ($1, $2, $3, now()) \
         ON CONFLICT (client_id, field) DO UPDATE SET entries = EXCLUDED.entries, read_at = EXCLUDED.read_at",
    )
    .bind(client_id)
    .bind(field)
    .bind(serde_json::to_value(entries).expect("strings serialise"))
    .execute(conn)
    .await?;
    Ok(())
}

/// The lists as last read back, by field name.
pub async fn snapshots(
    conn: &mut PgConnection,
    client_id: &str,
) -> sqlx::Result<BTreeMap<String, Vec<String>>> {
    let rows: Vec<(String, Value)> =
        sqlx::query_as("SELECT field, entries FROM allowlist_snapshots WHERE client_id = $1")
            .bind(client_id)
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(f, v)| (f, serde_json::from_value(v).unwrap_or_default()))
        .collect())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Run {
    pub id: i64,
    pub trigger: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: String,
    pub api_calls: i32,
    pub changes: Value,
    pub error: Option<String>,
}

const RUN_COLUMNS: &str =
    "id, trigger, started_at, finished_at, outcome, api_calls, changes, error";

/// Marks runs still `running` as failed: called under the pass lock, when no pass can be
/// running, so they belong to a process that died mid-pass.
pub async fn close_interrupted_runs(conn: &mut PgConnection) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "UPDATE reconcile_runs SET outcome = 'failed', finished_at = now(), \
         error = 'interrupted: the process running this pass stopped before it finished' \
         WHERE outcome = 'running'",
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Closes this process's own run of a pass it abandoned at shutdown (unless it finished).
pub async fn interrupt_run(conn: &mut PgConnection, id: i64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE reconcile_runs SET outcome = 'failed', finished_at = now(), \
         error = 'interrupted: the process was stopped before the pass finished' \
         WHERE id = $1 AND outcome = 'running'",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn start_run(conn: &mut PgConnection, trigger: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("INSERT INTO reconcile_runs (trigger) VALUES ($1) RETURNING id")
        .bind(trigger)
        .fetch_one(conn)
        .await
}

pub async fn finish_run(
    conn: &mut PgConnection,
    id: i64,
    outcome: &str,
    api_calls: i32,
    changes: &Value,
    error: Option<&str>,
) -> sqlx::Result<Run> {
    sqlx::query_as(&format!(
        "UPDATE reconcile_runs SET finished_at = now(), outcome = $2, api_calls = $3, changes = $4, error = $5 \
         WHERE id = $1 RETURNING {RUN_COLUMNS}"
    ))
    .bind(id)
    .bind(outcome)
    .bind(api_calls)
    .bind(changes)
    .bind(error)
    .fetch_one(conn)
    .await
}

/// Newest first; `before_id` pages backwards.
pub async fn runs(
    conn: &mut PgConnection,
    before_id: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<Run>> {
    sqlx::query_as(&format!(
        "SELECT {RUN_COLUMNS} FROM reconcile_runs WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2"
    ))
    .bind(before_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The last finished run.
pub async fn last_finished(conn: &mut PgConnection) -> sqlx::Result<Option<Run>> {
    sqlx::query_as(&format!(
        "SELECT {RUN_COLUMNS} FROM reconcile_runs WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1"
    ))
    .fetch_optional(conn)
    .await
}

/// The replica holding the leader lock `key`: its connection's application name, address and
/// since when it is connected. None when no replica leads.
pub async fn leader(
    conn: &mut PgConnection,
    key: i64,
) -> sqlx::Result<Option<(Option<String>, Option<String>, Option<DateTime<Utc>>)>> {
    sqlx::query_as(
        "SELECT a.application_name, host(a.client_addr), a.backend_start \
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
           AND l.classid::bigint = $1 AND l.objid::bigint = $2 \
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind((key >> 32) & 0xffff_ffff)
    .bind(key & 0xffff_ffff)
    .fetch_optional(conn)
    .await
}

/// Whether the last pass that finished (interrupted ones aside) failed.
pub async fn last_pass_failed(conn: &mut PgConnection) -> sqlx::Result<bool> {
    Ok(sqlx::query_scalar::<_, String>(
        "SELECT outcome FROM reconcile_runs WHERE finished_at IS NOT NULL \
         AND coalesce(error, '') NOT LIKE 'interrupted:%' ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await?
    .is_some_and(|o| o == "failed"))
}
