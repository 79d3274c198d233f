//! The pool of applications, and what an instance's SPA is configured with.

use crate::config::LoginMode;

use super::{
    AppState,
    answers::{Applications, InstanceConfig, Moved, RegisteredApplication},
    error::ApiError,
    instances::path_id,
    reconcile::reconciler,
};
use crate::http::caller::Admin;
use actix_web::{HttpResponse, web};

/// The pool, with how full each list is (as last read back).
pub async fn list(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let items = reconciler(&state)?.applications().await?;
    Ok(HttpResponse::Ok().json(Applications { items }))
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
    let direct = |client_id: String| ("direct", state.tenant.base_url.as_str(), client_id);
    let (login, domain, client_id) = match &state.relay {
        None => direct(reconciler(&state)?.application_of(&id).await?),
        Some(relay) => {
            // In overflow mode an instance logs in at the tenant once its entries are live there.
            let live = match relay.mode() {
                LoginMode::Overflow => reconciler(&state)?
                    .sync_of(&id)
                    .await?
                    .live_at()
                    .map(str::to_owned),
                _ => None,
            };
            match live {
                Some(client_id) => direct(client_id),
                None => (
                    "relay",
                    relay.settings().url.as_str(),
                    relay.client_id().to_owned(),
                ),
            }
        }
    };
    Ok(HttpResponse::Ok().json(InstanceConfig {
        instance_id: &id,
        auth0_domain: &state.tenant.base_url,
        login,
        domain,
        issuer: &state.tenant.issuer,
        client_id,
        audience: &state.tenant.instance_audience,
        instance_claim: &state.tenant.instance_claim,
    }))
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
    let name = reconciler
        .register(&super::admin_actor(&req, &admin), client_id)
        .await?;
    Ok(HttpResponse::Created().json(RegisteredApplication {
        client_id,
        name,
        origin: "registered",
    }))
}

/// Takes an application out of the pool (not out of the tenant). Its instances must be moved first.
pub async fn remove(
    state: web::Data<AppState>,
    admin: Admin,
    req: actix_web::HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let reconciler = reconciler(&state)?;
    reconciler
        .unregister(&super::admin_actor(&req, &admin), &path)
        .await?;
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
    let reconciler = reconciler(&state)?;
    let id = path_id(&path)?;
    let before = reconciler
        .move_instance(
            &super::admin_actor(&req, &admin),
            &id,
            body.client_id.as_deref(),
        )
        .await?;
    Ok(HttpResponse::Accepted().json(Moved {
        instance_id: &id,
        from: before,
        to: body.client_id.as_deref(),
    }))
}
