//! The login relay's transactions and refresh-token bindings (`relay_transactions`,
//! `relay_refresh_tokens`). Every key is a SHA-256 hash; each stage of a transaction is taken
//! by one atomic `UPDATE … WHERE <stage> IS NULL`, so it happens at most once whatever the
//! replica or the race.
//!
//! The writes of the relay's hops (a transaction begun, come back, its code exchanged, a
//! refresh token bound or used) commit without waiting for the write-ahead log to reach the
//! disk (`unflushed!`): each is one statement on a pool's connection, its own transaction, and
//! a Postgres crash can forget the last fraction of a second of them. Every such loss fails
//! closed — a login or a refresh is refused and begun again — and none opens a door: the
//! tenant's codes and refresh tokens are single-use on their own, and the Action's decision
//! ([`decide`]), which keeps a transaction's handle from serving two logins, still waits for
//! the disk (docs/relay.md, "What the relay stores"). The hops are in every relayed login's
//! path; the flush was half of the authorize hop's time.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};

/// A one-row `FROM` item that turns `synchronous_commit` off for the statement's own
/// (implicit) transaction: the commit does not wait for the log's flush. Only for statements
/// sent alone on a pool (these functions take one), never inside a transaction that also
/// writes what must not be lost.
macro_rules! unflushed {
    () => {
        "(SELECT set_config('synchronous_commit', 'off', true)) AS unflushed"
    };
}

/// A transaction as a stage took it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Transaction {
    pub instance_id: String,
    pub return_to: String,
    pub state: Option<String>,
    pub response_mode: String,
}

pub struct NewTransaction<'a> {
    pub handle_hash: &'a [u8],
    pub kind: &'a str,
    pub instance_id: &'a str,
    pub return_to: &'a str,
    pub state: Option<&'a str>,
    pub response_mode: &'a str,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(db: &PgPool, t: &NewTransaction<'_>) -> sqlx::Result<()> {
    sqlx::query(concat!(
        "INSERT INTO relay_transactions \
           (handle_hash, kind, instance_id, return_to, state, response_mode, expires_at) \
         SELECT $1, $2, $3, $4, $5, $6, $7 FROM ",
        unflushed!()
    ))
    .bind(t.handle_hash)
    .bind(t.kind)
    .bind(t.instance_id)
    .bind(t.return_to)
    .bind(t.state)
    .bind(t.response_mode)
    .bind(t.expires_at)
    .execute(db)
    .await
    .map(drop)
}

/// The Action's decision takes a login or refresh transaction, once.
pub async fn decide(db: impl PgExecutor<'_>, handle_hash: &[u8]) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "UPDATE relay_transactions SET decided_at = now() \
         WHERE handle_hash = $1 AND kind IN ('login', 'refresh') \
           AND decided_at IS NULL AND expires_at > now() \
         RETURNING instance_id",
    )
    .bind(handle_hash)
    .fetch_optional(db)
    .await
}

/// The tenant's answer comes back to `/callback` (a login) or `/logged-out` (a logout), once.
/// A login's code, when the tenant issued one, is recorded (its hash) for its exchange, and
/// only for a login the Action has decided (a code cannot have been issued for one it has not)
/// and only if no other transaction holds that code.
pub async fn come_back(
    db: &PgPool,
    kind: &str,
    handle_hash: &[u8],
    code_hash: Option<&[u8]>,
) -> sqlx::Result<Option<Transaction>> {
    let taken = sqlx::query_as(concat!(
        "UPDATE relay_transactions SET returned_at = now(), code_hash = $3 FROM ",
        unflushed!(),
        " \
         WHERE handle_hash = $1 AND kind = $2 AND returned_at IS NULL AND expires_at > now() \
           AND ($3::bytea IS NULL OR (decided_at IS NOT NULL AND NOT EXISTS \
                (SELECT 1 FROM relay_transactions WHERE code_hash = $3))) \
         RETURNING instance_id, return_to, state, response_mode"
    ))
    .bind(handle_hash)
    .bind(kind)
    .bind(code_hash)
    .fetch_optional(db)
    .await;
    match taken {
        // The same code presented for two transactions at once: the second is refused.
        Err(sqlx::Error::Database(e))
            if e.constraint() == Some("relay_transactions_code_hash_key") =>
        {
            Ok(None)
        }
        other => other,
    }
}

/// A code is exchanged once, within `max_age_secs` of coming back.
pub async fn exchange(
    db: &PgPool,
    code_hash: &[u8],
    max_age_secs: i64,
) -> sqlx::Result<Option<Transaction>> {
    sqlx::query_as(concat!(
        "UPDATE relay_transactions SET exchanged_at = now() FROM ",
        unflushed!(),
        " \
         WHERE code_hash = $1 AND kind = 'login' AND exchanged_at IS NULL \
           AND returned_at > now() - make_interval(secs => $2) \
         RETURNING instance_id, return_to, state, response_mode"
    ))
    .bind(code_hash)
    .bind(max_age_secs as f64)
    .fetch_optional(db)
    .await
}

/// Records that a refresh token the relay handed out on `host` belongs to `instance_id`.
pub async fn bind_refresh_token(
    db: &PgPool,
    token_hash: &[u8],
    instance_id: &str,
    host: &str,
) -> sqlx::Result<()> {
    sqlx::query(concat!(
        "INSERT INTO relay_refresh_tokens (token_hash, instance_id, host) \
         SELECT $1, $2, $3 FROM ",
        unflushed!(),
        " \
         ON CONFLICT (token_hash) DO NOTHING"
    ))
    .bind(token_hash)
    .bind(instance_id)
    .bind(host)
    .execute(db)
    .await
    .map(drop)
}

/// Whom a refresh token the relay handed out belongs to.
#[derive(Debug, sqlx::FromRow)]
pub struct RefreshToken {
    pub instance_id: String,
    /// The host it was handed out on; `None` if recorded before hosts were.
    pub host: Option<String>,
}

/// The instance and host of a refresh token, if the relay handed it out and it was used within
/// `idle_secs` (its use is recorded).
pub async fn refresh_token(
    db: &PgPool,
    token_hash: &[u8],
    idle_secs: i64,
) -> sqlx::Result<Option<RefreshToken>> {
    sqlx::query_as(concat!(
        "UPDATE relay_refresh_tokens SET last_used_at = now() FROM ",
        unflushed!(),
        " \
         WHERE token_hash = $1 AND last_used_at > now() - make_interval(secs => $2) \
         RETURNING instance_id, host"
    ))
    .bind(token_hash)
    .bind(idle_secs as f64)
    .fetch_optional(db)
    .await
}

/// Forgets the refresh tokens the relay handed out for an instance (deleted, or given to
/// another owner: nothing its earlier users held may come back to its next owner).
pub async fn forget_refresh_tokens(
    db: impl PgExecutor<'_>,
    instance_id: &str,
) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM relay_refresh_tokens WHERE instance_id = $1")
        .bind(instance_id)
        .execute(db)
        .await
        .map(|r| r.rows_affected())
}

/// Forgets transactions that expired an hour ago and bindings idle for `idle_secs`; answers
/// how many rows went.
pub async fn sweep(db: impl PgExecutor<'_> + Copy, idle_secs: i64) -> sqlx::Result<u64> {
    let transactions =
        sqlx::query("DELETE FROM relay_transactions WHERE expires_at < now() - interval '1 hour'")
            .execute(db)
            .await?
            .rows_affected();
    let tokens = sqlx::query(
        "DELETE FROM relay_refresh_tokens WHERE last_used_at < now() - make_interval(secs => $1)",
    )
    .bind(idle_secs as f64)
    .execute(db)
    .await?
    .rows_affected();
    Ok(transactions + tokens)
}

/// The instance a host belongs to, with its status.
pub async fn instance_of_host(
    db: impl PgExecutor<'_>,
    host: &str,
) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as(
        "SELECT i.id, i.status FROM domains d JOIN instances i ON i.id = d.instance_id \
         WHERE d.hostname = $1",
    )
    .bind(host)
    .fetch_optional(db)
    .await
}
