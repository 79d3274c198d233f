//! Who is calling: checked by a middleware before any extractor runs (so a bad credential is
//! a 401 whatever else is wrong with the request), kept in the request as a [`Caller`], then
//! required by the extractors and access checks of each route.
//!
//! A bearer token is one of three things: an instance key (`fgi_…`, looked up in memory), the
//! Auth0 Action's shared secret, or an Auth0 access token (a JWT).

use std::future::{Ready, ready};

use actix_web::{
    Error, FromRequest, HttpMessage, HttpRequest, ResponseError,
    body::{EitherBody, MessageBody},
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::{
        StatusCode,
        header::{self, HeaderMap},
    },
    middleware::Next,
    web,
};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::{AppState, error::ApiError};
use crate::{
    auth::jwt::{Claims, TokenError},
    keys,
};

/// A caller whose credential checked out.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A person or tool with an Auth0 access token for fleetgate's audience.
    User(Claims),
    /// An instance's own API, by its instance key.
    Instance(String),
    /// The Auth0 post-login Action, by the shared secret.
    Action,
}

pub const ADMIN_PERMISSION: &str = "fleet:admin";
const REALM: &str = "fleetgate";

/// Identifies the caller of every API request (`/v1/…` but the signed deploy hook) before
/// anything else about the request is looked at, and keeps it in the request: a request
/// without a credential, or with a bad one, is a 401 whatever its body or query. The deploy
/// hook (its signature covers the body) and the operations endpoints do not look at it.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let path = req.path();
    let checked = path.starts_with("/v1/") && !path.starts_with("/v1/hooks/");
    if !checked {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    // Borrowed, not cloned: a clone per request is an atomic on a counter every worker shares.
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        let e = ApiError::internal(anyhow::anyhow!("application state missing"));
        return Ok(req.into_response(e.error_response()).map_into_right_body());
    };
    let identified = if req.headers().contains_key(header::AUTHORIZATION) {
        match bearer_token(req.headers()) {
            Err(e) => Err(e),
            Ok(token) => identify(state, SecretString::from(token)).await,
        }
    } else {
        Err(credentials_required())
    };
    let refused = match identified {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            return next
                .call(req)
                .await
                .map(ServiceResponse::map_into_left_body);
        }
        Err(e) => match req.peer_addr() {
            Some(peer) if e.status_code() == StatusCode::UNAUTHORIZED => {
                match state.auth_failures.failed(peer.ip()) {
                    Some(wait) => too_many_failures(wait),
                    None => e,
                }
            }
            _ => e,
        },
    };
    Ok(req
        .into_response(refused.error_response())
        .map_into_right_body())
}

/// The answer to an address that failed to authenticate more often than it may.
fn too_many_failures(wait: std::time::Duration) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_failed_authentications",
        "too many failed authentications from this address; retry after the time in Retry-After",
    )
    .with_retry_after(wait.as_secs().max(1))
}

async fn identify(state: &AppState, token: SecretString) -> Result<Caller, ApiError> {
    let raw = token.expose_secret();
    if keys::looks_like_key(raw) {
        return instance(state, &token).await.map(Caller::Instance);
    }
    if let Some(secret) = &state.action_secret
        && bool::from(raw.as_bytes().ct_eq(secret.expose_secret().as_bytes()))
    {
        return Ok(Caller::Action);
    }
    // Boxed, here and below: the slow paths' futures are large, and every request's future
    // would otherwise carry (and copy) their size.
    Box::pin(state.tokens.verify(raw))
        .await
        .map(Caller::User)
        .map_err(token_error)
}

/// The instance a key belongs to: from memory, or from the database while the memory is not
/// in step with it.
async fn instance(state: &AppState, key: &SecretString) -> Result<String, ApiError> {
    let refused = || {
        ApiError::unauthorized(
            format!(r#"Bearer realm="{REALM}", error="invalid_token""#),
            "the instance key is not valid (unknown, rotated out, or its instance was deleted)",
        )
    };
    keys::instance_of(&state.pool, &state.live.keys, key)
        .await?
        .ok_or_else(refused)
}

fn token_error(e: TokenError) -> ApiError {
    match e {
        TokenError::KeysUnavailable => ApiError::unavailable(
            "the tenant's signing keys cannot be fetched; retry later",
            None,
        ),
        other => ApiError::unauthorized(
            format!(
                r#"Bearer realm="{REALM}", error="invalid_token", error_description="{other}""#
            ),
            other.to_string(),
        ),
    }
}

/// The token of an `Authorization: Bearer …` header.
fn bearer_token(headers: &HeaderMap) -> Result<String, ApiError> {
    let malformed = || {
        ApiError::unauthorized(
            format!(r#"Bearer realm="{REALM}", error="invalid_request""#),
            "the Authorization header must be 'Bearer <token>'",
        )
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(malformed)?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim().to_owned())
        }
        _ => Err(malformed()),
    }
}

/// A caller proven to be an administrator. Its `sub` goes to the audit log.
#[derive(Debug, Clone)]
pub struct Admin {
    pub sub: String,
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.extensions().get::<Caller>() {
            None => Err(credentials_required()),
            Some(Caller::User(claims)) if claims.has_permission(ADMIN_PERMISSION) => Ok(Admin {
                sub: claims.sub.clone(),
            }),
            Some(_) => Err(ApiError::forbidden(
                Some(format!(
                    r#"Bearer realm="{REALM}", error="insufficient_scope", scope="{ADMIN_PERMISSION}""#
                )),
                format!("this route needs an access token with the {ADMIN_PERMISSION} permission"),
            )),
        })
    }
}

/// A caller proven to be the Auth0 post-login Action. Put before a body extractor, it makes a
/// wrong caller's answer a 403 whatever the body.
#[derive(Debug, Clone, Copy)]
pub struct TheAction;

impl FromRequest for TheAction {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let enabled = req
            .app_data::<web::Data<AppState>>()
            .is_some_and(|s| s.action_secret.is_some());
        ready(match req.extensions().get::<Caller>() {
            None => Err(credentials_required()),
            _ if !enabled => Err(ApiError::conflict(
                "login_decisions_disabled",
                "login decisions are not configured: set FLEETGATE_ACTION_SECRET",
            )),
            Some(Caller::Action) => Ok(TheAction),
            Some(_) => Err(ApiError::forbidden(
                None,
                "login decisions are for the Auth0 Action (bearer FLEETGATE_ACTION_SECRET)",
            )),
        })
    }
}

/// The 401 for a request that carries no credential where one is needed.
pub fn credentials_required() -> ApiError {
    ApiError::unauthorized(
        format!(r#"Bearer realm="{REALM}""#),
        "an Authorization: Bearer token is required",
    )
}

/// The caller the middleware identified, if any.
pub fn caller(req: &HttpRequest) -> Option<Caller> {
    req.extensions().get::<Caller>().cloned()
}
