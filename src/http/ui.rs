//! `/ui/`: the status page operators log in to, its script and the Auth0 SDK it uses, all
//! embedded in the binary (no build step; no network but fleetgate and the tenant), and
//! `/ui/config.json`, what it logs in with. The page calls the admin API with the operator's
//! token, so `fleet:admin` decides what it shows.

use actix_web::{HttpResponse, http::header, web};

use super::{AppState, error::ApiError};

const INDEX: &str = include_str!("../ui/index.html");
const APP: &str = include_str!("../ui/app.js");
const SDK: &str = include_str!("../ui/vendor/auth0-spa-js.production.js");

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

/// The page may load only its own files and talk only to fleetgate and the tenant (the SDK's
/// token requests, and its iframe for silent logins); nobody may frame it.
pub async fn index(state: web::Data<AppState>) -> HttpResponse {
    let tenant = &state.tenant.base_url;
    let mut page = asset("text/html; charset=utf-8", INDEX);
    let policy = format!(
        "default-src 'self'; connect-src 'self' {tenant}; frame-src {tenant}; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
    );
    if let Ok(value) = header::HeaderValue::from_str(&policy) {
        page.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    page
}

/// The page's script and the SDK; any other name is a 404.
pub async fn file(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    match path.as_str() {
        "app.js" => Ok(asset("text/javascript; charset=utf-8", APP)),
        "auth0-spa-js.js" => Ok(asset("text/javascript; charset=utf-8", SDK)),
        other => Err(ApiError::not_found(format!(
            "the status page has no file '{}'",
            crate::domain::printable(other)
        ))),
    }
}

/// What the page logs in with: the tenant, the operators' application
/// (`FLEETGATE_UI_CLIENT_ID`) and fleetgate's audience.
pub async fn config(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let client_id = state.callers.ui_client_id.as_deref().ok_or_else(|| {
        ApiError::conflict(
            "ui_disabled",
            "the status page is not configured: set FLEETGATE_UI_CLIENT_ID to the Auth0 application operators log in with",
        )
    })?;
    Ok(HttpResponse::Ok().json(super::answers::UiConfig {
        domain: &state.tenant.base_url,
        issuer: &state.tenant.issuer,
        client_id,
        audience: &state.tenant.audience,
        roles: state.grants.rules().roles(),
    }))
}
