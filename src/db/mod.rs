//! Postgres access: the pool and one module per table group (migrations: `startup::migrate`).
//! Query functions take a connection (usually a transaction the caller owns).

pub mod applications;
pub mod audit;
pub mod deployment;
pub mod domains;
pub mod events;
pub mod grants;
pub mod instances;
pub mod keys;
pub mod last_logins;
pub mod locks;
pub mod logins;
pub mod reconcile;
pub mod relay;
pub mod roster;
pub mod unsynced;
pub mod webhooks;

use std::time::Duration;

use sqlx::{PgPool, postgres::PgPoolOptions};

/// How long a pooled connection may sit idle before it is checked on its next use.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// A pool that connects on first use, so the service starts (and reports not ready) while
/// Postgres is away, and recovers by itself when it returns.
pub fn pool(database_url: &str, max_connections: u32) -> anyhow::Result<PgPool> {
    let options = database_url
        .parse::<sqlx::postgres::PgConnectOptions>()
        .map_err(|e| {
            anyhow::anyhow!(
                "DATABASE_URL is not a valid Postgres URL: {}",
                redact(&e.to_string())
            )
        })?;
    Ok(pool_options(max_connections).connect_lazy_with(options))
}

/// A pool of its own for one HTTP worker, to the database `like` connects to, holding at most
/// `max_connections`. Create it on the worker's thread: a connection answers through the
/// runtime it was opened on, and a worker using a connection another runtime opened is woken
/// by that runtime's thread for each answer (a second thread switch per round trip: with one
/// shared pool, deploy hooks cost about 40 % more processor time; `bench/run deploy_hook`
/// prints the time per hook by thread).
pub fn worker_pool(like: &PgPool, max_connections: u32) -> PgPool {
    pool_options(max_connections).connect_lazy_with((*like.connect_options()).clone())
}

fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(3))
        // A connection in steady use is not pinged before each use (a round trip added to
        // every request that reads the database); one that sat idle for a while is, so that
        // after a database restart stale connections are found and replaced, not handed out.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_AFTER_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// Opens the pool's connections now, all at once, and puts them back idle: otherwise the first
/// burst of requests after a start opens them (a Postgres process each, forked and set up
/// while those requests wait), which made the first second of deploy hooks after a start the
/// slowest of all. At most a second, and best effort: a database that is away is waited for by
/// the requests themselves, as before.
pub async fn warm(pool: PgPool) {
    let opening = futures_util::future::join_all(
        (0..pool.options().get_max_connections()).map(|_| pool.acquire()),
    );
    if let Ok(opened) = tokio::time::timeout(Duration::from_secs(1), opening).await {
        let failed = opened.iter().filter(|c| c.is_err()).count();
        if failed > 0 {
            tracing::debug!(
                failed,
                "not every database connection could be opened ahead"
            );
        }
    }
}

/// The name of the constraint a statement violated, if that is what went wrong.
pub fn violated_constraint(err: &sqlx::Error) -> Option<&str> {
    match err {
        sqlx::Error::Database(db) => db.constraint(),
        _ => None,
    }
}

/// Connection-string parse errors may quote the URL; never let a password through.
fn redact(message: &str) -> String {
    message
        .split_whitespace()
        .map(|w| {
            if w.contains('@') || w.contains("://") {
                "<redacted>"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
