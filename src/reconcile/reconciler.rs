//! The reconciler: its settings, the Management API client it calls Auth0 with, the dry-run
//! plan of every application, and how a pass's errors read. A pass itself is in `pass`,
//! what it reads in `survey`, where instances go in `placement`, new applications in
//! `creations`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sqlx::PgPool;

use super::{
    desired::{self, Lists, Options},
    plan::{FieldPlan, OverCap, plan_field},
    survey::Survey,
};
use crate::{
    auth0::{Auth0Error, Credentials, ManagementClient},
    config::ReconcilerSettings,
    db,
    domain::{Field, Hostname, InstanceId},
    metrics::Metrics,
    registry,
};

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Auth0(#[from] Auth0Error),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("registry: {0}")]
    Registry(#[from] registry::RegistryError),
    #[error(transparent)]
    Instance(#[from] crate::domain::InstanceUnavailable),
    #[error("instance '{0}' has no application yet; see GET /v1/instances/{0}/sync")]
    NotAssigned(InstanceId),
    #[error("the tenant has no application '{0}'")]
    NoSuchApplication(String),
    #[error("the primary application (AUTH0_SPA_CLIENT_ID) cannot leave the pool")]
    PrimaryApplication,
    #[error(
        "the primary application {0} (AUTH0_SPA_CLIENT_ID) no longer exists in the tenant: create a single-page application like it and point AUTH0_SPA_CLIENT_ID at it (the deleted one then leaves the pool and its instances are placed again)"
    )]
    PrimaryGone(String),
    #[error("{assigned} instances are configured with application '{client_id}'; move them first")]
    ApplicationInUse { client_id: String, assigned: i64 },
    #[error("application '{0}' is not in the pool")]
    NotInPool(String),
    #[error(
        "application '{0}' is fleetgate's own (FLEETGATE_UI_CLIENT_ID or FLEETGATE_ADMIN_CLIENTS): its tokens work on fleetgate's API, so instances must never log in through it"
    )]
    ReservedApplication(String),
    #[error("application '{0}' is not in the pool")]
    TargetNotInPool(String),
    #[error(
        "application '{client_id}' is managed by another fleetgate deployment ({other}; this one is {ours}): give each deployment applications of its own, or set FLEETGATE_TAKE_OVER_APPLICATIONS={client_id} here to take it over"
    )]
    ManagedElsewhere {
        client_id: String,
        other: String,
        ours: String,
    },
}

/// The dry-run diff of one application.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApplicationPlan {
    pub client_id: String,
    pub fields: Vec<FieldPlan>,
    pub over_cap: Vec<OverCap>,
}

pub struct Reconciler {
    pub(super) pool: PgPool,
    pub client: ManagementClient,
    pub(super) settings: ReconcilerSettings,
    platform_domain: Option<Hostname>,
    pub(super) metrics: Metrics,
    /// The run this process has open, if a pass is under way; see [`Reconciler::abandoned`].
    pub(super) open_run: std::sync::Mutex<Option<i64>>,
    /// How instances log in: in `relay` mode no instance is placed in the pool (their logins
    /// need no list); in `overflow` mode one that fits nowhere logs in through the relay
    /// instead of failing the pass.
    pub(super) login_mode: crate::config::LoginMode,
    /// In `relay` and `overflow` modes: the relay, whose application each pass keeps.
    pub(super) relay: Option<crate::config::RelaySettings>,
    /// Where a pass's news for the platform is written (`told`).
    pub(super) outbox: crate::events::Outbox,
}

/// An application's four lists as the Management API answered them.
pub(super) fn lists_of(client: &Value) -> BTreeMap<Field, Vec<String>> {
    Field::ALL
        .into_iter()
        .map(|f| {
            let list = crate::domain::field::entries(&client[f.name()]);
            (f, list)
        })
        .collect()
}

impl Reconciler {
    pub fn new(
        pool: PgPool,
        auth0_base_url: &str,
        settings: ReconcilerSettings,
        platform_domain: Option<Hostname>,
        (login_mode, relay): (
            crate::config::LoginMode,
            Option<crate::config::RelaySettings>,
        ),
        metrics: Metrics,
    ) -> Self {
        let credentials = Credentials {
            base_url: auth0_base_url.to_owned(),
            client_id: settings.client_id.clone(),
            client_secret: settings.client_secret.clone(),
        };
        let client = ManagementClient::new(credentials, metrics.clone());
        Self {
            pool,
            client,
            settings,
            platform_domain,
            metrics,
            open_run: std::sync::Mutex::new(None),
            login_mode,
            relay,
            outbox: crate::events::Outbox::default(),
        }
    }

    /// The same reconciler, telling the platform of failed passes and of instances' logins
    /// through `outbox`.
    pub fn with_outbox(self, outbox: crate::events::Outbox) -> Self {
        Self { outbox, ..self }
    }

    /// Closes the run of a pass that was abandoned mid-way (its future dropped at shutdown) as
    /// interrupted, within `within`; a run left open is closed by the next pass anywhere.
    pub async fn abandoned(&self, within: std::time::Duration) {
        let Some(id) = self.open_run.lock().expect("open run lock").take() else {
            return;
        };
        let close = async {
            let mut conn = self.pool.acquire().await?;
            db::reconcile::interrupt_run(&mut conn, id).await
        };
        match tokio::time::timeout(within, close).await {
            Ok(Ok(())) => {
                tracing::info!(run = id, "abandoned reconcile pass recorded as interrupted")
            }
            Ok(Err(e)) => tracing::warn!(run = id, error = %e, "abandoned pass not recorded"),
            Err(_) => tracing::warn!(run = id, "abandoned pass not recorded in time"),
        }
    }

    /// How hosts become entries.
    pub fn options(&self) -> Options<'_> {
        Options {
            platform_domain: self.platform_domain.as_ref(),
            wildcard: self.settings.wildcard,
            templates: &self.settings.templates,
        }
    }

    /// Entries per list.
    pub fn cap(&self) -> usize {
        self.settings.cap
    }

    /// The primary application.
    pub fn application_id(&self) -> &str {
        &self.settings.spa_client_id
    }

    /// The desired lists of one application: the instances placed (and listed) on it.
    pub(super) fn desired_for(&self, survey: &Survey, client_id: &str) -> Lists {
        let on_app = survey
            .listed
            .get(client_id)
            .into_iter()
            .flatten()
            .map(|i| &survey.instances[*i]);
        desired::desired(on_app, self.options())
    }

    /// Plans every application of the pool as it is now. Reads only; creates nothing.
    pub async fn plan(&self) -> Result<Vec<ApplicationPlan>, ReconcileError> {
        let survey = self.survey(false).await?;
        // Another deployment's applications: no pass changes them, so the plan shows none.
        Ok(survey
            .apps
            .iter()
            .filter(|a| a.stance.manages())
            .map(|a| {
                plan_lists(
                    &a.client_id,
                    &self.desired_for(&survey, &a.client_id),
                    &a.actual,
                    &a.owned,
                )
            })
            .collect())
    }
}

pub(super) fn plan_lists(
    client_id: &str,
    desired: &Lists,
    actual: &BTreeMap<Field, Vec<String>>,
    owned: &BTreeMap<String, BTreeSet<String>>,
) -> ApplicationPlan {
    let none = BTreeSet::new();
    let (mut fields, mut over_cap) = (Vec::new(), Vec::new());
    for field in Field::ALL {
        match plan_field(
            field,
            &desired[&field],
            &actual[&field],
            owned.get(field.name()).unwrap_or(&none),
        ) {
            Ok(p) => fields.push(p),
            Err(e) => over_cap.push(e),
        }
    }
    ApplicationPlan {
        client_id: client_id.to_owned(),
        fields,
        over_cap,
    }
}
