//! Auth0's error bodies: `{statusCode, error, message, errorCode}` for the Management API and
//! `{error, error_description}` for the token endpoint.

use actix_web::{HttpResponse, ResponseError, http::StatusCode};
use serde_json::json;

/// A Management API error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MgmtError {
    pub status: u16,
    pub message: String,
    pub code: Option<&'static str>,
}

impl MgmtError {
    pub fn new(status: u16, message: impl Into<String>, code: Option<&'static str>) -> Self {
        Self {
            status,
            message: message.into(),
            code,
        }
    }

    pub fn invalid_body(message: impl Into<String>) -> Self {
        Self::new(400, message, Some("invalid_body"))
    }

    pub fn inexistent_client() -> Self {
        Self::new(404, "The client does not exist", Some("inexistent_client"))
    }

    pub fn too_many_requests() -> Self {
        Self::new(
            429,
            "Global limit has been reached",
            Some("too_many_requests"),
        )
    }
}

impl std::fmt::Display for MgmtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.message)
    }
}

impl ResponseError for MgmtError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut body = json!({
            "statusCode": status.as_u16(),
            "error": status.canonical_reason().unwrap_or("Error"),
            "message": self.message,
        });
        if let Some(code) = self.code {
            body["errorCode"] = json!(code);
        }
        json_response(status, &body)
    }
}

/// An error of the Authentication API (`/oauth/token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: u16,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(status: u16, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.error, self.description)
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        json_response(
            self.status_code(),
            &json!({ "error": self.error, "error_description": self.description }),
        )
    }
}

/// Auth0 answers `application/json; charset=utf-8`.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json; charset=utf-8")
        .body(body.to_string())
}
