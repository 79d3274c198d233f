//! `GET /v1/events` and `POST /v1/events/{id}/redeliver`: the outbox of outbound events, each
//! with its delivery attempts, and sending one again.

use actix_web::{HttpResponse, web};

use super::{AppState, error::ApiError, pagination};
use crate::{
    db::events::Filter,
    domain::InstanceId,
    events::{EventRecord, Kind},
    http::caller::Admin,
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    status: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    instance: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

const STATUSES: [&str; 3] = ["pending", "delivered", "failed"];

pub async fn list(
    state: web::Data<AppState>,
    _admin: Admin,
    q: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    if let Some(status) = q.status.as_deref().filter(|s| !STATUSES.contains(s)) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "status '{}' is not one of {}",
                crate::domain::printable(status),
                STATUSES.join(", ")
            ),
        ));
    }
    if let Some(kind) = q.kind.as_deref().filter(|k| Kind::parse(k).is_none()) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!(
                "type '{}' is not one of {}",
                crate::domain::printable(kind),
                Kind::ALL.map(Kind::as_str).join(", ")
            ),
        ));
    }
    let instance = super::instances::query_id(q.instance.as_deref())?;
    let before = q.cursor.as_deref().map(pagination::decode_id).transpose()?;
    let limit = pagination::limit(q.limit)?;
    let filter = Filter {
        status: q.status.as_deref(),
        kind: q.kind.as_deref(),
        instance: instance.as_ref().map(InstanceId::as_str),
    };
    let events = state.events.list(&filter, before, limit + 1).await?;
    Ok(
        HttpResponse::Ok().json(pagination::page(events, limit, |e: &EventRecord| {
            e.event.seq.to_string()
        })),
    )
}

pub async fn redeliver(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    match state.events.redeliver(&id).await? {
        Some(event) => Ok(HttpResponse::Accepted().json(event)),
        None => Err(ApiError::not_found(format!(
            "there is no event '{}'",
            crate::domain::printable(&id)
        ))),
    }
}
