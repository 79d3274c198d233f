//! The `instances` table.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::domains::DomainRow;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InstanceRow {
    pub id: String,
    pub owner: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Moves on every write of the row (see the `instance_versions` migration).
    pub version: i64,
}

const COLUMNS: &str = "id, owner, status, created_at, updated_at, version";

/// Inserts an instance unless one with that id exists: the new row (which this transaction
/// holds until it ends, as [`lock`] would), or None when the id was taken.
pub async fn insert_if_absent(
    conn: &mut PgConnection,
    id: &str,
    owner: &str,
) -> sqlx::Result<Option<InstanceRow>> {
    sqlx::query_as(&format!(
        "INSERT INTO instances (id, owner) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(owner)
    .fetch_optional(conn)
    .await
}

/// Reads an instance and locks its row until the transaction ends: writers of one instance
/// are serialised.
pub async fn lock(conn: &mut PgConnection, id: &str) -> sqlx::Result<Option<InstanceRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM instances WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn get(conn: &mut PgConnection, id: &str) -> sqlx::Result<Option<InstanceRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM instances WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// An instance with its domains, ordered by host (byte order, as Rust sorts strings).
#[derive(Debug)]
pub struct Stored {
    pub row: InstanceRow,
    pub domains: Vec<DomainRow>,
    /// Whether the instance holds a live key.
    pub keyed: bool,
}

/// An instance with its domains and whether it holds a live key, in one round trip; with
/// `lock`, its row is locked until the transaction ends, as [`lock`] does.
pub async fn with_domains(
    conn: &mut PgConnection,
    id: &str,
    lock: bool,
) -> sqlx::Result<Option<Stored>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        instance: InstanceRow,
        hosts: Vec<String>,
        kinds: Vec<String>,
        keyed: bool,
    }
    let row: Option<Row> = sqlx::query_as(if lock {
        WITH_DOMAINS_LOCKED
    } else {
        WITH_DOMAINS
    })
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| {
        let domains = r
            .hosts
            .into_iter()
            .zip(r.kinds)
            .map(|(hostname, kind)| DomainRow {
                hostname,
                instance_id: r.instance.id.clone(),
                kind,
            })
            .collect();
        Stored {
            row: r.instance,
            domains,
            keyed: r.keyed,
        }
    }))
}

/// One instance's row, its hosts and kinds in hosts' byte order (`COLLATE "C"`, whatever the
/// database's collation), and whether a live key exists (a key's liveness as `keys` reads it).
macro_rules! with_domains_sql {
    () => {
        "SELECT i.id, i.owner, i.status, i.created_at, i.updated_at, i.version, \
           COALESCE(d.hosts, '{}') AS hosts, COALESCE(d.kinds, '{}') AS kinds, \
           EXISTS (SELECT 1 FROM instance_keys k WHERE k.instance_id = i.id \
                   AND (k.expires_at IS NULL OR k.expires_at > now())) AS keyed \
         FROM instances i LEFT JOIN LATERAL ( \
           SELECT array_agg(hostname ORDER BY hostname COLLATE \"C\") AS hosts, \
                  array_agg(kind ORDER BY hostname COLLATE \"C\") AS kinds \
           FROM domains WHERE instance_id = i.id) d ON true"
    };
}
const WITH_DOMAINS: &str = concat!(with_domains_sql!(), " WHERE i.id = $1");
const WITH_DOMAINS_LOCKED: &str = concat!(with_domains_sql!(), " WHERE i.id = $1 FOR UPDATE OF i");

pub async fn update(
    conn: &mut PgConnection,
    id: &str,
    owner: &str,
    status: &str,
) -> sqlx::Result<InstanceRow> {
    sqlx::query_as(&format!(
        "UPDATE instances SET owner = $2, status = $3, \
         updated_at = CASE WHEN owner = $2 AND status = $3 THEN updated_at ELSE now() END \
         WHERE id = $1 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(owner)
    .bind(status)
    .fetch_one(conn)
    .await
}

#[derive(Debug, Default)]
pub struct ListFilter<'a> {
    pub status: Option<&'a str>,
    pub host: Option<&'a str>,
    pub after_id: Option<&'a str>,
    pub limit: i64,
}

/// One page of instances ordered by id, after `after_id`.
pub async fn list(conn: &mut PgConnection, f: &ListFilter<'_>) -> sqlx::Result<Vec<InstanceRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM instances i \
         WHERE ($1::text IS NULL OR status = $1) \
           AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM domains d WHERE d.instance_id = i.id AND d.hostname = $2)) \
           AND ($3::text IS NULL OR id > $3) \
         ORDER BY id LIMIT $4"
    ))
    .bind(f.status)
    .bind(f.host)
    .bind(f.after_id)
    .bind(f.limit)
    .fetch_all(conn)
    .await
}

/// Every instance, ordered by id (the reconciler's input).
pub async fn all(conn: &mut PgConnection) -> sqlx::Result<Vec<InstanceRow>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM instances ORDER BY id"))
        .fetch_all(conn)
        .await
}

/// The instances placed on an application of the pool, ordered by id.
pub async fn assigned(conn: &mut PgConnection) -> sqlx::Result<Vec<InstanceRow>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM instances WHERE id IN (SELECT instance_id FROM assignments) ORDER BY id"
    ))
    .fetch_all(conn)
    .await
}
