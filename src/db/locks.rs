//! Advisory locks that say which replica does a job alone (reconciling, delivering events).

use sqlx::{Connection, PgConnection, PgPool};

/// Tries to take advisory lock `key` on `conn`, a connection of its own (opened first if
/// needed) so that the lock dies with this process. The connection is named for this replica
/// (unless `DATABASE_URL` names it), so that whoever reads the lock (`GET
/// /v1/reconcile/status`) can tell which replica holds it.
pub async fn try_lock(
    pool: &PgPool,
    conn: &mut Option<PgConnection>,
    key: i64,
) -> sqlx::Result<bool> {
    if conn.is_none() {
        let mut options = (*pool.connect_options()).clone();
        if options.get_application_name().is_none() {
            options = options.application_name(&replica_name());
        }
        *conn = Some(PgConnection::connect_with(&options).await?);
    }
    let c = conn.as_mut().expect("connected above");
    sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(c)
        .await
}

/// `fleetgate@{host} pid {pid}`: this replica, as a lock's holder shows it.
fn replica_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned());
    format!("fleetgate@{host} pid {}", std::process::id())
}
