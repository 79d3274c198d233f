//! What a pass works from: the pool (the primary first), every application's lists as Auth0
//! has them now and what fleetgate owns on them, every instance, and where each goes.

use std::collections::{BTreeMap, HashMap};

use super::{
    ReconcileError, Reconciler, deployment,
    placement::{self, AppLists},
    reconciler::lists_of,
    shard::{self, Demand, Placement},
};
use crate::{
    db,
    domain::{Field, InstanceStatus},
    registry,
};

/// What a pass works from.
pub(super) struct Survey {
    pub instances: Vec<registry::Instance>,
    pub apps: Vec<AppLists>,
    pub placements: BTreeMap<String, Placement>,
    /// Client id → indexes into `instances` of the instances whose entries it lists.
    pub listed: BTreeMap<String, Vec<usize>>,
    /// Assignments before this pass: instance id → client id.
    pub current: HashMap<String, String>,
    pub deleted: Vec<String>,
    pub problems: Vec<String>,
    /// This deployment's id (what it marks its applications with).
    pub deployment: String,
    /// Applications of the pool that no longer exist in the tenant.
    pub vanished: Vec<String>,
}

impl Reconciler {
    /// Reads the pool (the primary first), every application's lists and ownership, and
    /// places every instance; with `create`, adds applications while some instance has no room
    /// (and records them in the pool).
    pub(super) async fn survey(&self, create: bool) -> Result<Survey, ReconcileError> {
        let mut conn = self.pool.acquire().await?;
        db::applications::ensure_primary(&mut conn, self.application_id()).await?;
        let pool = db::applications::pool(&mut conn).await?;
        let deployment = db::deployment::id(&mut conn).await?.to_string();
        let mut apps = Vec::with_capacity(pool.len());
        let mut problems = Vec::new();
        let mut vanished = Vec::new();
        for app in pool {
            match self
                .look(&mut conn, app.client_id.clone(), &deployment)
                .await
            {
                Ok(lists) => apps.push(lists),
                // Deleted in the tenant (by hand): the primary cannot be replaced by a pass;
                // another application's instances are placed again (see `write`).
                Err(ReconcileError::Auth0(e)) if e.status() == Some(404) => {
                    if app.client_id == self.application_id() {
                        return Err(ReconcileError::PrimaryGone(app.client_id));
                    }
                    // Gone for good, not a passing fault: the tenant's list of applications
                    // agrees before anything is forgotten.
                    let listed = self.client.list_clients(&["client_id"]).await?;
                    if listed
                        .iter()
                        .any(|c| c["client_id"] == app.client_id.as_str())
                    {
                        return Err(ReconcileError::Auth0(e));
                    }
                    problems.push(format!(
                        "application {} no longer exists in the tenant (deleted in the dashboard?): it was taken out of the pool and its instances placed again",
                        app.client_id
                    ));
                    vanished.push(app.client_id);
                }
                Err(e) => return Err(e),
            }
        }
        let rows = db::instances::all(&mut conn).await?;
        let instances = registry::load_many(&mut conn, rows).await?;
        let mut current = db::applications::assignments(&mut conn).await?;
        current.retain(|_, client_id| !vanished.contains(client_id));
        let opts = self.options();
        let mut demands: Vec<Demand> = instances
            .iter()
            // Relayed instances log in through no list: nothing to place.
            .filter(|i| {
                self.login_mode != crate::config::LoginMode::Relay
                    && i.status != InstanceStatus::Deleted
            })
            .map(|i| {
                let assigned = current.get(i.id.as_str()).cloned();
                let live = assigned
                    .as_deref()
                    .and_then(|c| apps.iter().find(|a| a.client_id == c));
                Demand {
                    instance_id: i.id.to_string(),
                    slots: shard::slots_needed(i, opts),
                    established: live
                        .map(|a| placement::established(i, opts, &a.actual))
                        .unwrap_or_default(),
                    current: assigned,
                }
            })
            .collect();
        let (opts, cap) = (self.options(), self.settings.cap);
        let mut placements =
            placement::place(&mut demands, &apps, opts, cap, self.settings.auto_move);
        if create {
            self.grow(
                &mut conn,
                &mut apps,
                &demands,
                &mut placements,
                &mut problems,
            )
            .await?;
        }
        // In overflow mode an instance that fits nowhere logs in through the relay.
        let relays_the_rest = self.login_mode == crate::config::LoginMode::Overflow;
        placement::note_problems(&placements, &mut problems, relays_the_rest);
        let deleted = instances
            .iter()
            .filter(|i| i.status == InstanceStatus::Deleted)
            .map(|i| i.id.to_string())
            .collect();
        // Which instances each application lists, found once for the whole pass.
        let mut listed: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (index, instance) in instances.iter().enumerate() {
            if let Some(p) = placements
                .get(instance.id.as_str())
                .filter(|p| p.is_listed())
            {
                listed
                    .entry(p.client_id().unwrap_or_default().to_owned())
                    .or_default()
                    .push(index);
            }
        }
        Ok(Survey {
            instances,
            apps,
            placements,
            listed,
            current,
            deleted,
            problems,
            deployment,
            vanished,
        })
    }

    /// An application's lists as they are now, what fleetgate owns on them, and this
    /// deployment's (`ours`) stance toward it.
    async fn look(
        &self,
        conn: &mut sqlx::PgConnection,
        client_id: String,
        ours: &str,
    ) -> Result<AppLists, ReconcileError> {
        let mut fields = Field::ALL.map(Field::name).to_vec();
        fields.push("client_metadata");
        let client = self.client.get_client(&client_id, &fields).await?;
        let stance = deployment::stance(
            client["client_metadata"][deployment::MARK].as_str(),
            ours,
            &client_id,
            &self.settings.take_over,
        );
        let owned = db::reconcile::owned(conn, &client_id).await?;
        Ok(AppLists {
            client_id,
            actual: lists_of(&client),
            owned,
            stance,
        })
    }
}
