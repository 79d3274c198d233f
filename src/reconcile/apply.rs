//! One reconcile pass: read the registry and the application, plan, write, read back, record.
//! Passes are serialised across replicas by a Postgres advisory lock held for the pass.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use sqlx::{Acquire, PgPool};

use super::{
    Field,
    desired::{self, Lists, Options},
    plan::{FieldPlan, OverCap, plan_field},
};
use crate::{
    auth0::{Auth0Error, Credentials, ManagementClient},
    config::ReconcilerSettings,
    db,
    domain::Hostname,
    metrics::Metrics,
    registry,
};

/// Passes in a row after read-backs that showed someone else's change.
const MAX_REPAIRS: usize = 3;

/// Held for the length of a pass by whichever replica runs it.
const PASS_LOCK: i64 = 0x666c_6565_7467_6101;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Auth0(#[from] Auth0Error),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("registry: {0}")]
    Registry(#[from] registry::RegistryError),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    OverCap(Vec<OverCap>),
}

/// The dry-run diff of one application.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApplicationPlan {
    pub client_id: String,
    pub fields: Vec<FieldPlan>,
    pub over_cap: Vec<OverCap>,
}

/// What a pass did.
#[derive(Debug, Clone)]
pub struct PassResult {
    pub run: db::reconcile::Run,
    /// The read-back differed from what was written: someone changed the list meanwhile.
    pub again: bool,
}

pub struct Reconciler {
    pub(super) pool: PgPool,
    pub client: ManagementClient,
    pub(super) settings: ReconcilerSettings,
    platform_domain: Option<Hostname>,
    metrics: Metrics,
}

fn lists_of(client: &Value) -> BTreeMap<Field, Vec<String>> {
    Field::ALL
        .into_iter()
        .map(|f| {
            let list = client[f.name()]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
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

    pub fn application_id(&self) -> &str {
        &self.settings.spa_client_id
    }

    /// The desired lists, from the registry.
    async fn desired(&self) -> Result<Lists, ReconcileError> {
        let mut conn = self.pool.acquire().await?;
        let rows = db::instances::all(&mut conn).await?;
        let instances = registry::load_many(&mut conn, rows).await?;
        Ok(desired::desired(&instances, self.options()))
    }

    /// Plans against the application as it is now. Reads only.
    pub async fn plan(&self) -> Result<ApplicationPlan, ReconcileError> {
        let desired = self.desired().await?;
        let actual = lists_of(
            &self
                .client
                .get_client(self.application_id(), &Field::ALL.map(Field::name))
                .await?,
        );
        let owned =
            db::reconcile::owned(&mut *self.pool.acquire().await?, self.application_id()).await?;
        Ok(self.plan_lists(&desired, &actual, &owned))
    }

    fn plan_lists(
        &self,
        desired: &Lists,
        actual: &BTreeMap<Field, Vec<String>>,
        owned: &BTreeMap<String, BTreeSet<String>>,
    ) -> ApplicationPlan {
        let none = BTreeSet::new();
        let (mut fields, mut over_cap) = (Vec::new(), Vec::new());
        for field in Field::ALL {
            let planned = plan_field(
                field,
                &desired[&field],
                &actual[&field],
                owned.get(field.name()).unwrap_or(&none),
            );
            match planned {
                Ok(p) => fields.push(p),
                Err(e) => over_cap.push(e),
            }
        }
        ApplicationPlan {
            client_id: self.application_id().to_owned(),
            fields,
            over_cap,
        }
    }

    /// Runs a pass, then repair passes while read-backs show someone else's concurrent change
    /// (at most `MAX_REPAIRS`); answers with the last pass.
    pub async fn run_settled(&self, trigger: &str) -> Result<PassResult, ReconcileError> {
        let mut result = self.run(trigger).await?;
        for _ in 0..MAX_REPAIRS {
            if !result.again {
                break;
            }
            result = self.run("repair").await?;
        }
        Ok(result)
    }

    /// Runs one pass, serialised with every other replica's, and records it.
    pub async fn run(&self, trigger: &str) -> Result<PassResult, ReconcileError> {
        // A connection of its own: if this process dies mid-pass, the lock goes with it.
        let mut lock = self.pool.acquire().await?.detach();
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(PASS_LOCK)
            .execute(&mut lock)
            .await?;
        let result = self.run_locked(trigger).await;
        let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(PASS_LOCK)
            .execute(&mut lock)
            .await;
        result
    }

    async fn run_locked(&self, trigger: &str) -> Result<PassResult, ReconcileError> {
        let run_id = db::reconcile::start_run(&mut *self.pool.acquire().await?, trigger).await?;
        let calls_before = self
            .client
            .counters
            .calls
            .load(std::sync::atomic::Ordering::Relaxed);
        let outcome = self.apply().await;
        let calls = (self
            .client
            .counters
            .calls
            .load(std::sync::atomic::Ordering::Relaxed)
            - calls_before) as i32;
        let mut conn = self.pool.acquire().await?;
        let (run, again) = match &outcome {
            Ok((changes, again)) => {
                let label = if changes.as_array().is_some_and(|c| !c.is_empty()) {
                    "applied"
                } else {
                    "unchanged"
                };
                (
                    db::reconcile::finish_run(&mut conn, run_id, label, calls, changes, None)
                        .await?,
                    *again,
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "reconcile pass failed");
                (
                    db::reconcile::finish_run(
                        &mut conn,
                        run_id,
                        "failed",
                        calls,
                        &json!([]),
                        Some(&e.to_string()),
                    )
                    .await?,
                    false,
                )
            }
        };
        self.metrics
            .reconcile_runs
            .with_label_values(&[trigger, run.outcome.as_str()])
            .inc();
        tracing::info!(
            run = run.id,
            trigger,
            outcome = run.outcome,
            api_calls = calls,
            "reconcile pass finished"
        );
        Ok(PassResult { run, again })
    }

    /// Records what fleetgate now owns on each list (what it kept plus what it added: owned
    /// entries that are gone and unwanted are forgotten, so a person adding one later is not
    /// mistaken for fleetgate) and the lists as read.
    async fn record(
        &self,
        conn: &mut sqlx::PgConnection,
        plan: &ApplicationPlan,
        lists: &BTreeMap<Field, Vec<String>>,
    ) -> Result<(), ReconcileError> {
        let mut tx = conn.begin().await?;
        for p in &plan.fields {
            let owned: Vec<String> = p.owned_after.iter().cloned().collect();
            db::reconcile::set_owned(&mut tx, &plan.client_id, p.field.name(), &owned).await?;
        }
        for (field, list) in lists {
            db::reconcile::save_snapshot(&mut tx, &plan.client_id, field.name(), list).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Plan, write ahead what will be owned, PATCH the changed fields, read back, record.
    async fn apply(&self) -> Result<(Value, bool), ReconcileError> {
        let client_id = self.application_id().to_owned();
        let desired = self.desired().await?;
        let owned = db::reconcile::owned(&mut *self.pool.acquire().await?, &client_id).await?;
        let actual = lists_of(
            &self
                .client
                .get_client(&client_id, &Field::ALL.map(Field::name))
                .await?,
        );
        let plan = self.plan_lists(&desired, &actual, &owned);
        for p in &plan.fields {
            self.metrics
                .foreign_entries
                .with_label_values(&[client_id.as_str(), p.field.name()])
                .set(p.foreign.len() as f64);
        }
        if !plan.over_cap.is_empty() {
            return Err(ReconcileError::OverCap(plan.over_cap));
        }
        let changed: Vec<&FieldPlan> = plan.fields.iter().filter(|p| p.changes()).collect();
        let mut conn = self.pool.acquire().await?;
        if changed.is_empty() {
            self.record(&mut conn, &plan, &actual).await?;
            return Ok((json!([]), false));
        }
        // Write-ahead: own what is about to be added, so that an interrupted pass can never
        // leave fleetgate's own entries looking foreign (and so never removable).
        {
            let mut tx = conn.begin().await?;
            for p in &changed {
                db::reconcile::own(&mut tx, &client_id, p.field.name(), &p.added).await?;
            }
            tx.commit().await?;
        }
        let body: Map<String, Value> = changed
            .iter()
            .map(|p| (p.field.name().to_owned(), json!(p.next)))
            .collect();
        self.client
            .patch_client(&client_id, &Value::Object(body))
            .await?;
        let read_back = lists_of(
            &self
                .client
                .get_client(&client_id, &Field::ALL.map(Field::name))
                .await?,
        );
        let mut again = false;
        for p in &changed {
            if read_back[&p.field] != p.next {
                tracing::warn!(field = %p.field, "the list changed between write and read-back; another pass follows");
                again = true;
            }
        }
        self.record(&mut conn, &plan, &read_back).await?;
        let changes = changed
            .iter()
            .map(|p| json!({"client_id": client_id, "field": p.field, "added": p.added, "removed": p.removed, "foreign": p.foreign}))
            .collect();
        Ok((Value::Array(changes), again))
    }
}
