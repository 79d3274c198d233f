//! Auth0's error bodies: `{statusCode, error, message, errorCode}` for the Management API and
//! `{error, error_description}` for the token endpoint.

use actix_web::{HttpResponse, http::StatusCode};
use serde_json::json;

pub fn management(status: u16, message: &str, error_code: Option<&str>) -> HttpResponse {
    let status = StatusCode::from_u16(status).expect("a valid status");
    let mut body = json!({
        "statusCode": status.as_u16(),
        "error": status.canonical_reason().unwrap_or("Error"),
        "message": message,
    });
    if let Some(code) = error_code {
        body["errorCode"] = json!(code);
    }
    json_response(status, &body)
}

pub fn oauth(status: u16, error: &str, description: &str) -> HttpResponse {
    let status = StatusCode::from_u16(status).expect("a valid status");
    json_response(
        status,
        &json!({ "error": error, "error_description": description }),
    )
}

/// Auth0 answers `application/json; charset=utf-8`.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json; charset=utf-8")
        .body(body.to_string())
}

pub fn invalid_body(message: &str) -> HttpResponse {
    management(400, message, Some("invalid_body"))
}

pub fn inexistent_client() -> HttpResponse {
    management(404, "The client does not exist", Some("inexistent_client"))
}

pub fn too_many_requests() -> HttpResponse {
    management(
        429,
        "Global limit has been reached",
        Some("too_many_requests"),
    )
}
