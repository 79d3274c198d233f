//! One reconcile pass: read the registry and the application, plan, write, read back, record.
//! Passes are serialised across replicas by a Postgres advisory lock held for the pass.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};
use sqlx::{Acquire, ConnectOptions, PgPool};

use super::{
    desired::{self, Lists, Options},
    plan::{FieldPlan, OverCap, plan_field},
    shard::{self, Demand, Placement, Room, Slots},
};
use crate::{
    auth0::{Auth0Error, Credentials, ManagementClient},
    config::ReconcilerSettings,
    db,
    domain::{Field, Hostname, InstanceStatus},
    metrics::Metrics,
    registry,
};

/// Passes in a row after read-backs that showed someone else's change.
const MAX_REPAIRS: usize = 3;
/// Tries at creating an application whose answers are lost before giving up for this pass.
const CREATE_ATTEMPTS: usize = 3;
/// The `client_metadata` key naming one creation of an application.
const CREATION_MARK: &str = "fleetgate_creation";
/// What an application fleetgate creates copies from the primary.
const COPIED_SETTINGS: [&str; 10] = [
    "app_type",
    "token_endpoint_auth_method",
    "grant_types",
    "oidc_conformant",
    "jwt_configuration",
    "cross_origin_authentication",
    "sso_disabled",
    "custom_login_page_on",
    "is_first_party",
    "initiate_login_uri",
];
/// A creation whose application Auth0 still does not list after this long was never made.
const LOST_CREATION_SECS: f64 = 600.0;

/// Held for the length of a pass by whichever replica runs it.
pub const PASS_LOCK: i64 = 0x666c_6565_7467_6101;

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Auth0(#[from] Auth0Error),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("registry: {0}")]
    Registry(#[from] registry::RegistryError),
    #[error("instance '{0}' has no application yet; see GET /v1/instances/{0}/sync")]
    NotAssigned(crate::domain::InstanceId),
    #[error("the tenant has no application '{0}'")]
    NoSuchApplication(String),
    #[error("the primary application (AUTH0_SPA_CLIENT_ID) cannot leave the pool")]
    PrimaryApplication,
    #[error("{assigned} instances are configured with application '{client_id}'; move them first")]
    ApplicationInUse { client_id: String, assigned: i64 },
    #[error("application '{0}' is not in the pool")]
    NotInPool(String),
    #[error("application '{0}' is not in the pool")]
    TargetNotInPool(String),
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
    pub(super) metrics: Metrics,
    /// The run this process has open, if a pass is under way; see [`Reconciler::abandoned`].
    open_run: std::sync::Mutex<Option<i64>>,
}

fn lists_of(client: &Value) -> BTreeMap<Field, Vec<String>> {
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
        }
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

    /// Reads the pool (the primary first), every application's lists and ownership, and
    /// places every instance; with `create`, adds applications while some instance has no room
    /// (and records them in the pool).
    async fn survey(&self, create: bool) -> Result<Survey, ReconcileError> {
        let mut conn = self.pool.acquire().await?;
        db::applications::ensure_primary(&mut conn, self.application_id()).await?;
        let pool = db::applications::pool(&mut conn).await?;
        let rows = db::instances::all(&mut conn).await?;
        let instances = registry::load_many(&mut conn, rows).await?;
        let current = db::applications::assignments(&mut conn).await?;
        let mut apps = Vec::with_capacity(pool.len());
        for app in pool {
            apps.push(self.look(&mut conn, app.client_id).await?);
        }
        let opts = self.options();
        let mut demands: Vec<Demand> = instances
            .iter()
            .filter(|i| i.status != InstanceStatus::Deleted)
            .map(|i| {
                let assigned = current.get(i.id.as_str()).cloned();
                let live = assigned
                    .as_deref()
                    .and_then(|c| apps.iter().find(|a| a.client_id == c));
                Demand {
                    instance_id: i.id.to_string(),
                    slots: shard::slots_needed(i, opts),
                    established: live
                        .map(|a| established(i, opts, &a.actual))
                        .unwrap_or_default(),
                    current: assigned,
                }
            })
            .collect();
        let mut problems = Vec::new();
        let mut placements = shard::assign(&demands, &self.rooms(&apps));
        if self.settings.auto_move {
            // Instances that outgrew their application are placed afresh (and the move audited).
            let outgrown: Vec<String> = placements
                .iter()
                .filter(|(_, p)| matches!(p, Placement::Overflows { .. }))
                .map(|(id, _)| id.clone())
                .collect();
            if !outgrown.is_empty() {
                for d in demands
                    .iter_mut()
                    .filter(|d| outgrown.contains(&d.instance_id))
                {
                    d.current = None;
                }
                placements = shard::assign(&demands, &self.rooms(&apps));
            }
        }
        while create && placements.values().any(|p| *p == Placement::Unplaced) {
            // Each application counts against the tenant's limit: one is created only if, empty,
            // it would take one of the instances without room (else creating would never end).
            let unplaced: Vec<Demand> = demands
                .iter()
                .filter(|d| placements.get(&d.instance_id) == Some(&Placement::Unplaced))
                .map(|d| Demand {
                    current: None,
                    established: Slots::default(),
                    ..d.clone()
                })
                .collect();
            let empty = AppLists {
                client_id: String::new(),
                actual: Field::ALL.into_iter().map(|f| (f, Vec::new())).collect(),
                owned: BTreeMap::new(),
            };
            let fits_new = shard::assign(&unplaced, &self.rooms(std::slice::from_ref(&empty)))
                .values()
                .any(|p| *p != Placement::Unplaced);
            if !fits_new {
                let ids: Vec<&str> = unplaced.iter().map(|d| d.instance_id.as_str()).collect();
                problems.push(format!(
                    "instance(s) {} need more entries than even a new application has room for (FLEETGATE_ALLOWLIST_CAP {}, less the wildcard entries every application carries): raise the cap or give them fewer hosts; no application was created",
                    ids.join(", "),
                    self.settings.cap
                ));
                break;
            }
            // Written ahead: if the answer is lost, a later pass finds the application.
            let mark = uuid::Uuid::new_v4().to_string();
            db::applications::begin_creation(&mut conn, &mark).await?;
            match self.create_application(apps.len(), &mark).await {
                Ok(client_id) => {
                    db::applications::created(&mut conn, &mark, &client_id).await?;
                    tracing::info!(client_id, "created an application: the pool was full");
                    apps.push(AppLists {
                        client_id,
                        actual: Field::ALL.into_iter().map(|f| (f, Vec::new())).collect(),
                        owned: BTreeMap::new(),
                    });
                    placements = shard::assign(&demands, &self.rooms(&apps));
                }
                Err(e) => {
                    if !e.maybe_applied() {
                        db::applications::forget_creation(&mut conn, &mark).await?;
                    }
                    problems.push(format!("creating another application failed ({e}); raise the tenant's application limit or register an application with room"));
                    break;
                }
            }
        }
        for (id, p) in &placements {
            match p {
                Placement::Unplaced if problems.is_empty() => problems.push(format!(
                    "instance '{id}' fits no application: set FLEETGATE_AUTO_CREATE_APPLICATIONS=true or register an application with room"
                )),
                Placement::Overflows { client_id, field, needed, free } => problems.push(format!(
                    "instance '{id}' needs {needed} {field} entries on application {client_id}, which has room for {free}: move it"
                )),
                _ => {}
            }
        }
        let deleted = instances
            .iter()
            .filter(|i| i.status == InstanceStatus::Deleted)
            .map(|i| i.id.to_string())
            .collect();
        // Which instances each application lists, found once for the whole pass.
        let mut listed: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (index, instance) in instances.iter().enumerate() {
            if let Some(p) = placements
                .get(instance.id.as_str())
                .filter(|p| p.is_listed())
            {
                listed
                    .entry(p.client_id().unwrap_or_default().to_owned())
                    .or_default()
                    .push(index);
            }
        }
        Ok(Survey {
            instances,
            apps,
            placements,
            listed,
            current,
            deleted,
            problems,
        })
    }

    /// An application's lists as they are now, and what fleetgate owns on them.
    async fn look(
        &self,
        conn: &mut sqlx::PgConnection,
        client_id: String,
    ) -> Result<AppLists, ReconcileError> {
        let actual = lists_of(
            &self
                .client
                .get_client(&client_id, &Field::ALL.map(Field::name))
                .await?,
        );
        let owned = db::reconcile::owned(conn, &client_id).await?;
        Ok(AppLists {
            client_id,
            actual,
            owned,
        })
    }

    /// Room per application: the cap less foreign entries and the wildcard's entries.
    fn rooms(&self, apps: &[AppLists]) -> Vec<Room> {
        let opts = self.options();
        let wildcard = opts.wildcard && opts.platform_domain.is_some();
        apps.iter()
            .map(|a| {
                let reserved: Slots = Field::ALL
                    .into_iter()
                    .map(|f| {
                        let none = BTreeSet::new();
                        let owned = a.owned.get(f.name()).unwrap_or(&none);
                        let foreign = a.actual[&f].iter().filter(|e| !owned.contains(*e)).count();
                        (
                            f,
                            foreign
                                + if wildcard {
                                    opts.templates.of(f).len()
                                } else {
                                    0
                                },
                        )
                    })
                    .collect();
                Room::new(a.client_id.clone(), self.settings.cap, &reserved)
            })
            .collect()
    }

    /// A new application with the primary's relevant settings.
    async fn create_application(&self, index: usize, mark: &str) -> Result<String, Auth0Error> {
        // Only what is copied (and the name): not, say, the primary's client secret.
        let fields: Vec<&str> = COPIED_SETTINGS.iter().copied().chain(["name"]).collect();
        let primary = self
            .client
            .get_client(self.application_id(), &fields)
            .await?;
        let mut body = Map::new();
        for key in COPIED_SETTINGS {
            if let Some(v) = primary.get(key).filter(|v| !v.is_null()) {
                body.insert(key.to_owned(), v.clone());
            }
        }
        let name = primary["name"].as_str().unwrap_or("fleetgate");
        body.insert(
            "name".into(),
            json!(format!("{name} (fleetgate shard {index})")),
        );
        // Marks this creation, so that one whose answer was lost is found instead of made twice
        // (each application counts against the tenant's limit).
        body.insert(
            "client_metadata".into(),
            json!({ "fleetgate_shard_of": self.application_id(), CREATION_MARK: mark }),
        );
        let body = Value::Object(body);
        let mut last = None;
        for _ in 0..CREATE_ATTEMPTS {
            match self.client.create_client(&body).await {
                Ok(created) => {
                    return created["client_id"]
                        .as_str()
                        .map(String::from)
                        .ok_or_else(|| {
                            Auth0Error::Transport("the created application has no client_id".into())
                        });
                }
                Err(e) if e.maybe_applied() => {
                    if let Some(found) = self.created_by(&[mark]).await?.remove(mark) {
                        tracing::info!(
                            client_id = found,
                            "found the application whose creation answer was lost"
                        );
                        return Ok(found);
                    }
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// The applications that these creations made, by mark, as far as Auth0 has them.
    async fn created_by(&self, marks: &[&str]) -> Result<BTreeMap<String, String>, Auth0Error> {
        let clients = self
            .client
            .list_clients(&["client_id", "client_metadata"])
            .await?;
        Ok(clients
            .iter()
            .filter_map(|c| {
                let mark = c["client_metadata"][CREATION_MARK].as_str()?;
                let client_id = c["client_id"].as_str()?;
                marks
                    .contains(&mark)
                    .then(|| (mark.to_owned(), client_id.to_owned()))
            })
            .collect())
    }

    /// Settles creations an earlier pass left open (its answer lost, or the process died
    /// before recording it): an application Auth0 has joins the pool; one still missing after
    /// `LOST_CREATION_SECS` was never made.
    async fn settle_creations(&self) -> Result<(), ReconcileError> {
        let mut conn = self.pool.acquire().await?;
        let open = db::applications::unsettled_creations(&mut conn).await?;
        if open.is_empty() {
            return Ok(());
        }
        let marks: Vec<&str> = open.iter().map(|(m, _)| m.as_str()).collect();
        let found = match self.created_by(&marks).await {
            Ok(found) => found,
            Err(e) => {
                // Housekeeping: the next pass tries again.
                tracing::warn!(error = %e, "cannot look for applications whose creation answer was lost");
                return Ok(());
            }
        };
        for (mark, age_secs) in &open {
            match found.get(mark) {
                Some(client_id) => {
                    db::applications::created(&mut conn, mark, client_id).await?;
                    tracing::warn!(
                        client_id,
                        "an application created earlier, its answer lost, joins the pool"
                    );
                }
                None if *age_secs > LOST_CREATION_SECS => {
                    db::applications::forget_creation(&mut conn, mark).await?;
                }
                None => {}
            }
        }
        Ok(())
    }

    /// The desired lists of one application: the instances placed (and listed) on it.
    fn desired_for(&self, survey: &Survey, client_id: &str) -> Lists {
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
        Ok(survey
            .apps
            .iter()
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
        // Waiting for another pass is expected, not a slow statement to warn about.
        let options = (*self.pool.connect_options())
            .clone()
            .disable_statement_logging();
        let mut lock = <sqlx::PgConnection as sqlx::Connection>::connect_with(&options).await?;
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
        let mut conn = self.pool.acquire().await?;
        let interrupted = db::reconcile::close_interrupted_runs(&mut conn).await?;
        if interrupted > 0 {
            tracing::warn!(interrupted, "closed runs of a pass that never finished");
        }
        let run_id = db::reconcile::start_run(&mut conn, trigger).await?;
        *self.open_run.lock().expect("open run lock") = Some(run_id);
        drop(conn);
        let calls_before = self
            .client
            .counters
            .calls
            .load(std::sync::atomic::Ordering::Relaxed);
        let started = std::time::Instant::now();
        let outcome = self.apply().await;
        self.metrics
            .reconcile_pass_seconds
            .with_label_values(&[trigger])
            .observe(started.elapsed().as_secs_f64());
        let calls = (self
            .client
            .counters
            .calls
            .load(std::sync::atomic::Ordering::Relaxed)
            - calls_before) as i32;
        let mut conn = self.pool.acquire().await?;
        let (run, again) = match &outcome {
            Ok((changes, again, problems)) => {
                let label = if !problems.is_empty() {
                    "failed"
                } else if changes.as_array().is_some_and(|c| !c.is_empty()) {
                    "applied"
                } else {
                    "unchanged"
                };
                let error = summarize(problems);
                (
                    db::reconcile::finish_run(
                        &mut conn,
                        run_id,
                        label,
                        calls,
                        changes,
                        error.as_deref(),
                    )
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
        *self.open_run.lock().expect("open run lock") = None;
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

    /// Places instances (creating applications if allowed), then for each application: plan,
    /// write ahead what will be owned, PATCH the changed fields, read back, record.
    async fn apply(&self) -> Result<(Value, bool, Vec<String>), ReconcileError> {
        self.settle_creations().await?;
        let mut survey = self.survey(self.settings.auto_create_applications).await?;
        let mut conn = self.pool.acquire().await?;
        {
            let mut tx = conn.begin().await?;
            for (id, p) in &survey.placements {
                let Some(client_id) = p.client_id() else {
                    continue;
                };
                let before = survey.current.get(id).map(String::as_str);
                if before == Some(client_id) {
                    continue;
                }
                // Only from what the survey saw: an admin's move made since wins, and the
                // notification it sent brings another pass.
                let moved = db::applications::reassign(&mut tx, id, before, client_id).await?;
                if moved && before.is_some() {
                    db::audit::record(
                        &mut tx,
                        db::audit::NewEntry {
                            actor: "reconciler",
                            action: "instance.moved",
                            target_type: "instance",
                            target_id: id,
                            before: Some(json!({ "client_id": before })),
                            after: Some(json!({ "client_id": client_id, "reason": "outgrew its application" })),
                            request_id: None,
                        },
                    )
                    .await?;
                }
            }
            db::applications::unassign_deleted(&mut tx, &survey.deleted).await?;
            tx.commit().await?;
        }
        let mut changes = Vec::new();
        let mut again = false;
        for app in &survey.apps {
            let desired = self.desired_for(&survey, &app.client_id);
            let plan = plan_lists(&app.client_id, &desired, &app.actual, &app.owned);
            for p in &plan.fields {
                let labels = [app.client_id.as_str(), p.field.name()];
                self.metrics
                    .foreign_entries
                    .with_label_values(&labels)
                    .set(p.foreign.len() as f64);
                self.metrics
                    .allowlist_fill_ratio
                    .with_label_values(&labels)
                    .set(p.next.len() as f64 / self.cap() as f64);
            }
            if !plan.over_cap.is_empty() {
                survey.problems.extend(
                    plan.over_cap
                        .iter()
                        .map(|e| format!("application {}: {e}", app.client_id)),
                );
                continue;
            }
            let (applied, changed_again) = self.apply_one(&mut conn, &plan, &app.actual).await?;
            changes.extend(applied);
            again |= changed_again;
        }
        Ok((Value::Array(changes), again, survey.problems))
    }

    async fn apply_one(
        &self,
        conn: &mut sqlx::PgConnection,
        plan: &ApplicationPlan,
        actual: &BTreeMap<Field, Vec<String>>,
    ) -> Result<(Vec<Value>, bool), ReconcileError> {
        let client_id = plan.client_id.as_str();
        let changed: Vec<&FieldPlan> = plan.fields.iter().filter(|p| p.changes()).collect();
        if changed.is_empty() {
            self.record(conn, plan, actual).await?;
            return Ok((Vec::new(), false));
        }
        // Write-ahead: own what is about to be added, so that an interrupted pass can never
        // leave fleetgate's own entries looking foreign (and so never removable).
        {
            let mut tx = conn.begin().await?;
            for p in &changed {
                db::reconcile::own(&mut tx, client_id, p.field.name(), &p.added).await?;
            }
            tx.commit().await?;
        }
        let body: Map<String, Value> = changed
            .iter()
            .map(|p| (p.field.name().to_owned(), json!(p.next)))
            .collect();
        self.client
            .patch_client(client_id, &Value::Object(body))
            .await?;
        let read_back = lists_of(
            &self
                .client
                .get_client(client_id, &Field::ALL.map(Field::name))
                .await?,
        );
        let mut again = false;
        for p in &changed {
            if read_back[&p.field] != p.next {
                tracing::warn!(client_id, field = %p.field, "the list changed between write and read-back; another pass follows");
                again = true;
            }
        }
        self.record(conn, plan, &read_back).await?;
        let changes = changed
            .iter()
            .map(|p| json!({"client_id": client_id, "field": p.field, "added": p.added, "removed": p.removed, "foreign": p.foreign}))
            .collect();
        Ok((changes, again))
    }
}

/// What a pass works from.
struct Survey {
    instances: Vec<registry::Instance>,
    apps: Vec<AppLists>,
    placements: BTreeMap<String, Placement>,
    /// Client id → indexes into `instances` of the instances whose entries it lists.
    listed: BTreeMap<String, Vec<usize>>,
    /// Assignments before this pass: instance id → client id.
    current: std::collections::HashMap<String, String>,
    deleted: Vec<String>,
    problems: Vec<String>,
}

/// One application of the pool as read now.
struct AppLists {
    client_id: String,
    actual: BTreeMap<Field, Vec<String>>,
    owned: BTreeMap<String, BTreeSet<String>>,
}

fn plan_lists(
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

/// How many of an instance's own entries each list holds now.
fn established(
    instance: &registry::Instance,
    opts: Options<'_>,
    lists: &BTreeMap<Field, Vec<String>>,
) -> Slots {
    Field::ALL
        .into_iter()
        .map(|f| {
            let list = &lists[&f];
            let live = instance
                .domains
                .iter()
                .filter(|d| opts.needs_exact_entries(&d.hostname))
                .flat_map(|d| opts.templates.entries(f, &d.hostname).collect::<Vec<_>>())
                .filter(|e| list.contains(e))
                .count();
            (f, live)
        })
        .collect()
}

/// The problems of a pass as its error text: the first few, and how many more.
fn summarize(problems: &[String]) -> Option<String> {
    const SHOWN: usize = 10;
    match problems.len() {
        0 => None,
        n if n <= SHOWN => Some(problems.join("; ")),
        n => Some(format!(
            "{}; and {} more",
            problems[..SHOWN].join("; "),
            n - SHOWN
        )),
    }
}
