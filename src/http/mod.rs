//! The HTTP API: routes per resource, one error type, request ids, access log and metrics.

pub mod access;
pub mod answers;
pub mod applications;
pub mod audit;
pub mod caller;
pub mod domains;
pub mod error;
pub mod events;
pub mod framework;
pub mod grants;
pub mod hangup;
pub mod health;
pub mod hooks;
pub mod instances;
pub mod keys;
pub mod login;
pub mod observe;
pub mod pagination;
pub mod peer;
pub mod people;
pub mod reconcile;
pub mod relay;
pub mod ui;

use actix_web::{HttpMessage, HttpRequest, Route, http::Method, web};
use sqlx::PgPool;

use crate::{
    auth::{jwt::TokenVerifier, webhook::WebhookVerifier},
    domain::Actor,
};

/// What every handler can reach: the use cases (each on the worker's own pool, see
/// [`AppState::for_worker`]), who is calling, and what instances and the status page are told.
/// No pool, no memory of other features: a handler parses, authorizes, calls one use case and
/// maps its answer.
#[derive(Clone)]
pub struct AppState {
    pub registry: crate::registry::Commands,
    pub grants: crate::grants::Commands,
    pub keys: crate::keys::Keys,
    /// The record of reconcile passes (readable without the reconciler).
    pub runs: crate::reconcile::Runs,
    /// Present when the M2M credentials are configured.
    pub reconciler: Option<std::sync::Arc<crate::reconcile::Reconciler>>,
    pub callers: Callers,
    pub tenant: TenantFacts,
    /// The login relay, in `relay` mode.
    pub relay: Option<crate::relay::Relay>,
    /// The outbox of outbound events (empty while `FLEETGATE_EVENTS_URL` is unset).
    pub events: crate::events::Events,
}

/// What tells callers apart (see `caller`).
#[derive(Clone)]
pub struct Callers {
    pub tokens: std::sync::Arc<TokenVerifier>,
    pub webhooks: std::sync::Arc<WebhookVerifier>,
    /// Failed authentications per client address.
    pub failures: std::sync::Arc<crate::auth::failures::FailureLimiter>,
    pub action_secret: Option<secrecy::SecretString>,
    /// The status page's Auth0 application, if it has one.
    pub ui_client_id: Option<String>,
}

/// The tenant's base URL, the audience of instances' APIs and the claim that binds a token to
/// one instance, as instances are told them; fleetgate's own audience (what the status page
/// logs in for).
#[derive(Clone)]
pub struct TenantFacts {
    pub base_url: String,
    /// The `iss` of the tenant's tokens (`AUTH0_ISSUER`).
    pub issuer: String,
    pub instance_audience: String,
    pub audience: String,
    pub instance_claim: String,
}

impl AppState {
    /// The same state (everything in it shared with the other workers) with its database work
    /// on `pool`, a worker's own ([`crate::db::worker_pool`]).
    pub fn for_worker(&self, pool: PgPool) -> Self {
        Self {
            registry: self.registry.with_pool(pool.clone()),
            grants: self.grants.with_pool(pool.clone()),
            keys: self.keys.with_pool(pool.clone()),
            runs: self.runs.with_pool(pool.clone()),
            events: self.events.with_pool(pool.clone()),
            relay: self.relay.as_ref().map(|r| r.for_worker(pool)),
            ..self.clone()
        }
    }
}

/// Every route of the API: method, path (OpenAPI syntax) and handler. `routes` registers
/// exactly these, in this order, and a test holds them equal to `api-spec/openapi.yaml`.
pub fn route_table() -> Vec<(Method, &'static str, Route)> {
    vec![
        // The hot paths first: resources are matched in the order they are registered, and
        // every dynamic one tried before the match costs a regular expression's run.
        (
            Method::GET,
            "/v1/instances/{id}/grants",
            web::get().to(grants::list),
        ),
        (
            Method::POST,
            "/v1/instances/{id}/grants",
            web::post().to(grants::create),
        ),
        (
            Method::PUT,
            "/v1/instances/{id}/grants",
            web::put().to(grants::replace),
        ),
        (
            Method::PATCH,
            "/v1/instances/{id}/grants/{grant_id}",
            web::patch().to(grants::patch),
        ),
        (
            Method::DELETE,
            "/v1/instances/{id}/grants/{grant_id}",
            web::delete().to(grants::delete),
        ),
        (
            Method::GET,
            "/v1/users/{user_id}/grants",
            web::get().to(grants::of_user),
        ),
        (
            Method::GET,
            "/v1/me/instances",
            web::get().to(people::my_instances),
        ),
        (
            Method::GET,
            "/v1/instances/{id}/people",
            web::get().to(people::people),
        ),
        (
            Method::POST,
            "/v1/instances/{id}/keys/rotate",
            web::post().to(keys::rotate),
        ),
        (
            Method::GET,
            "/v1/instances/{id}/keys",
            web::get().to(keys::list),
        ),
        (
            Method::POST,
            "/v1/login-decisions",
            web::post().to(login::decide_login),
        ),
        (
            Method::POST,
            "/v1/hooks/deploy",
            web::post().to(hooks::deploy),
        ),
        (Method::GET, "/healthz", web::get().to(health::healthz)),
        (Method::GET, "/readyz", web::get().to(health::readyz)),
        (Method::GET, "/ui/", web::get().to(ui::index)),
        (Method::GET, "/ui/config.json", web::get().to(ui::config)),
        (Method::GET, "/ui/{file}", web::get().to(ui::file)),
        (Method::GET, "/v1/instances", web::get().to(instances::list)),
        (
            Method::POST,
            "/v1/instances",
            web::post().to(instances::create),
        ),
        (
            Method::GET,
            "/v1/instances/{id}",
            web::get().to(instances::get),
        ),
        (
            Method::PATCH,
            "/v1/instances/{id}",
            web::patch().to(instances::patch),
        ),
        (
            Method::DELETE,
            "/v1/instances/{id}",
            web::delete().to(instances::delete),
        ),
        (
            Method::GET,
            "/v1/instances/{id}/domains",
            web::get().to(domains::list),
        ),
        (
            Method::POST,
            "/v1/instances/{id}/domains",
            web::post().to(domains::add),
        ),
        (
            Method::PUT,
            "/v1/instances/{id}/domains",
            web::put().to(domains::replace),
        ),
        (
            Method::DELETE,
            "/v1/instances/{id}/domains/{hostname}",
            web::delete().to(domains::remove),
        ),
        (Method::GET, "/v1/audit", web::get().to(audit::list)),
        (Method::GET, "/v1/events", web::get().to(events::list)),
        (
            Method::POST,
            "/v1/events/{id}/redeliver",
            web::post().to(events::redeliver),
        ),
        (
            Method::GET,
            "/v1/reconcile/plan",
            web::get().to(reconcile::plan),
        ),
        (
            Method::POST,
            "/v1/reconcile",
            web::post().to(reconcile::run),
        ),
        (
            Method::GET,
            "/v1/reconcile/runs",
            web::get().to(reconcile::runs),
        ),
        (
            Method::GET,
            "/v1/reconcile/status",
            web::get().to(reconcile::status),
        ),
        (
            Method::GET,
            "/v1/instances/{id}/sync",
            web::get().to(reconcile::sync),
        ),
        (
            Method::GET,
            "/v1/instances/{id}/config",
            web::get().to(applications::config),
        ),
        (
            Method::GET,
            "/v1/applications",
            web::get().to(applications::list),
        ),
        (
            Method::POST,
            "/v1/applications",
            web::post().to(applications::register),
        ),
        (
            Method::DELETE,
            "/v1/applications/{client_id}",
            web::delete().to(applications::remove),
        ),
        (
            Method::POST,
            "/v1/instances/{id}/move",
            web::post().to(applications::move_instance),
        ),
        // The login relay's public routes (docs/relay.md).
        (Method::GET, "/authorize", web::get().to(relay::authorize)),
        (Method::GET, "/callback", web::get().to(relay::callback)),
        (Method::POST, "/oauth/token", web::post().to(relay::token)),
        (
            Method::OPTIONS,
            "/oauth/token",
            web::method(Method::OPTIONS).to(relay::token_preflight),
        ),
        (Method::GET, "/v2/logout", web::get().to(relay::logout)),
        (
            Method::GET,
            "/oidc/logout",
            web::get().to(relay::oidc_logout),
        ),
        (Method::GET, "/logged-out", web::get().to(relay::logged_out)),
    ]
}

/// Routes outside the table: `/metrics`, on the API's address unless it has one of its own.
pub const OTHER_ROUTES: &[(&str, &str)] = &[("GET", "/metrics")];

/// Registers [`route_table`], one resource per path so that a wrong method answers 405, each
/// knowing its pattern (the `endpoint` of its metrics).
pub fn routes(cfg: &mut web::ServiceConfig) {
    let mut by_path: Vec<(&'static str, Vec<Route>)> = Vec::new();
    for (_, path, route) in route_table() {
        match by_path.iter_mut().find(|(p, _)| *p == path) {
            Some((_, routes)) => routes.push(route),
            None => by_path.push((path, vec![route])),
        }
    }
    for (path, routes) in by_path {
        cfg.service(routes.into_iter().fold(
            web::resource(path).app_data(observe::Endpoint(path)),
            actix_web::Resource::route,
        ));
    }
}

/// The application state, borrowed from the request: for the middleware and the hot paths,
/// where the `web::Data` extractor's clone of its `Arc` (an atomic on a counter every worker
/// shares) shows.
pub fn state(req: &HttpRequest) -> Result<&AppState, error::ApiError> {
    req.app_data::<web::Data<AppState>>()
        .map(|data| data.get_ref())
        .ok_or_else(|| error::ApiError::internal(anyhow::anyhow!("application state missing")))
}

/// The request id the middleware gave this request.
pub fn request_id(req: &HttpRequest) -> Option<String> {
    req.extensions()
        .get::<observe::RequestId>()
        .map(|r| r.as_str().to_owned())
}

/// The audit actor for an admin call.
pub fn admin_actor(req: &HttpRequest, admin: &crate::http::caller::Admin) -> Actor {
    Actor::new("admin", &admin.sub, request_id(req))
}
