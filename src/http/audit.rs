//! `GET /v1/audit`: who changed what, newest first.

use actix_web::{HttpResponse, web};

use super::{AppState, error::ApiError, pagination};
use crate::http::caller::Admin;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    instance_id: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

pub async fn list(
    state: web::Data<AppState>,
    _admin: Admin,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let instance = super::instances::query_id(q.instance_id.as_deref())?;
    let before = q.cursor.as_deref().map(pagination::decode_id).transpose()?;
    let limit = pagination::limit(q.limit)?;
    let entries = state
        .registry
        .audit(instance.as_ref(), before, limit + 1)
        .await?;
    Ok(HttpResponse::Ok().json(pagination::page(entries, limit, |e| e.id.to_string())))
}
