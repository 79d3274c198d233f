//! What a login decision reads, in one round trip: the instance a host (or id) names, the
//! user's grant on it, and an unbound invitation to the user's email.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::grant::Grant;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRow {
    pub instance_id: String,
    pub owner: String,
    pub status: String,
    /// The role of the user's own grant.
    pub granted: Option<String>,
    /// The unbound invitation to the email, if the user has no grant of their own.
    pub invitation: Option<Grant>,
}

#[derive(sqlx::FromRow)]
struct Row {
    instance_id: String,
    owner: String,
    status: String,
    granted: Option<String>,
    inv_id: Option<Uuid>,
    inv_email: Option<String>,
    inv_role: Option<String>,
    inv_created_at: Option<DateTime<Utc>>,
    inv_updated_at: Option<DateTime<Utc>>,
}

/// The instance `instance_id` names, or else the one `host` belongs to; None for neither.
pub async fn facts(
    conn: &mut PgConnection,
    instance_id: Option<&str>,
    host: Option<&str>,
    user_id: &str,
    email: Option<&str>,
) -> sqlx::Result<Option<LoginRow>> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT i.id AS instance_id, i.owner, i.status, g.role AS granted, \
                inv.id AS inv_id, inv.email AS inv_email, inv.role AS inv_role, \
                inv.created_at AS inv_created_at, inv.updated_at AS inv_updated_at \
         FROM instances i \
         LEFT JOIN grants g ON g.instance_id = i.id AND g.user_id = $3 \
         LEFT JOIN grants inv ON inv.instance_id = i.id AND inv.email = $4 \
                              AND inv.user_id IS NULL AND g.role IS NULL \
         WHERE i.id = COALESCE($1, (SELECT instance_id FROM domains WHERE hostname = $2))",
    )
    .bind(instance_id)
    .bind(host)
    .bind(user_id)
    .bind(email)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| LoginRow {
        instance_id: r.instance_id,
        owner: r.owner,
        status: r.status,
        granted: r.granted,
        invitation: match (r.inv_id, r.inv_role, r.inv_created_at, r.inv_updated_at) {
            (Some(id), Some(role), Some(created_at), Some(updated_at)) => Some(Grant {
                id,
                user_id: None,
                email: r.inv_email,
                role,
                created_at,
                updated_at,
                bound_at: None,
            }),
            _ => None,
        },
    }))
}
