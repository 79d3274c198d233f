//! `POST /v1/hooks/deploy`: the hosting platform tells fleetgate what it deployed.
//!
//! The delivery is verified (Standard Webhooks) and parsed here, and applied by
//! `registry::hooks` (once per `webhook-id`; a redelivery gets the recorded answer). Refused
//! deliveries (4xx) are not recorded: nothing was acknowledged, and a retry is judged afresh.

use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use serde_json::Value;

use super::{
    AppState, answers::InstanceWithKey, error::ApiError, error::json_body_error, request_id,
};
use crate::{
    domain::printable,
    domain::{Actor, Hostname, InstanceId, InstanceStatus, UserId},
    registry::hooks::{Delivery, Event},
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

fn parse(body: &[u8]) -> Result<(String, Event), ApiError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| json_body_error(&e))?;
    let data = |v: Value| {
        serde_json::from_value::<Target>(v)
            .map_err(|e| ApiError::invalid(format!("invalid data: {e}")))
    };
    let event = match envelope.kind.as_str() {
        "instance.deployed" => {
            let d: Deployed = serde_json::from_value(envelope.data)
                .map_err(|e| ApiError::invalid(format!("invalid data: {e}")))?;
            Event::Deployed {
                instance_id: d.instance_id,
                owner: d.owner,
                domains: d.domains,
            }
        }
        "instance.suspended" => Event::StatusChange {
            instance_id: data(envelope.data)?.instance_id,
            to: InstanceStatus::Suspended,
            action: "instance.suspended",
        },
        "instance.resumed" => Event::StatusChange {
            instance_id: data(envelope.data)?.instance_id,
            to: InstanceStatus::Active,
            action: "instance.resumed",
        },
        "instance.deleted" => Event::StatusChange {
            instance_id: data(envelope.data)?.instance_id,
            to: InstanceStatus::Deleted,
            action: "instance.deleted",
        },
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
        .callers
        .webhooks
        .verify(&body, |name| req.headers().get(name).map(|v| v.as_bytes()))?;
    if !super::framework::is_json(&req) {
        return Err(ApiError::not_json());
    }
    let (kind, event) = parse(&body)?;

    let actor = Actor::new("hook", &webhook_id, request_id(&req));
    match state
        .registry
        .deliver(&webhook_id, &kind, event, &actor)
        .await?
    {
        Delivery::Replayed { status, body } => {
            tracing::info!(
                webhook_id,
                request_id = request_id(&req),
                "redelivery answered from the record"
            );
            let status = actix_web::http::StatusCode::from_u16(status)
                .map_err(|e| ApiError::internal(e.into()))?;
            Ok(HttpResponse::build(status)
                .insert_header(("webhook-replayed", "true"))
                .json(body))
        }
        Delivery::Applied { instance, key } => {
            tracing::info!(webhook_id, request_id = request_id(&req), event = %kind, instance = %instance.id, "deploy hook applied");
            Ok(HttpResponse::Ok().json(InstanceWithKey {
                instance: &instance,
                instance_key: key.as_ref().map(|k| k.expose_secret()),
            }))
        }
    }
}
