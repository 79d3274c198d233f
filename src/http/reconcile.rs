//! `/v1/reconcile`: the dry-run plan, running a pass now, and the history of passes.

use std::sync::Arc;

use actix_web::{HttpResponse, http::StatusCode, web};

use super::{AppState, error::ApiError, pagination};
use crate::{
    db,
    domain::Field,
    http::caller::Admin,
    reconcile::{ReconcileError, Reconciler, sync::sync_status},
};

pub fn reconciler(state: &AppState) -> Result<Arc<Reconciler>, ApiError> {
    state.reconciler.clone().ok_or_else(|| {
        ApiError::conflict(
            "reconciler_disabled",
            "the reconciler is not configured: set AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET and AUTH0_SPA_CLIENT_ID",
        )
    })
}

impl From<ReconcileError> for ApiError {
    fn from(e: ReconcileError) -> Self {
        match e {
            ReconcileError::Db(e) => e.into(),
            ReconcileError::Auth0(e) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "auth0_error",
                format!("the Management API call failed: {e}"),
            ),
            other => ApiError::internal(anyhow::anyhow!(other.to_string())),
        }
    }
}

/// What a pass would change, per application and field, including foreign entries.
pub async fn plan(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let plans = reconciler(&state)?.plan().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "applications": plans })))
}

/// Runs a pass now (after any pass another replica is running) and answers with its record.
pub async fn run(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let result = reconciler(&state)?.run_settled("manual").await?;
    Ok(HttpResponse::Ok().json(result.run))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    cursor: Option<String>,
    limit: Option<u32>,
}

pub async fn runs(
    state: web::Data<AppState>,
    _admin: Admin,
    q: web::Query<RunsQuery>,
) -> Result<HttpResponse, ApiError> {
    let before = q.cursor.as_deref().map(pagination::decode_id).transpose()?;
    let limit = pagination::limit(q.limit)?;
    let runs = db::reconcile::runs(&mut *state.pool.acquire().await?, before, limit + 1).await?;
    Ok(HttpResponse::Ok().json(pagination::page(runs, limit, |r| r.id.to_string())))
}

/// Whether each URL of an instance is live in Auth0, from the lists as last read back.
pub async fn sync(
    state: web::Data<AppState>,
    _admin: Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = super::instances::path_id(&path)?;
    let reconciler = reconciler(&state)?;
    let mut conn = state.pool.acquire().await?;
    let instance = crate::registry::load(&mut conn, id.as_str())
        .await?
        .ok_or_else(|| ApiError::from(crate::registry::RegistryError::NotFound(id.clone())))?;
    let client_id = db::applications::assignment(&mut conn, id.as_str()).await?;
    let snapshots = match &client_id {
        Some(c) => db::reconcile::snapshots(&mut conn, c).await?,
        None => Default::default(),
    };
    let lists = Field::ALL
        .into_iter()
        .map(|f| (f, snapshots.get(f.name()).cloned().unwrap_or_default()))
        .collect();
    let last = db::reconcile::last_finished(&mut conn).await?;
    let failure = last
        .as_ref()
        .filter(|r| r.outcome == "failed")
        .and_then(|r| r.error.clone());
    let urls = sync_status(&instance, reconciler.options(), &lists, failure.as_deref());
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "instance_id": instance.id,
        "status": instance.status,
        "client_id": client_id,
        "last_run": last.map(|r| serde_json::json!({"id": r.id, "outcome": r.outcome, "finished_at": r.finished_at})),
        "urls": urls,
    })))
}

/// The reconciler at a glance, for the status page: which replica leads, the last pass, and
/// the instances (at most [`UNSYNCED_SHOWN`]) with URLs not live as wanted, with the reason.
/// Reads the database only: the lists as last read back, never the Management API.
pub async fn status(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let reconciler = reconciler(&state)?;
    let mut conn = state.pool.acquire().await?;
    let leader = db::reconcile::leader(&mut conn, crate::reconcile::leader::LEADER_LOCK).await?;
    let last = db::reconcile::last_finished(&mut conn).await?;
    let failure = last
        .as_ref()
        .filter(|r| r.outcome == "failed")
        .and_then(|r| r.error.clone());
    let assignments = db::applications::assignments(&mut conn).await?;
    let mut lists_of = std::collections::HashMap::new();
    for app in db::applications::pool(&mut conn).await? {
        let snapshots = db::reconcile::snapshots(&mut conn, &app.client_id).await?;
        let lists: std::collections::BTreeMap<Field, Vec<String>> = Field::ALL
            .into_iter()
            .map(|f| (f, snapshots.get(f.name()).cloned().unwrap_or_default()))
            .collect();
        lists_of.insert(app.client_id, lists);
    }
    let rows = db::instances::all(&mut conn).await?;
    let instances = crate::registry::load_many(&mut conn, rows).await?;
    let empty = Default::default();
    let mut unsynced = Vec::new();
    let mut total = 0;
    for instance in &instances {
        let client_id = assignments.get(instance.id.as_str());
        let lists = client_id.and_then(|c| lists_of.get(c)).unwrap_or(&empty);
        let urls: Vec<_> = sync_status(instance, reconciler.options(), lists, failure.as_deref())
            .into_iter()
            .filter(|u| u.state != crate::reconcile::sync::SyncState::Synced)
            .collect();
        if urls.is_empty() {
            continue;
        }
        total += 1;
        if unsynced.len() < UNSYNCED_SHOWN {
            unsynced.push(serde_json::json!({
                "instance_id": instance.id, "status": instance.status, "client_id": client_id, "urls": urls,
            }));
        }
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "leader": leader.map(|(name, address, since)| serde_json::json!({"name": name, "address": address, "since": since})),
        "last_run": last,
        "unsynced_total": total,
        "unsynced": unsynced,
    })))
}

/// Instances with unsynced URLs shown by [`status`].
pub const UNSYNCED_SHOWN: usize = 50;
