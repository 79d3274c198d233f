//! `/v1/instances/{id}/domains`: one instance's hosts.

use actix_web::{HttpRequest, HttpResponse, web};

use super::{AppState, admin_actor, error::ApiError, instances::path_id};
use crate::{domain::Hostname, http::caller::Admin};

pub async fn list(
    state: web::Data<AppState>,
    _admin: Admin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let instance = state.registry.get(&id).await?;
    Ok(HttpResponse::Ok().json(super::answers::Domains {
        domains: &instance.domains,
    }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddBody {
    hostname: Hostname,
}

pub async fn add(
    state: web::Data<AppState>,
    admin: Admin,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<AddBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let actor = admin_actor(&req, &admin);
    let instance = state
        .registry
        .add_domain(&actor, &id, &body.hostname)
        .await?;
    Ok(HttpResponse::Created().json(instance))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceBody {
    domains: Vec<Hostname>,
}

pub async fn replace(
    state: web::Data<AppState>,
    admin: Admin,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<ReplaceBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let actor = admin_actor(&req, &admin);
    let instance = state
        .registry
        .replace_domains(&actor, &id, &body.domains)
        .await?;
    Ok(HttpResponse::Ok().json(instance))
}

pub async fn remove(
    state: web::Data<AppState>,
    admin: Admin,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (raw_id, raw_host) = path.into_inner();
    let id = path_id(&raw_id)?;
    let host = Hostname::parse(&raw_host)
        .map_err(|e| ApiError::not_found(format!("{e}, so instance '{id}' has no such host")))?;
    let actor = admin_actor(&req, &admin);
    state.registry.remove_domain(&actor, &id, &host).await?;
    Ok(HttpResponse::NoContent().finish())
}
