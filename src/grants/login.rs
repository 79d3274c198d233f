//! Answering the Auth0 post-login Action: what the registry knows about the login, from this
//! replica's memory (`roster`; one read when that memory is not in step), the pure decision
//! (`decide`), and, when the user came in through an invitation to their verified email,
//! binding it (re-checked under the instance's lock).

use super::{
    GrantError,
    commands::Commands,
    decide::{Decision, LoginFacts, decide},
    ops::Result,
    roster::By,
};
use crate::{
    db,
    domain::{Actor, Email, Hostname, InstanceId, UserId},
};

/// Which instance a login is for.
#[derive(Debug, Clone)]
pub enum Target {
    /// A login: the redirect URI's host (None when it is no name, e.g. an IP address).
    Host(Option<Hostname>),
    /// A refresh-token exchange: the instance the Action recorded at login.
    Instance(InstanceId),
}

#[derive(Debug, Clone)]
pub struct Login {
    pub user_id: UserId,
    /// An email that is not a valid address cannot match an invitation: None.
    pub email: Option<Email>,
    pub email_verified: bool,
    pub target: Target,
    /// The connection the person logged in with, as the Action tells it.
    pub connection: Option<String>,
}

impl Commands {
    /// Decides a login; one that is let in to an instance is remembered as the person's last
    /// login there (written later, in a batch).
    pub async fn decide_login(
        &self,
        login: &Login,
        request_id: Option<String>,
    ) -> Result<Decision> {
        let decision = self.decide(login, request_id).await?;
        if let (true, Some(instance)) = (decision.allow, &decision.instance_id) {
            self.last_logins().saw(
                instance,
                login.user_id.as_str(),
                login.email.as_ref().map(Email::as_str),
                login.connection.as_deref(),
            );
        }
        Ok(decision)
    }

    async fn decide(&self, login: &Login, request_id: Option<String>) -> Result<Decision> {
        let by = match &login.target {
            Target::Host(None) => None,
            Target::Host(Some(h)) => Some(By::Host(h.as_str())),
            Target::Instance(id) => Some(By::Id(id.as_str())),
        };
        let facts = match by {
            None => None,
            Some(by) => match self.remembered(by, login).await? {
                Some(facts) => Some(facts),
                None => self.read_facts(by, login).await?,
            },
        };
        let user = login.user_id.as_str();
        let mut decision = decide(user, login.email_verified, facts.as_ref());
        if facts.is_none() && matches!(by, Some(By::Id(_))) {
            decision.reason = "unknown_instance";
        }
        let (true, Some(facts), Some(email)) = (decision.bind_invitation, &facts, &login.email)
        else {
            return Ok(decision);
        };
        let id =
            InstanceId::parse(&facts.instance_id).map_err(|e| GrantError::Internal(e.into()))?;
        let actor = Actor::new("login", user, request_id);
        let mut tx = self.pool().begin().await?;
        let invitation = db::grants::invitation(&mut tx, id.as_str(), email.as_str()).await?;
        let bound = match &invitation {
            Some(invitation) => {
                self.rules()
                    .bind(&mut tx, &actor, &id, invitation, &login.user_id)
                    .await?
            }
            None => None,
        };
        match bound {
            Some((_, revision)) => {
                self.commit(tx, &id, revision).await?;
                Ok(decision)
            }
            None => {
                // Bound or removed meanwhile: decide again on what is there now.
                let granted = db::grants::role_of(&mut tx, id.as_str(), user).await?;
                let facts = LoginFacts {
                    granted,
                    invited: None,
                    ..facts.clone()
                };
                Ok(decide(user, login.email_verified, Some(&facts)))
            }
        }
    }

    /// What this replica's memory knows about the login: None when it does not hold the
    /// instance or is not in step (ask the database). Grants older than the revision this
    /// replica heard of are read again first (one read, kept for the next login).
    async fn remembered(&self, by: By<'_>, login: &Login) -> Result<Option<LoginFacts>> {
        let live = self.live();
        let Some(entry) = live.roster().lookup(by) else {
            return Ok(None);
        };
        let Some(current) = live.revisions.current(&entry.id) else {
            return Ok(None);
        };
        let grants = if entry.grants.revision() < current {
            live.roster().from_reread.inc();
            let mut conn = self.pool().acquire().await?;
            let read = db::roster::grants_of(&mut conn, &entry.id).await?;
            live.revisions.observe(&entry.id, read.revision);
            let users = read.users.into_iter().zip(read.user_roles);
            let invited = read.emails.into_iter().zip(read.email_roles);
            match live
                .roster()
                .apply_grants(&entry.id, read.revision, users, invited)
            {
                Some(grants) => grants,
                None => return Ok(None),
            }
        } else {
            live.roster().from_memory.inc();
            entry.grants.clone()
        };
        let user = login.user_id.as_str();
        let granted = grants.role_of(user).map(str::to_owned);
        let invited = match (&granted, &login.email) {
            (None, Some(email)) => grants.invitation_for(email.as_str()).map(str::to_owned),
            _ => None,
        };
        Ok(Some(LoginFacts {
            instance_id: entry.id.to_string(),
            status: entry.status,
            owner: entry.owner.to_string(),
            granted,
            invited,
        }))
    }

    /// What the database knows about the login, in one read (counted as a `miss` when the
    /// memory is in step but does not hold the instance).
    async fn read_facts(&self, by: By<'_>, login: &Login) -> Result<Option<LoginFacts>> {
        let (named, host) = match by {
            By::Id(id) => (Some(id), None),
            By::Host(host) => (None, Some(host)),
        };
        let roster = self.live().roster();
        if roster.in_step() {
            roster.from_miss.inc();
        } else {
            roster.from_database.inc();
        }
        let mut conn = self.pool().acquire().await?;
        let row = db::logins::facts(
            &mut conn,
            named,
            host,
            login.user_id.as_str(),
            login.email.as_ref().map(Email::as_str),
        )
        .await?;
        row.map(|row| {
            Ok(LoginFacts {
                instance_id: row.instance_id,
                status: row
                    .status
                    .parse()
                    .map_err(|e: crate::domain::ParseError| GrantError::Internal(e.into()))?,
                owner: row.owner,
                granted: row.granted,
                invited: row.invited,
            })
        })
        .transpose()
    }
}
