//! Liveness and readiness.

use std::time::Duration;

use actix_web::{HttpResponse, web};

use super::{AppState, answers::Health, error::ApiError};

/// The process is up and serving.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        version: crate::VERSION,
    })
}

/// The process can do its work: the database answers, and the memory of instance keys and
/// grant revisions that polls are served from has been loaded.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !state.grants.loaded() {
        return Err(ApiError::unavailable(
            "instance keys and grant revisions are still being loaded",
            None,
        ));
    }
    let ping = state.registry.ping();
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => Ok(HttpResponse::Ok().json(Health {
            status: "ready",
            version: crate::VERSION,
        })),
        Ok(Err(e)) => Err(ApiError::unavailable(
            "the database is unavailable",
            Some(e.into()),
        )),
        Err(_) => Err(ApiError::unavailable(
            "the database did not answer within 2 s",
            None,
        )),
    }
}
