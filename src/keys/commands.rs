//! Instance keys as the API uses them: list, rotate, and who a key is, each through one
//! object that owns its pool and this replica's memory of live keys.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::json;
use sqlx::PgPool;

use super::{KeyCache, KeyError, Lookup, hash, issue, refresh, well_formed};
use crate::{
    db::{self, keys::KeyInfo},
    domain::{Actor, InstanceId, InstanceStatus, InstanceUnavailable},
};

/// What a rotation did.
pub struct Rotated {
    pub key: SecretString,
    /// When the previous keys stop working (None: revoked now, or there were none).
    pub previous_expire_at: Option<DateTime<Utc>>,
}

#[derive(Clone)]
pub struct Keys {
    pool: PgPool,
    cache: Arc<KeyCache>,
    /// How long rotated-out keys keep working unless revoked at once.
    grace: Duration,
}

impl Keys {
    pub fn new(pool: PgPool, cache: Arc<KeyCache>, grace: Duration) -> Self {
        Self { pool, cache, grace }
    }

    /// The same keys with their database work on `pool` (an HTTP worker's own).
    pub fn with_pool(&self, pool: PgPool) -> Self {
        Self {
            pool,
            ..self.clone()
        }
    }

    /// The instance's live keys as operators see them: who minted each and when, never the
    /// key.
    pub async fn list(&self, id: &InstanceId) -> sqlx::Result<Vec<KeyInfo>> {
        db::keys::infos(&mut *self.pool.acquire().await?, id.as_str()).await
    }

    /// A new key for the instance; the previous ones revoked now or kept for the grace
    /// period. Audited; this replica's memory knows at once (others by notification).
    pub async fn rotate(
        &self,
        actor: &Actor,
        id: &InstanceId,
        revoke_previous: bool,
    ) -> Result<Rotated, KeyError> {
        let mut tx = self.pool.begin().await?;
        let row = db::instances::lock(&mut tx, id.as_str())
            .await?
            .ok_or_else(|| InstanceUnavailable::not_found(id))?;
        if row.status == InstanceStatus::Deleted.as_str() {
            return Err(InstanceUnavailable::deleted(id).into());
        }
        let previous_expire_at = if revoke_previous {
            db::keys::revoke_all(&mut tx, id.as_str()).await?;
            None
        } else {
            db::keys::retire(&mut tx, id.as_str(), self.grace.as_secs() as i64).await?
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
        if let Err(e) = refresh(&mut *self.pool.acquire().await?, &self.cache, id.as_str()).await {
            tracing::warn!(error = %e, "keys in memory not refreshed; a notification will");
        }
        Ok(Rotated {
            key,
            previous_expire_at,
        })
    }

    /// The instance a key belongs to, from memory alone (the hot path): `NotSynced` while the
    /// memory is not in step with the database.
    pub fn lookup(&self, key: &str) -> Lookup {
        self.cache.lookup(key, Utc::now)
    }

    /// The instance a key belongs to: from memory, or else from the database — while the
    /// memory is not in step, and for a key it does not hold (one issued by another replica a
    /// moment ago is held once its notification arrives; a wrong key costs one indexed read,
    /// and its caller's failures are limited per address). None for anything that is not a
    /// live key; a token not shaped like a key never reaches the database.
    pub async fn instance_of(&self, key: &str) -> sqlx::Result<Option<Arc<str>>> {
        match self.lookup(key) {
            Lookup::Instance(id) => Ok(Some(id)),
            Lookup::Unknown if !well_formed(key) => Ok(None),
            Lookup::Unknown | Lookup::NotSynced => {
                let row = db::keys::find(&mut *self.pool.acquire().await?, &hash(key)).await?;
                Ok(row.map(|r| r.instance_id.into()))
            }
        }
    }
}
