//! The one way every feature says that the instance a request names cannot be used: it does
//! not exist, or it is deleted. The API answers each the same whichever feature found it (404
//! `not_found`; 409 `instance_deleted`).

use super::InstanceId;

#[derive(Debug, thiserror::Error)]
pub enum InstanceUnavailable {
    #[error("instance '{0}' does not exist")]
    NotFound(InstanceId),
    /// Deleted; `consequence` says what that means for the request ("deploy it again to bring
    /// it back", "its grants cannot change").
    #[error("instance '{id}' is deleted; {consequence}")]
    Deleted {
        id: InstanceId,
        consequence: &'static str,
    },
}

impl InstanceUnavailable {
    /// Deleted, for a request that a new deploy would make possible again.
    pub fn deleted(id: &InstanceId) -> Self {
        Self::Deleted {
            id: id.clone(),
            consequence: "deploy it again to bring it back",
        }
    }

    pub fn not_found(id: &InstanceId) -> Self {
        Self::NotFound(id.clone())
    }
}
