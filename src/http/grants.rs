//! `/v1/instances/{id}/grants` and `/v1/users/{user_id}/grants`: managing grants, and the
//! polling instances do (snapshot with ETag, `since` deltas, `wait` long-polls).

use std::time::Duration;

use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};
use uuid::Uuid;

use super::{
    AppState,
    access::{self, Want},
    answers::UserGrants,
    error::ApiError,
    instances::path_id,
};
use crate::{
    domain::printable,
    domain::{Email, InstanceId, UserId},
    grants::{Poll, PollAnswer, PollError, Subject, replace::Wanted},
    http::caller::{ADMIN_PERMISSION, Caller, caller, credentials_required, identify_request},
};

/// The longest a poll may wait for a change.
pub const MAX_WAIT_SECS: u32 = 60;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollQuery {
    since: Option<i64>,
    wait: Option<u32>,
}

/// The snapshot (`{revision, owner, grants}`), or with `since` the changes after that
/// revision; 304 when the caller already has the current revision (`If-None-Match` or
/// `since`), after waiting up to `wait` seconds for it to move.
///
/// The hot path: the state is borrowed from the request and the id read in place (the
/// `web::Data` and `web::Path` extractors clone an `Arc` every worker shares, and a `String`).
pub async fn list(req: HttpRequest, q: web::Query<PollQuery>) -> Result<HttpResponse, ApiError> {
    let state = super::state(&req)?;
    let id = path_id(req.match_info().get("id").unwrap_or_default())?;
    let access = access::instance(state, &req, &id, Want::Read).await?;
    let wait = match q.wait {
        None => 0,
        Some(n) if n <= MAX_WAIT_SECS => n,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("wait must be a number of seconds from 0 to {MAX_WAIT_SECS}"),
            ));
        }
    };
    if q.since.is_some_and(|s| s < 0) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "since must be a revision (0 or more)",
        ));
    }
    let known = q.since.or_else(|| if_none_match(&req));
    let poll = Poll {
        instance: &id,
        since: q.since,
        known,
        wait: Duration::from_secs(wait.into()),
        caller: &|| access.caller_key(),
    };
    // Asked again after a wait: a key revoked (a token expired, a grant removed) while the
    // poll waited gets its refusal, not the next change.
    let still_allowed = || async {
        let again = identify_request(state, req.headers())
            .await
            .map_err(|refused| refused.error)?;
        access::of(state, Some(again), &id, Want::Read)
            .await
            .map(drop)
    };
    let answer = state
        .grants
        .poll(poll, super::peer::gone(&req), still_allowed)
        .await;
    match answer {
        Ok(PollAnswer::Changed { revision, body }) => Ok(HttpResponse::Ok()
            .insert_header((header::ETAG, etag(revision)))
            .insert_header((header::CACHE_CONTROL, "private, no-cache"))
            .content_type("application/json")
            .body(body)),
        Ok(PollAnswer::Unchanged(revision)) => Ok(not_modified(revision)),
        Err(PollError::TooManyParked(max)) => Err(too_many_polls(max)),
        Err(PollError::Grant(e)) => Err(e.into()),
        Err(PollError::Refused(e)) => Err(e),
    }
}

fn too_many_polls(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_polls",
        format!(
            "at most {max} long-polls of one caller may wait at once (FLEETGATE_MAX_PARKED_POLLS_PER_CALLER); poll again when one is answered"
        ),
    )
    .with_retry_after(1)
}

/// `"7"`, made without the formatting machinery: every poll's answer carries one.
fn etag(revision: i64) -> header::HeaderValue {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(revision).as_bytes();
    let mut tag = [b'"'; 22];
    tag[1..=digits.len()].copy_from_slice(digits);
    header::HeaderValue::from_bytes(&tag[..digits.len() + 2]).expect("digits and quotes")
}

fn not_modified(revision: i64) -> HttpResponse {
    HttpResponse::NotModified()
        .insert_header((header::ETAG, etag(revision)))
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .finish()
}

/// The revision named by `If-None-Match` (`"7"` or `W/"7"`; the first of a list).
fn if_none_match(req: &HttpRequest) -> Option<i64> {
    let value = req.headers().get(header::IF_NONE_MATCH)?.to_str().ok()?;
    value.split(',').find_map(|tag| {
        let tag = tag.trim();
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        tag.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
    })
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    user_id: Option<UserId>,
    email: Option<Email>,
    role: Option<String>,
}

pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let access = access::instance(&state, &req, &id, Want::Manage).await?;
    let body = body.into_inner();
    let subject = match (body.user_id, body.email) {
        (Some(u), None) => Subject::User(u),
        (None, Some(e)) => Subject::Email(e),
        _ => {
            return Err(ApiError::invalid(
                "give exactly one of user_id (an Auth0 user id) or email (an invitation)",
            ));
        }
    };
    let role = body
        .role
        .unwrap_or_else(|| state.grants.rules().default_role().to_owned());
    let grant = state
        .grants
        .add(&access.actor(&req), &id, &subject, &role)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/v1/instances/{id}/grants/{}", grant.id),
        ))
        .json(grant))
}

/// The most grants one `PUT` may name, and its largest body.
pub const MAX_GRANTS_PER_PUT: usize = 50_000;
pub const PUT_BODY_LIMIT: usize = 8 * 1024 * 1024;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceBody {
    grants: Vec<Entry>,
}

/// One grant of a `PUT`: as a `POST`'s body, checked with its place in the list.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    user_id: Option<String>,
    email: Option<String>,
    role: Option<String>,
}

impl Entry {
    fn wanted(self, i: usize, grants: &crate::grants::Grants) -> Result<Wanted, ApiError> {
        let at = |e: &dyn std::fmt::Display| ApiError::invalid(format!("grants[{i}]: {e}"));
        let subject = match (self.user_id, self.email) {
            (Some(u), None) => Subject::User(UserId::parse(&u).map_err(|e| at(&e))?),
            (None, Some(e)) => Subject::Email(Email::parse(&e).map_err(|e| at(&e))?),
            _ => {
                return Err(at(
                    &"give exactly one of user_id (an Auth0 user id) or email (an invitation)",
                ));
            }
        };
        let role = self
            .role
            .unwrap_or_else(|| grants.default_role().to_owned());
        grants.check_role(&role).map_err(|e| at(&e))?;
        Ok(Wanted { subject, role })
    }
}

/// Replaces the instance's grants with the set in the body (all or nothing): one revision,
/// one audit entry; answers what changed.
pub async fn replace(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&path)?;
    let access = access::instance(&state, &req, &id, Want::Manage).await?;
    let body: ReplaceBody = super::framework::json_up_to(&req, payload, PUT_BODY_LIMIT).await?;
    if body.grants.len() > MAX_GRANTS_PER_PUT {
        return Err(ApiError::invalid(format!(
            "grants names {} grants; one PUT may name at most {MAX_GRANTS_PER_PUT}",
            body.grants.len()
        )));
    }
    let wanted = body
        .grants
        .into_iter()
        .enumerate()
        .map(|(i, e)| e.wanted(i, state.grants.rules()))
        .collect::<Result<Vec<_>, _>>()?;
    let done = state
        .grants
        .replace(&access.actor(&req), &id, &wanted)
        .await?;
    Ok(HttpResponse::Ok().json(done))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    role: String,
}

pub async fn patch(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Json<PatchBody>,
) -> Result<HttpResponse, ApiError> {
    let (id, grant_id) = grant_path(&path)?;
    let access = access::instance(&state, &req, &id, Want::Manage).await?;
    let grant = state
        .grants
        .set_role(&access.actor(&req), &id, grant_id, &body.role)
        .await?;
    Ok(HttpResponse::Ok().json(grant))
}

pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, grant_id) = grant_path(&path)?;
    let access = access::instance(&state, &req, &id, Want::Manage).await?;
    state
        .grants
        .remove(&access.actor(&req), &id, grant_id)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

fn grant_path(path: &(String, String)) -> Result<(InstanceId, Uuid), ApiError> {
    let id = path_id(&path.0)?;
    let grant = Uuid::parse_str(&path.1).map_err(|_| {
        ApiError::not_found(format!(
            "'{}' is not a grant id (a UUID), so no such grant exists",
            printable(&path.1)
        ))
    })?;
    Ok((id, grant))
}

/// The instances a user owns or holds a grant on: for admins, and for that user.
pub async fn of_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user = UserId::parse(&path).map_err(|e| ApiError::not_found(e.to_string()))?;
    match caller(&req) {
        None => return Err(credentials_required()),
        Some(Caller::User(c)) if c.has_permission(ADMIN_PERMISSION) || c.sub == user.as_str() => {}
        Some(_) => {
            return Err(ApiError::forbidden(
                None,
                "a user's grants are shown to admins and to that user only",
            ));
        }
    }
    let items = state.grants.of_user(&user).await?;
    Ok(HttpResponse::Ok().json(UserGrants {
        user_id: &user,
        items,
    }))
}
