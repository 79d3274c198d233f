//! The `deployment` table: this deployment's identity (one row, made by its migration).

use sqlx::PgConnection;

/// This deployment's id.
pub async fn id(conn: &mut PgConnection) -> sqlx::Result<uuid::Uuid> {
    sqlx::query_scalar("SELECT id FROM deployment")
        .fetch_one(conn)
        .await
}
