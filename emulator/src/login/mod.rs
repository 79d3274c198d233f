//! The Authentication API's login side: discovery, `/authorize` with its login page, the
//! user grants of `/oauth/token` (with CORS), `/userinfo`, logout, and the post-login Action
//! run for real. Users are the tenant's (`/emulator/users`); sessions, codes and refresh
//! tokens live in memory (`state`).

pub mod action;
mod authorize;
mod cors;
mod event;
pub mod exchange;
mod logout;
mod oidc;
pub mod pages;
mod social;
pub mod state;

use actix_web::web;

pub use cors::{allow as allow_origin, allows as allows_origin, origin};

/// The session cookie on the emulator's host (Auth0 calls its own `auth0`).
pub const SESSION_COOKIE: &str = "auth0";

/// Registers the login side's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/openid-configuration",
        web::get().to(oidc::discovery),
    )
    .route("/authorize", web::get().to(authorize::authorize))
    .route("/u/login", web::post().to(authorize::login))
    .route("/u/social", web::post().to(social::login))
    .route("/userinfo", web::get().to(oidc::userinfo))
    .route("/v2/logout", web::get().to(logout::v2))
    .route("/oidc/logout", web::get().to(logout::oidc));
}

pub use cors::preflight;
