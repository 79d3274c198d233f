//! The `last_logins` table: when each person last logged in to each instance.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LastLogin {
    pub user_id: String,
    pub email: Option<String>,
    pub connection: Option<String>,
    pub at: DateTime<Utc>,
}

/// A login seen: instance, user, email, connection, when.
pub type Seen = (
    String,
    String,
    Option<String>,
    Option<String>,
    DateTime<Utc>,
);

/// Records a batch of logins in one statement; an older time never replaces a newer one.
pub async fn record(conn: &mut PgConnection, seen: &[Seen]) -> sqlx::Result<()> {
    let (mut instances, mut users, mut emails, mut connections, mut ats) =
        (vec![], vec![], vec![], vec![], vec![]);
    for (i, u, e, c, at) in seen {
        instances.push(i.as_str());
        users.push(u.as_str());
        emails.push(e.as_deref());
        connections.push(c.as_deref());
        ats.push(*at);
    }
    // Instances deleted meanwhile (the row would violate the foreign key) are skipped.
    sqlx::query(
        "INSERT INTO last_logins (instance_id, user_id, email, connection, at) \
         SELECT s.i, s.u, s.e, s.c, s.at \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[]) AS s(i, u, e, c, at) \
         JOIN instances ON instances.id = s.i \
         ON CONFLICT (instance_id, user_id) DO UPDATE \
         SET at = greatest(last_logins.at, excluded.at), email = coalesce(excluded.email, last_logins.email), \
             connection = coalesce(excluded.connection, last_logins.connection)",
    )
    .bind(&instances)
    .bind(&users)
    .bind(&emails)
    .bind(&connections)
    .bind(&ats)
    .execute(conn)
    .await?;
    Ok(())
}

/// Every recorded login of one instance.
pub async fn of_instance(
    conn: &mut PgConnection,
    instance_id: &str,
) -> sqlx::Result<Vec<LastLogin>> {
    sqlx::query_as("SELECT user_id, email, connection, at FROM last_logins WHERE instance_id = $1")
        .bind(instance_id)
        .fetch_all(conn)
        .await
}
