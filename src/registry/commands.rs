//! The registry as the API and the deploy hook use it: each command in a transaction of its
//! own, with the instance key it issues, and this replica's memory of the instance (its facts
//! as committed, its keys and revision) brought up to date once it commits.

use std::sync::Arc;

use secrecy::SecretString;
use sqlx::PgPool;

use super::{Instance, Registry, Result, load, load_many};
use crate::{
    db,
    domain::{Actor, Hostname, InstanceId, InstanceStatus, InstanceUnavailable, UserId},
    grants::Live,
    keys,
};

/// Which instances a listing shows: a page in id order.
#[derive(Debug, Default)]
pub struct ListQuery {
    pub status: Option<InstanceStatus>,
    pub host: Option<Hostname>,
    /// The last id of the previous page.
    pub after: Option<String>,
    pub limit: i64,
}

#[derive(Clone)]
pub struct Commands {
    pool: PgPool,
    live: Arc<Live>,
    registry: Registry,
}

impl Commands {
    pub fn new(pool: PgPool, live: Arc<Live>, registry: Registry) -> Self {
        Self {
            pool,
            live,
            registry,
        }
    }

    /// The same commands with their database work on `pool` (an HTTP worker's own).
    pub fn with_pool(&self, pool: PgPool) -> Self {
        Self {
            pool,
            ..self.clone()
        }
    }

    pub async fn list(&self, q: &ListQuery) -> Result<Vec<Instance>> {
        let mut conn = self.pool.acquire().await?;
        let filter = db::instances::ListFilter {
            status: q.status.map(InstanceStatus::as_str),
            host: q.host.as_ref().map(Hostname::as_str),
            after_id: q.after.as_deref(),
            limit: q.limit,
        };
        let rows = db::instances::list(&mut conn, &filter).await?;
        load_many(&mut conn, rows).await
    }

    pub async fn get(&self, id: &InstanceId) -> Result<Instance> {
        load(&mut *self.pool.acquire().await?, id.as_str())
            .await?
            .ok_or_else(|| InstanceUnavailable::not_found(id).into())
    }

    /// A new instance and its first key (shown this once: fleetgate keeps only its hash).
    pub async fn create(
        &self,
        actor: &Actor,
        id: &InstanceId,
        owner: &UserId,
        hosts: &[Hostname],
    ) -> Result<(Instance, SecretString)> {
        let mut tx = self.pool.begin().await?;
        let instance = self
            .registry
            .create(&mut tx, actor, id, owner, hosts)
            .await?;
        let key = keys::issue(&mut tx, instance.id.as_str(), &actor.name).await?;
        tx.commit().await?;
        self.live.instance_changed(&instance);
        self.live.first_key(id.as_str(), &key);
        Ok((instance, key))
    }

    /// Changes the owner and/or the status (`action` names it in the audit log).
    pub async fn update(
        &self,
        actor: &Actor,
        id: &InstanceId,
        owner: Option<&UserId>,
        status: Option<InstanceStatus>,
        action: &str,
    ) -> Result<Instance> {
        let mut tx = self.pool.begin().await?;
        let instance = self
            .registry
            .update(&mut tx, actor, id, owner, status, action)
            .await?;
        tx.commit().await?;
        self.live.instance_changed(&instance);
        self.live.refresh(&self.pool, id.as_str()).await;
        Ok(instance)
    }

    pub async fn replace_domains(
        &self,
        actor: &Actor,
        id: &InstanceId,
        hosts: &[Hostname],
    ) -> Result<Instance> {
        let mut tx = self.pool.begin().await?;
        let instance = self
            .registry
            .replace_domains(&mut tx, actor, id, hosts)
            .await?;
        tx.commit().await?;
        self.live.instance_changed(&instance);
        Ok(instance)
    }

    pub async fn add_domain(
        &self,
        actor: &Actor,
        id: &InstanceId,
        host: &Hostname,
    ) -> Result<Instance> {
        let mut tx = self.pool.begin().await?;
        let instance = self.registry.add_domain(&mut tx, actor, id, host).await?;
        tx.commit().await?;
        self.live.instance_changed(&instance);
        Ok(instance)
    }

    pub async fn remove_domain(
        &self,
        actor: &Actor,
        id: &InstanceId,
        host: &Hostname,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let instance = self
            .registry
            .remove_domain(&mut tx, actor, id, host)
            .await?;
        tx.commit().await?;
        self.live.instance_changed(&instance);
        Ok(())
    }

    /// The audit log, newest first: everything, or one instance's entries; before entry id
    /// `before` (the previous page's last).
    pub async fn audit(
        &self,
        instance: Option<&InstanceId>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<db::audit::Entry>> {
        let target = instance.map(|id| ("instance", id.as_str()));
        let mut conn = self.pool.acquire().await?;
        Ok(db::audit::list(&mut conn, target, before, limit).await?)
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> sqlx::Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(drop)
    }

    pub(super) fn parts(&self) -> (&PgPool, &Live, &Registry) {
        (&self.pool, &self.live, &self.registry)
    }
}
