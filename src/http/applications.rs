//! The pool of applications, and what an instance's SPA is configured with.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::{AppState, error::ApiError, instances::path_id, reconcile::reconciler};
use crate::{auth::admin::Admin, db, reconcile::Field, registry};

/// The pool, with how full each list is (as last read back).
pub async fn list(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let reconciler = reconciler(&state)?;
    let mut conn = state.pool.acquire().await?;
    db::applications::ensure_primary(&mut conn, reconciler.application_id()).await?;
    let pool = db::applications::pool(&mut conn).await?;
    let assignments = db::applications::assignments(&mut conn).await?;
    let cap = reconciler.cap();
    let mut items = Vec::with_capacity(pool.len());
    for app in pool {
        let snapshots = db::reconcile::snapshots(&mut conn, &app.client_id).await?;
        let fill: serde_json::Map<String, serde_json::Value> = Field::ALL
            .into_iter()
            .map(|f| {
                (
                    f.name().to_owned(),
                    json!({ "entries": snapshots.get(f.name()).map_or(0, Vec::len), "cap": cap }),
                )
            })
            .collect();
        let instances = assignments
            .values()
            .filter(|c| **c == app.client_id)
            .count();
        items.push(json!({ "client_id": app.client_id, "name": app.name, "origin": app.origin, "instances": instances, "lists": fill }));
    }
    Ok(HttpResponse::Ok().json(json!({ "items": items })))
}

/// What the instance's SPA needs to log in: the tenant, its application, the API audience.
pub async fn config(
    state: web::Data<AppState>,
    _admin: Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    reconciler(&state)?;
    let mut conn = state.pool.acquire().await?;
    registry::load(&mut conn, id.as_str())
        .await?
        .ok_or_else(|| ApiError::from(registry::RegistryError::NotFound(id.clone())))?;
    let client_id = db::applications::assignment(&mut conn, id.as_str())
        .await?
        .ok_or_else(|| {
            ApiError::conflict(
                "not_assigned",
                format!("instance '{id}' has no application yet; see GET /v1/instances/{id}/sync"),
            )
        })?;
    Ok(HttpResponse::Ok().json(json!({
        "instance_id": id,
        "auth0_domain": state.auth0_base_url,
        "client_id": client_id,
        "audience": state.audience,
    })))
}
