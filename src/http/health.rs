//! Liveness and readiness.

use std::time::Duration;

use actix_web::{HttpResponse, web};

use super::{AppState, error::ApiError};

/// The process is up and serving.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// The process can do its work: the database answers.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let ping = sqlx::query("SELECT 1").execute(&state.pool);
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready" }))),
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
