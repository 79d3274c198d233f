//! Changing grants. Each change locks the instance, writes the grant, appends to the
//! instance's change log under the next revision, prunes the log, and audits, all in the
//! caller's transaction.

use sqlx::PgConnection;
use uuid::Uuid;

use super::replace::{self, ReplaceError, Wanted};
use crate::{
    db,
    domain::grant::{Change, Grant},
    domain::printable,
    domain::{Actor, Email, InstanceId, InstanceStatus, InstanceUnavailable, UserId},
    events::{Kind, Outbox},
};

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error(transparent)]
    Instance(#[from] InstanceUnavailable),
    #[error("instance '{instance}' has no grant '{grant}'")]
    GrantNotFound { instance: InstanceId, grant: Uuid },
    #[error("{0}")]
    Exists(String),
    #[error(
        "user '{user}' owns instance '{instance}': the owner's access needs no grant (give the instance another owner instead)"
    )]
    OwnerGrant { instance: InstanceId, user: String },
    #[error("role '{role}' is not one of {allowed}")]
    UnknownRole { role: String, allowed: String },
    #[error(transparent)]
    Replace(#[from] ReplaceError),
    #[error("since={since} is ahead of the current revision {revision}")]
    SinceAhead { since: i64, revision: i64 },
    #[error(
        "the changes after revision {since} are no longer kept (the oldest revision a delta can start from is {floor}); fetch a snapshot without since and continue from its revision"
    )]
    RevisionGone { since: i64, floor: i64 },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub(super) type Result<T> = std::result::Result<T, GrantError>;

/// Who a new grant is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    User(UserId),
    /// An invitation, bound to a user id at that person's first login with this verified email.
    Email(Email),
}

#[derive(Debug, Clone)]
pub struct Grants {
    roles: Vec<String>,
    changes_kept: i64,
    outbox: Outbox,
}

impl Grants {
    pub fn new(roles: Vec<String>, changes_kept: i64) -> Self {
        Self {
            roles,
            changes_kept,
            outbox: Outbox::default(),
        }
    }

    /// The same rules, telling the platform of each change through `outbox`.
    pub fn with_outbox(self, outbox: Outbox) -> Self {
        Self { outbox, ..self }
    }

    /// Every role a grant may have, the default first.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// The role a grant gets when none is named: the first configured.
    pub fn default_role(&self) -> &str {
        &self.roles[0]
    }

    pub fn check_role(&self, role: &str) -> Result<()> {
        if self.roles.iter().any(|r| r == role) {
            Ok(())
        } else {
            Err(GrantError::UnknownRole {
                role: printable(role),
                allowed: self.roles.join(", "),
            })
        }
    }

    /// Answers the new grant and the revision it made.
    pub async fn add(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        id: &InstanceId,
        subject: &Subject,
        role: &str,
    ) -> Result<(Grant, i64)> {
        self.check_role(role)?;
        let owner = live(conn, id).await?;
        if let Subject::User(u) = subject {
            not_the_owner(id, &owner, u.as_str())?;
        }
        let (user, email) = match subject {
            Subject::User(u) => (Some(u.as_str()), None),
            Subject::Email(e) => (None, Some(e.as_str())),
        };
        let grant = db::grants::insert(conn, id.as_str(), user, email, role)
            .await
            .map_err(|e| match db::violated_constraint(&e) {
                Some(db::grants::USER_KEY) => GrantError::Exists(format!(
                    "user '{}' already has a grant on instance '{id}'",
                    user.unwrap_or_default()
                )),
                Some(db::grants::INVITATION_KEY) => GrantError::Exists(format!(
                    "'{}' is already invited to instance '{id}'",
                    email.unwrap_or_default()
                )),
                _ => e.into(),
            })?;
        let revision = self
            .finish(
                conn,
                actor,
                "grant.added",
                id,
                None,
                Change::Added(grant.clone()),
            )
            .await?;
        let kind = match subject {
            Subject::User(_) => Kind::GrantAdded,
            Subject::Email(_) => Kind::GrantInvited,
        };
        self.tell(conn, actor, id, &[(kind, &grant, None)]).await?;
        Ok((grant, revision))
    }

    pub async fn set_role(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        id: &InstanceId,
        grant_id: Uuid,
        role: &str,
    ) -> Result<(Grant, i64)> {
        self.check_role(role)?;
        live(conn, id).await?;
        let before = self.existing(conn, id, grant_id).await?;
        if before.role == role {
            let (revision, _) = db::grants::revision(conn, id.as_str()).await?;
            return Ok((before, revision));
        }
        let after = db::grants::set_role(conn, id.as_str(), grant_id, role)
            .await?
            .ok_or(GrantError::GrantNotFound {
                instance: id.clone(),
                grant: grant_id,
            })?;
        let revision = self
            .finish(
                conn,
                actor,
                "grant.role_changed",
                id,
                Some(&before),
                Change::Updated(after.clone()),
            )
            .await?;
        self.tell(
            conn,
            actor,
            id,
            &[(Kind::GrantRoleChanged, &after, Some(&before))],
        )
        .await?;
        Ok((after, revision))
    }

    pub async fn remove(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        id: &InstanceId,
        grant_id: Uuid,
    ) -> Result<i64> {
        live(conn, id).await?;
        let before = db::grants::delete(conn, id.as_str(), grant_id)
            .await?
            .ok_or(GrantError::GrantNotFound {
                instance: id.clone(),
                grant: grant_id,
            })?;
        let revision = self
            .finish(
                conn,
                actor,
                "grant.removed",
                id,
                Some(&before),
                Change::Removed(grant_id),
            )
            .await?;
        self.tell(conn, actor, id, &[(Kind::GrantRemoved, &before, None)])
            .await?;
        Ok(revision)
    }

    /// Replaces the instance's grants with `wanted` (roles already checked): one revision
    /// whose changes are one run in the log, and one audit entry. Nothing is written when the
    /// set is already the instance's.
    pub async fn replace(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        id: &InstanceId,
        wanted: &[Wanted],
    ) -> Result<Replaced> {
        let owner = live(conn, id).await?;
        for w in wanted {
            if let Subject::User(u) = &w.subject {
                not_the_owner(id, &owner, u.as_str())?;
            }
        }
        let existing = db::grants::of_instance(conn, id.as_str()).await?;
        let plan = replace::plan(&existing, wanted)?;
        let mut done = Replaced {
            unchanged: plan.unchanged,
            ..Replaced::default()
        };
        if plan.is_empty() {
            done.revision = db::grants::revision(conn, id.as_str()).await?.0;
            return Ok(done);
        }
        let removed = db::grants::delete_many(conn, id.as_str(), &plan.remove).await?;
        let (ids, roles): (Vec<Uuid>, Vec<&str>) = plan
            .set_role
            .iter()
            .map(|(id, role)| (*id, role.as_str()))
            .unzip();
        let updated = db::grants::set_roles(conn, id.as_str(), &ids, &roles).await?;
        let (mut users, mut emails, mut roles) = (Vec::new(), Vec::new(), Vec::new());
        for w in &plan.add {
            let (u, e) = match &w.subject {
                Subject::User(u) => (Some(u.as_str()), None),
                Subject::Email(e) => (None, Some(e.as_str())),
            };
            users.push(u);
            emails.push(e);
            roles.push(w.role.as_str());
        }
        let added = db::grants::insert_many(conn, id.as_str(), &users, &emails, &roles).await?;
        let changes: Vec<Change> = removed
            .iter()
            .map(|g| Change::Removed(g.id))
            .chain(updated.iter().cloned().map(Change::Updated))
            .chain(added.iter().cloned().map(Change::Added))
            .collect();
        done.revision = db::grants::record(conn, id.as_str(), &changes).await?;
        let subject = |g: &Grant| serde_json::json!({ "grant_id": g.id, "user_id": g.user_id, "email": g.email, "role": g.role });
        db::audit::record(
            conn,
            db::audit::NewEntry {
                actor: &actor.name,
                action: "grants.replaced",
                target_type: "instance",
                target_id: id.as_str(),
                before: None,
                after: Some(serde_json::json!({
                    "revision": done.revision,
                    "added": added.iter().map(subject).collect::<Vec<_>>(),
                    "role_changed": updated.iter().map(subject).collect::<Vec<_>>(),
                    "removed": removed.iter().map(subject).collect::<Vec<_>>(),
                    "unchanged": plan.unchanged,
                })),
                request_id: actor.request_id.as_deref(),
            },
        )
        .await?;
        db::grants::prune(conn, id.as_str(), done.revision, self.changes_kept).await?;
        let told: Vec<Told> = removed
            .iter()
            .map(|g| (Kind::GrantRemoved, g, None))
            .chain(updated.iter().map(|g| {
                let before = existing.iter().find(|e| e.id == g.id);
                (Kind::GrantRoleChanged, g, before)
            }))
            .chain(added.iter().map(|g| {
                let kind = if g.user_id.is_some() {
                    Kind::GrantAdded
                } else {
                    Kind::GrantInvited
                };
                (kind, g, None)
            }))
            .collect();
        self.tell(conn, actor, id, &told).await?;
        (done.added, done.role_changed, done.removed) = (added.len(), updated.len(), removed.len());
        Ok(done)
    }

    /// Binds an invitation to the user who just logged in with its verified email. None when
    /// it was bound (or removed) meanwhile.
    pub async fn bind(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        id: &InstanceId,
        invitation: &Grant,
        user: &UserId,
    ) -> Result<Option<(Grant, i64)>> {
        live(conn, id).await?;
        let Some(after) = db::grants::bind(conn, id.as_str(), invitation.id, user.as_str())
            .await
            .or_else(|e| {
                // The user got a grant of their own meanwhile: the invitation stays unbound.
                if db::violated_constraint(&e) == Some(db::grants::USER_KEY) {
                    Ok(None)
                } else {
                    Err(e)
                }
            })?
        else {
            return Ok(None);
        };
        let revision = self
            .finish(
                conn,
                actor,
                "grant.invitation_accepted",
                id,
                Some(invitation),
                Change::Updated(after.clone()),
            )
            .await?;
        self.tell(conn, actor, id, &[(Kind::InvitationAccepted, &after, None)])
            .await?;
        Ok(Some((after, revision)))
    }

    /// Tells the platform of these changes, in their transaction.
    async fn tell(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        id: &InstanceId,
        changes: &[Told<'_>],
    ) -> sqlx::Result<()> {
        tell(conn, self.outbox, actor, id, changes).await
    }

    async fn existing(
        &self,
        conn: &mut PgConnection,
        id: &InstanceId,
        grant: Uuid,
    ) -> Result<Grant> {
        db::grants::get(conn, id.as_str(), grant)
            .await?
            .ok_or(GrantError::GrantNotFound {
                instance: id.clone(),
                grant,
            })
    }

    async fn finish(
        &self,
        conn: &mut PgConnection,
        actor: &Actor,
        action: &str,
        id: &InstanceId,
        before: Option<&Grant>,
        change: Change,
    ) -> Result<i64> {
        let revision = record_and_audit(conn, actor, action, id, before, change).await?;
        db::grants::prune(conn, id.as_str(), revision, self.changes_kept).await?;
        Ok(revision)
    }
}

/// What replacing an instance's grants did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Replaced {
    /// The instance's revision after it (unchanged when nothing changed).
    pub revision: i64,
    pub added: usize,
    pub role_changed: usize,
    pub removed: usize,
    pub unchanged: usize,
}

/// Removes every grant and invitation of an instance that is being deleted (the caller holds
/// its lock), each as a `removed` change in its log and a `grant.removed` audit entry, so
/// that followers see them go and a later deploy of the same id starts empty. Answers the
/// last revision it made, if any. The log is pruned by the instance's next change. The
/// platform, which deleted it, is told nothing.
pub async fn forget_all(
    conn: &mut PgConnection,
    actor: &Actor,
    id: &InstanceId,
) -> sqlx::Result<Option<i64>> {
    forget(conn, Outbox::default(), actor, id, |_| true).await
}

/// Removes the grants these users hold on an instance whose owner changes (the caller holds
/// its lock): the previous owner's access ends with their ownership (a grant they gave
/// themselves must not outlive it), and the new owner needs none. Each goes as a `removed`
/// change, a `grant.removed` audit entry and event.
pub async fn forget_users(
    conn: &mut PgConnection,
    outbox: Outbox,
    actor: &Actor,
    id: &InstanceId,
    users: &[&str],
) -> sqlx::Result<()> {
    let theirs = |g: &Grant| g.user_id.as_deref().is_some_and(|u| users.contains(&u));
    forget(conn, outbox, actor, id, theirs).await.map(drop)
}

/// Removes the instance's grants `which` picks, each as a change, an audit entry and an event.
async fn forget(
    conn: &mut PgConnection,
    outbox: Outbox,
    actor: &Actor,
    id: &InstanceId,
    which: impl Fn(&Grant) -> bool,
) -> sqlx::Result<Option<i64>> {
    let mut last = None;
    let mut gone = Vec::new();
    for grant in db::grants::of_instance(conn, id.as_str()).await? {
        if !which(&grant) {
            continue;
        }
        db::grants::delete(conn, id.as_str(), grant.id).await?;
        let change = Change::Removed(grant.id);
        last =
            Some(record_and_audit(conn, actor, "grant.removed", id, Some(&grant), change).await?);
        gone.push(grant);
    }
    let told: Vec<Told> = gone.iter().map(|g| (Kind::GrantRemoved, g, None)).collect();
    tell(conn, outbox, actor, id, &told).await?;
    Ok(last)
}

/// A change the platform is told of: its kind, the grant (as it was, when removed), and the
/// grant before a role change.
type Told<'a> = (Kind, &'a Grant, Option<&'a Grant>);

/// Tells the platform of these changes to an instance's grants through `outbox`, in their
/// transaction (the instance's hosts read once for all of them).
async fn tell(
    conn: &mut PgConnection,
    outbox: Outbox,
    actor: &Actor,
    id: &InstanceId,
    changes: &[Told<'_>],
) -> sqlx::Result<()> {
    if !outbox.is_on() || changes.is_empty() {
        return Ok(());
    }
    let hosts: Vec<String> = db::domains::of_instances(conn, &[id.to_string()])
        .await?
        .into_iter()
        .map(|d| d.hostname)
        .collect();
    for (kind, grant, before) in changes {
        let mut data = serde_json::json!({
            "instance_id": id,
            "hosts": hosts,
            "grant_id": grant.id,
            "user_id": grant.user_id,
            "email": grant.email,
            "role": grant.role,
            "by": actor.name,
        });
        if let Some(before) = before {
            data["previous_role"] = before.role.clone().into();
        }
        outbox.record(conn, *kind, Some(id.as_str()), data).await?;
    }
    Ok(())
}

/// Appends a change to the instance's log and audits it; answers the revision it made.
async fn record_and_audit(
    conn: &mut PgConnection,
    actor: &Actor,
    action: &str,
    id: &InstanceId,
    before: Option<&Grant>,
    change: Change,
) -> sqlx::Result<i64> {
    let after = match &change {
        Change::Added(g) | Change::Updated(g) => Some(g.to_json()),
        _ => None,
    };
    let revision = db::grants::record(conn, id.as_str(), &[change]).await?;
    db::audit::record(
        conn,
        db::audit::NewEntry {
            actor: &actor.name,
            action,
            target_type: "instance",
            target_id: id.as_str(),
            before: before.map(Grant::to_json),
            after,
            request_id: actor.request_id.as_deref(),
        },
    )
    .await?;
    Ok(revision)
}

/// The owner's access is implied: a grant of theirs would do nothing while they own the
/// instance, and would outlive their ownership.
fn not_the_owner(id: &InstanceId, owner: &str, user: &str) -> Result<()> {
    if owner == user {
        return Err(GrantError::OwnerGrant {
            instance: id.clone(),
            user: printable(user),
        });
    }
    Ok(())
}

/// Locks the instance (serialising with registry changes) and refuses deleted ones; answers
/// its owner.
async fn live(conn: &mut PgConnection, id: &InstanceId) -> Result<String> {
    let row = db::instances::lock(conn, id.as_str())
        .await?
        .ok_or_else(|| InstanceUnavailable::not_found(id))?;
    if row.status == InstanceStatus::Deleted.as_str() {
        return Err(InstanceUnavailable::Deleted {
            id: id.clone(),
            consequence: "its grants cannot change",
        }
        .into());
    }
    Ok(row.owner)
}
