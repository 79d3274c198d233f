//! The HTTP API: routes per resource, one error type, request ids.

pub mod audit;
pub mod domains;
pub mod error;
pub mod framework;
pub mod health;
pub mod hooks;
pub mod instances;
pub mod pagination;
pub mod request_id;

use actix_web::{HttpMessage, HttpRequest, web};
use sqlx::PgPool;

use crate::{
    auth::{jwt::TokenVerifier, webhook::WebhookVerifier},
    registry::{Actor, Registry},
};

/// What every handler can reach.
pub struct AppState {
    pub pool: PgPool,
    pub registry: Registry,
    pub tokens: TokenVerifier,
    pub webhooks: WebhookVerifier,
}

/// All routes of the API.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(health::healthz)))
        .service(web::resource("/readyz").route(web::get().to(health::readyz)))
        .service(web::resource("/v1/hooks/deploy").route(web::post().to(hooks::deploy)))
        .service(
            web::resource("/v1/instances")
                .route(web::get().to(instances::list))
                .route(web::post().to(instances::create)),
        )
        .service(
            web::resource("/v1/instances/{id}")
                .route(web::get().to(instances::get))
                .route(web::patch().to(instances::patch))
                .route(web::delete().to(instances::delete)),
        )
        .service(
            web::resource("/v1/instances/{id}/domains")
                .route(web::get().to(domains::list))
                .route(web::post().to(domains::add))
                .route(web::put().to(domains::replace)),
        )
        .service(
            web::resource("/v1/instances/{id}/domains/{hostname}")
                .route(web::delete().to(domains::remove)),
        )
        .service(web::resource("/v1/audit").route(web::get().to(audit::list)));
}

/// The request id the middleware gave this request.
pub fn request_id(req: &HttpRequest) -> Option<String> {
    req.extensions()
        .get::<request_id::RequestId>()
        .map(|r| r.0.clone())
}

/// The audit actor for an admin call.
pub fn admin_actor(req: &HttpRequest, admin: &crate::auth::admin::Admin) -> Actor {
    Actor {
        name: format!("admin:{}", admin.sub),
        request_id: request_id(req),
    }
}
