//! `/v1/instances`: the admin view of the registry.

use actix_web::{HttpRequest, HttpResponse, http::header, web};

use secrecy::ExposeSecret;

use super::{
    AppState,
    access::{self, Want},
    admin_actor,
    answers::InstanceWithKey,
    error::ApiError,
    pagination,
};
use crate::{
    domain::{Hostname, InstanceId, InstanceStatus, UserId},
    http::caller::Admin,
    registry::ListQuery as Listing,
};

/// An instance id from the path; one that cannot exist is simply not found.
pub fn path_id(raw: &str) -> Result<InstanceId, ApiError> {
    InstanceId::parse(raw)
        .map_err(|e| ApiError::not_found(format!("{e}, so no such instance exists")))
}

/// An instance id given in a query (a filter): a bad one is the query's fault (400).
pub fn query_id(raw: Option<&str>) -> Result<Option<InstanceId>, ApiError> {
    raw.map(InstanceId::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_query", e.to_string()))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    host: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

pub async fn list(
    state: web::Data<AppState>,
    _admin: Admin,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let bad = |e: crate::domain::ParseError| ApiError::bad_request("invalid_query", e.to_string());
    let status = q
        .status
        .as_deref()
        .map(str::parse::<InstanceStatus>)
        .transpose()
        .map_err(bad)?;
    let host = q
        .host
        .as_deref()
        .map(Hostname::parse)
        .transpose()
        .map_err(bad)?;
    let after = q.cursor.as_deref().map(pagination::decode).transpose()?;
    let limit = pagination::limit(q.limit)?;
    let instances = state
        .registry
        .list(&Listing {
            status,
            host,
            after,
            limit: limit + 1,
        })
        .await?;
    Ok(HttpResponse::Ok().json(pagination::page(instances, limit, |i| i.id.to_string())))
}

/// For admins, the owner and the instance's admins.
pub async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    access::instance(&state, &req, &id, Want::Manage).await?;
    Ok(HttpResponse::Ok().json(state.registry.get(&id).await?))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    id: InstanceId,
    owner: UserId,
    #[serde(default)]
    domains: Vec<Hostname>,
}

pub async fn create(
    state: web::Data<AppState>,
    admin: Admin,
    req: HttpRequest,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let actor = admin_actor(&req, &admin);
    let (instance, key) = state
        .registry
        .create(&actor, &body.id, &body.owner, &body.domains)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/v1/instances/{}", instance.id)))
        .json(InstanceWithKey {
            instance: &instance,
            // Shown this once: fleetgate keeps only its hash.
            instance_key: Some(key.expose_secret()),
        }))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    owner: Option<UserId>,
    status: Option<InstanceStatus>,
}

pub async fn patch(
    state: web::Data<AppState>,
    admin: Admin,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    if body.owner.is_none() && body.status.is_none() {
        return Err(ApiError::invalid("give owner and/or status to change"));
    }
    let action = match body.status {
        Some(InstanceStatus::Deleted) => "instance.deleted",
        Some(_) => "instance.updated",
        None => "instance.owner_changed",
    };
    let actor = admin_actor(&req, &admin);
    let instance = state
        .registry
        .update(&actor, &id, body.owner.as_ref(), body.status, action)
        .await?;
    Ok(HttpResponse::Ok().json(instance))
}

/// Soft delete: the instance stays (status `deleted`) and its hosts are released.
pub async fn delete(
    state: web::Data<AppState>,
    admin: Admin,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let actor = admin_actor(&req, &admin);
    state
        .registry
        .update(
            &actor,
            &id,
            None,
            Some(InstanceStatus::Deleted),
            "instance.deleted",
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
