//! The grants feature as the API uses it: each change in a transaction of its own whose new
//! revision this replica's memory knows at once (other replicas hear of it by notification),
//! and the reads around it (who may manage an instance, a user's grants).

use std::sync::Arc;

use sqlx::PgPool;
use uuid::Uuid;

use super::{
    Grants, Live, Replaced, Subject, last_login::LastLogins, ops::Result, replace::Wanted,
};
use crate::{
    db::{self, grants::UserGrant},
    domain::{Actor, InstanceId, InstanceUnavailable, UserId, grant::Grant},
};

/// An instance's people (`GET /v1/instances/{id}/people`).
#[derive(Debug, serde::Serialize)]
pub struct People {
    pub instance_id: InstanceId,
    pub owner: Person,
    /// Grants and invitations (an invitation has an `email` and no `user_id` yet).
    pub grants: Vec<PersonGrant>,
}

#[derive(Debug, serde::Serialize)]
pub struct Person {
    pub user_id: String,
    /// The email of the person's last login here, if one was seen.
    pub email: Option<String>,
    pub last_login_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The connection of that login (`google-oauth2`, …), as the Action told it.
    pub last_login_connection: Option<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct PersonGrant {
    #[serde(flatten)]
    pub grant: Grant,
    /// The email of the person's last login here (a grant to a user id carries none).
    pub seen_email: Option<String>,
    pub last_login_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_login_connection: Option<String>,
}

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
    last_logins: Arc<LastLogins>,
    rules: Grants,
    /// How many long-polls one caller may have parked at once.
    max_parked_per_caller: usize,
}

impl Commands {
    pub fn new(pool: PgPool, live: Arc<Live>, rules: Grants, max_parked_per_caller: usize) -> Self {
        Self {
            pool,
            live,
            last_logins: Arc::default(),
            rules,
            max_parked_per_caller,
        }
    }

    /// Writes the last logins seen since the previous flush (see [`LastLogins`]).
    pub async fn flush_last_logins(&self) -> sqlx::Result<usize> {
        self.last_logins.flush(&self.pool).await
    }

    /// The people of an instance: its owner and every grant and invitation, each with when
    /// that person last logged in to it (as last flushed).
    pub async fn people(&self, id: &InstanceId) -> Result<People> {
        let mut conn = self.pool.acquire().await?;
        let row = db::instances::get(&mut conn, id.as_str())
            .await?
            .ok_or_else(|| InstanceUnavailable::not_found(id))?;
        let grants = db::grants::of_instance(&mut conn, id.as_str()).await?;
        let logins = db::last_logins::of_instance(&mut conn, id.as_str()).await?;
        let seen = |user: Option<&str>| logins.iter().find(|l| Some(l.user_id.as_str()) == user);
        Ok(People {
            instance_id: id.clone(),
            owner: Person {
                email: seen(Some(&row.owner)).and_then(|l| l.email.clone()),
                last_login_at: seen(Some(&row.owner)).map(|l| l.at),
                last_login_connection: seen(Some(&row.owner)).and_then(|l| l.connection.clone()),
                user_id: row.owner,
            },
            grants: grants
                .into_iter()
                .map(|grant| PersonGrant {
                    last_login_at: seen(grant.user_id.as_deref()).map(|l| l.at),
                    last_login_connection: seen(grant.user_id.as_deref())
                        .and_then(|l| l.connection.clone()),
                    seen_email: seen(grant.user_id.as_deref()).and_then(|l| l.email.clone()),
                    grant,
                })
                .collect(),
        })
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

    /// The instances (not deleted) this user owns or administers (role `admin`), with the role.
    pub async fn managed_by(&self, user: &str) -> Result<Vec<UserGrant>> {
        let mut conn = self.pool.acquire().await?;
        Ok(db::grants::of_user(&mut conn, user)
            .await?
            .into_iter()
            .filter(|g| (g.role == "owner" || g.role == "admin") && g.status != "deleted")
            .collect())
    }

    /// The instances this user owns or holds a grant on.
    pub async fn of_user(&self, user: &UserId) -> Result<Vec<UserGrant>> {
        let mut conn = self.pool.acquire().await?;
        Ok(db::grants::of_user(&mut conn, user.as_str()).await?)
    }

    pub(super) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(super) fn last_logins(&self) -> &LastLogins {
        &self.last_logins
    }

    pub(super) fn live(&self) -> &Live {
        &self.live
    }

    pub(super) fn max_parked_per_caller(&self) -> usize {
        self.max_parked_per_caller
    }
}
