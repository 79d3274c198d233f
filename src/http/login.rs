//! `POST /v1/login-decisions`: the Auth0 post-login Action asks whether this user may log in
//! to the instance the redirect URI points at (a login), or to a named instance (a
//! refresh-token exchange, whose instance the Action recorded at login).

use actix_web::{HttpRequest, HttpResponse, web};

use super::{AppState, error::ApiError, request_id};
use crate::{
    db,
    domain::Actor,
    domain::printable,
    domain::{Hostname, InstanceId, UserId},
    grants::decide::{Decision, LoginFacts, decide},
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
    if state.ui_client_id.is_some() && body.client_id == state.ui_client_id {
        let decision = Decision::operator_console();
        tracing::info!(request_id = super::request_id(&req), user = %body.user_id, reason = decision.reason, "login decision");
        return Ok(HttpResponse::Ok().json(decision));
    }
    let (host, named) = match (&body.redirect_uri, &body.instance_id) {
        (Some(uri), None) => (redirect_host(uri)?, None),
        (None, Some(id)) => (None, Some(id.as_str().to_owned())),
        _ => {
            return Err(ApiError::invalid(
                "give exactly one of redirect_uri (a login: its host names the instance) or instance_id (a refresh-token exchange)",
            ));
        }
    };
    // An email that is not a valid address cannot match an invitation.
    let email = body
        .email
        .as_deref()
        .and_then(|e| crate::domain::Email::parse(e).ok());

    // One read, no transaction; only binding an invitation writes (and re-checks under the
    // instance's lock).
    let mut conn = state.pool.acquire().await?;
    let row = match (&host, &named) {
        (None, None) => None,
        _ => {
            db::logins::facts(
                &mut conn,
                named.as_deref(),
                host.as_ref().map(Hostname::as_str),
                body.user_id.as_str(),
                email.as_ref().map(crate::domain::Email::as_str),
            )
            .await?
        }
    };
    let facts = match row {
        None => None,
        Some(row) => Some((
            LoginFacts {
                instance_id: row.instance_id,
                status: row
                    .status
                    .parse()
                    .map_err(|e: crate::domain::ParseError| ApiError::internal(e.into()))?,
                owner: row.owner,
                invited: row.invitation.as_ref().map(|g| g.role.clone()),
                granted: row.granted,
            },
            row.invitation,
        )),
    };
    let mut decision = decide(
        body.user_id.as_str(),
        body.email_verified,
        facts.as_ref().map(|(f, _)| f),
    );
    if facts.is_none() && body.instance_id.is_some() {
        decision.reason = "unknown_instance";
    }
    if let (true, Some((f, Some(invitation)))) = (decision.bind_invitation, &facts) {
        let id = InstanceId::parse(&f.instance_id).map_err(|e| ApiError::internal(e.into()))?;
        let actor = Actor::new("login", body.user_id.as_str(), request_id(&req));
        drop(conn);
        let mut tx = state.pool.begin().await?;
        match state
            .grants
            .bind(&mut tx, &actor, &id, invitation, &body.user_id)
            .await?
        {
            Some((_, revision)) => {
                tx.commit().await?;
                state.live.revisions.observe(id.as_str(), revision);
            }
            None => {
                // Bound or removed meanwhile: decide again on what is there now.
                let granted =
                    db::grants::role_of(&mut tx, id.as_str(), body.user_id.as_str()).await?;
                let facts = LoginFacts {
                    granted,
                    invited: None,
                    ..f.clone()
                };
                decision = decide(body.user_id.as_str(), body.email_verified, Some(&facts));
            }
        }
    }
    tracing::info!(
        request_id = super::request_id(&req),
        user = %body.user_id,
        client_id = body.client_id.as_deref().unwrap_or(""),
        host = host.as_ref().map(Hostname::as_str).unwrap_or(""),
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
    let shown = printable(raw);
    let url = url::Url::parse(raw)
        .map_err(|e| ApiError::invalid(format!("redirect_uri '{shown}' is not a URL ({e})")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(ApiError::invalid(format!(
            "redirect_uri '{shown}' must be an http or https URL"
        )));
    }
    Ok(match url.host() {
        Some(url::Host::Domain(d)) => Hostname::parse(d).ok(),
        _ => None,
    })
}
