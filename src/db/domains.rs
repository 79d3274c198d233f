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

/// In one statement: releases `removed` hosts of an instance and claims `added` ones (with their
/// kinds, in the same order) skipping any another instance holds (after waiting for a
/// concurrent claim to commit or roll back). Any change of domains marks its instance as changed
/// (`updated_at`, and so its `version`: the `instance_versions` migration's triggers). Answers
/// how many hosts it claimed.
pub async fn change(
    conn: &mut PgConnection,
    instance_id: &str,
    removed: &[String],
    added: &[String],
    kinds: &[&str],
) -> sqlx::Result<u64> {
    sqlx::query_scalar::<_, i64>(
        "WITH released AS (DELETE FROM domains WHERE instance_id = $1 AND hostname = ANY($2)), \
              claimed AS (INSERT INTO domains (hostname, instance_id, kind) \
                          SELECT h, $1, k FROM UNNEST($3::text[], $4::text[]) AS t(h, k) \
                          ON CONFLICT ON CONSTRAINT domains_hostname_key DO NOTHING RETURNING 1) \
         SELECT count(*) FROM claimed",
    )
    .bind(instance_id)
    .bind(removed)
    .bind(added)
    .bind(kinds)
    .fetch_one(conn)
    .await
    .map(|n| n as u64)
}
