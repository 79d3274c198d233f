//! The login decision, as a pure function of what the registry says about the login.

use crate::domain::InstanceStatus;

/// What the registry knows about the instance a login is for.
#[derive(Debug, Clone)]
pub struct LoginFacts {
    pub instance_id: String,
    pub status: InstanceStatus,
    pub owner: String,
    /// The role of the user's own grant on the instance.
    pub granted: Option<String>,
    /// The role of an unbound invitation to the user's email, if there is one.
    pub invited: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Decision {
    pub allow: bool,
    pub instance_id: Option<String>,
    pub role: Option<String>,
    pub reason: &'static str,
    /// The invitation is to be bound to this user (only when allowed through it).
    #[serde(skip)]
    pub bind_invitation: bool,
}

impl Decision {
    fn deny(instance_id: Option<&str>, reason: &'static str) -> Self {
        Self {
            allow: false,
            instance_id: instance_id.map(str::to_owned),
            role: None,
            reason,
            bind_invitation: false,
        }
    }

    /// A login that names no instance fleetgate can trust (a relayed login whose transaction is
    /// missing, unknown or used): denied.
    pub fn refused(reason: &'static str) -> Self {
        Self::deny(None, reason)
    }

    /// A login to fleetgate's own operator console (its own application): no instance to bind
    /// the tokens to; fleetgate's API decides what the token may do.
    pub fn operator_console() -> Self {
        Self {
            allow: true,
            instance_id: None,
            role: None,
            reason: "operator_console",
            bind_invitation: false,
        }
    }

    fn allow(instance_id: &str, role: &str, reason: &'static str, bind: bool) -> Self {
        Self {
            allow: true,
            instance_id: Some(instance_id.to_owned()),
            role: Some(role.to_owned()),
            reason,
            bind_invitation: bind,
        }
    }
}

/// Allow the owner, a granted user, or the holder of a verified email that was invited;
/// deny unknown hosts and instances that are not active. `facts` is None when the redirect
/// URI's host belongs to no instance; `invited` only counts with a verified email.
pub fn decide(user_id: &str, email_verified: bool, facts: Option<&LoginFacts>) -> Decision {
    let Some(f) = facts else {
        return Decision::deny(None, "unknown_host");
    };
    let id = f.instance_id.as_str();
    match f.status {
        InstanceStatus::Active => {}
        InstanceStatus::Suspended => return Decision::deny(Some(id), "instance_suspended"),
        InstanceStatus::Deleted => return Decision::deny(Some(id), "instance_deleted"),
    }
    if f.owner == user_id {
        return Decision::allow(id, "owner", "owner", false);
    }
    if let Some(role) = &f.granted {
        return Decision::allow(id, role, "granted", false);
    }
    match (&f.invited, email_verified) {
        (Some(role), true) => Decision::allow(id, role, "invitation_accepted", true),
        (Some(_), false) => Decision::deny(Some(id), "email_not_verified"),
        (None, _) => Decision::deny(Some(id), "not_granted"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(status: InstanceStatus) -> LoginFacts {
        LoginFacts {
            instance_id: "acme".into(),
            status,
            owner: "auth0|owner".into(),
            granted: None,
            invited: None,
        }
    }

    #[test]
    fn unknown_hosts_are_denied() {
        let d = decide("auth0|x", true, None);
        assert_eq!(
            (d.allow, d.reason, d.instance_id),
            (false, "unknown_host", None)
        );
    }

    #[test]
    fn only_active_instances_admit_anyone_even_their_owner() {
        for (status, reason) in [
            (InstanceStatus::Suspended, "instance_suspended"),
            (InstanceStatus::Deleted, "instance_deleted"),
        ] {
            let d = decide("auth0|owner", true, Some(&facts(status)));
            assert_eq!((d.allow, d.reason), (false, reason));
        }
    }

    #[test]
    fn the_owner_is_always_allowed() {
        let d = decide("auth0|owner", false, Some(&facts(InstanceStatus::Active)));
        assert_eq!((d.allow, d.role.as_deref()), (true, Some("owner")));
    }

    #[test]
    fn a_grant_gives_its_role() {
        let f = LoginFacts {
            granted: Some("admin".into()),
            ..facts(InstanceStatus::Active)
        };
        let d = decide("auth0|x", false, Some(&f));
        assert_eq!(
            (d.allow, d.role.as_deref(), d.reason),
            (true, Some("admin"), "granted")
        );
        assert!(!d.bind_invitation);
    }

    #[test]
    fn an_invitation_needs_a_verified_email_and_is_then_bound() {
        let f = LoginFacts {
            invited: Some("member".into()),
            ..facts(InstanceStatus::Active)
        };
        let unverified = decide("auth0|x", false, Some(&f));
        assert_eq!(
            (unverified.allow, unverified.reason),
            (false, "email_not_verified")
        );
        let verified = decide("auth0|x", true, Some(&f));
        assert!(verified.allow && verified.bind_invitation);
        assert_eq!(verified.reason, "invitation_accepted");
    }

    #[test]
    fn anyone_else_is_denied() {
        let d = decide("auth0|x", true, Some(&facts(InstanceStatus::Active)));
        assert_eq!((d.allow, d.reason), (false, "not_granted"));
    }
}
