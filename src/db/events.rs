//! The outbox: `events`, their delivery `event_attempts`, and `instance_login_events`.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;

/// Notified (in the writing transaction, so at its commit) when an event is written.
pub const EVENTS_CHANNEL: &str = "fleetgate_events";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    pub seq: i64,
    pub id: String,
    pub payload: Value,
    pub attempts: i32,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Event {
    #[serde(skip)]
    pub seq: i64,
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub instance_id: Option<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub payload: Value,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Attempt {
    #[serde(skip)]
    pub event_seq: i64,
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
}

/// Writes an event and wakes the deliverer at commit.
pub async fn insert(
    conn: &mut PgConnection,
    id: &str,
    kind: &str,
    ordering_key: &str,
    payload: &Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "WITH e AS (INSERT INTO events (id, type, ordering_key, payload) VALUES ($1, $2, $3, $4) RETURNING seq) \
         SELECT pg_notify($5, '') FROM e",
    )
    .bind(id)
    .bind(kind)
    .bind(ordering_key)
    .bind(payload)
    .bind(EVENTS_CHANNEL)
    .execute(conn)
    .await?;
    Ok(())
}

/// The first pending event of each ordering key, when it is due: what may be delivered now
/// without overtaking an earlier event of its key. Oldest first.
pub async fn due(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<Due>> {
    sqlx::query_as(
        "SELECT e.seq, e.id, e.payload, e.attempts FROM events e \
         WHERE e.status = 'pending' AND e.next_attempt_at <= now() \
           AND NOT EXISTS (SELECT 1 FROM events p WHERE p.status = 'pending' \
                           AND p.ordering_key = e.ordering_key AND p.seq < e.seq) \
         ORDER BY e.seq LIMIT $1",
    )
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// When the next event falls due (None: nothing is pending): the earliest of the first
/// pending events of each ordering key (the later ones wait for those).
pub async fn next_due(conn: &mut PgConnection) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar(
        "SELECT min(e.next_attempt_at) FROM events e WHERE e.status = 'pending' \
           AND NOT EXISTS (SELECT 1 FROM events p WHERE p.status = 'pending' \
                           AND p.ordering_key = e.ordering_key AND p.seq < e.seq)",
    )
    .fetch_one(conn)
    .await
}

/// How an attempt ended, and what becomes of the event.
#[derive(Debug, Clone)]
pub struct Outcome<'a> {
    pub status_code: Option<i32>,
    pub error: Option<&'a str>,
    pub duration_ms: i32,
    /// delivered, failed (given up), or pending again at `retry_at`.
    pub status: &'a str,
    pub retry_at: Option<DateTime<Utc>>,
}

/// Records one attempt of event `seq` and its new status, in one statement.
pub async fn record_attempt(
    conn: &mut PgConnection,
    seq: i64,
    o: &Outcome<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "WITH e AS (UPDATE events SET attempts = attempts + 1, status = $5, \
                      next_attempt_at = coalesce($6, next_attempt_at), \
                      finished_at = CASE WHEN $5 = 'pending' THEN NULL ELSE now() END \
                    WHERE seq = $1 AND status = 'pending' RETURNING seq, attempts) \
         INSERT INTO event_attempts (event_seq, attempt, status_code, error, duration_ms) \
         SELECT seq, (SELECT coalesce(max(attempt), 0) + 1 FROM event_attempts WHERE event_seq = $1), $2, $3, $4 FROM e",
    )
    .bind(seq)
    .bind(o.status_code)
    .bind(o.error)
    .bind(o.duration_ms)
    .bind(o.status)
    .bind(o.retry_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Pending again, due now, with a fresh retry schedule. None when there is no such event.
pub async fn redeliver(conn: &mut PgConnection, id: &str) -> sqlx::Result<Option<Event>> {
    sqlx::query_as(&format!(
        "WITH e AS (UPDATE events SET status = 'pending', attempts = 0, next_attempt_at = now(), finished_at = NULL \
                    WHERE id = $1 RETURNING *), \
              n AS (SELECT pg_notify($2, '')) \
         SELECT {EVENT_COLUMNS} FROM e, n"
    ))
    .bind(id)
    .bind(EVENTS_CHANNEL)
    .fetch_optional(conn)
    .await
}

const EVENT_COLUMNS: &str = "seq, id, type AS kind, nullif(ordering_key, '') AS instance_id, status, created_at, \
     CASE WHEN status = 'pending' THEN next_attempt_at END AS next_attempt_at, finished_at, payload";

/// What `GET /v1/events` filters by.
#[derive(Debug, Default, Clone)]
pub struct Filter<'a> {
    pub status: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub instance: Option<&'a str>,
}

/// Newest first; `before_seq` pages backwards.
pub async fn list(
    conn: &mut PgConnection,
    filter: &Filter<'_>,
    before_seq: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<Event>> {
    sqlx::query_as(&format!(
        "SELECT {EVENT_COLUMNS} FROM events \
         WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR type = $2) \
           AND ($3::text IS NULL OR ordering_key = $3) AND ($4::bigint IS NULL OR seq < $4) \
         ORDER BY seq DESC LIMIT $5"
    ))
    .bind(filter.status)
    .bind(filter.kind)
    .bind(filter.instance)
    .bind(before_seq)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// The attempts of these events, oldest first.
pub async fn attempts(conn: &mut PgConnection, seqs: &[i64]) -> sqlx::Result<Vec<Attempt>> {
    sqlx::query_as(
        "SELECT event_seq, attempt, at, status_code, error, duration_ms FROM event_attempts \
         WHERE event_seq = ANY($1) ORDER BY event_seq, attempt",
    )
    .bind(seqs)
    .fetch_all(conn)
    .await
}

/// How many events are pending, and how old the oldest is (seconds).
pub async fn backlog(conn: &mut PgConnection) -> sqlx::Result<(i64, f64)> {
    sqlx::query_as(
        "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at))::float8, 0) \
         FROM events WHERE status = 'pending'",
    )
    .fetch_one(conn)
    .await
}

/// Forgets delivered and failed events finished more than `days` ago.
pub async fn prune(conn: &mut PgConnection, days: i32) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "DELETE FROM events WHERE status <> 'pending' AND finished_at < now() - make_interval(days => $1)",
    )
    .bind(days)
    .execute(conn)
    .await?
    .rows_affected())
}

/// What the platform was last told about an instance's login (locks the row, if any).
pub async fn login_told(
    conn: &mut PgConnection,
    instance_id: &str,
) -> sqlx::Result<Option<(Option<Vec<String>>, bool)>> {
    sqlx::query_as(
        "SELECT ready_hosts, failing FROM instance_login_events WHERE instance_id = $1 FOR UPDATE",
    )
    .bind(instance_id)
    .fetch_optional(conn)
    .await
}

/// Every instance's record of what the platform was told about its login.
pub async fn logins_told(
    conn: &mut PgConnection,
) -> sqlx::Result<Vec<(String, Option<Vec<String>>, bool)>> {
    sqlx::query_as("SELECT instance_id, ready_hosts, failing FROM instance_login_events")
        .fetch_all(conn)
        .await
}

pub async fn set_login_told(
    conn: &mut PgConnection,
    instance_id: &str,
    ready_hosts: Option<&[String]>,
    failing: bool,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO instance_login_events (instance_id, ready_hosts, failing) VALUES ($1, $2, $3) \
         ON CONFLICT (instance_id) DO UPDATE SET ready_hosts = $2, failing = $3",
    )
    .bind(instance_id)
    .bind(ready_hosts)
    .bind(failing)
    .execute(conn)
    .await?;
    Ok(())
}
