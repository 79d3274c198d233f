//! The registry's commands. Each locks the instance row, changes it, and writes one audit
//! entry with the instance before and after, all in the caller's transaction.

use std::collections::HashSet;

use sqlx::PgConnection;

use crate::{
    db::{self, instances::InstanceRow},
    domain::{Actor, Hostname, InstanceId, InstanceStatus, InstanceUnavailable, UserId},
    events::{
        Outbox,
        login::{LoginNow, Via},
    },
};

use super::{
    Domain, Instance, RegistryError, Result,
    model::{Locked, load_locked},
    validate_hosts,
};

#[derive(Debug, Clone)]
pub struct Registry {
    platform_domain: Option<Hostname>,
    outbox: Outbox,
    /// Instances log in through the relay the moment they are active (`relay` and `overflow`
    /// modes): a change tells the platform `instance.login_ready` at once.
    relayed: bool,
}

/// A deploy's result.
#[derive(Debug)]
pub struct Deploy {
    /// The instance as it is now.
    pub instance: Instance,
    pub deployed: Deployed,
    /// The instance holds a live key from before, which the deploy left working: it needs no
    /// new one.
    pub keyed: bool,
}

/// What a deploy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployed {
    Created,
    Updated,
    /// Updated, and every access from before ended with it (a new owner, or back from
    /// deletion): its keys were revoked and its grants' revision moved.
    AccessReset,
    Unchanged,
}

impl Registry {
    pub fn new(platform_domain: Option<Hostname>) -> Self {
        Self {
            platform_domain,
            outbox: Outbox::default(),
            relayed: false,
        }
    }

    /// The same registry, telling the platform through `outbox`; with `relayed`, that an
    /// instance can log in as soon as a change makes it active with hosts.
    pub fn with_events(self, outbox: Outbox, relayed: bool) -> Self {
        Self {
            outbox,
            relayed,
            ..self
        }
    }

    /// Creates the instance or brings it to exactly this owner and these hosts. A deleted
    /// instance comes back as active; a suspended one stays suspended.
    pub async fn deploy(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        id: &InstanceId,
        owner: &UserId,
        hosts: &[Hostname],
    ) -> Result<Deploy> {
        let wanted = validate_hosts(hosts, self.platform_domain.as_ref())?;
        // Most deploys are redeploys: lock first, insert only when there is nothing to lock.
        let (created, before, keyed) = match load_locked(conn, id.as_str()).await? {
            Some(Locked { instance, keyed }) => (false, instance, keyed),
            None => match db::instances::insert_if_absent(conn, id.as_str(), owner.as_str()).await?
            {
                Some(row) => (true, Instance::from_rows(row, [])?, false),
                // Created meanwhile by someone else, whose commit the insert waited for.
                None => {
                    let Locked { instance, keyed } = self.locked(conn, id).await?;
                    (false, instance, keyed)
                }
            },
        };
        let status = match before.status {
            InstanceStatus::Deleted => InstanceStatus::Active,
            s => s,
        };
        let mut written = Written::default();
        if *owner != before.owner || status != before.status {
            written.row = Some(
                db::instances::update(conn, id.as_str(), owner.as_str(), status.as_str()).await?,
            );
        }
        let access_reset =
            !created && (*owner != before.owner || before.status == InstanceStatus::Deleted);
        if !created && *owner != before.owner {
            owner_changed(conn, self.outbox, actor, id, (&before.owner, owner)).await?;
        }
        if before.status == InstanceStatus::Deleted && !created {
            // Deletion forgot its grants and keys; make sure nothing from before survives a
            // redeploy (rows written by versions that did not forget them at deletion).
            forget_access(conn, actor, id).await?;
        }
        written.hosts = sync_domains(conn, &before, wanted).await?;
        if !created && written.is_empty() {
            // The common redeploy: nothing to write, audit or read again.
            return Ok(Deploy {
                instance: before,
                deployed: Deployed::Unchanged,
                keyed,
            });
        }
        let after = written.onto(&before)?;
        let deployed = match (created, access_reset, after == before) {
            (true, _, _) => Deployed::Created,
            (false, true, _) => Deployed::AccessReset,
            (false, false, true) => Deployed::Unchanged,
            (false, false, false) => Deployed::Updated,
        };
        let instance = self
            .finish(
                conn,
                actor,
                "instance.deployed",
                (!created).then_some(&before),
                after,
            )
            .await?;
        Ok(Deploy {
            instance,
            deployed,
            keyed: keyed && !access_reset,
        })
    }

    /// Creates a new instance; an existing id (even a deleted one) is a conflict.
    pub async fn create(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        id: &InstanceId,
        owner: &UserId,
        hosts: &[Hostname],
    ) -> Result<Instance> {
        let wanted = validate_hosts(hosts, self.platform_domain.as_ref())?;
        let Some(row) = db::instances::insert_if_absent(conn, id.as_str(), owner.as_str()).await?
        else {
            return Err(RegistryError::AlreadyExists(id.clone()));
        };
        let before = Instance::from_rows(row, [])?;
        let written = Written {
            hosts: sync_domains(conn, &before, wanted).await?,
            ..Written::default()
        };
        let after = written.onto(&before)?;
        self.finish(conn, actor, "instance.created", None, after)
            .await
    }

    /// Changes the owner and/or the status. Deleting releases every host.
    pub async fn update(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        id: &InstanceId,
        owner: Option<&UserId>,
        status: Option<InstanceStatus>,
        action: &str,
    ) -> Result<Instance> {
        let before = self.locked(conn, id).await?.instance;
        let to = status.unwrap_or(before.status);
        if !before.status.can_become(to) {
            return Err(RegistryError::InvalidTransition {
                id: id.clone(),
                from: before.status,
                to,
            });
        }
        if owner.is_some_and(|o| *o != before.owner) && before.status == InstanceStatus::Deleted {
            return Err(InstanceUnavailable::deleted(id).into());
        }
        let owner = owner.unwrap_or(&before.owner);
        let mut written = Written {
            row: Some(db::instances::update(conn, id.as_str(), owner.as_str(), to.as_str()).await?),
            ..Written::default()
        };
        if *owner != before.owner {
            owner_changed(conn, self.outbox, actor, id, (&before.owner, owner)).await?;
        }
        if to == InstanceStatus::Deleted && before.status != InstanceStatus::Deleted {
            written.hosts = sync_domains(conn, &before, Vec::new()).await?;
            forget_access(conn, actor, id).await?;
        }
        let after = written.onto(&before)?;
        self.finish(conn, actor, action, Some(&before), after).await
    }

    /// Replaces all hosts of an instance with these.
    pub async fn replace_domains(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        id: &InstanceId,
        hosts: &[Hostname],
    ) -> Result<Instance> {
        let wanted = validate_hosts(hosts, self.platform_domain.as_ref())?;
        let before = self.live(conn, id).await?;
        self.rehost(conn, actor, "instance.domains_replaced", before, wanted)
            .await
    }

    pub async fn add_domain(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        id: &InstanceId,
        host: &Hostname,
    ) -> Result<Instance> {
        let before = self.live(conn, id).await?;
        if before.domains.iter().any(|d| d.hostname == *host) {
            return Err(RegistryError::DomainExists {
                id: id.clone(),
                host: host.clone(),
            });
        }
        let mut hosts: Vec<Hostname> = before.domains.iter().map(|d| d.hostname.clone()).collect();
        hosts.push(host.clone());
        let wanted = validate_hosts(&hosts, self.platform_domain.as_ref())?;
        self.rehost(conn, actor, "instance.domain_added", before, wanted)
            .await
    }

    pub async fn remove_domain(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        id: &InstanceId,
        host: &Hostname,
    ) -> Result<Instance> {
        let before = self.live(conn, id).await?;
        if !before.domains.iter().any(|d| d.hostname == *host) {
            return Err(RegistryError::DomainNotFound {
                id: id.clone(),
                host: host.clone(),
            });
        }
        let wanted: Vec<Domain> = before
            .domains
            .iter()
            .filter(|d| d.hostname != *host)
            .cloned()
            .collect();
        self.rehost(conn, actor, "instance.domain_removed", before, wanted)
            .await
    }

    /// Brings a live instance's hosts to `wanted`, recorded as `action`.
    async fn rehost(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        action: &str,
        before: Instance,
        wanted: Vec<Domain>,
    ) -> Result<Instance> {
        let written = Written {
            hosts: sync_domains(conn, &before, wanted).await?,
            ..Written::default()
        };
        let after = written.onto(&before)?;
        self.finish(conn, actor, action, Some(&before), after).await
    }

    /// Locks the instance row and loads the instance.
    async fn locked(&self, conn: &mut PgConnection, id: &InstanceId) -> Result<Locked> {
        load_locked(conn, id.as_str())
            .await?
            .ok_or_else(|| InstanceUnavailable::not_found(id).into())
    }

    /// Like [`Self::locked`], for changes a deleted instance cannot take.
    async fn live(&self, conn: &mut PgConnection, id: &InstanceId) -> Result<Instance> {
        let instance = self.locked(conn, id).await?.instance;
        if instance.status == InstanceStatus::Deleted {
            return Err(InstanceUnavailable::deleted(id).into());
        }
        Ok(instance)
    }

    /// If the instance changed, writes the audit entry (and, for relayed instances, tells the
    /// platform whether it can log in); answers the instance as it is now.
    async fn finish(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        action: &str,
        before: Option<&Instance>,
        after: Instance,
    ) -> Result<Instance> {
        let id = after.id.as_str();
        if before != Some(&after) {
            db::audit::record(
                conn,
                db::audit::NewEntry {
                    actor: &actor.name,
                    action,
                    target_type: "instance",
                    target_id: id,
                    before: before.map(Instance::to_json),
                    after: Some(after.to_json()),
                    request_id: actor.request_id.as_deref(),
                },
            )
            .await?;
            if self.relayed {
                let now = match after.status {
                    InstanceStatus::Active if !after.domains.is_empty() => LoginNow::Ready {
                        hosts: after.hostnames(),
                        via: Via::Relay,
                    },
                    _ => LoginNow::Gone,
                };
                crate::events::login::tell(conn, self.outbox, id, None, &now).await?;
            }
        }
        Ok(after)
    }
}

/// What a command wrote of an instance, from which [`Written::onto`] makes the instance after
/// it without reading it again: the row as `db::instances::update` returned it, the hosts as
/// `sync_domains` left them.
#[derive(Default)]
struct Written {
    row: Option<InstanceRow>,
    hosts: Option<Hosts>,
}

/// An instance's hosts after `sync_domains` changed them, in the order the registry loads them
/// (by name), and the row as the change touched it.
struct Hosts {
    domains: Vec<Domain>,
    changed: db::domains::Changed,
}

impl Written {
    fn is_empty(&self) -> bool {
        self.row.is_none() && self.hosts.is_none()
    }

    fn onto(self, before: &Instance) -> Result<Instance> {
        let mut after = match self.row {
            Some(row) => Instance::from_rows(row, [])?,
            None => before.clone(),
        };
        after.domains = match self.hosts {
            // The hosts changed after the row: the touch is the later write.
            Some(Hosts { domains, changed }) => {
                after.updated_at = changed.updated_at;
                after.version = changed.version;
                domains
            }
            None => before.domains.clone(),
        };
        Ok(after)
    }
}

/// The owner is part of what an instance polls (the owner always has access), so a new
/// owner is a change in the instance's grants log. Keys issued before the change were seen by
/// the previous owner's side: they stop working at once (the deploy hook issues the new owner
/// a key in its answer; an admin's owner change leaves the new owner to rotate for one).
///
/// The keys go first: notifications are delivered in the order they were sent, so every
/// replica forgets the keys before the new revision wakes the polls parked with them (which
/// identify their caller again before answering).
///
/// The grants of the previous owner and of the new one go too (`grants::ops::forget_users`),
/// and the refresh tokens the login relay handed out for it: the new owner must not be able to
/// let its earlier users' sessions go on (by granting them) with tokens read from its sites.
async fn owner_changed(
    conn: &mut PgConnection,
    outbox: Outbox,
    actor: &Actor,
    id: &InstanceId,
    (previous, owner): (&UserId, &UserId),
) -> Result<()> {
    crate::keys::revoke_all(conn, id.as_str()).await?;
    db::relay::forget_refresh_tokens(&mut *conn, id.as_str()).await?;
    crate::grants::ops::forget_users(
        conn,
        outbox,
        actor,
        id,
        &[previous.as_str(), owner.as_str()],
    )
    .await?;
    db::grants::record(
        conn,
        id.as_str(),
        &[crate::domain::grant::Change::Owner(owner.to_string())],
    )
    .await?;
    Ok(())
}

/// A deleted instance keeps no access: its grants and invitations go (in its change log and
/// the audit log), its keys stop working and the relay's refresh tokens for it are forgotten;
/// deploying it again starts empty with a new key. The keys go first, as in [`owner_changed`].
async fn forget_access(conn: &mut PgConnection, actor: &Actor, id: &InstanceId) -> Result<()> {
    crate::keys::revoke_all(conn, id.as_str()).await?;
    db::relay::forget_refresh_tokens(&mut *conn, id.as_str()).await?;
    crate::grants::ops::forget_all(conn, actor, id).await?;
    Ok(())
}

/// Brings an instance's domains to `wanted`: releases the others and claims the new ones (which
/// touches the instance's row: see `db::domains::change`); answers the hosts as they are now,
/// or None when they did not change.
/// A host held by another instance is a conflict, and the caller's transaction is abandoned.
async fn sync_domains(
    conn: &mut PgConnection,
    current: &Instance,
    mut wanted: Vec<Domain>,
) -> Result<Option<Hosts>> {
    let id = current.id.as_str();
    let have: HashSet<&Hostname> = current.domains.iter().map(|d| &d.hostname).collect();
    let want: HashSet<&Hostname> = wanted.iter().map(|d| &d.hostname).collect();
    let added: Vec<&Domain> = wanted
        .iter()
        .filter(|d| !have.contains(&d.hostname))
        .collect();
    let removed: Vec<String> = current
        .domains
        .iter()
        .filter(|d| !want.contains(&d.hostname))
        .map(|d| d.hostname.to_string())
        .collect();

    if added.is_empty() && removed.is_empty() {
        return Ok(None);
    }
    let added_hosts: Vec<String> = added.iter().map(|d| d.hostname.to_string()).collect();
    let kinds: Vec<&str> = added.iter().map(|d| d.kind.as_str()).collect();
    let changed = db::domains::change(conn, id, &removed, &added_hosts, &kinds).await?;
    if changed.claimed < added.len() as u64 {
        // Some host is held by another instance: say which (the transaction is abandoned).
        return Err(
            match db::domains::held_by_others(conn, id, &added_hosts)
                .await?
                .into_iter()
                .next()
            {
                Some(taken) => RegistryError::HostTaken {
                    host: Hostname::parse(&taken.hostname)
                        .map_err(|e| RegistryError::Corrupt(e.to_string()))?,
                    owner: taken.instance_id,
                },
                None => RegistryError::HostTakenConcurrently,
            },
        );
    }
    wanted.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    Ok(Some(Hosts {
        domains: wanted,
        changed,
    }))
}
