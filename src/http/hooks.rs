//! `POST /v1/hooks/deploy`: the hosting platform tells fleetgate what it deployed.
//!
//! The delivery is verified (Standard Webhooks), parsed, and applied in one transaction
//! that also records its `webhook-id` and the answer, so a redelivery has no second effect
//! and gets the same answer. Refused deliveries (4xx) are not recorded: nothing was
//! acknowledged, and a retry is judged afresh.
//!
//! An instance's first deploy (or its first after deletion) issues its instance key, which is
//! in that answer only: fleetgate keeps its hash, so a redelivery's answer lacks it (rotate
//! to get a new one).

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use serde_json::Value;

use super::{AppState, error::ApiError, error::json_body_error, request_id};
use crate::{
    db,
    domain::printable,
    domain::{Actor, Hostname, InstanceId, InstanceStatus, UserId},
    keys,
};

const EVENT_TYPES: &str =
    "instance.deployed, instance.suspended, instance.resumed, instance.deleted";

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    /// Standard Webhooks payloads may carry the event time; it is not used.
    #[serde(default)]
    #[allow(dead_code)]
    timestamp: Option<Value>,
    data: Value,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Deployed {
    instance_id: InstanceId,
    owner: UserId,
    domains: Vec<Hostname>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    instance_id: InstanceId,
}

enum Event {
    Deployed(Deployed),
    StatusChange(InstanceId, InstanceStatus, &'static str),
}

fn parse(body: &[u8]) -> Result<(String, Event), ApiError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| json_body_error(&e))?;
    let data = |v: Value| {
        serde_json::from_value::<Target>(v)
            .map_err(|e| ApiError::invalid(format!("invalid data: {e}")))
    };
    let event = match envelope.kind.as_str() {
        "instance.deployed" => Event::Deployed(
            serde_json::from_value(envelope.data)
                .map_err(|e| ApiError::invalid(format!("invalid data: {e}")))?,
        ),
        "instance.suspended" => Event::StatusChange(
            data(envelope.data)?.instance_id,
            InstanceStatus::Suspended,
            "instance.suspended",
        ),
        "instance.resumed" => Event::StatusChange(
            data(envelope.data)?.instance_id,
            InstanceStatus::Active,
            "instance.resumed",
        ),
        "instance.deleted" => Event::StatusChange(
            data(envelope.data)?.instance_id,
            InstanceStatus::Deleted,
            "instance.deleted",
        ),
        other => {
            let shown = printable(other);
            return Err(ApiError::invalid(format!(
                "unknown event type '{shown}'; expected one of {EVENT_TYPES}"
            )));
        }
    };
    Ok((envelope.kind, event))
}

pub async fn deploy(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let webhook_id = state
        .webhooks
        .verify(&body, |name| req.headers().get(name).map(|v| v.as_bytes()))
        .map_err(|e| {
            ApiError::unauthorized(
                r#"Webhook-Signature realm="fleetgate""#.to_owned(),
                format!("webhook signature refused: {e}"),
            )
        })?;
    if !super::framework::is_json(&req) {
        return Err(ApiError::not_json());
    }
    let (kind, event) = parse(&body)?;

    let mut tx = state.pool.begin().await?;
    if !db::webhooks::claim(&mut tx, &webhook_id, &kind).await? {
        let (status, body) = db::webhooks::answer(&mut tx, &webhook_id)
            .await?
            .ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!(
                    "claimed delivery {webhook_id} has no answer"
                ))
            })?;
        tx.rollback().await?;
        tracing::info!(
            webhook_id,
            request_id = super::request_id(&req),
            "redelivery answered from the record"
        );
        let status = actix_web::http::StatusCode::from_u16(status)
            .map_err(|e| ApiError::internal(e.into()))?;
        return Ok(HttpResponse::build(status)
            .insert_header(("webhook-replayed", "true"))
            .json(body));
    }
    let actor = Actor::new("hook", &webhook_id, request_id(&req));
    let (instance, key) = match event {
        Event::Deployed(d) => {
            let (instance, _) = state
                .registry
                .deploy(&mut tx, &actor, &d.instance_id, &d.owner, &d.domains)
                .await?;
            let key = keys::issue_if_none(&mut tx, instance.id.as_str(), &actor.name).await?;
            (instance, key)
        }
        Event::StatusChange(id, to, action) => {
            let instance = state
                .registry
                .update(&mut tx, &actor, &id, None, Some(to), action)
                .await?;
            (instance, None)
        }
    };
    // The recorded answer never holds the key: a redelivery gets the instance without it.
    let recorded = instance.to_json();
    db::webhooks::complete(&mut tx, &webhook_id, 200, &recorded).await?;
    tx.commit().await?;
    tracing::info!(webhook_id, request_id = super::request_id(&req), event = kind, instance = %instance.id, "deploy hook applied");
    // A key issued, or revoked by a deletion: this replica knows at once.
    state.live.refresh(&state.pool, instance.id.as_str()).await;
    let mut answer = recorded;
    if let Some(key) = key {
        answer["instance_key"] = key.expose_secret().into();
    }
    Ok(HttpResponse::Ok().json(answer))
}
