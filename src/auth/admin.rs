//! Bearer tokens: checked by a middleware before any extractor runs (so a bad token is a 401
//! whatever else is wrong with the request), then required by the extractors of each route.

use std::future::{Ready, ready};

use actix_web::{
    Error, FromRequest, HttpMessage, HttpRequest, ResponseError,
    body::{EitherBody, MessageBody},
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::header::{self, HeaderMap},
    middleware::Next,
    web,
};

use super::jwt::{Claims, TokenError};
use crate::http::{AppState, error::ApiError};

pub const ADMIN_PERMISSION: &str = "fleet:admin";
const REALM: &str = "fleetgate";

/// Verifies the bearer token of API requests that carry one and keeps its claims in the
/// request. The deploy hook (signed) and the operations endpoints do not look at it.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let path = req.path();
    let checked = path.starts_with("/v1/") && !path.starts_with("/v1/hooks/");
    if !checked || !req.headers().contains_key(header::AUTHORIZATION) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let verified = match (
        bearer_token(req.headers()),
        req.app_data::<web::Data<AppState>>().cloned(),
    ) {
        (Err(e), _) => Err(e),
        (Ok(_), None) => Err(ApiError::internal(anyhow::anyhow!(
            "application state missing"
        ))),
        (Ok(token), Some(state)) => state.tokens.verify(&token).await.map_err(token_error),
    };
    match verified {
        Ok(claims) => {
            req.extensions_mut().insert(claims);
            next.call(req)
                .await
                .map(ServiceResponse::map_into_left_body)
        }
        Err(e) => Ok(req.into_response(e.error_response()).map_into_right_body()),
    }
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
        ready(match req.extensions().get::<Claims>() {
            None => Err(ApiError::unauthorized(
                format!(r#"Bearer realm="{REALM}""#),
                "an Authorization: Bearer token is required",
            )),
            Some(claims) if !claims.has_permission(ADMIN_PERMISSION) => Err(ApiError::forbidden(
                Some(format!(
                    r#"Bearer realm="{REALM}", error="insufficient_scope", scope="{ADMIN_PERMISSION}""#
                )),
                format!("this route needs the {ADMIN_PERMISSION} permission"),
            )),
            Some(claims) => Ok(Admin {
                sub: claims.sub.clone(),
            }),
        })
    }
}
