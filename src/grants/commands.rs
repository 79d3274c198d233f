//! The grants feature as the API uses it: each change in a transaction of its own whose new
//! revision this replica's memory knows at once (other replicas hear of it by notification),
//! and the reads around it (who may manage an instance, a user's grants).

use std::sync::Arc;

use sqlx::PgPool;
use uuid::Uuid;

use super::{Grants, Live, Replaced, Subject, ops::Result, replace::Wanted};
use crate::{
    db::{self, grants::UserGrant},
    domain::{Actor, InstanceId, InstanceUnavailable, UserId, grant::Grant},
};

/// A person's standing on an instance, apart from being a fleetgate admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Owner,
    /// Holds a grant with this role.
    Granted(String),
    None,
}

#[derive(Clone)]
pub struct Commands {
    pool: PgPool,
    live: Arc<Live>,
    rules: Grants,
    /// How many long-polls one caller may have parked at once.
    max_parked_per_caller: usize,
}

impl Commands {
    pub fn new(pool: PgPool, live: Arc<Live>, rules: Grants, max_parked_per_caller: usize) -> Self {
        Self {
            pool,
            live,
            rules,
            max_parked_per_caller,
        }
    }

    /// Whether this replica's memory was loaded once (it is ready to serve polls then).
    pub fn loaded(&self) -> bool {
        self.live.was_loaded()
    }

    /// The same commands with their database work on `pool` (an HTTP worker's own).
    pub fn with_pool(&self, pool: PgPool) -> Self {
        Self {
            pool,
            ..self.clone()
        }
    }

    /// The roles grants may have, and the changes in the caller's transaction.
    pub fn rules(&self) -> &Grants {
        &self.rules
    }

    pub async fn add(
        &self,
        actor: &Actor,
        id: &InstanceId,
        subject: &Subject,
        role: &str,
    ) -> Result<Grant> {
        let mut tx = self.pool.begin().await?;
        let (grant, revision) = self.rules.add(&mut tx, actor, id, subject, role).await?;
        self.commit(tx, id, revision).await?;
        Ok(grant)
    }

    pub async fn set_role(
        &self,
        actor: &Actor,
        id: &InstanceId,
        grant_id: Uuid,
        role: &str,
    ) -> Result<Grant> {
        let mut tx = self.pool.begin().await?;
        let (grant, revision) = self
            .rules
            .set_role(&mut tx, actor, id, grant_id, role)
            .await?;
        self.commit(tx, id, revision).await?;
        Ok(grant)
    }

    pub async fn remove(&self, actor: &Actor, id: &InstanceId, grant_id: Uuid) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let revision = self.rules.remove(&mut tx, actor, id, grant_id).await?;
        self.commit(tx, id, revision).await
    }

    pub async fn replace(
        &self,
        actor: &Actor,
        id: &InstanceId,
        wanted: &[Wanted],
    ) -> Result<Replaced> {
        let mut tx = self.pool.begin().await?;
        let done = self.rules.replace(&mut tx, actor, id, wanted).await?;
        self.commit(tx, id, done.revision).await?;
        Ok(done)
    }

    /// Commits a change and tells this replica's memory the instance's revision after it.
    pub(super) async fn commit(
        &self,
        tx: sqlx::Transaction<'_, sqlx::Postgres>,
        id: &InstanceId,
        revision: i64,
    ) -> Result<()> {
        tx.commit().await?;
        self.live.revisions.observe(id.as_str(), revision);
        Ok(())
    }

    /// The person's standing on the instance (a read; no lock).
    pub async fn standing(&self, id: &InstanceId, user: &str) -> Result<Standing> {
        let mut conn = self.pool.acquire().await?;
        let row = db::instances::get(&mut conn, id.as_str())
            .await?
            .ok_or_else(|| InstanceUnavailable::not_found(id))?;
        if row.owner == user {
            return Ok(Standing::Owner);
        }
        Ok(
            match db::grants::role_of(&mut conn, id.as_str(), user).await? {
                Some(role) => Standing::Granted(role),
                None => Standing::None,
            },
        )
    }

    /// The instances this user owns or holds a grant on.
    pub async fn of_user(&self, user: &UserId) -> Result<Vec<UserGrant>> {
        let mut conn = self.pool.acquire().await?;
        Ok(db::grants::of_user(&mut conn, user.as_str()).await?)
    }

    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(super) fn live(&self) -> &Live {
        &self.live
    }

    pub(super) fn max_parked_per_caller(&self) -> usize {
        self.max_parked_per_caller
    }
}
