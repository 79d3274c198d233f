//! The `deployment` table: this deployment's identity (one row, made by its migration).

use sqlx::PgConnection;

/// This deployment's id.
pub async fn id(conn: &mut PgConnection) -> sqlx::Result<uuid::Uuid> {
    sqlx::query_scalar("SELECT id FROM deployment")
        .fetch_one(conn)
        .await
}

/// Where this database's rows are written now: `system identifier:timeline:database oid:table
/// oid`. The timeline is the current WAL file's (a promoted replica writes a new one at once;
/// the last checkpoint's would lag until the next checkpoint); the `deployment` table's own oid
/// changes when a dump is restored over the same database (`pg_restore --clean` makes it anew).
pub async fn lineage_now(conn: &mut PgConnection) -> sqlx::Result<String> {
    sqlx::query_scalar(
        "SELECT s.system_identifier::text || ':' \
                || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) || ':' || d.oid::text \
                || ':' || 'deployment'::regclass::oid::text \
         FROM pg_control_system() s, pg_database d WHERE d.datname = current_database()",
    )
    .fetch_one(conn)
    .await
}

/// The lineage recorded last, locking the row until the transaction ends.
pub async fn lineage_for_update(conn: &mut PgConnection) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT lineage FROM deployment FOR UPDATE")
        .fetch_one(conn)
        .await
}

pub async fn set_lineage(conn: &mut PgConnection, lineage: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE deployment SET lineage = $1")
        .bind(lineage)
        .execute(conn)
        .await?;
    Ok(())
}

/// Gives this database a deployment id of its own (a copy of another deployment's); answers it.
pub async fn renew(conn: &mut PgConnection) -> sqlx::Result<uuid::Uuid> {
    sqlx::query_scalar("UPDATE deployment SET id = gen_random_uuid() RETURNING id")
        .fetch_one(conn)
        .await
}
