//! Changing grants. Each change locks the instance, writes the grant, appends to the
//! instance's change log under the next revision, prunes the log, and audits, all in the
//! caller's transaction.

use sqlx::PgConnection;
use uuid::Uuid;

use super::model::{Change, Grant};
use crate::{
    db,
    domain::printable,
    domain::{Email, InstanceId, InstanceStatus, UserId},
    registry::Actor,
};

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("instance '{0}' does not exist")]
    InstanceNotFound(InstanceId),
    #[error("instance '{0}' is deleted; its grants cannot change")]
    InstanceDeleted(InstanceId),
    #[error("instance '{instance}' has no grant '{grant}'")]
    GrantNotFound { instance: InstanceId, grant: Uuid },
    #[error("{0}")]
    Exists(String),
    #[error("role '{role}' is not one of {allowed}")]
    UnknownRole { role: String, allowed: String },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

type Result<T> = std::result::Result<T, GrantError>;

/// Who a new grant is for.
#[derive(Debug, Clone)]
pub enum Subject {
    User(UserId),
    /// An invitation, bound to a user id at that person's first login with this verified email.
    Email(Email),
}

#[derive(Debug, Clone)]
pub struct Grants {
    roles: Vec<String>,
    changes_kept: i64,
}

impl Grants {
    pub fn new(roles: Vec<String>, changes_kept: i64) -> Self {
        Self {
            roles,
            changes_kept,
        }
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
        live(conn, id).await?;
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
        self.finish(
            conn,
            actor,
            "grant.removed",
            id,
            Some(&before),
            Change::Removed(grant_id),
        )
        .await
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
        Ok(Some((after, revision)))
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

/// Removes every grant and invitation of an instance that is being deleted (the caller holds
/// its lock), each as a `removed` change in its log and a `grant.removed` audit entry, so
/// that followers see them go and a later deploy of the same id starts empty. Answers the
/// last revision it made, if any. The log is pruned by the instance's next change.
pub async fn forget_all(
    conn: &mut PgConnection,
    actor: &Actor,
    id: &InstanceId,
) -> sqlx::Result<Option<i64>> {
    let mut last = None;
    for grant in db::grants::of_instance(conn, id.as_str()).await? {
        db::grants::delete(conn, id.as_str(), grant.id).await?;
        last = Some(
            record_and_audit(
                conn,
                actor,
                "grant.removed",
                id,
                Some(&grant),
                Change::Removed(grant.id),
            )
            .await?,
        );
    }
    Ok(last)
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
    let revision = db::grants::record(conn, id.as_str(), &change).await?;
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

/// Locks the instance (serialising with registry changes) and refuses deleted ones.
async fn live(conn: &mut PgConnection, id: &InstanceId) -> Result<()> {
    let row = db::instances::lock(conn, id.as_str())
        .await?
        .ok_or_else(|| GrantError::InstanceNotFound(id.clone()))?;
    if row.status == InstanceStatus::Deleted.as_str() {
        return Err(GrantError::InstanceDeleted(id.clone()));
    }
    Ok(())
}
