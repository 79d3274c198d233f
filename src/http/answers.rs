//! The bodies of the API's answers that the handlers put together, one type each, named as
//! `api-spec/openapi.yaml` names their schemas. (Answers that are one feature's value as it is
//! — an instance, a grant, a decision, a page — are that value's own type.) The handlers build
//! these; `tests/api/bodies.rs` checks every documented answer against its schema.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{
    db::{grants::UserGrant, keys::KeyInfo},
    domain::{InstanceId, UserId},
    reconcile::{ApplicationPlan, PoolEntry},
    registry::{Domain, Instance},
};

/// `{"status": …}` of `/healthz` and `/readyz`, with the version answering.
#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
}

/// An instance, with the key issued with it when one was (`InstanceWithKey`): shown this once,
/// fleetgate keeps only its hash.
#[derive(Debug, Serialize)]
pub struct InstanceWithKey<'a> {
    #[serde(flatten)]
    pub instance: &'a Instance,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_key: Option<&'a str>,
}

/// `GET /v1/instances/{id}/domains`.
#[derive(Debug, Serialize)]
pub struct Domains<'a> {
    pub domains: &'a [Domain],
}

/// `GET /v1/instances/{id}/keys`.
#[derive(Debug, Serialize)]
pub struct KeyList<'a> {
    pub instance_id: &'a InstanceId,
    pub items: Vec<KeyInfo>,
}

/// `POST /v1/instances/{id}/keys/rotate` (`KeyRotation`).
#[derive(Debug, Serialize)]
pub struct KeyRotation<'a> {
    pub instance_id: &'a InstanceId,
    pub instance_key: &'a str,
    pub previous_keys_expire_at: Option<DateTime<Utc>>,
}

/// `GET /v1/users/{user_id}/grants` (`UserGrants`): each instance the user owns (role
/// `owner`, no grant) or holds a grant on.
#[derive(Debug, Serialize)]
pub struct UserGrants<'a> {
    pub user_id: &'a UserId,
    pub items: Vec<UserGrant>,
}

/// `GET /v1/instances/{id}/config`: what the instance's SPA and API are configured with.
#[derive(Debug, Serialize)]
pub struct InstanceConfig<'a> {
    pub instance_id: &'a InstanceId,
    /// The tenant's base URL (where its keys are discovered).
    pub auth0_domain: &'a str,
    /// How the instance logs in: `direct` (at the tenant) or `relay`.
    pub login: &'static str,
    /// What auth0-spa-js's `domain` gets: the tenant, or the relay.
    pub domain: &'a str,
    /// What auth0-spa-js's `issuer` gets: the tenant's, which signs every token either way.
    pub issuer: &'a str,
    pub client_id: String,
    pub audience: &'a str,
    pub instance_claim: &'a str,
}

/// `GET /v1/applications`.
#[derive(Debug, Serialize)]
pub struct Applications {
    pub items: Vec<PoolEntry>,
}

/// `POST /v1/applications`: the application now in the pool.
#[derive(Debug, Serialize)]
pub struct RegisteredApplication<'a> {
    pub client_id: &'a str,
    pub name: String,
    pub origin: &'static str,
}

/// `POST /v1/instances/{id}/move`.
#[derive(Debug, Serialize)]
pub struct Moved<'a> {
    pub instance_id: &'a InstanceId,
    /// Its application before (none when it had none yet).
    pub from: Option<String>,
    /// The application asked for; none: the next pass places it.
    pub to: Option<&'a str>,
}

/// `GET /v1/reconcile/plan`.
#[derive(Debug, Serialize)]
pub struct Plans {
    pub applications: Vec<ApplicationPlan>,
}

/// `GET /ui/config.json`: what the status page logs in with (auth0-spa-js's option names).
#[derive(Debug, Serialize)]
pub struct UiConfig<'a> {
    pub domain: &'a str,
    /// The tenant's token issuer (`AUTH0_ISSUER`): `{domain}/` unless the tenant's logins run
    /// on a custom domain.
    pub issuer: &'a str,
    #[serde(rename = "clientId")]
    pub client_id: &'a str,
    pub audience: &'a str,
    /// The roles a grant may have (`FLEETGATE_GRANT_ROLES`), for the access page's choices.
    pub roles: &'a [String],
}
