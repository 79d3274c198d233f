//! What stands in front of the handlers: request counting, fault injection, and for the
//! Management API the rate limit and the bearer-token check (scope by method).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use actix_web::{
    Error, HttpMessage, HttpRequest, ResponseError,
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{
        Method,
        header::{self, HeaderValue},
    },
    middleware::Next,
    web,
};
use jsonwebtoken::{Algorithm, Validation};

use super::{Emu, errors::MgmtError, faults::Fault, ratelimit::Headers};

fn emu(req: &ServiceRequest) -> web::Data<Emu> {
    req.app_data::<web::Data<Emu>>()
        .cloned()
        .expect("emulator state is registered")
}

fn reject<B>(req: ServiceRequest, e: MgmtError) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    Ok(req.into_response(e.error_response()).map_into_right_body())
}

/// Set on a request whose connection is to be cut once its answer has been counted.
#[derive(Clone, Copy)]
struct CutConnection;

/// Shuts the connection down (both ways) without closing it: the caller sees it dropped.
fn cut_connection(req: &HttpRequest) {
    crate::peer::with_socket(req, |fd| {
        let _ = socket2::SockRef::from(&fd).shutdown(std::net::Shutdown::Both);
    });
}

/// Counts answers by `METHOD route status`, for `GET /emulator/stats`.
pub async fn count(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let emu = emu(&req);
    let method = req.method().clone();
    let res = next.call(req).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "(unmatched)".into());
    let key = format!("{method} {route} {}", res.status().as_u16());
    *emu.stats
        .lock()
        .expect("stats lock")
        .entry(key)
        .or_default() += 1;
    // Cut only now: a caller who sees the connection drop and then asks for the counts must
    // find this answer counted.
    if res.request().extensions().contains::<CutConnection>() {
        cut_connection(res.request());
    }
    Ok(res)
}

/// Latency, 5xx, extra 429s and dropped connections, as configured.
pub async fn faults(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let emu = emu(&req);
    let (latency, fault) = {
        let mut faults = emu.faults.write().expect("faults lock");
        let target = format!("{} {}", req.method(), req.path());
        if faults.drop_next.as_deref() == Some(target.as_str()) {
            faults.drop_next = None;
            (None, Fault::Drop)
        } else {
            match emu.fault_rng.lock().expect("fault rng lock").as_mut() {
                Some(seeded) => faults.draw(seeded),
                None => faults.draw(&mut rand::thread_rng()),
            }
        }
    };
    if let Some(delay) = latency {
        tokio::time::sleep(delay).await;
    }
    match fault {
        Fault::ServerError(500) => reject(req, MgmtError::new(500, "Internal Server Error", None)),
        Fault::ServerError(_) => reject(req, MgmtError::new(503, "Service Unavailable", None)),
        Fault::RateLimited => reject(req, MgmtError::too_many_requests()),
        Fault::Drop => {
            let res = next.call(req).await?;
            res.request().extensions_mut().insert(CutConnection);
            Ok(res.map_into_left_body())
        }
        Fault::None => Ok(next.call(req).await?.map_into_left_body()),
    }
}

fn required_scope(method: &Method) -> &'static str {
    match *method {
        Method::GET => "read:clients",
        Method::POST => "create:clients",
        Method::DELETE => "delete:clients",
        _ => "update:clients",
    }
}

/// The rate limit (every answer carries its headers) and the bearer token with its scope.
pub async fn management(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let emu = emu(&req);
    let unix_now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let (allowed, limits) = emu
        .bucket
        .lock()
        .expect("bucket lock")
        .take(Instant::now(), unix_now);
    let verdict = if allowed {
        authorize(&emu, &req)
    } else {
        Err(MgmtError::too_many_requests())
    };
    let mut res = match verdict {
        Err(e) => req.into_response(e.error_response()).map_into_right_body(),
        Ok(()) => next.call(req).await?.map_into_left_body(),
    };
    set_limit_headers(res.headers_mut(), limits);
    Ok(res)
}

fn set_limit_headers(headers: &mut actix_web::http::header::HeaderMap, h: Headers) {
    for (name, value) in [
        ("x-ratelimit-limit", h.limit as u64),
        ("x-ratelimit-remaining", h.remaining as u64),
        ("x-ratelimit-reset", h.reset),
    ] {
        headers.insert(
            header::HeaderName::from_static(name),
            HeaderValue::from(value),
        );
    }
}

#[derive(serde::Deserialize)]
struct MgmtClaims {
    #[serde(default)]
    scope: String,
}

fn authorize(emu: &Emu, req: &ServiceRequest) -> Result<(), MgmtError> {
    let unauthorized = |m: &str| MgmtError::new(401, m, None);
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned())
        .ok_or_else(|| unauthorized("Missing authentication"))?;
    let claims = {
        let tenant = emu.tenant.lock().expect("tenant lock");
        let header =
            jsonwebtoken::decode_header(&token).map_err(|_| unauthorized("Invalid token"))?;
        let key = tenant
            .keys
            .iter()
            .find(|k| header.kid.as_deref() == Some(k.kid.as_str()))
            .ok_or_else(|| unauthorized("Invalid token"))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[tenant.management_audience()]);
        validation.set_issuer(&[tenant.issuer()]);
        validation.leeway = 0;
        jsonwebtoken::decode::<MgmtClaims>(&token, key.decoding(), &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    unauthorized("Expired token received for JSON Web Token validation")
                }
                _ => unauthorized("Invalid token"),
            })?
            .claims
    };
    let needed = required_scope(req.method());
    if claims.scope.split(' ').any(|s| s == needed) {
        Ok(())
    } else {
        Err(MgmtError::new(
            403,
            format!("Insufficient scope, expected any of: {needed}"),
            Some("insufficient_scope"),
        ))
    }
}

pub async fn not_found() -> Result<actix_web::HttpResponse, MgmtError> {
    Err(MgmtError::new(404, "Not Found", None))
}
