//! What every replica's roster holds (see `grants::roster`): instances with their version,
//! status, owner and hosts; grants by instance.

use futures_util::TryStreamExt;
use sqlx::PgConnection;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FactsRow {
    pub id: String,
    pub version: i64,
    pub status: String,
    pub owner: String,
    pub hosts: Vec<String>,
}

/// These instances (every instance for None), with their hosts.
pub async fn facts(conn: &mut PgConnection, ids: Option<&[String]>) -> sqlx::Result<Vec<FactsRow>> {
    // Two statements, so that the one for a few ids plans with the primary key.
    const SELECT: &str = "SELECT i.id, i.version, i.status, i.owner, \
            COALESCE(array_agg(d.hostname) FILTER (WHERE d.hostname IS NOT NULL), '{}') AS hosts \
         FROM instances i LEFT JOIN domains d ON d.instance_id = i.id";
    match ids {
        None => {
            sqlx::query_as(&format!("{SELECT} GROUP BY i.id"))
                .fetch_all(conn)
                .await
        }
        Some(ids) => {
            sqlx::query_as(&format!("{SELECT} WHERE i.id = ANY($1) GROUP BY i.id"))
                .bind(ids)
                .fetch_all(conn)
                .await
        }
    }
}

/// One grant: a user's (`user_id`) or an unbound invitation's (`email`).
#[derive(Debug, sqlx::FromRow)]
pub struct GrantRow {
    pub instance_id: String,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub role: String,
}

/// Every grant, each handed to `each` as it arrives (there may be millions).
pub async fn each_grant(
    conn: &mut PgConnection,
    mut each: impl FnMut(GrantRow),
) -> sqlx::Result<()> {
    let mut rows =
        sqlx::query_as::<_, GrantRow>("SELECT instance_id, user_id, email, role FROM grants")
            .fetch(conn);
    while let Some(row) = rows.try_next().await? {
        each(row);
    }
    Ok(())
}

/// An instance's grants and their revision, read in one statement (one snapshot).
#[derive(Debug, sqlx::FromRow)]
pub struct GrantsOf {
    pub revision: i64,
    pub users: Vec<String>,
    pub user_roles: Vec<String>,
    pub emails: Vec<String>,
    pub email_roles: Vec<String>,
}

pub async fn grants_of(conn: &mut PgConnection, instance_id: &str) -> sqlx::Result<GrantsOf> {
    sqlx::query_as(
        "SELECT COALESCE((SELECT revision FROM grant_revisions WHERE instance_id = $1), 0) AS revision, \
                COALESCE(array_agg(user_id) FILTER (WHERE user_id IS NOT NULL), '{}') AS users, \
                COALESCE(array_agg(role) FILTER (WHERE user_id IS NOT NULL), '{}') AS user_roles, \
                COALESCE(array_agg(email) FILTER (WHERE user_id IS NULL), '{}') AS emails, \
                COALESCE(array_agg(role) FILTER (WHERE user_id IS NULL), '{}') AS email_roles \
         FROM grants WHERE instance_id = $1",
    )
    .bind(instance_id)
    .fetch_one(conn)
    .await
}
