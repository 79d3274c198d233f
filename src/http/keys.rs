//! `/v1/instances/{id}/keys`: the instance's live keys as operators see them (who minted each,
//! never the key), and rotation: a new key, the old ones kept for the grace period or, with
//! `revoke_previous`, revoked at once. Only the owner and fleetgate admins hold keys: an
//! instance admin's access ends with their grant, a key they had seen would not.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use serde_json::json;

use super::{
    AppState,
    access::{self, Access, Want},
    error::{ApiError, json_body_error},
    instances::path_id,
};
use crate::{
    auth::instance_key, db, domain::InstanceId, domain::InstanceStatus, registry::RegistryError,
};

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    /// Revoke every other key now instead of after the grace period.
    #[serde(default)]
    revoke_previous: bool,
}

/// The owner or a fleetgate admin; anyone else who may manage the instance is refused.
async fn key_holder(
    state: &AppState,
    req: &HttpRequest,
    id: &InstanceId,
) -> Result<Access, ApiError> {
    match access::instance(state, req, id, Want::Manage).await? {
        a @ (Access::Admin(_) | Access::Owner(_)) => Ok(a),
        _ => Err(ApiError::forbidden(
            None,
            "only the instance's owner or a fleetgate admin may see or rotate its keys",
        )),
    }
}

pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    key_holder(&state, &req, &id).await?;
    let mut conn = state.pool.acquire().await?;
    let keys = db::keys::infos(&mut conn, id.as_str()).await?;
    Ok(HttpResponse::Ok().json(json!({ "instance_id": id, "items": keys })))
}

pub async fn rotate(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let access = key_holder(&state, &req, &id).await?;
    let options: RotateBody = if body.iter().all(u8::is_ascii_whitespace) {
        RotateBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| json_body_error(&e))?
    };
    let mut tx = state.pool.begin().await?;
    let row = db::instances::lock(&mut tx, id.as_str())
        .await?
        .ok_or_else(|| ApiError::from(RegistryError::NotFound(id.clone())))?;
    if row.status == InstanceStatus::Deleted.as_str() {
        return Err(RegistryError::Deleted(id.clone()).into());
    }
    let previous_expire_at = if options.revoke_previous {
        db::keys::revoke_all(&mut tx, id.as_str()).await?;
        None
    } else {
        let grace = state.key_grace.as_secs() as i64;
        db::keys::retire(&mut tx, id.as_str(), grace).await?
    };
    let actor = access.actor(&req);
    let key = instance_key::issue(&mut tx, id.as_str(), &actor.name).await?;
    db::audit::record(
        &mut tx,
        db::audit::NewEntry {
            actor: &actor.name,
            action: "instance.key_rotated",
            target_type: "instance",
            target_id: id.as_str(),
            before: None,
            after: Some(json!({
                "previous_keys_expire_at": previous_expire_at,
                "previous_keys_revoked": options.revoke_previous,
            })),
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
