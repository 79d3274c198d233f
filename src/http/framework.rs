//! actix-web's own errors (bad JSON, wrong content type, body too large, bad query, unknown
//! route, wrong method) answered with the same problem+json envelope as ours.

use actix_web::{
    HttpRequest, HttpResponse,
    body::BoxBody,
    dev::ServiceResponse,
    error::{JsonPayloadError, QueryPayloadError},
    http::header,
    web,
};

use super::error::{ApiError, PROBLEM_JSON, json_body_error};

/// Largest JSON body accepted by admin routes.
pub const JSON_LIMIT: usize = 64 * 1024;
/// Largest raw body accepted by the deploy hook.
pub const HOOK_BODY_LIMIT: usize = 256 * 1024;

pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(JSON_LIMIT)
        .error_handler(|err, _req| {
            match &err {
                JsonPayloadError::ContentType => ApiError::not_json(),
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => too_large(JSON_LIMIT),
                JsonPayloadError::Deserialize(e) => json_body_error(e),
                _ => {
                    ApiError::bad_request("invalid_body", format!("the body cannot be read: {err}"))
                }
            }
            .into()
        })
}

pub fn payload_config() -> web::PayloadConfig {
    web::PayloadConfig::default().limit(HOOK_BODY_LIMIT)
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let detail = match &err {
            QueryPayloadError::Deserialize(e) => format!("invalid query string: {e}"),
            _ => format!("invalid query string: {err}"),
        };
        ApiError::bad_request("invalid_query", detail).into()
    })
}

/// Whether the request says its body is JSON.
pub fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// A JSON body of at most `limit` bytes, for the routes allowed more than [`JSON_LIMIT`];
/// refused exactly as the `Json` extractor refuses (415, 413, 400, 422).
pub async fn json_up_to<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<T, ApiError> {
    if !is_json(req) {
        return Err(ApiError::not_json());
    }
    let body = payload
        .to_bytes_limited(limit)
        .await
        .map_err(|_| too_large(limit))?
        .map_err(|e| {
            ApiError::bad_request("invalid_body", format!("the body cannot be read: {e}"))
        })?;
    serde_json::from_slice(&body).map_err(|e| json_body_error(&e))
}

pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body is larger than {limit} bytes"),
    )
}

/// The answer for a path no route matches.
pub async fn no_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.path()
    )))
}

/// Marks an answer that speaks another protocol than the API's (the login relay's HTML pages
/// and OAuth errors): [`as_problem`] leaves it as it is.
#[derive(Clone, Copy)]
pub struct NotAProblem;

/// Rewrites an error answer (4xx, 5xx) that is not problem+json already (405 from a resource,
/// 413 from the payload reader, …) into one, keeping its status and headers such as `Allow`.
/// Every answer goes through it (see `observe::middleware`).
pub fn as_problem(res: ServiceResponse) -> ServiceResponse {
    if res.response().extensions().get::<NotAProblem>().is_some() {
        return res;
    }
    let status = res.status();
    let is_problem = || {
        res.headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with(PROBLEM_JSON))
    };
    if !(status.is_client_error() || status.is_server_error()) || is_problem() {
        return res;
    }
    let (code, detail) = match status.as_u16() {
        404 => (
            "not_found",
            format!(
                "no route for {} {}",
                res.request().method(),
                res.request().path()
            ),
        ),
        405 => (
            "method_not_allowed",
            format!(
                "{} is not allowed on {}",
                res.request().method(),
                res.request().path()
            ),
        ),
        413 => ("payload_too_large", "the body is too large".to_owned()),
        415 => (
            "unsupported_media_type",
            "unsupported content type".to_owned(),
        ),
        s if s >= 500 => (
            "internal_error",
            "an internal error occurred; it has been logged".to_owned(),
        ),
        _ => (
            "bad_request",
            status
                .canonical_reason()
                .unwrap_or("bad request")
                .to_owned(),
        ),
    };
    let body = serde_json::to_string(&ApiError::problem(status, code, &detail))
        .expect("a problem serialises");
    res.map_body(|head, _| {
        head.headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(PROBLEM_JSON),
        );
        BoxBody::new(body)
    })
}
