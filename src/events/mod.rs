//! Outbound events: what fleetgate tells the platform (an invitation to send, a login that is
//! ready or failing, a failed pass), as Standard Webhooks.
//!
//! An event is written by [`Outbox::record`] in the transaction of the change it describes
//! (so it exists if and only if that change committed), and delivered from there by
//! [`deliver`]: one replica at a time, at least once, in order per instance, tried again on
//! the retry schedule ([`retry`]) with the same `webhook-id`. [`Events`] is what the API
//! reads and redelivers; [`listen`] a receiver for trying it.

pub mod deliver;
pub mod listen;
pub mod login;
pub mod retry;

use serde_json::{Value, json};
use sqlx::PgConnection;

use crate::db;

/// The kinds of event, as `type` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An invitation by email: the platform sends it.
    GrantInvited,
    /// A user id was given a role on an instance.
    GrantAdded,
    GrantRoleChanged,
    GrantRemoved,
    /// An invited person logged in with the invited email; the invitation is theirs now.
    InvitationAccepted,
    /// The instance's hosts can log in now (after the pass that wrote them; at once when
    /// relayed). Once per set of hosts.
    InstanceLoginReady,
    /// A pass failed for the instance: its hosts cannot log in (yet). Once per failure streak.
    InstanceLoginFailing,
    /// A reconcile pass failed. Once per streak of failed passes.
    ReconcileFailed,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::GrantInvited,
        Kind::GrantAdded,
        Kind::GrantRoleChanged,
        Kind::GrantRemoved,
        Kind::InvitationAccepted,
        Kind::InstanceLoginReady,
        Kind::InstanceLoginFailing,
        Kind::ReconcileFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::GrantInvited => "grant.invited",
            Kind::GrantAdded => "grant.added",
            Kind::GrantRoleChanged => "grant.role_changed",
            Kind::GrantRemoved => "grant.removed",
            Kind::InvitationAccepted => "invitation.accepted",
            Kind::InstanceLoginReady => "instance.login_ready",
            Kind::InstanceLoginFailing => "instance.login_failing",
            Kind::ReconcileFailed => "reconcile.failed",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Where events are written: on when `FLEETGATE_EVENTS_URL` is set; off, recording nothing
/// (an outbox nobody delivers would only grow).
#[derive(Debug, Clone, Copy, Default)]
pub struct Outbox {
    on: bool,
}

impl Outbox {
    pub fn new(on: bool) -> Self {
        Self { on }
    }

    pub fn is_on(self) -> bool {
        self.on
    }

    /// Writes an event about `instance` (None: about the fleet) in the caller's transaction.
    pub async fn record(
        self,
        conn: &mut PgConnection,
        kind: Kind,
        instance: Option<&str>,
        data: Value,
    ) -> sqlx::Result<()> {
        if !self.on {
            return Ok(());
        }
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let payload = json!({
            "type": kind.as_str(),
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": data,
        });
        db::events::insert(conn, &id, kind.as_str(), instance.unwrap_or(""), &payload).await
    }
}

/// The outbox as operators read it: events with their attempts, and redelivery.
#[derive(Clone)]
pub struct Events {
    pool: sqlx::PgPool,
}

/// An event and every attempt to deliver it.
#[derive(Debug, serde::Serialize)]
pub struct EventRecord {
    #[serde(flatten)]
    pub event: db::events::Event,
    pub attempts: Vec<db::events::Attempt>,
}

impl Events {
    pub fn new(pool: sqlx::PgPool) -> Self {
        Self { pool }
    }

    /// The same record read on `pool` (an HTTP worker's own).
    pub fn with_pool(&self, pool: sqlx::PgPool) -> Self {
        Self { pool }
    }

    /// Newest first, before `before` (the previous page's last event's `seq`), with attempts.
    pub async fn list(
        &self,
        filter: &db::events::Filter<'_>,
        before: Option<i64>,
        limit: i64,
    ) -> sqlx::Result<Vec<EventRecord>> {
        let mut conn = self.pool.acquire().await?;
        let events = db::events::list(&mut conn, filter, before, limit).await?;
        with_attempts(&mut conn, events).await
    }

    /// Makes an event pending again, due now, with the whole retry schedule ahead of it (it
    /// keeps its `webhook-id`, so a receiver that had it drops it). None: no such event.
    pub async fn redeliver(&self, id: &str) -> sqlx::Result<Option<EventRecord>> {
        let mut conn = self.pool.acquire().await?;
        let Some(event) = db::events::redeliver(&mut conn, id).await? else {
            return Ok(None);
        };
        Ok(with_attempts(&mut conn, vec![event]).await?.pop())
    }
}

async fn with_attempts(
    conn: &mut PgConnection,
    events: Vec<db::events::Event>,
) -> sqlx::Result<Vec<EventRecord>> {
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    let mut attempts: std::collections::HashMap<i64, Vec<db::events::Attempt>> =
        std::collections::HashMap::new();
    for a in db::events::attempts(conn, &seqs).await? {
        attempts.entry(a.event_seq).or_default().push(a);
    }
    Ok(events
        .into_iter()
        .map(|event| EventRecord {
            attempts: attempts.remove(&event.seq).unwrap_or_default(),
            event,
        })
        .collect())
}
