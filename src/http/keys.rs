//! `POST /v1/instances/{id}/keys/rotate`: a new instance key; the old ones keep working for
//! the grace period.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use serde_json::json;

use super::{
    AppState,
    access::{self, Want},
    error::ApiError,
    instances::path_id,
};
use crate::{auth::instance_key, db, domain::InstanceStatus, registry::RegistryError};

pub async fn rotate(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let access = access::instance(&state, &req, &id, Want::Manage).await?;
    let mut tx = state.pool.begin().await?;
    let row = db::instances::lock(&mut tx, id.as_str())
        .await?
        .ok_or_else(|| ApiError::from(RegistryError::NotFound(id.clone())))?;
    if row.status == InstanceStatus::Deleted.as_str() {
        return Err(RegistryError::Deleted(id.clone()).into());
    }
    let grace = state.key_grace.as_secs() as i64;
    let previous_expire_at = db::keys::retire(&mut tx, id.as_str(), grace).await?;
    let key = instance_key::issue(&mut tx, id.as_str()).await?;
    let actor = access.actor(&req);
    db::audit::record(
        &mut tx,
        db::audit::NewEntry {
            actor: &actor.name,
            action: "instance.key_rotated",
            target_type: "instance",
            target_id: id.as_str(),
            before: None,
            after: Some(json!({ "previous_keys_expire_at": previous_expire_at })),
            request_id: actor.request_id.as_deref(),
        },
    )
    .await?;
    tx.commit().await?;
    super::refresh_memory(&state, id.as_str()).await;
    Ok(HttpResponse::Created().json(json!({
        "instance_id": id,
        "instance_key": key.expose_secret(),
        "previous_keys_expire_at": previous_expire_at,
    })))
}
