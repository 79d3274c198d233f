//! The emulator serves this machine only. It listens on loopback, but a web page a developer
//! visits can still reach it: through DNS rebinding (a name of the page's own that resolves to
//! 127.0.0.1, so the browser sends `Host: attacker.example`), or by a cross-site request
//! (`<form>` or `fetch` with a body that needs no preflight). So every request must name a
//! loopback host, and the control routes (`/emulator/…`: the seeded secrets, tokens for any
//! user) also refuse a foreign `Origin` and any body that is not JSON (which a cross-site page
//! cannot send without a preflight the emulator never grants them).

use actix_web::{
    Error, HttpResponse,
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{Method, StatusCode, header},
    middleware::Next,
};
use url::Url;

use super::errors::json_response;

/// Whether `host` (a `Host` header's name, without its port) is this machine: `localhost`, a
/// name under `.localhost` (RFC 6761: browsers resolve them to loopback themselves), or a
/// loopback address.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// The name of a `Host` header value (`name[:port]`, `[v6]:port`).
fn host_name(value: &str) -> &str {
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    value.rsplit_once(':').map_or(value, |(name, _)| name)
}

/// Whether a browser's `Origin` is a page of this machine.
pub fn is_loopback_origin(origin: &str) -> bool {
    Url::parse(origin).is_ok_and(|url| {
        matches!(url.scheme(), "http" | "https") && url.host_str().is_some_and(is_loopback_host)
    })
}

/// What a request to the emulator must be to be served; the refusal otherwise.
fn refusal(req: &ServiceRequest) -> Option<HttpResponse> {
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if !host.is_some_and(|h| is_loopback_host(host_name(h))) {
        return Some(refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "the emulator answers only requests for this machine (Host: localhost or a loopback address)",
        ));
    }
    if !req.path().starts_with("/emulator/") {
        return None;
    }
    let origin = headers
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or(""));
    if origin.is_some_and(|o| !is_loopback_origin(o)) {
        return Some(refuse(
            StatusCode::FORBIDDEN,
            "the emulator's control routes refuse requests from web pages of other sites",
        ));
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.split(';').next())
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/json"));
    let with_body = matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH);
    if with_body && !json {
        return Some(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the emulator's control routes take application/json bodies only",
        ));
    }
    None
}

fn refuse(status: StatusCode, message: &str) -> HttpResponse {
    json_response(
        status,
        &serde_json::json!({
            "statusCode": status.as_u16(),
            "error": status.canonical_reason().unwrap_or("Error"),
            "message": message,
        }),
    )
}

/// The middleware: [`refusal`], before anything else (counting included) sees the request.
pub async fn only_this_machine(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, Error> {
    if let Some(refused) = refusal(&req) {
        return Ok(req.into_response(refused).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_of_this_machine_are_local() {
        for local in [
            "localhost",
            "LOCALHOST.",
            "acme.apps.localhost",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(local), "{local}");
        }
        for foreign in [
            "attacker.example",
            "localhost.attacker.example",
            "127.0.0.1.nip.io",
            "10.0.0.1",
            "0.0.0.0",
            "",
        ] {
            assert!(!is_loopback_host(foreign), "{foreign}");
        }
        assert_eq!(host_name("127.0.0.1:4010"), "127.0.0.1");
        assert_eq!(host_name("[::1]:4010"), "::1");
        assert_eq!(host_name("localhost"), "localhost");
        assert!(is_loopback_origin("http://acme.apps.localhost:5080"));
        assert!(!is_loopback_origin("https://attacker.example"));
        assert!(!is_loopback_origin("null"));
    }
}
