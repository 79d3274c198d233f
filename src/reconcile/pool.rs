//! The pool of applications an instance can be configured with: what each holds, adding a
//! tenant's application to it, taking one out, and moving an instance between them. Each
//! change is audited and tells every replica's reconciler (NOTIFY) to run.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{ReconcileError, Reconciler};
use crate::{
    db,
    domain::{Actor, Field, InstanceId, InstanceUnavailable},
    registry,
};

type Result<T> = std::result::Result<T, ReconcileError>;

/// One application of the pool, with how full each list is (as last read back).
#[derive(Debug, Clone, serde::Serialize)]
pub struct PoolEntry {
    pub client_id: String,
    pub name: String,
    pub origin: String,
    /// Instances configured with it.
    pub instances: usize,
    /// Per field, how full its list is.
    pub lists: BTreeMap<&'static str, ListFill>,
}

/// One list of an application, as last read back.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ListFill {
    pub entries: usize,
    pub cap: usize,
    /// What the list held that fleetgate did not add (drift: a person's entries).
    pub foreign: Vec<String>,
}

impl Reconciler {
    pub async fn applications(&self) -> Result<Vec<PoolEntry>> {
        let mut conn = self.pool.acquire().await?;
        db::applications::ensure_primary(&mut conn, self.application_id()).await?;
        let pool = db::applications::pool(&mut conn).await?;
        let placed = db::applications::instance_counts(&mut conn).await?;
        let mut items = Vec::with_capacity(pool.len());
        for app in pool {
            let snapshots = db::reconcile::snapshots(&mut conn, &app.client_id).await?;
            let owned = db::reconcile::owned(&mut conn, &app.client_id).await?;
            let lists = Field::ALL
                .into_iter()
                .map(|f| {
                    let read = snapshots
                        .get(f.name())
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    let foreign = read
                        .iter()
                        .filter(|e| !owned.get(f.name()).is_some_and(|o| o.contains(*e)))
                        .cloned()
                        .collect();
                    let fill = ListFill {
                        entries: read.len(),
                        cap: self.cap(),
                        foreign,
                    };
                    (f.name(), fill)
                })
                .collect();
            let instances = placed.get(&app.client_id).copied().unwrap_or(0) as usize;
            items.push(PoolEntry {
                client_id: app.client_id,
                name: app.name,
                origin: app.origin,
                instances,
                lists,
            });
        }
        Ok(items)
    }

    /// The application the instance's SPA logs in through.
    pub async fn application_of(&self, id: &InstanceId) -> Result<String> {
        let mut conn = self.pool.acquire().await?;
        registry::load(&mut conn, id.as_str())
            .await?
            .ok_or_else(|| InstanceUnavailable::not_found(id))?;
        db::applications::assignment(&mut conn, id.as_str())
            .await?
            .ok_or_else(|| ReconcileError::NotAssigned(id.clone()))
    }

    /// Adds an existing application of the tenant to the pool; answers its name.
    pub async fn register(&self, actor: &Actor, client_id: &str) -> Result<String> {
        if self
            .settings
            .reserved_clients
            .iter()
            .any(|c| c == client_id)
        {
            return Err(ReconcileError::ReservedApplication(client_id.to_owned()));
        }
        let found = self
            .client
            .get_client(client_id, &["client_id", "name", "client_metadata"])
            .await
            .map_err(|e| match e.status() {
                Some(404) => ReconcileError::NoSuchApplication(client_id.to_owned()),
                _ => e.into(),
            })?;
        let name = found["name"].as_str().unwrap_or("registered").to_owned();
        let mut tx = self.pool.begin().await?;
        // Another deployment's application is refused now rather than left alone by every pass.
        let ours = db::deployment::id(&mut tx).await?.to_string();
        let mark = found["client_metadata"][super::deployment::MARK].as_str();
        if let super::deployment::Stance::Theirs { other } =
            super::deployment::stance(mark, &ours, client_id, &self.settings.take_over)
        {
            return Err(ReconcileError::ManagedElsewhere {
                client_id: client_id.to_owned(),
                other,
                ours,
            });
        }
        db::applications::add(&mut tx, client_id, &name, "registered").await?;
        audit(
            &mut tx,
            actor,
            "application.registered",
            ("application", client_id),
            None,
            Some(json!({ "client_id": client_id, "name": name })),
        )
        .await?;
        db::applications::notify(&mut tx).await?;
        tx.commit().await?;
        Ok(name)
    }

    /// Takes an application out of the pool (not out of the tenant). Its instances must be
    /// moved first; the primary application never leaves.
    pub async fn unregister(&self, actor: &Actor, client_id: &str) -> Result<()> {
        if client_id == self.application_id() {
            return Err(ReconcileError::PrimaryApplication);
        }
        let mut tx = self.pool.begin().await?;
        let assigned = db::applications::count_assigned(&mut tx, client_id).await?;
        if assigned > 0 {
            return Err(ReconcileError::ApplicationInUse {
                client_id: client_id.to_owned(),
                assigned,
            });
        }
        if !db::applications::remove(&mut tx, client_id).await? {
            return Err(ReconcileError::NotInPool(client_id.to_owned()));
        }
        audit(
            &mut tx,
            actor,
            "application.removed",
            ("application", client_id),
            Some(json!({ "client_id": client_id })),
            None,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Moves an instance to application `to` of the pool, or (None) lets the next pass place
    /// it afresh; answers the application it was configured with.
    pub async fn move_instance(
        &self,
        actor: &Actor,
        id: &InstanceId,
        to: Option<&str>,
    ) -> Result<Option<String>> {
        let mut tx = self.pool.begin().await?;
        registry::load(&mut tx, id.as_str())
            .await?
            .ok_or_else(|| InstanceUnavailable::not_found(id))?;
        let before = db::applications::assignment(&mut tx, id.as_str()).await?;
        match to {
            Some(target) => {
                let in_pool = db::applications::pool(&mut tx)
                    .await?
                    .iter()
                    .any(|a| a.client_id == target);
                if !in_pool {
                    return Err(ReconcileError::TargetNotInPool(target.to_owned()));
                }
                db::applications::assign(&mut tx, id.as_str(), target).await?;
            }
            None => db::applications::unassign(&mut tx, id.as_str()).await?,
        }
        audit(
            &mut tx,
            actor,
            "instance.moved",
            ("instance", id.as_str()),
            Some(json!({ "client_id": before })),
            Some(json!({ "client_id": to })),
        )
        .await?;
        db::applications::notify(&mut tx).await?;
        tx.commit().await?;
        Ok(before)
    }
}

async fn audit(
    conn: &mut sqlx::PgConnection,
    actor: &Actor,
    action: &str,
    (target_type, target_id): (&str, &str),
    before: Option<Value>,
    after: Option<Value>,
) -> sqlx::Result<()> {
    db::audit::record(
        conn,
        db::audit::NewEntry {
            actor: &actor.name,
            action,
            target_type,
            target_id,
            before,
            after,
            request_id: actor.request_id.as_deref(),
        },
    )
    .await
}
