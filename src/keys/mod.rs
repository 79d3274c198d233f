//! Instance keys: how an instance's API proves it is that instance when it polls its grants.
//!
//! A key is `fgi_` + 32 random bytes (`secret`), shown once when issued and stored only as its
//! hash. Every replica holds the live hashes in memory (`cache`), reloaded by
//! `grants::listener` and refreshed here at once after a change on this replica. Keys are
//! issued by the first deploy, rotated by the owner or an admin (the old ones kept for a grace
//! period or revoked), and revoked when the instance is deleted or changes owner.

mod cache;
mod secret;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::json;
use sqlx::{PgConnection, PgPool};

pub use cache::{KeyCache, Lookup};
pub use secret::{KeyHash, PREFIX, generate, hash, looks_like_key, well_formed};

use crate::{
    db::{self, keys::KeyInfo},
    domain::{Actor, InstanceId, InstanceStatus},
};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("instance '{0}' does not exist")]
    InstanceNotFound(InstanceId),
    #[error("instance '{0}' is deleted; deploy it again to bring it back")]
    InstanceDeleted(InstanceId),
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

/// The instance's live keys as operators see them: who minted each and when, never the key.
pub async fn list(pool: &PgPool, instance_id: &InstanceId) -> sqlx::Result<Vec<KeyInfo>> {
    db::keys::infos(&mut *pool.acquire().await?, instance_id.as_str()).await
}

/// What a rotation did.
pub struct Rotated {
    pub key: SecretString,
    /// When the previous keys stop working (None: revoked now, or there were none).
    pub previous_expire_at: Option<DateTime<Utc>>,
}

/// A new key for the instance; the previous ones revoked now or kept for `grace`. Audited;
/// this replica's `cache` knows at once (others by notification).
pub async fn rotate(
    pool: &PgPool,
    cache: &KeyCache,
    actor: &Actor,
    id: &InstanceId,
    revoke_previous: bool,
    grace: std::time::Duration,
) -> Result<Rotated, KeyError> {
    let mut tx = pool.begin().await?;
    let row = db::instances::lock(&mut tx, id.as_str())
        .await?
        .ok_or_else(|| KeyError::InstanceNotFound(id.clone()))?;
    if row.status == InstanceStatus::Deleted.as_str() {
        return Err(KeyError::InstanceDeleted(id.clone()));
    }
    let previous_expire_at = if revoke_previous {
        db::keys::revoke_all(&mut tx, id.as_str()).await?;
        None
    } else {
        db::keys::retire(&mut tx, id.as_str(), grace.as_secs() as i64).await?
    };
    let key = issue(&mut tx, id.as_str(), &actor.name).await?;
    db::audit::record(
        &mut tx,
        db::audit::NewEntry {
            actor: &actor.name,
            action: "instance.key_rotated",
            target_type: "instance",
            target_id: id.as_str(),
            before: None,
            after: Some(json!({
                "previous_keys_expire_at": previous_expire_at,
                "previous_keys_revoked": revoke_previous,
            })),
            request_id: actor.request_id.as_deref(),
        },
    )
    .await?;
    tx.commit().await?;
    if let Err(e) = refresh(&mut *pool.acquire().await?, cache, id.as_str()).await {
        tracing::warn!(error = %e, "keys in memory not refreshed; a notification will");
    }
    Ok(Rotated {
        key,
        previous_expire_at,
    })
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

/// The instance a key belongs to: from memory, or from the database while the memory is not
/// in step with it. None for anything that is not a live key.
pub async fn instance_of(
    pool: &PgPool,
    cache: &KeyCache,
    key: &str,
) -> sqlx::Result<Option<String>> {
    match cache.lookup(key, Utc::now) {
        Lookup::Instance(id) => Ok(Some(id)),
        Lookup::Unknown => Ok(None),
        Lookup::NotSynced => {
            let row = db::keys::find(&mut *pool.acquire().await?, &hash(key)).await?;
            Ok(row.map(|r| r.instance_id))
        }
    }
}
