//! Grants: who may log in to which instance. Changes are written with a per-instance
//! revision and change log (`ops`); instances poll snapshots and deltas (`delta`) and wait on
//! revisions held in memory (`revisions`, kept fresh by `listener`); the login Action asks for
//! decisions (`decide`).

pub mod answers;
pub mod decide;
pub mod delta;
pub mod listener;
pub mod model;
pub mod ops;
pub mod revisions;

use crate::auth::instance_key::KeyCache;

pub use ops::{GrantError, Grants, Subject};

/// What each replica keeps in memory so that polls need no database.
#[derive(Default)]
pub struct Live {
    pub revisions: revisions::Revisions,
    pub keys: KeyCache,
    pub answers: answers::Answers,
}

impl Live {
    pub fn mark_unsynced(&self) {
        self.revisions.mark_unsynced();
        self.keys.mark_unsynced();
    }
}
