//! Instance keys: how an instance's API proves it is that instance when it polls its grants.
//!
//! A key is `fgi_` + 32 random bytes (`secret`), shown once when issued and stored only as its
//! hash. Every replica holds the live hashes in memory (`cache`), reloaded by
//! `grants::listener` and refreshed here at once after a change on this replica. Keys are
//! issued by the first deploy, rotated by the owner or an admin (the old ones kept for a grace
//! period or revoked), and revoked when the instance is deleted or changes owner.

mod cache;
mod commands;
mod secret;

use secrecy::SecretString;
use sqlx::PgConnection;

pub use cache::{KeyCache, Lookup};
pub use commands::{Keys, Rotated};
pub use secret::{KeyHash, PREFIX, generate, hash, looks_like_key, well_formed};

use crate::{db, domain::InstanceUnavailable};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Instance(#[from] InstanceUnavailable),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Issues a new key for the instance (stored as its hash, with who minted it) and answers it:
/// the only time it is ever seen.
pub async fn issue(
    conn: &mut PgConnection,
    instance_id: &str,
    minted_by: &str,
) -> sqlx::Result<SecretString> {
    let (key, hash) = generate();
    db::keys::insert(conn, instance_id, &hash, minted_by).await?;
    Ok(key)
}

/// Issues a key unless the instance has a live one (its first deploy, the first after a
/// deletion or after a new owner).
pub async fn issue_if_none(
    conn: &mut PgConnection,
    instance_id: &str,
    minted_by: &str,
) -> sqlx::Result<Option<SecretString>> {
    let (key, hash) = generate();
    let issued = db::keys::insert_unless_live(conn, instance_id, &hash, minted_by).await?;
    Ok(issued.then_some(key))
}

/// Forgets every key of the instance: they stop working at once (deletion, a new owner).
pub async fn revoke_all(conn: &mut PgConnection, instance_id: &str) -> sqlx::Result<()> {
    db::keys::revoke_all(conn, instance_id).await
}

/// Reloads every live key into `cache` and marks it in step (after a (re)connection).
pub async fn reload(conn: &mut PgConnection, cache: &KeyCache) -> sqlx::Result<()> {
    cache.replace_all(db::keys::live(conn, None).await?);
    Ok(())
}

/// Reloads one instance's keys into `cache` (after a notification or a change here).
pub async fn refresh(
    conn: &mut PgConnection,
    cache: &KeyCache,
    instance_id: &str,
) -> sqlx::Result<()> {
    cache.replace_instance(instance_id, db::keys::live(conn, Some(instance_id)).await?);
    Ok(())
}
