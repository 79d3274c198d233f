//! The `last_logins` table: when each person last logged in to each instance.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LastLogin {
    pub user_id: String,
    pub email: Option<String>,
    pub at: DateTime<Utc>,
}

/// A login seen: instance, user, email, when.
pub type Seen = (String, String, Option<String>, DateTime<Utc>);

/// Records a batch of logins in one statement; an older time never replaces a newer one.
pub async fn record(conn: &mut PgConnection, seen: &[Seen]) -> sqlx::Result<()> {
    let (mut instances, mut users, mut emails, mut ats) = (vec![], vec![], vec![], vec![]);
    for (i, u, e, at) in seen {
        instances.push(i.as_str());
        users.push(u.as_str());
        emails.push(e.as_deref());
        ats.push(*at);
    }
    // Instances deleted meanwhile (the row would violate the foreign key) are skipped.
    sqlx::query(
        "INSERT INTO last_logins (instance_id, user_id, email, at) \
         SELECT s.i, s.u, s.e, s.at FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS s(i, u, e, at) \
         JOIN instances ON instances.id = s.i \
         ON CONFLICT (instance_id, user_id) DO UPDATE \
         SET at = greatest(last_logins.at, excluded.at), email = coalesce(excluded.email, last_logins.email)",
    )
    .bind(&instances)
    .bind(&users)
    .bind(&emails)
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
    sqlx::query_as("SELECT user_id, email, at FROM last_logins WHERE instance_id = $1")
        .bind(instance_id)
        .fetch_all(conn)
        .await
}
