//! The registry of instances and their domains: every change goes through here, in a
//! transaction the caller owns, and leaves an audit entry.

mod hosts;
mod model;
mod ops;

pub use hosts::{MAX_DOMAINS_PER_INSTANCE, validate_hosts};
pub use model::{Domain, Instance, load, load_many};
pub use ops::Registry;

use crate::domain::{Hostname, InstanceId, InstanceStatus};

/// Who made a change, as written to the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `kind:identity`: `hook:<webhook-id>`, `admin:<sub>`, `owner:<sub>`, …
    pub name: String,
    pub request_id: Option<String>,
}

/// The longest identity an actor name keeps.
const MAX_IDENTITY: usize = 512;

impl Actor {
    /// `kind:identity`, the identity (a token's `sub`, a webhook id: input from outside)
    /// bounded and with control characters escaped, so an audit line can never be forged or
    /// split by a newline in it.
    pub fn new(kind: &str, identity: &str, request_id: Option<String>) -> Self {
        let mut name = format!("{kind}:");
        for c in identity.chars().take(MAX_IDENTITY) {
            if c.is_control() {
                name.extend(c.escape_default());
            } else {
                name.push(c);
            }
        }
        Self { name, request_id }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("instance '{0}' does not exist")]
    NotFound(InstanceId),
    #[error("instance '{0}' already exists")]
    AlreadyExists(InstanceId),
    #[error("host '{host}' already belongs to instance '{owner}'")]
    HostTaken { host: Hostname, owner: String },
    #[error(
        "a host in this request was taken by another instance at the same moment; retry to see which"
    )]
    HostTakenConcurrently,
    #[error("{0}")]
    InvalidDomains(String),
    #[error("instance '{id}' is {from} and cannot become {to}")]
    InvalidTransition {
        id: InstanceId,
        from: InstanceStatus,
        to: InstanceStatus,
    },
    #[error("instance '{0}' is deleted; deploy it again to bring it back")]
    Deleted(InstanceId),
    #[error("instance '{id}' already has host '{host}'")]
    DomainExists { id: InstanceId, host: Hostname },
    #[error("instance '{id}' has no host '{host}'")]
    DomainNotFound { id: InstanceId, host: Hostname },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, RegistryError>;

#[cfg(test)]
mod tests {
    use super::Actor;

    #[test]
    fn actor_identities_cannot_split_or_forge_a_line() {
        let a = Actor::new("admin", "auth0|eve\nadmin:auth0|root\u{7}", None);
        assert_eq!(a.name, "admin:auth0|eve\\nadmin:auth0|root\\u{7}");
        assert_eq!(
            Actor::new("owner", "auth0|josé", None).name,
            "owner:auth0|josé"
        );
        let long = Actor::new("hook", &"x".repeat(10_000), None);
        assert_eq!(long.name.len(), "hook:".len() + 512);
    }
}
