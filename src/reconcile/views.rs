//! What operators read about the reconciler: past passes, whether an instance's URLs are live
//! in Auth0, and the status page's summary. Reads the database only (the lists as last read
//! back), never the Management API.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::LoginMode;

use super::{
    ReconcileError, Reconciler,
    leader::LEADER_LOCK,
    sync::{UrlSync, sync_status},
};
use crate::{
    db::{self, reconcile::Run},
    domain::{Field, InstanceId, InstanceStatus, InstanceUnavailable},
    registry,
};

type Result<T> = std::result::Result<T, ReconcileError>;

/// Instances with unsynced URLs shown by [`Reconciler::status`].
pub const UNSYNCED_SHOWN: usize = 50;

/// Whether each URL of an instance is live in Auth0 (`GET /v1/instances/{id}/sync`).
#[derive(Debug, Serialize)]
pub struct InstanceSync {
    pub instance_id: InstanceId,
    pub status: InstanceStatus,
    /// Its application (none before its first placement).
    pub client_id: Option<String>,
    /// The last pass that finished.
    pub last_run: Option<RunOutcome>,
    pub urls: Vec<UrlSync>,
}

impl InstanceSync {
    /// The application the instance can log in through at the tenant now: it is placed on one
    /// and every one of its entries is live there (what `overflow` mode asks before it lets an
    /// instance log in directly rather than through the relay).
    pub fn live_at(&self) -> Option<&str> {
        super::sync::live_at(self.client_id.as_deref(), &self.urls)
    }
}

/// Whether an instance's hosts can log in now, and through what.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LoginStatus {
    pub live: bool,
    /// `relay` or `application`; None while not live.
    pub via: Option<&'static str>,
    /// The application, when `via` is `application`.
    pub client_id: Option<String>,
}

/// A pass, as far as an instance's sync needs it.
#[derive(Debug, Serialize)]
pub struct RunOutcome {
    pub id: i64,
    pub outcome: String,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The reconciler at a glance (`GET /v1/reconcile/status`).
#[derive(Debug, Serialize)]
pub struct Status {
    /// How instances log in.
    pub login: Login,
    pub leader: Option<Leader>,
    pub last_run: Option<Run>,
    /// How many instances the last pass left with URLs not live as wanted (at most
    /// [`UNSYNCED_SHOWN`] listed).
    pub unsynced_total: usize,
    pub unsynced: Vec<Unsynced>,
}

/// How instances log in (`FLEETGATE_LOGIN_MODE`), and where the relay is.
#[derive(Debug, Serialize)]
pub struct Login {
    pub mode: &'static str,
    pub relay_url: Option<String>,
    pub relay_client_id: Option<String>,
}

/// The replica that holds the reconciler's lead.
#[derive(Debug, Serialize)]
pub struct Leader {
    pub name: Option<String>,
    pub address: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

/// An instance with URLs not live as wanted, with the reason for each (`UrlSync`s, as the
/// pass that found them recorded them).
#[derive(Debug, Serialize)]
pub struct Unsynced {
    pub instance_id: InstanceId,
    pub status: InstanceStatus,
    pub client_id: Option<String>,
    pub urls: serde_json::Value,
}

/// The record of passes, kept whether or not this replica reconciles.
#[derive(Clone)]
pub struct Runs {
    pool: sqlx::PgPool,
}

impl Runs {
    pub fn new(pool: sqlx::PgPool) -> Self {
        Self { pool }
    }

    /// The same record read on `pool` (an HTTP worker's own).
    pub fn with_pool(&self, pool: sqlx::PgPool) -> Self {
        Self { pool }
    }

    /// Passes, newest first, before run id `before` (the previous page's last).
    pub async fn list(&self, before: Option<i64>, limit: i64) -> sqlx::Result<Vec<Run>> {
        db::reconcile::runs(&mut *self.pool.acquire().await?, before, limit).await
    }
}

impl Reconciler {
    /// Whether each URL of an instance is live in Auth0.
    pub async fn sync_of(&self, id: &InstanceId) -> Result<InstanceSync> {
        let mut conn = self.pool.acquire().await?;
        let instance = registry::load(&mut conn, id.as_str())
            .await?
            .ok_or_else(|| InstanceUnavailable::not_found(id))?;
        self.sync_in(&mut conn, instance).await
    }

    /// Whether each URL of `instance` (loaded by the caller) is live in Auth0.
    async fn sync_in(
        &self,
        conn: &mut sqlx::PgConnection,
        instance: registry::Instance,
    ) -> Result<InstanceSync> {
        let conn = &mut *conn;
        let client_id = db::applications::assignment(conn, instance.id.as_str()).await?;
        let snapshots = match &client_id {
            Some(c) => db::reconcile::snapshots(conn, c).await?,
            None => Default::default(),
        };
        let lists = Field::ALL
            .into_iter()
            .map(|f| (f, snapshots.get(f.name()).cloned().unwrap_or_default()))
            .collect();
        let last = db::reconcile::last_finished(conn).await?;
        let failure = failure(last.as_ref());
        let urls = sync_status(&instance, self.options(), &lists, failure.as_deref());
        Ok(InstanceSync {
            instance_id: instance.id,
            status: instance.status,
            client_id,
            last_run: last.map(|r| RunOutcome {
                id: r.id,
                outcome: r.outcome,
                finished_at: r.finished_at,
            }),
            urls,
        })
    }

    /// Whether the instance can log in now: through the relay once active (`relay` mode; and in
    /// `overflow` mode until its entries are live), at the tenant once every entry of its is
    /// live in its application.
    pub async fn login_status(&self, instance: registry::Instance) -> Result<LoginStatus> {
        let sync = self
            .sync_in(&mut *self.pool.acquire().await?, instance)
            .await?;
        let live_at = match self.login_mode {
            LoginMode::Relay => None,
            LoginMode::Direct | LoginMode::Overflow => sync.live_at().map(str::to_owned),
        };
        let relayed = self.login_mode != LoginMode::Direct
            && live_at.is_none()
            && sync.status == InstanceStatus::Active;
        Ok(match (live_at, relayed) {
            (Some(client_id), _) => LoginStatus {
                live: true,
                via: Some("application"),
                client_id: Some(client_id),
            },
            (None, true) => LoginStatus {
                live: true,
                via: Some("relay"),
                client_id: None,
            },
            (None, false) => LoginStatus {
                live: false,
                via: None,
                client_id: None,
            },
        })
    }

    /// The reconciler at a glance: which replica leads, the last pass, and the instances (at
    /// most [`UNSYNCED_SHOWN`]) that pass left with URLs not live as wanted, with the reason
    /// (as it recorded them: nothing is worked out again here).
    pub async fn status(&self) -> Result<Status> {
        let mut conn = self.pool.acquire().await?;
        let leader = db::reconcile::leader(&mut conn, LEADER_LOCK).await?;
        let last = db::reconcile::last_finished(&mut conn).await?;
        let (total, rows) = db::unsynced::first(&mut conn, UNSYNCED_SHOWN as i64).await?;
        let corrupt =
            |e: crate::domain::ParseError| registry::RegistryError::Corrupt(e.to_string());
        let unsynced = rows
            .into_iter()
            .map(|r| {
                Ok(Unsynced {
                    instance_id: InstanceId::parse(&r.instance_id).map_err(corrupt)?,
                    status: r.status.parse().map_err(corrupt)?,
                    client_id: r.client_id,
                    urls: r.urls,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Status {
            login: Login {
                mode: self.login_mode.name(),
                relay_url: self.relay.as_ref().map(|r| r.url.clone()),
                relay_client_id: self.relay.as_ref().map(|r| r.client_id.clone()),
            },
            leader: leader.map(|(name, address, since)| Leader {
                name,
                address,
                since,
            }),
            last_run: last,
            unsynced_total: total as usize,
            unsynced,
        })
    }
}

impl Reconciler {
    /// Calls `visit` with each instance that logs in through the pool (relayed ones log in
    /// through no list: nothing of theirs is out of step), its application, and whether each
    /// of its URLs is live, from the lists as last read back. `failure`: the last pass's
    /// error, if it failed.
    pub(super) async fn each_sync(
        &self,
        conn: &mut sqlx::PgConnection,
        failure: Option<&str>,
        mut visit: impl FnMut(&registry::Instance, Option<&str>, Vec<UrlSync>),
    ) -> Result<()> {
        let assignments = db::applications::assignments(conn).await?;
        let mut lists_of = HashMap::new();
        for app in db::applications::pool(conn).await? {
            let snapshots = db::reconcile::snapshots(conn, &app.client_id).await?;
            let lists: BTreeMap<Field, Vec<String>> = Field::ALL
                .into_iter()
                .map(|f| (f, snapshots.get(f.name()).cloned().unwrap_or_default()))
                .collect();
            lists_of.insert(app.client_id, lists);
        }
        // In `overflow` mode only instances placed in the pool log in through it.
        let rows = match self.login_mode {
            LoginMode::Overflow => db::instances::assigned(conn).await?,
            LoginMode::Direct | LoginMode::Relay => db::instances::all(conn).await?,
        };
        let instances = registry::load_many(conn, rows).await?;
        let empty = Default::default();
        for instance in &instances {
            let client_id = assignments.get(instance.id.as_str());
            let relayed = match self.login_mode {
                LoginMode::Direct => false,
                LoginMode::Relay => true,
                LoginMode::Overflow => client_id.is_none(),
            };
            if relayed {
                continue;
            }
            let lists = client_id.and_then(|c| lists_of.get(c)).unwrap_or(&empty);
            let urls = sync_status(instance, self.options(), lists, failure);
            visit(instance, client_id.map(String::as_str), urls);
        }
        Ok(())
    }
}

/// The last pass's error, if it failed.
pub(super) fn failure(last: Option<&Run>) -> Option<String> {
    last.filter(|r| r.outcome == "failed")
        .and_then(|r| r.error.clone())
}
