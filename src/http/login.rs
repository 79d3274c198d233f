//! `POST /v1/login-decisions`: the Auth0 post-login Action asks whether this user may log in
//! to the instance the redirect URI points at (a login), or to a named instance (a
//! refresh-token exchange, whose instance the Action recorded at login).

use actix_web::{HttpRequest, HttpResponse, web};

use super::{AppState, error::ApiError, request_id};
use crate::{
    domain::printable,
    domain::{Email, Hostname, InstanceId, UserId},
    grants::{
        decide::Decision,
        login::{Login, Target},
    },
    http::caller::TheAction,
};

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Body {
    user_id: UserId,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: bool,
    /// A login: the redirect URI's host names the instance.
    #[serde(default)]
    redirect_uri: Option<String>,
    /// A refresh-token exchange: the instance the refresh token was issued at.
    #[serde(default)]
    instance_id: Option<InstanceId>,
    /// The application the login went through; recorded, not decisive (the redirect URI is).
    #[serde(default)]
    client_id: Option<String>,
}

/// `_action` comes before `body`: the caller is judged before the body is read.
pub async fn decide_login(
    state: web::Data<AppState>,
    req: HttpRequest,
    _action: TheAction,
    body: web::Json<Body>,
) -> Result<HttpResponse, ApiError> {
    if state.callers.ui_client_id.is_some() && body.client_id == state.callers.ui_client_id {
        let decision = Decision::operator_console();
        tracing::info!(request_id = super::request_id(&req), user = %body.user_id, reason = decision.reason, "login decision");
        return Ok(HttpResponse::Ok().json(decision));
    }
    let target = match (&body.redirect_uri, &body.instance_id) {
        (Some(uri), None) => Target::Host(redirect_host(uri)?),
        (None, Some(id)) => Target::Instance(id.clone()),
        _ => {
            return Err(ApiError::invalid(
                "give exactly one of redirect_uri (a login: its host names the instance) or instance_id (a refresh-token exchange)",
            ));
        }
    };
    let login = Login {
        user_id: body.user_id.clone(),
        // An email that is not a valid address cannot match an invitation.
        email: body.email.as_deref().and_then(|e| Email::parse(e).ok()),
        email_verified: body.email_verified,
        target,
    };
    let decision = state.grants.decide_login(&login, request_id(&req)).await?;
    let host = match &login.target {
        Target::Host(Some(h)) => h.as_str(),
        _ => "",
    };
    tracing::info!(
        request_id = super::request_id(&req),
        user = %body.user_id,
        client_id = body.client_id.as_deref().unwrap_or(""),
        host,
        instance = body.instance_id.as_ref().map(InstanceId::as_str).unwrap_or(""),
        allow = decision.allow,
        reason = decision.reason,
        "login decision"
    );
    Ok(HttpResponse::Ok().json(decision))
}

/// The host of the redirect URI; None when it is not a name (an IP address), which no instance
/// holds. A value that is not an http(s) URL is a 422.
fn redirect_host(raw: &str) -> Result<Option<Hostname>, ApiError> {
    let shown = || printable(raw);
    let url = url::Url::parse(raw)
        .map_err(|e| ApiError::invalid(format!("redirect_uri '{}' is not a URL ({e})", shown())))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(ApiError::invalid(format!(
            "redirect_uri '{}' must be an http or https URL",
            shown()
        )));
    }
    Ok(match url.host() {
        Some(url::Host::Domain(d)) => Hostname::parse(d).ok(),
        _ => None,
    })
}
