//! `GET /v2/logout` and `GET /oidc/logout`: the session ends, then the browser goes to the
//! `returnTo` (`post_logout_redirect_uri`) URL, which must be on the application's
//! `allowed_logout_urls` (query and fragment ignored); otherwise an error page, and the session
//! stays.

use actix_web::{
    HttpRequest, HttpResponse,
    cookie::{Cookie, time::Duration},
    web,
};
use serde_json::Value;

use super::{
    SESSION_COOKIE,
    authorize::entries,
    pages::{error_page, message},
};
use crate::{Emu, matching::logout_matches};

#[derive(serde::Deserialize)]
pub struct V2Query {
    client_id: Option<String>,
    #[serde(rename = "returnTo")]
    return_to: Option<String>,
}

#[derive(serde::Deserialize)]
pub struct OidcQuery {
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    id_token_hint: Option<String>,
    state: Option<String>,
}

pub async fn v2(emu: web::Data<Emu>, req: HttpRequest, q: web::Query<V2Query>) -> HttpResponse {
    let q = q.into_inner();
    logout(&emu, &req, q.client_id, q.return_to, "returnTo", None)
}

pub async fn oidc(emu: web::Data<Emu>, req: HttpRequest, q: web::Query<OidcQuery>) -> HttpResponse {
    let q = q.into_inner();
    // Without client_id, the application is the ID token's audience.
    let client_id = q.client_id.or_else(|| {
        let hint = q.id_token_hint.as_deref()?;
        let payload = hint.split('.').nth(1)?;
        let bytes =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .ok()?;
        let claims: Value = serde_json::from_slice(&bytes).ok()?;
        claims["aud"].as_str().map(str::to_owned)
    });
    logout(
        &emu,
        &req,
        client_id,
        q.post_logout_redirect_uri,
        "post_logout_redirect_uri",
        q.state,
    )
}

fn logout(
    emu: &Emu,
    req: &HttpRequest,
    client_id: Option<String>,
    return_to: Option<String>,
    parameter: &str,
    state: Option<String>,
) -> HttpResponse {
    if let Some(url) = &return_to {
        let tenant = emu.tenant.lock().expect("tenant lock");
        let allowed = client_id
            .as_deref()
            .and_then(|id| tenant.client(id))
            .is_some_and(|c| entries(c, "allowed_logout_urls").any(|e| logout_matches(e, url)));
        if !allowed {
            return error_page(
                "invalid_request",
                &format!(
                    "The \"{parameter}\" querystring parameter \"{url}\" is not defined as a valid URL in \"Allowed Logout URLs\". To add a new URL, please do it here: Applications > Settings"
                ),
            );
        }
    }
    if let Some(session) = req.cookie(SESSION_COOKIE) {
        emu.login
            .lock()
            .expect("login lock")
            .end_session(session.value());
    }
    let mut gone = Cookie::build(SESSION_COOKIE, "").path("/").finish();
    gone.set_max_age(Duration::ZERO);
    let mut answer = match return_to {
        Some(url) => {
            let location = match state {
                Some(s) => {
                    let sep = if url.contains('?') { '&' } else { '?' };
                    format!(
                        "{url}{sep}{}",
                        serde_urlencoded::to_string([("state", s)]).unwrap_or_default()
                    )
                }
                None => url,
            };
            HttpResponse::Found()
                .insert_header(("location", location))
                .finish()
        }
        None => message("Logged out", "You have been logged out."),
    };
    let _ = answer.add_cookie(&gone);
    answer
}
