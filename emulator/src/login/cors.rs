//! CORS for the endpoints a SPA calls from its own origin (`/oauth/token`): an origin is
//! allowed when it is the origin of one of the application's `callbacks` or matches one of its
//! `allowed_origins`. A preflight, which names no application, is allowed when some
//! application allows the origin.

use super::authorize::entries;
use crate::{
    Emu,
    clients::Client,
    matching::{origin_matches, origin_of},
};
use actix_web::{HttpRequest, HttpResponse, http::header, web};

/// The browser origin of a request, if it is a cross-origin one.
pub fn origin(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Whether `client` lets `origin` call the Authentication API from a browser.
pub fn allows(client: &Client, origin: &str) -> bool {
    entries(client, "callbacks").any(|c| origin_of(c).as_deref() == Some(origin))
        || entries(client, "allowed_origins").any(|e| origin_matches(e, origin))
}

/// Adds the headers that let the browser read an answer for an allowed origin.
pub fn allow(answer: &mut HttpResponse, origin: &str) {
    let headers = answer.headers_mut();
    if let Ok(v) = header::HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    headers.insert(header::VARY, header::HeaderValue::from_static("Origin"));
}

/// `OPTIONS /oauth/token`.
pub async fn preflight(emu: web::Data<Emu>, req: HttpRequest) -> HttpResponse {
    let Some(origin) = origin(&req) else {
        return HttpResponse::NoContent().finish();
    };
    let allowed = emu
        .tenant
        .lock()
        .expect("tenant lock")
        .clients
        .iter()
        .any(|c| allows(c, &origin));
    if !allowed {
        return HttpResponse::Forbidden().finish();
    }
    let mut answer = HttpResponse::NoContent()
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "POST, OPTIONS"))
        .insert_header((
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "content-type, auth0-client",
        ))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
        .finish();
    allow(&mut answer, &origin);
    answer
}
