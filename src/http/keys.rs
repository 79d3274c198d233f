//! `/v1/instances/{id}/keys`: the instance's live keys as operators see them (who minted each,
//! never the key), and rotation: a new key, the old ones kept for the grace period or, with
//! `revoke_previous`, revoked at once. Only the owner and fleetgate admins hold keys: an
//! instance admin's access ends with their grant, a key they had seen would not.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;

use super::{
    AppState,
    access::{self, Access, Want},
    answers,
    error::{ApiError, json_body_error},
    instances::path_id,
};
use crate::domain::InstanceId;

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
    let keys = state.keys.list(&id).await?;
    Ok(HttpResponse::Ok().json(answers::KeyList {
        instance_id: &id,
        items: keys,
    }))
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
    let actor = access.actor(&req);
    let rotated = state
        .keys
        .rotate(&actor, &id, options.revoke_previous)
        .await?;
    Ok(HttpResponse::Created().json(answers::KeyRotation {
        instance_id: &id,
        instance_key: rotated.key.expose_secret(),
        previous_keys_expire_at: rotated.previous_expire_at,
    }))
}
