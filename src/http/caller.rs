//! Who is calling: checked by a middleware before any extractor runs (so a bad credential is
//! a 401 whatever else is wrong with the request), kept in the request as a [`Caller`], then
//! required by the extractors and access checks of each route.
//!
//! A bearer token is one of three things: an instance key (`fgi_…`, looked up in memory), the
//! Auth0 Action's shared secret, or an Auth0 access token (a JWT).

use std::{
    future::{Ready, ready},
    pin::Pin,
    rc::Rc,
    sync::Arc,
};

use actix_web::{
    Error, FromRequest, HttpMessage, HttpRequest, ResponseError,
    dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready},
    http::{
        StatusCode,
        header::{self, HeaderMap},
    },
};
use futures_util::future::Either;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use super::{AppState, error::ApiError};
use crate::{
    auth::jwt::{Claims, TokenError},
    keys::{self, Lookup},
};

/// A caller whose credential checked out.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A person or tool with an Auth0 access token for fleetgate's audience.
    User(Claims),
    /// An instance's own API, by its instance key: the instance's id.
    Instance(Arc<str>),
    /// The Auth0 post-login Action, by the shared secret.
    Action,
}

pub const ADMIN_PERMISSION: &str = "fleet:admin";
pub(super) const REALM: &str = "fleetgate";

/// Identifies the caller of every API request (`/v1/…` but the signed deploy hook) before
/// anything else about the request is looked at, and keeps it in the request: a request
/// without a credential, or with a bad one, is a 401 whatever its body or query. The deploy
/// hook (its signature covers the body) and the operations endpoints do not look at it.
///
/// The instance key found in memory and the Action's secret (every poll, every login
/// decision) are identified right here and the request passed on as it is; everything else
/// (an Auth0 token, a key while the memory is not in step, a refusal) in a future of its own.
pub struct Authenticate;

impl<S> Transform<S, ServiceRequest> for Authenticate
where
    S: Service<ServiceRequest, Response = ServiceResponse, Error = Error> + 'static,
{
    type Response = ServiceResponse;
    type Error = Error;
    type Transform = AuthenticateService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(AuthenticateService {
            service: Rc::new(service),
        }))
    }
}

pub struct AuthenticateService<S> {
    service: Rc<S>,
}

type Answer = Result<ServiceResponse, Error>;

impl<S> Service<ServiceRequest> for AuthenticateService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse, Error = Error> + 'static,
{
    type Response = ServiceResponse;
    type Error = Error;
    type Future = Either<S::Future, Pin<Box<dyn Future<Output = Answer>>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        if is_checked(req.path()) {
            match identify_at_once(&req) {
                Some(caller) => {
                    req.extensions_mut().insert(caller);
                }
                None => return Either::Right(Box::pin(authenticate(self.service.clone(), req))),
            }
        }
        Either::Left(self.service.call(req))
    }
}

/// Whether a path's requests need a credential.
fn is_checked(path: &str) -> bool {
    path.starts_with("/v1/") && !path.starts_with("/v1/hooks/")
}

/// The caller, when the request's credential can be checked without waiting: an instance key
/// the memory knows, the Action's secret.
fn identify_at_once(req: &ServiceRequest) -> Option<Caller> {
    let state = super::state(req.request()).ok()?;
    let token = bearer_token(req.headers()).ok()?;
    if keys::looks_like_key(token) {
        return match state.keys.lookup(token) {
            Lookup::Instance(id) => Some(Caller::Instance(id)),
            Lookup::Unknown | Lookup::NotSynced => None,
        };
    }
    is_action_secret(state, token).then_some(Caller::Action)
}

/// The checked request whose caller [`identify_at_once`] could not tell: identified (an Auth0
/// token, a key looked up in the database) and passed on, or refused.
async fn authenticate<S>(service: Rc<S>, req: ServiceRequest) -> Answer
where
    S: Service<ServiceRequest, Response = ServiceResponse, Error = Error>,
{
    let state = match super::state(req.request()) {
        Ok(state) => state,
        Err(e) => return Ok(req.into_response(e.error_response())),
    };
    let refused = match identify_request(state, req.headers()).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            return service.call(req).await;
        }
        Err(Refusal { error, counted }) => match req.peer_addr() {
            Some(peer) if counted => match state.callers.failures.failed(peer.ip()) {
                Some(wait) => too_many_failures(wait),
                None => error,
            },
            _ => error,
        },
    };
    Ok(req.into_response(refused.error_response()))
}

/// Why a request's credential was refused, and whether the refusal counts as a failed
/// authentication of its address (see [`crate::auth::failures`]).
pub struct Refusal {
    pub error: ApiError,
    /// A guess or a forgery counts; a token the tenant signed that has merely expired (or is
    /// not valid yet) does not: its caller is told so, never held back with a 429.
    counted: bool,
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        let counted = error.status_code() == StatusCode::UNAUTHORIZED;
        Self { error, counted }
    }
}

/// Identifies the caller of a request from its `Authorization` header, however long it takes
/// (an Auth0 token, a key while the memory is not in step). A parked long-poll asks again
/// before it answers, so that a key revoked (or a token expired) meanwhile is not answered.
pub async fn identify_request(state: &AppState, headers: &HeaderMap) -> Result<Caller, Refusal> {
    if !headers.contains_key(header::AUTHORIZATION) {
        return Err(credentials_required().into());
    }
    let token = bearer_token(headers)?;
    if keys::looks_like_key(token) {
        return Ok(Caller::Instance(instance(state, token).await?));
    }
    if is_action_secret(state, token) {
        return Ok(Caller::Action);
    }
    match state.callers.tokens.verify(token).await {
        Ok(claims) => Ok(Caller::User(claims)),
        Err(e @ (TokenError::Expired | TokenError::NotYetValid)) => Err(Refusal {
            error: e.into(),
            counted: false,
        }),
        Err(e) => Err(ApiError::from(e).into()),
    }
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

fn is_action_secret(state: &AppState, token: &str) -> bool {
    state
        .callers
        .action_secret
        .as_ref()
        .is_some_and(|secret| bool::from(token.as_bytes().ct_eq(secret.expose_secret().as_bytes())))
}

/// The instance a key belongs to: from memory, or from the database while the memory is not
/// in step with it.
async fn instance(state: &AppState, key: &str) -> Result<Arc<str>, ApiError> {
    let refused = || {
        ApiError::unauthorized(
            format!(r#"Bearer realm="{REALM}", error="invalid_token""#),
            "the instance key is not valid (unknown, rotated out, or its instance was deleted)",
        )
    };
    state.keys.instance_of(key).await?.ok_or_else(refused)
}

/// The token of an `Authorization: Bearer …` header: visible ASCII after the scheme.
fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let malformed = || {
        ApiError::unauthorized(
            format!(r#"Bearer realm="{REALM}", error="invalid_request""#),
            "the Authorization header must be 'Bearer <token>'",
        )
    };
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(malformed)?
        .as_bytes();
    let (scheme, token) = value
        .iter()
        .position(|b| *b == b' ')
        .map(|at| (&value[..at], value[at + 1..].trim_ascii()))
        .ok_or_else(malformed)?;
    let visible = !token.is_empty() && token.iter().all(u8::is_ascii_graphic);
    match std::str::from_utf8(token) {
        Ok(token) if visible && scheme.eq_ignore_ascii_case(b"bearer") => Ok(token),
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
        let enabled = super::state(req).is_ok_and(|s| s.callers.action_secret.is_some());
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

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn token_of(value: &[u8]) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(value).unwrap(),
        );
        bearer_token(&headers).ok().map(str::to_owned)
    }

    #[test]
    fn a_bearer_token_is_the_visible_ascii_after_the_scheme() {
        assert_eq!(token_of(b"Bearer fgi_abc").as_deref(), Some("fgi_abc"));
        assert_eq!(token_of(b"bEARER   abc.def  ").as_deref(), Some("abc.def"));
        for refused in [
            &b"Basic abc"[..],
            b"Bearer",
            b"Bearer ",
            b"Bearer   ",
            b"Bearer\tabc",
            b"Bearer a b",
            b"Bearer \xc3\xa9",
            b"Bearerabc",
        ] {
            assert_eq!(
                token_of(refused),
                None,
                "{}",
                String::from_utf8_lossy(refused)
            );
        }
        assert!(bearer_token(&HeaderMap::new()).is_err(), "no header");
    }
}
