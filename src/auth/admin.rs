//! The admin caller: an Auth0 access token for fleetgate's API carrying `fleet:admin`.

use std::{future::Future, pin::Pin};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header, web};

use super::jwt::TokenError;
use crate::http::{AppState, error::ApiError};

pub const ADMIN_PERMISSION: &str = "fleet:admin";
const REALM: &str = "fleetgate";

/// A caller proven to be an administrator. Its `sub` goes to the audit log.
#[derive(Debug, Clone)]
pub struct Admin {
    pub sub: String,
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let state = state
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("application state missing")))?;
            let token = token?;
            let claims = state.tokens.verify(&token).await.map_err(|e| match e {
                TokenError::KeysUnavailable => ApiError::unavailable("the tenant's signing keys cannot be fetched; retry later", None),
                other => ApiError::unauthorized(
                    format!(r#"Bearer realm="{REALM}", error="invalid_token", error_description="{other}""#),
                    other.to_string(),
                ),
            })?;
            if !claims.has_permission(ADMIN_PERMISSION) {
                return Err(ApiError::forbidden(
                    Some(format!(
                        r#"Bearer realm="{REALM}", error="insufficient_scope", scope="{ADMIN_PERMISSION}""#
                    )),
                    format!("this route needs the {ADMIN_PERMISSION} permission"),
                ));
            }
            Ok(Admin { sub: claims.sub })
        })
    }
}

/// The token of an `Authorization: Bearer …` header.
fn bearer_token(req: &HttpRequest) -> Result<String, ApiError> {
    let missing = || {
        ApiError::unauthorized(
            format!(r#"Bearer realm="{REALM}""#),
            "an Authorization: Bearer token is required",
        )
    };
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim().to_owned())
        }
        _ => Err(missing()),
    }
}
