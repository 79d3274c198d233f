//! `/v1/reconcile`: the dry-run plan, running a pass now, and the history of passes.

use std::sync::Arc;

use actix_web::{HttpResponse, web};

use super::{AppState, error::ApiError, pagination};
use crate::{
    http::caller::Admin,
    reconcile::{Reconciler, Trigger},
};

pub fn reconciler(state: &AppState) -> Result<Arc<Reconciler>, ApiError> {
    state.reconciler.clone().ok_or_else(|| {
        ApiError::conflict(
            "reconciler_disabled",
            "the reconciler is not configured: set AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET and AUTH0_SPA_CLIENT_ID",
        )
    })
}

/// What a pass would change, per application and field, including foreign entries.
pub async fn plan(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let plans = reconciler(&state)?.plan().await?;
    Ok(HttpResponse::Ok().json(super::answers::Plans {
        applications: plans,
    }))
}

/// Runs a pass now (after any pass another replica is running) and answers with its record.
pub async fn run(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let result = reconciler(&state)?.run_settled(Trigger::Manual).await?;
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
    let runs = state.runs.list(before, limit + 1).await?;
    Ok(HttpResponse::Ok().json(pagination::page(runs, limit, |r| r.id.to_string())))
}

/// Whether each URL of an instance is live in Auth0, from the lists as last read back.
pub async fn sync(
    state: web::Data<AppState>,
    _admin: Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = super::instances::path_id(&path)?;
    Ok(HttpResponse::Ok().json(reconciler(&state)?.sync_of(&id).await?))
}

/// The reconciler at a glance, for the status page: which replica leads, the last pass, and
/// the instances (at most [`crate::reconcile::UNSYNCED_SHOWN`]) with URLs not live as wanted, with the reason.
/// Reads the database only: the lists as last read back, never the Management API.
pub async fn status(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(reconciler(&state)?.status().await?))
}
