//! What a login decision reads when the replica's memory is not in step, in one round trip:
//! the instance a host (or id) names, the user's grant on it, and the role of an unbound
//! invitation to the user's email.

use sqlx::PgConnection;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LoginRow {
    pub instance_id: String,
    pub owner: String,
    pub status: String,
    /// The role of the user's own grant.
    pub granted: Option<String>,
    /// The role of the unbound invitation to the email, if the user has no grant of their own.
    pub invited: Option<String>,
}

/// The instance `instance_id` names, or else the one `host` belongs to; None for neither.
pub async fn facts(
    conn: &mut PgConnection,
    instance_id: Option<&str>,
    host: Option<&str>,
    user_id: &str,
    email: Option<&str>,
) -> sqlx::Result<Option<LoginRow>> {
    sqlx::query_as(
        "SELECT i.id AS instance_id, i.owner, i.status, g.role AS granted, inv.role AS invited \
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
    .await
}
