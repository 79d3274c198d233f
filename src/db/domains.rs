//! The `domains` table. A host is its own key, so one host belongs to at most one instance.

use sqlx::PgConnection;

/// The constraint that keeps a host with one instance.
pub const HOSTNAME_KEY: &str = "domains_hostname_key";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DomainRow {
    pub hostname: String,
    pub instance_id: String,
    pub kind: String,
}

/// The domains of these instances, ordered by instance then host.
pub async fn of_instances(conn: &mut PgConnection, ids: &[String]) -> sqlx::Result<Vec<DomainRow>> {
    sqlx::query_as(
        "SELECT hostname, instance_id, kind FROM domains WHERE instance_id = ANY($1) ORDER BY instance_id, hostname",
    )
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Which of these hosts belong to an instance other than `instance_id`, and to which.
pub async fn held_by_others(
    conn: &mut PgConnection,
    instance_id: &str,
    hosts: &[String],
) -> sqlx::Result<Vec<DomainRow>> {
    sqlx::query_as(
        "SELECT hostname, instance_id, kind FROM domains WHERE hostname = ANY($1) AND instance_id <> $2 ORDER BY hostname",
    )
    .bind(hosts)
    .bind(instance_id)
    .fetch_all(conn)
    .await
}

pub async fn insert(
    conn: &mut PgConnection,
    instance_id: &str,
    hostname: &str,
    kind: &str,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO domains (hostname, instance_id, kind) VALUES ($1, $2, $3)")
        .bind(hostname)
        .bind(instance_id)
        .bind(kind)
        .execute(conn)
        .await?;
    Ok(())
}

/// Releases these hosts of an instance.
pub async fn delete(
    conn: &mut PgConnection,
    instance_id: &str,
    hosts: &[String],
) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM domains WHERE instance_id = $1 AND hostname = ANY($2)")
        .bind(instance_id)
        .bind(hosts)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
