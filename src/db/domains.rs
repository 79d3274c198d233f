//! The `domains` table. A host is its own key, so one host belongs to at most one instance.

use sqlx::PgConnection;

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

/// Claims these hosts (with their kinds, in the same order) for an instance, skipping any
/// another instance holds (after waiting for a concurrent claim to commit or roll back);
/// answers how many it claimed.
pub async fn claim(
    conn: &mut PgConnection,
    instance_id: &str,
    hostnames: &[String],
    kinds: &[&str],
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "INSERT INTO domains (hostname, instance_id, kind) \
         SELECT h, $1, k FROM UNNEST($2::text[], $3::text[]) AS t(h, k) \
         ON CONFLICT ON CONSTRAINT domains_hostname_key DO NOTHING",
    )
    .bind(instance_id)
    .bind(hostnames)
    .bind(kinds)
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
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
