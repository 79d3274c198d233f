//! The `webhook_deliveries` table: acknowledged deliveries and the answers they got.

use serde_json::Value;
use sqlx::{PgConnection, PgPool};

/// Records a delivery and the answer it got, in the same transaction as its effect. False when
/// the id was recorded before (the caller abandons its transaction and answers from the
/// record); a concurrent delivery of the same id waits here until the first one commits or
/// rolls back.
pub async fn record(
    conn: &mut PgConnection,
    webhook_id: &str,
    event_type: &str,
    status: u16,
    body: &Value,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO webhook_deliveries (webhook_id, event_type, response_status, response_body) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (webhook_id) DO NOTHING",
    )
    .bind(webhook_id)
    .bind(event_type)
    .bind(status as i16)
    .bind(body)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The answer given to an earlier delivery of this id.
pub async fn answer(
    conn: impl sqlx::PgExecutor<'_>,
    webhook_id: &str,
) -> sqlx::Result<Option<(u16, Value)>> {
    let row: Option<(i16, Value)> = sqlx::query_as(
        "SELECT response_status, response_body FROM webhook_deliveries WHERE webhook_id = $1",
    )
    .bind(webhook_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(s, b)| (s as u16, b)))
}

/// Forgets deliveries older than `days`. Signatures older than five minutes are refused anyway,
/// so a redelivery after that cannot reach the idempotency check.
pub async fn prune(pool: &PgPool, days: i32) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM webhook_deliveries WHERE received_at < now() - make_interval(days => $1)",
    )
    .bind(days)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
