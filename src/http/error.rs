//! One error type for every answer that is not a success, rendered as RFC 9457
//! `application/problem+json` with a stable machine-readable `code`.
//!
//! The policy, in one place (each feature's error becomes an answer here, at the bottom):
//! - 400 (`invalid_query`, …), 415, 422 `invalid`: the request is wrong; `detail` names the
//!   value or field and the rule it broke. Nothing was changed.
//! - 401 (with `WWW-Authenticate`): no credential or a bad one; 403: a known caller that may
//!   not do this.
//! - 404: it does not exist, or the caller may not learn that it does (an instance that is not
//!   theirs reads exactly like none).
//! - 409 with a code naming the state (`instance_deleted`, `grant_exists`, `not_assigned`, …):
//!   the request is sound but the state does not allow it now; 410 `revision_gone`; 429 with
//!   `Retry-After`.
//! - 502 `auth0_error`: Auth0 refused or failed a call made for this request.
//! - 503: transient (the database unreachable, or a concurrent transaction collided); nothing
//!   was changed and the same request may succeed.
//! - 500: anything else. The cause goes to the access log line, never into the body; no secret
//!   is ever part of `detail`.

use actix_web::{
    HttpResponse, ResponseError,
    http::{StatusCode, header},
};

use super::caller::REALM;
use crate::{
    auth::{jwt::TokenError, webhook},
    domain::InstanceUnavailable,
    grants::GrantError,
    keys::KeyError,
    reconcile::ReconcileError,
    registry::RegistryError,
};

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    www_authenticate: Option<String>,
    /// Seconds for `Retry-After` (429).
    retry_after: Option<u64>,
    /// The cause of a 5xx, for the log only.
    source: Option<anyhow::Error>,
}

/// The body of every error answer.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            www_authenticate: None,
            retry_after: None,
            source: None,
        }
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// The request was well-formed but a value broke a rule.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            detail,
        )
    }

    /// No or bad credentials; `challenge` goes to `WWW-Authenticate`.
    pub fn unauthorized(challenge: String, detail: impl Into<String>) -> Self {
        Self {
            www_authenticate: Some(challenge),
            ..Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
        }
    }

    pub fn forbidden(challenge: Option<String>, detail: impl Into<String>) -> Self {
        Self {
            www_authenticate: challenge,
            ..Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
        }
    }

    pub fn not_json() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be application/json",
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn unavailable(detail: impl Into<String>, cause: Option<anyhow::Error>) -> Self {
        Self {
            source: cause,
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                detail,
            )
        }
    }

    pub fn internal(cause: anyhow::Error) -> Self {
        Self {
            source: Some(cause),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "an internal error occurred; it has been logged",
            )
        }
    }

    pub fn with_retry_after(self, secs: u64) -> Self {
        Self {
            retry_after: Some(secs),
            ..self
        }
    }

    pub fn code(&self) -> &'static str {
        self.code
    }

    pub fn problem(status: StatusCode, code: &str, detail: &str) -> Problem {
        Problem {
            kind: format!("urn:fleetgate:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.to_owned(),
            code: code.to_owned(),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        res.content_type(PROBLEM_JSON);
        if let Some(challenge) = &self.www_authenticate {
            res.insert_header((header::WWW_AUTHENTICATE, challenge.as_str()));
        }
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs));
        }
        let mut res = res.json(Self::problem(self.status, self.code, &self.detail));
        // For the access line only (see `observe`).
        if let Some(cause) = &self.source {
            res.extensions_mut().insert(super::observe::Failure {
                code: self.code,
                cause: format!("{cause:#}"),
            });
        }
        res
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            Self::unavailable(
                "the database is unavailable; nothing was changed, retry later",
                Some(e.into()),
            )
        } else if is_collision(&e) {
            Self::unavailable(
                "a concurrent change collided with this one; nothing was changed, retry",
                Some(e.into()),
            )
        } else {
            Self::internal(e.into())
        }
    }
}

/// True when the error means the database cannot be reached right now (answer 503, not 500).
fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            // class 08: connection exception; 57P01..03: shutdown / cannot connect now; 53300: too many connections
            c.starts_with("08") || matches!(c.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

/// True when Postgres aborted the statement because it collided with a concurrent transaction
/// (deadlock, serialization failure): nothing was changed and the same request may succeed.
fn is_collision(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().is_some_and(|c| matches!(c.as_ref(), "40001" | "40P01")))
}

impl From<GrantError> for ApiError {
    fn from(e: GrantError) -> Self {
        let detail = e.to_string();
        match e {
            GrantError::Instance(e) => e.into(),
            GrantError::GrantNotFound { .. } => Self::not_found(detail),
            GrantError::Exists(_) => Self::conflict("grant_exists", detail),
            GrantError::OwnerGrant { .. } => Self::conflict("owner_needs_no_grant", detail),
            GrantError::UnknownRole { .. } | GrantError::Replace(_) => Self::invalid(detail),
            GrantError::SinceAhead { .. } => Self::bad_request("invalid_query", detail),
            GrantError::RevisionGone { .. } => Self::new(StatusCode::GONE, "revision_gone", detail),
            GrantError::Db(e) => e.into(),
            GrantError::Internal(e) => Self::internal(e),
        }
    }
}

impl From<ReconcileError> for ApiError {
    fn from(e: ReconcileError) -> Self {
        use ReconcileError as R;
        let detail = e.to_string();
        match e {
            R::Db(e) => e.into(),
            R::Registry(e) => e.into(),
            R::Instance(e) => e.into(),
            R::Auth0(e) => Self::new(
                StatusCode::BAD_GATEWAY,
                "auth0_error",
                format!("the Management API call failed: {e}"),
            ),
            R::NotAssigned(_) => Self::conflict("not_assigned", detail),
            R::NoSuchApplication(_) | R::TargetNotInPool(_) => Self::invalid(detail),
            R::PrimaryApplication => Self::conflict("primary_application", detail),
            R::PrimaryGone(_) => Self::conflict("primary_application_gone", detail),
            R::ApplicationInUse { .. } => Self::conflict("application_in_use", detail),
            R::NotInPool(_) => Self::not_found(detail),
            R::ReservedApplication(_) => Self::conflict("application_reserved", detail),
            R::ManagedElsewhere { .. } => Self::conflict("application_managed_elsewhere", detail),
        }
    }
}

/// A bearer token refused: 401 with the reason in `WWW-Authenticate`, or 503 while the
/// tenant's signing keys cannot be fetched.
impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::KeysUnavailable => Self::unavailable(
                "the tenant's signing keys cannot be fetched; retry later",
                None,
            ),
            other => Self::unauthorized(
                format!(
                    r#"Bearer realm="{REALM}", error="invalid_token", error_description="{other}""#
                ),
                other.to_string(),
            ),
        }
    }
}

/// A deploy hook whose Standard Webhooks signature (or id, or timestamp) was refused.
impl From<webhook::VerifyError> for ApiError {
    fn from(e: webhook::VerifyError) -> Self {
        Self::unauthorized(
            format!(r#"Webhook-Signature realm="{REALM}""#),
            format!("webhook signature refused: {e}"),
        )
    }
}

impl From<InstanceUnavailable> for ApiError {
    fn from(e: InstanceUnavailable) -> Self {
        let detail = e.to_string();
        match e {
            InstanceUnavailable::NotFound(_) => Self::not_found(detail),
            InstanceUnavailable::Deleted { .. } => Self::conflict("instance_deleted", detail),
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Instance(e) => e.into(),
            KeyError::Db(e) => e.into(),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        use RegistryError as R;
        let detail = e.to_string();
        match e {
            R::Instance(e) => e.into(),
            R::DomainNotFound { .. } => Self::not_found(detail),
            R::AlreadyExists(_) => Self::conflict("instance_exists", detail),
            R::HostTaken { .. } | R::HostTakenConcurrently => Self::conflict("host_taken", detail),
            R::DomainExists { .. } => Self::conflict("domain_exists", detail),
            R::InvalidTransition { .. } => Self::conflict("invalid_transition", detail),
            R::InvalidDomains(_) => Self::invalid(detail),
            R::Db(e) => e.into(),
            R::Corrupt(_) => Self::internal(e.into()),
        }
    }
}

/// Turns a JSON body error into 400 (not JSON) or 422 (JSON, but a value broke a rule).
pub fn json_body_error(e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => ApiError::invalid(format!("invalid request body: {e}")),
        Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        ),
    }
}
