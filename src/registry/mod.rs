//! The registry of instances and their domains: every change goes through here, in a
//! transaction the caller owns, and leaves an audit entry.

mod commands;
pub mod hooks;
mod hosts;
mod model;
mod ops;

pub use commands::{Commands, ListQuery};
pub use hosts::{MAX_DOMAINS_PER_INSTANCE, validate_hosts};
pub use model::{Domain, Instance, load, load_many};
pub use ops::{Deploy, Deployed, Registry};

use crate::domain::{Hostname, InstanceId, InstanceStatus, InstanceUnavailable};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Instance(#[from] InstanceUnavailable),
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
