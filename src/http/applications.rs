//! The pool of applications, and what an instance's SPA is configured with.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::{AppState, error::ApiError, instances::path_id, reconcile::reconciler};
use crate::{db, domain::Field, http::caller::Admin, registry};

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
        let owned = db::reconcile::owned(&mut conn, &app.client_id).await?;
        let fill: serde_json::Map<String, serde_json::Value> = Field::ALL
            .into_iter()
            .map(|f| {
                let read = snapshots
                    .get(f.name())
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                // Drift: what the list held when last read back that fleetgate did not add.
                let foreign: Vec<&String> = read
                    .iter()
                    .filter(|e| !owned.get(f.name()).is_some_and(|o| o.contains(*e)))
                    .collect();
                (
                    f.name().to_owned(),
                    json!({ "entries": read.len(), "cap": cap, "foreign": foreign }),
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

/// What the instance's SPA and API need: the tenant, its application, the instances' API
/// audience (never fleetgate's own) and the claim that names the instance in tokens.
/// For admins, the owner, the instance's admins and the instance's own key.
pub async fn config(
    state: web::Data<AppState>,
    req: actix_web::HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    super::access::instance(&state, &req, &id, super::access::Want::Read).await?;
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
        "audience": state.instance_audience,
        "instance_claim": state.instance_claim,
    })))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    client_id: String,
}

/// Adds an existing application of the tenant to the pool.
pub async fn register(
    state: web::Data<AppState>,
    admin: Admin,
    req: actix_web::HttpRequest,
    body: web::Json<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let reconciler = reconciler(&state)?;
    let client_id = body.client_id.trim();
    if client_id.is_empty()
        || client_id.len() > 64
        || !client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(ApiError::invalid(
            "client_id must be an Auth0 client id (letters, digits, '-' and '_', at most 64)",
        ));
    }
    let found = reconciler
        .client
        .get_client(client_id, &["client_id", "name"])
        .await
        .map_err(|e| match e.status() {
            Some(404) => ApiError::invalid(format!("the tenant has no application '{client_id}'")),
            _ => ApiError::new(
                actix_web::http::StatusCode::BAD_GATEWAY,
                "auth0_error",
                format!("the Management API call failed: {e}"),
            ),
        })?;
    let name = found["name"].as_str().unwrap_or("registered");
    let mut tx = state.pool.begin().await?;
    db::applications::add(&mut tx, client_id, name, "registered").await?;
    db::audit::record(
        &mut tx,
        db::audit::NewEntry {
            actor: &super::admin_actor(&req, &admin).name,
            action: "application.registered",
            target_type: "application",
            target_id: client_id,
            before: None,
            after: Some(json!({ "client_id": client_id, "name": name })),
            request_id: super::request_id(&req).as_deref(),
        },
    )
    .await?;
    db::applications::notify(&mut tx).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created()
        .json(json!({ "client_id": client_id, "name": name, "origin": "registered" })))
}

/// Takes an application out of the pool (not out of the tenant). Its instances must be moved first.
pub async fn remove(
    state: web::Data<AppState>,
    admin: Admin,
    req: actix_web::HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let reconciler = reconciler(&state)?;
    let client_id = path.into_inner();
    if client_id == reconciler.application_id() {
        return Err(ApiError::conflict(
            "primary_application",
            "the primary application (AUTH0_SPA_CLIENT_ID) cannot leave the pool",
        ));
    }
    let mut tx = state.pool.begin().await?;
    let assigned = db::applications::count_assigned(&mut tx, &client_id).await?;
    if assigned > 0 {
        return Err(ApiError::conflict(
            "application_in_use",
            format!(
                "{assigned} instances are configured with application '{client_id}'; move them first"
            ),
        ));
    }
    if !db::applications::remove(&mut tx, &client_id).await? {
        return Err(ApiError::not_found(format!(
            "application '{client_id}' is not in the pool"
        )));
    }
    db::audit::record(
        &mut tx,
        db::audit::NewEntry {
            actor: &super::admin_actor(&req, &admin).name,
            action: "application.removed",
            target_type: "application",
            target_id: &client_id,
            before: Some(json!({ "client_id": client_id })),
            after: None,
            request_id: super::request_id(&req).as_deref(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MoveBody {
    /// The application to move to; without it, the next pass places the instance afresh
    /// (first application with room).
    client_id: Option<String>,
}

/// Moves an instance to another application of the pool (or lets the next pass place it afresh).
pub async fn move_instance(
    state: web::Data<AppState>,
    admin: Admin,
    req: actix_web::HttpRequest,
    path: web::Path<String>,
    body: web::Json<MoveBody>,
) -> Result<HttpResponse, ApiError> {
    reconciler(&state)?;
    let id = path_id(&path)?;
    let mut tx = state.pool.begin().await?;
    registry::load(&mut tx, id.as_str())
        .await?
        .ok_or_else(|| ApiError::from(registry::RegistryError::NotFound(id.clone())))?;
    let before = db::applications::assignment(&mut tx, id.as_str()).await?;
    match &body.client_id {
        Some(target) => {
            let in_pool = db::applications::pool(&mut tx)
                .await?
                .iter()
                .any(|a| a.client_id == *target);
            if !in_pool {
                return Err(ApiError::invalid(format!(
                    "application '{target}' is not in the pool"
                )));
            }
            db::applications::assign(&mut tx, id.as_str(), target).await?;
        }
        None => db::applications::unassign(&mut tx, id.as_str()).await?,
    }
    db::audit::record(
        &mut tx,
        db::audit::NewEntry {
            actor: &super::admin_actor(&req, &admin).name,
            action: "instance.moved",
            target_type: "instance",
            target_id: id.as_str(),
            before: Some(json!({ "client_id": before })),
            after: Some(json!({ "client_id": body.client_id })),
            request_id: super::request_id(&req).as_deref(),
        },
    )
    .await?;
    db::applications::notify(&mut tx).await?;
    tx.commit().await?;
    Ok(HttpResponse::Accepted()
        .json(json!({ "instance_id": id, "from": before, "to": body.client_id })))
}
