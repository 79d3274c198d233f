//! The hosting platform's deploy hooks, once verified and parsed: each delivery is applied in
//! one transaction that also records its `webhook-id` and the answer, so a redelivery has no
//! second effect and gets the same answer.
//!
//! The record is written last, with the answer, in the statement that finds an earlier one: a
//! redelivery is applied again in a transaction that is then abandoned, and answered from the
//! record (also when applying it again now fails, e.g. its host moved since). Deliveries of one
//! instance are serialised by its row lock; two of the same id wait for each other at the
//! record.
//!
//! An instance's first deploy (or its first after deletion) issues its instance key, which is
//! in that answer only: fleetgate keeps its hash, so a redelivery's answer lacks it (rotate to
//! get a new one).

use secrecy::SecretString;
use serde_json::Value;

use super::{Deployed, Instance, RegistryError, Result, commands::Commands};
use crate::{
    db,
    domain::{Actor, Hostname, InstanceId, InstanceStatus, UserId},
    keys,
};

/// What a delivery asks for.
#[derive(Debug, Clone)]
pub enum Event {
    /// `instance.deployed`: the instance exists with exactly this owner and these hosts.
    Deployed {
        instance_id: InstanceId,
        owner: UserId,
        domains: Vec<Hostname>,
    },
    /// `instance.suspended`, `.resumed`, `.deleted`: the instance takes this status.
    StatusChange {
        instance_id: InstanceId,
        to: InstanceStatus,
        /// The event type, as the audit log names the change.
        action: &'static str,
    },
}

/// A delivery's answer.
pub enum Delivery {
    /// Applied now: the instance, and its new key if this deploy issued one.
    Applied {
        instance: Instance,
        key: Option<SecretString>,
    },
    /// Applied before (a redelivery): the recorded status and body.
    Replayed { status: u16, body: Value },
}

impl Commands {
    /// Applies delivery `webhook_id` of type `kind` unless it was applied before.
    pub async fn deliver(
        &self,
        webhook_id: &str,
        kind: &str,
        event: Event,
        actor: &Actor,
    ) -> Result<Delivery> {
        let (pool, live, registry) = self.parts();
        let mut tx = pool.begin().await?;
        let applied = match event {
            Event::Deployed {
                instance_id,
                owner,
                domains,
            } => registry
                .deploy(&mut tx, actor, &instance_id, &owner, &domains)
                .await
                .map(|d| (d.instance, Some(d.deployed), d.keyed)),
            Event::StatusChange {
                instance_id,
                to,
                action,
            } => registry
                .update(&mut tx, actor, &instance_id, None, Some(to), action)
                .await
                // A status change issues no key.
                .map(|instance| (instance, None, true)),
        };
        let (instance, deployed, keyed) = match applied {
            Ok(done) => done,
            Err(e) => {
                tx.rollback().await?;
                return match replayed(pool, webhook_id).await? {
                    Some(replayed) => Ok(replayed),
                    None => Err(e),
                };
            }
        };
        let key = if keyed {
            None
        } else {
            keys::issue_if_none(&mut tx, instance.id.as_str(), &actor.name).await?
        };
        // The recorded answer never holds the key: a redelivery gets the instance without it.
        if !db::webhooks::record(&mut tx, webhook_id, kind, 200, &instance.to_json()).await? {
            tx.rollback().await?;
            return replayed(pool, webhook_id).await?.ok_or_else(|| {
                RegistryError::Corrupt(format!("recorded delivery {webhook_id} has no answer"))
            });
        }
        tx.commit().await?;
        // The instance as committed, a key issued or revoked: this replica knows at once
        // (others by notification).
        live.instance_changed(&instance);
        let id = instance.id.as_str();
        match (deployed, &key) {
            (Some(Deployed::Created), Some(key)) => live.first_key(id, key),
            // Its keys and grants are as they were.
            (Some(Deployed::Updated | Deployed::Unchanged), None) => {}
            _ => live.refresh(pool, id).await,
        }
        Ok(Delivery::Applied { instance, key })
    }
}

/// The answer recorded for an earlier delivery of this id, if there was one.
async fn replayed(pool: &sqlx::PgPool, webhook_id: &str) -> Result<Option<Delivery>> {
    Ok(db::webhooks::answer(pool, webhook_id)
        .await?
        .map(|(status, body)| Delivery::Replayed { status, body }))
}
