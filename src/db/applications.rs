//! The pool of applications and the instances' assignments to them.

use std::collections::HashMap;

use sqlx::PgConnection;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Application {
    pub client_id: String,
    pub name: String,
    pub origin: String,
}

/// Records the primary application (`AUTH0_SPA_CLIENT_ID`); one named before it (the setting
/// changed, e.g. to replace a deleted application) stays in the pool as a registered one.
pub async fn ensure_primary(conn: &mut PgConnection, client_id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE applications SET origin = 'registered' WHERE origin = 'primary' AND client_id <> $1",
    )
    .bind(client_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO applications (client_id, name, origin) VALUES ($1, 'primary', 'primary') ON CONFLICT (client_id) DO UPDATE SET origin = 'primary'")
        .bind(client_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn add(
    conn: &mut PgConnection,
    client_id: &str,
    name: &str,
    origin: &str,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO applications (client_id, name, origin) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(client_id)
        .bind(name)
        .bind(origin)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records, before asking Auth0, that an application marked `mark` is being created.
pub async fn begin_creation(conn: &mut PgConnection, mark: &str) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO application_creations (mark) VALUES ($1)")
        .bind(mark)
        .execute(conn)
        .await?;
    Ok(())
}

/// The application made by creation `mark` joins the pool; the creation is settled (one
/// statement, so both or neither).
pub async fn created(conn: &mut PgConnection, mark: &str, client_id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "WITH settled AS (DELETE FROM application_creations WHERE mark = $1) \
         INSERT INTO applications (client_id, name, origin) \
         VALUES ($2, 'created by fleetgate', 'created') ON CONFLICT DO NOTHING",
    )
    .bind(mark)
    .bind(client_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Creation `mark` surely made nothing.
pub async fn forget_creation(conn: &mut PgConnection, mark: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM application_creations WHERE mark = $1")
        .bind(mark)
        .execute(conn)
        .await?;
    Ok(())
}

/// Creations not settled yet, with how many seconds ago they were asked for.
pub async fn unsettled_creations(conn: &mut PgConnection) -> sqlx::Result<Vec<(String, f64)>> {
    sqlx::query_as(
        "SELECT mark, extract(epoch FROM now() - requested_at)::float8 \
         FROM application_creations ORDER BY requested_at",
    )
    .fetch_all(conn)
    .await
}

/// The pool, primary first, then in the order applications joined.
pub async fn pool(conn: &mut PgConnection) -> sqlx::Result<Vec<Application>> {
    sqlx::query_as("SELECT client_id, name, origin FROM applications ORDER BY (origin = 'primary') DESC, position")
        .fetch_all(conn)
        .await
}

/// Instance id → client id.
pub async fn assignments(conn: &mut PgConnection) -> sqlx::Result<HashMap<String, String>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT instance_id, client_id FROM assignments")
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().collect())
}

/// Client id → how many instances are placed on it.
pub async fn instance_counts(conn: &mut PgConnection) -> sqlx::Result<HashMap<String, i64>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT client_id, count(*) FROM assignments GROUP BY client_id")
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().collect())
}

pub async fn assignment(
    conn: &mut PgConnection,
    instance_id: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT client_id FROM assignments WHERE instance_id = $1")
        .bind(instance_id)
        .fetch_optional(conn)
        .await
}

/// Moves an instance from `from` (None: it had no application) to `to`, only if its
/// assignment is still `from`: a pass that surveyed earlier never overwrites an admin's move
/// made meanwhile. True when it wrote.
pub async fn reassign(
    conn: &mut PgConnection,
    instance_id: &str,
    from: Option<&str>,
    to: &str,
) -> sqlx::Result<bool> {
    let done = match from {
        None => {
            sqlx::query(
                "INSERT INTO assignments (instance_id, client_id) VALUES ($1, $2) \
                 ON CONFLICT (instance_id) DO NOTHING",
            )
            .bind(instance_id)
            .bind(to)
            .execute(conn)
            .await?
        }
        Some(from) => {
            sqlx::query(
                "UPDATE assignments SET client_id = $3, assigned_at = now() \
                 WHERE instance_id = $1 AND client_id = $2",
            )
            .bind(instance_id)
            .bind(from)
            .bind(to)
            .execute(conn)
            .await?
        }
    };
    Ok(done.rows_affected() == 1)
}

pub async fn assign(
    conn: &mut PgConnection,
    instance_id: &str,
    client_id: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO assignments (instance_id, client_id) VALUES ($1, $2) \
         ON CONFLICT (instance_id) DO UPDATE SET client_id = EXCLUDED.client_id, assigned_at = now() \
         WHERE assignments.client_id <> EXCLUDED.client_id",
    )
    .bind(instance_id)
    .bind(client_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes every instance off an application (one that no longer exists); answers how many.
pub async fn unassign_all(conn: &mut PgConnection, client_id: &str) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM assignments WHERE client_id = $1")
        .bind(client_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Takes an instance off its application: the next pass places it afresh.
pub async fn unassign(conn: &mut PgConnection, instance_id: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM assignments WHERE instance_id = $1")
        .bind(instance_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Frees the slots of instances that are deleted, only while they still are: the row lock
/// waits for a redeploy in flight and re-reads its outcome, so an instance redeployed after a
/// pass saw it deleted keeps its application (it is configured with that client id).
pub async fn unassign_deleted(
    conn: &mut PgConnection,
    instance_ids: &[String],
) -> sqlx::Result<()> {
    sqlx::query(
        "DELETE FROM assignments WHERE instance_id IN \
         (SELECT i.id FROM instances i JOIN assignments a ON a.instance_id = i.id \
          WHERE i.id = ANY($1) AND i.status = 'deleted' FOR SHARE OF i)",
    )
    .bind(instance_ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes an application from the pool with what fleetgate recorded about it. The caller
/// checks first that no instance is assigned to it.
pub async fn remove(conn: &mut PgConnection, client_id: &str) -> sqlx::Result<bool> {
    sqlx::query("DELETE FROM allowlist_entries WHERE client_id = $1")
        .bind(client_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM allowlist_snapshots WHERE client_id = $1")
        .bind(client_id)
        .execute(&mut *conn)
        .await?;
    let done = sqlx::query("DELETE FROM applications WHERE client_id = $1 AND origin <> 'primary'")
        .bind(client_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn count_assigned(conn: &mut PgConnection, client_id: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM assignments WHERE client_id = $1")
        .bind(client_id)
        .fetch_one(conn)
        .await
}

/// Wakes the reconciler (assignments are not registry tables, so no trigger does).
pub async fn notify(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify('fleetgate_registry', 'assignments')")
        .execute(conn)
        .await?;
    Ok(())
}
