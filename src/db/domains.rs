//! The `domains` table. A host is its own key, so one host belongs to at most one instance.

use chrono::{DateTime, Utc};
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
        "SELECT hostname, instance_id, kind FROM domains WHERE instance_id = ANY($1) ORDER BY instance_id, hostname COLLATE \"C\"",
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

/// What [`change`] did.
#[derive(Debug, Clone, Copy)]
pub struct Changed {
    /// How many of the added hosts it claimed.
    pub claimed: u64,
    /// The instance's row as the change touched it.
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// In one statement: releases `removed` hosts of an instance and claims `added` ones (with their
/// kinds, in the same order) skipping any another instance holds (after waiting for a
/// concurrent claim to commit or roll back), forgets the refresh tokens the login relay handed
/// out on the released hosts (whoever is given a host next can read what browsers kept there),
/// and touches the instance's row (`updated_at`, and so its `version`: the `instance_versions`
/// migration, whose triggers do the same for changes written by hand). The instance's row must
/// be locked by this transaction.
pub async fn change(
    conn: &mut PgConnection,
    instance_id: &str,
    removed: &[String],
    added: &[String],
    kinds: &[&str],
) -> sqlx::Result<Changed> {
    let (claimed, updated_at, version): (i64, DateTime<Utc>, i64) = sqlx::query_as(
        "WITH released AS (DELETE FROM domains WHERE instance_id = $1 AND hostname = ANY($2)), \
              forgotten AS (DELETE FROM relay_refresh_tokens \
                            WHERE instance_id = $1 AND host = ANY($2)), \
              claimed AS (INSERT INTO domains (hostname, instance_id, kind) \
                          SELECT h, $1, k FROM UNNEST($3::text[], $4::text[]) AS t(h, k) \
                          ON CONFLICT ON CONSTRAINT domains_hostname_key DO NOTHING RETURNING 1), \
              touched AS (UPDATE instances SET updated_at = now() WHERE id = $1 \
                          RETURNING updated_at, version) \
         SELECT (SELECT count(*) FROM claimed), updated_at, version FROM touched",
    )
    .bind(instance_id)
    .bind(removed)
    .bind(added)
    .bind(kinds)
    .fetch_one(conn)
    .await?;
    Ok(Changed {
        claimed: claimed as u64,
        updated_at,
        version,
    })
}
