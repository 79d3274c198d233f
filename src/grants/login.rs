//! Answering the Auth0 post-login Action: one read of what the registry knows about the
//! login, the pure decision (`decide`), and, when the user came in through an invitation to
//! their verified email, binding it (re-checked under the instance's lock).

use super::{
    GrantError,
    commands::Commands,
    decide::{Decision, LoginFacts, decide},
    ops::Result,
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
        let (host, named) = match &login.target {
            Target::Host(None) => (None, None),
            Target::Host(Some(h)) => (Some(h.as_str()), None),
            Target::Instance(id) => (None, Some(id.as_str())),
        };
        // One read, no transaction; only binding an invitation writes.
        let row = match (host, named) {
            (None, None) => None,
            _ => {
                let mut conn = self.pool().acquire().await?;
                db::logins::facts(
                    &mut conn,
                    named,
                    host,
                    login.user_id.as_str(),
                    login.email.as_ref().map(Email::as_str),
                )
                .await?
            }
        };
        let facts = match row {
            None => None,
            Some(row) => Some((
                LoginFacts {
                    instance_id: row.instance_id,
                    status: row
                        .status
                        .parse()
                        .map_err(|e: crate::domain::ParseError| GrantError::Internal(e.into()))?,
                    owner: row.owner,
                    invited: row.invitation.as_ref().map(|g| g.role.clone()),
                    granted: row.granted,
                },
                row.invitation,
            )),
        };
        let user = login.user_id.as_str();
        let mut decision = decide(user, login.email_verified, facts.as_ref().map(|(f, _)| f));
        if facts.is_none() && named.is_some() {
            decision.reason = "unknown_instance";
        }
        let (true, Some((facts, Some(invitation)))) = (decision.bind_invitation, &facts) else {
            return Ok(decision);
        };
        let id =
            InstanceId::parse(&facts.instance_id).map_err(|e| GrantError::Internal(e.into()))?;
        let actor = Actor::new("login", user, request_id);
        let mut tx = self.pool().begin().await?;
        match self
            .rules()
            .bind(&mut tx, &actor, &id, invitation, &login.user_id)
            .await?
        {
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
}
