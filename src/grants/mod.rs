//! Grants: who may log in to which instance. Changes are written with a per-instance
//! revision and change log (`ops`); instances poll snapshots and deltas (`delta`) and wait on
//! revisions held in memory (`revisions`, kept fresh by `listener`); the login Action asks for
//! decisions (`decide`), answered from the replica's memory of instances and grants (`roster`).

mod answers;
mod commands;
pub mod decide;
pub mod delta;
mod feed;
pub mod last_login;
pub mod lineage;
pub mod listener;
pub mod login;
pub mod ops;
mod poll;
pub mod replace;
pub mod revisions;
pub mod roster;

use std::sync::Arc;

use crate::keys::KeyCache;

pub use commands::{Commands, People, Person, PersonGrant, Standing};
pub use ops::{GrantError, Grants, Replaced, Subject};
pub use poll::{Poll, PollAnswer, PollError};

/// What each replica keeps in memory so that polls need no database.
#[derive(Default)]
pub struct Live {
    revisions: revisions::Revisions,
    keys: Arc<KeyCache>,
    answers: answers::Answers,
    roster: roster::Roster,
    /// Set once the memory was first loaded (the replica is ready then: see `/readyz`).
    loaded: std::sync::atomic::AtomicBool,
}

impl Live {
    /// The live keys, shared with the keys use cases.
    pub fn keys(&self) -> Arc<KeyCache> {
        self.keys.clone()
    }

    /// Polls waiting now (`fleetgate_grants_parked_polls`), for the metrics registry.
    pub fn parked_polls_gauge(&self) -> prometheus::IntGauge {
        self.revisions.parked.clone()
    }

    /// Where login decisions found their facts (`fleetgate_login_facts_total`), for the
    /// metrics registry.
    pub fn login_facts_counter(&self) -> prometheus::IntCounterVec {
        self.roster.reads.clone()
    }

    /// Ends every wait at once (the server shuts down).
    pub fn close(&self) {
        self.revisions.close();
    }

    pub fn mark_loaded(&self) {
        self.loaded
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether the memory was loaded once; it may be out of step now (polls then fall back
    /// to the database), which does not make the replica unready.
    pub fn was_loaded(&self) -> bool {
        self.loaded.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Brings this replica's memory of an instance (its keys and grants revision) up to date
    /// at once after a registry change that may have touched them (a key issued or revoked, a
    /// new owner); other replicas hear of it by notification. A failure only delays it until
    /// then.
    pub async fn refresh(&self, pool: &sqlx::PgPool, instance_id: &str) {
        let read = async {
            let mut conn = pool.acquire().await?;
            crate::keys::refresh(&mut conn, &self.keys, instance_id).await?;
            let (revision, _) = crate::db::grants::revision(&mut conn, instance_id).await?;
            self.revisions.observe(instance_id, revision);
            Ok::<_, sqlx::Error>(())
        };
        if let Err(e) = read.await {
            tracing::warn!(error = %e, "memory not refreshed; a notification will");
        }
    }

    /// Tells this replica's memory of a new instance's first key, without reading anything
    /// back: a new instance has no other keys and no grants (revision 0).
    pub fn first_key(&self, instance_id: &str, key: &secrecy::SecretString) {
        use secrecy::ExposeSecret;
        self.keys
            .insert(crate::keys::hash(key.expose_secret()), instance_id);
    }

    /// Tells this replica's memory of an instance this replica changed, as it committed it
    /// (other replicas read it again when they hear of it).
    pub fn instance_changed(&self, instance: &crate::registry::Instance) {
        self.roster.apply(roster::InstanceFacts {
            id: instance.id.to_string(),
            version: instance.version,
            status: instance.status,
            owner: instance.owner.to_string(),
            hosts: instance.hostnames(),
        });
    }

    /// What login decisions read, for the relay's checks too.
    pub fn roster(&self) -> &roster::Roster {
        &self.roster
    }

    pub fn mark_unsynced(&self) {
        self.revisions.mark_unsynced();
        self.keys.mark_unsynced();
        self.roster.mark_unsynced();
    }
}
