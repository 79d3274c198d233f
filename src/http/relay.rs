//! The login relay's routes, beside `/v1/` on the same listener (the platform's proxy sends
//! the relay's public origin here): `/authorize`, `/callback`, `/oauth/token`, `/v2/logout`,
//! `/oidc/logout` and `/logged-out`. Browser steps answer redirects or HTML pages; the token
//! endpoint answers OAuth's JSON. Nothing here is cached, and no page leaks its address.

use std::net::IpAddr;

use actix_web::{
    HttpRequest, HttpResponse,
    http::{StatusCode, header},
    web,
};

use super::{AppState, error::ApiError};
use crate::relay::{
    Relay, RelayError,
    respond::{ToBrowser, error_page},
    token::{TokenAnswer, read_body},
};

fn relay(state: &AppState) -> Result<&Relay, ApiError> {
    state.relay.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "relay_off",
            "the login relay is off: FLEETGATE_LOGIN_MODE is direct",
        )
    })
}

/// Headers every relay answer carries; it is the relay's protocol, not problem+json.
fn private(mut res: HttpResponse) -> HttpResponse {
    res.extensions_mut().insert(super::framework::NotAProblem);
    let headers = res.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    res
}

/// A browser answer: a redirect, a page whose only script is its own (framable only by the
/// origin it posts to, and posting forms only there), or an error page.
fn browser(answer: ToBrowser) -> HttpResponse {
    let (res, policy) = match answer {
        ToBrowser::Redirect(to) => (
            HttpResponse::Found()
                .insert_header((header::LOCATION, to))
                .finish(),
            None,
        ),
        ToBrowser::Page {
            html,
            nonce,
            origin,
        } => (
            HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .body(html),
            Some(format!(
                "default-src 'none'; script-src 'nonce-{nonce}'; form-action {origin}; frame-ancestors {origin}; base-uri 'none'"
            )),
        ),
        ToBrowser::Error { title, message } => (
            HttpResponse::BadRequest()
                .content_type("text/html; charset=utf-8")
                .body(error_page(&title, &message)),
            Some("default-src 'none'; frame-ancestors 'none'; base-uri 'none'".to_owned()),
        ),
    };
    let mut res = private(res);
    if let Some(value) = policy.and_then(|p| header::HeaderValue::from_str(&p).ok()) {
        res.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    res
}

/// The outcome of a browser step, counted and answered; a fault is a 500 page.
fn step(relay: &Relay, step: &str, answer: Result<ToBrowser, RelayError>) -> HttpResponse {
    let outcome = match &answer {
        Ok(ToBrowser::Error { .. }) => "refused",
        Ok(_) => "ok",
        Err(_) => "error",
    };
    relay.count(step, outcome);
    match answer {
        Ok(answer) => browser(answer),
        Err(e) => {
            tracing::error!(step, error = %e, "relay step failed");
            let mut res = browser(ToBrowser::Error {
                title: "Sign-in is temporarily unavailable".into(),
                message: "Please try again in a moment.".into(),
            });
            *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            res
        }
    }
}

pub async fn authorize(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let relay = relay(&state)?;
    let answer = relay.begin(req.query_string().as_bytes()).await;
    Ok(step(relay, "authorize", answer))
}

pub async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let relay = relay(&state)?;
    let answer = relay.come_back(req.query_string().as_bytes()).await;
    Ok(step(relay, "callback", answer))
}

pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let relay = relay(&state)?;
    let answer = relay.logout(req.query_string().as_bytes(), false).await;
    Ok(step(relay, "logout", answer))
}

pub async fn oidc_logout(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let relay = relay(&state)?;
    let answer = relay.logout(req.query_string().as_bytes(), true).await;
    Ok(step(relay, "logout", answer))
}

pub async fn logged_out(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let relay = relay(&state)?;
    let answer = relay.logged_out(req.query_string().as_bytes()).await;
    Ok(step(relay, "logged_out", answer))
}

fn origin_of(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
}

/// The browser's address: the header the platform's proxy sets (`header`), else the
/// connection's.
fn browser_ip(header: Option<&str>, req: &HttpRequest) -> Option<IpAddr> {
    match header {
        Some(name) => req
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok()),
        None => req.peer_addr().map(|a| a.ip()),
    }
}

/// CORS headers for `origin` when it is an active instance's.
async fn cors(relay: &Relay, req: &HttpRequest, mut res: HttpResponse) -> HttpResponse {
    let allowed = match origin_of(req) {
        Some(origin) => relay.cors_origin(origin).await.ok().flatten(),
        None => None,
    };
    if let Some(value) = allowed.and_then(|o| header::HeaderValue::from_str(&o).ok()) {
        let headers = res.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(header::VARY, header::HeaderValue::from_static("Origin"));
    }
    res
}

/// `POST /oauth/token`.
pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let relay = relay(&state)?;
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let answer = match read_body(&body, json) {
        Err(why) => Ok(TokenAnswer {
            status: 400,
            body: serde_json::json!({"error": "invalid_request", "error_description": why}),
            step: "other",
        }),
        Ok(pairs) => {
            relay
                .token(
                    &pairs,
                    origin_of(&req),
                    browser_ip(relay.settings().client_ip_header.as_deref(), &req),
                )
                .await
        }
    };
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "relay token step failed");
            TokenAnswer {
                status: 500,
                body: serde_json::json!({"error": "server_error", "error_description": "the relay could not finish this exchange; try again"}),
                step: "other",
            }
        }
    };
    let outcome = match answer.status {
        200 => "ok",
        400..=499 => "refused",
        _ => "error",
    };
    relay.count(&format!("token_{}", answer.step), outcome);
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let res = private(HttpResponse::build(status).json(answer.body));
    Ok(cors(relay, &req, res).await)
}

/// `OPTIONS /oauth/token`: the preflight of an SPA's token request, for instances' origins only.
pub async fn token_preflight(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let relay = relay(&state)?;
    let mut res = HttpResponse::NoContent().finish();
    let headers = res.headers_mut();
    for (name, value) in [
        (header::ACCESS_CONTROL_ALLOW_METHODS, "POST"),
        (
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            "content-type, auth0-client",
        ),
        (header::ACCESS_CONTROL_MAX_AGE, "600"),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    Ok(cors(relay, &req, res).await)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_browsers_address_is_the_proxys_header_when_one_is_set_else_the_connections() {
        let req = TestRequest::default()
            .peer_addr("10.0.0.2:5000".parse().unwrap())
            .insert_header(("x-real-ip", " 203.0.113.9 "))
            .to_http_request();
        let ip = |header| browser_ip(header, &req).map(|ip| ip.to_string());
        assert_eq!(ip(Some("x-real-ip")).as_deref(), Some("203.0.113.9"));
        assert_eq!(
            ip(None).as_deref(),
            Some("10.0.0.2"),
            "the header means nothing unset"
        );
        assert_eq!(
            ip(Some("x-other")),
            None,
            "set, but not sent: no address rather than the proxy's"
        );
    }
}
