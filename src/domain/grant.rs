//! Grants as the API shows them, and the changes that make up an instance's log.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Who may log in to an instance, and as what. An invitation has an `email` and no `user_id`
/// until the invited person's first login with that verified email binds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct Grant {
    pub id: Uuid,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub bound_at: Option<DateTime<Utc>>,
}

impl Grant {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a grant always serialises")
    }
}

/// One entry of an instance's change log: the change that produced `revision`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Added(Grant),
    Updated(Grant),
    Removed(Uuid),
    /// The instance got a new owner (who always has access).
    Owner(String),
}

/// Everything an instance needs to decide who may use it, at one revision.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub instance_id: String,
    pub revision: i64,
    pub owner: String,
    pub grants: Vec<Grant>,
}

/// What changed between two revisions: applying it to the snapshot at `from` gives the
/// snapshot at `revision`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Delta {
    pub instance_id: String,
    pub from: i64,
    pub revision: i64,
    /// Set when the owner changed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub owner: Option<String>,
    pub added: Vec<Grant>,
    pub updated: Vec<Grant>,
    pub removed: Vec<Uuid>,
}
