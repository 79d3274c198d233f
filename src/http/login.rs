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
    /// A login or refresh through the relay: the handle of its transaction (the Action finds
    /// it in `event.request.query` or `event.request.body`), which names the instance.
    #[serde(default)]
    relay_login: Option<String>,
    /// The application the login went through: the relay's requires `relay_login`.
    #[serde(default)]
    client_id: Option<String>,
    /// The connection the person logged in with (`Username-Password-Authentication`,
    /// `google-oauth2`, …): recorded with their last login and in the log, not decisive.
    #[serde(default)]
    connection: Option<String>,
    /// The user's identities (`event.user.identities`): logged; grants follow `user_id`.
    #[serde(default)]
    identities: Vec<Identity>,
}

/// One of the user's identities, as the Action passes it.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    provider: String,
    user_id: String,
    connection: String,
}

impl Body {
    /// The identities, as the log shows them (`google-oauth2/google-oauth2|1234…`).
    fn identities(&self) -> String {
        self.identities
            .iter()
            .take(10)
            .map(|i| printable(&format!("{}/{}|{}", i.connection, i.provider, i.user_id)))
            .collect::<Vec<_>>()
            .join(",")
    }
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
    let named = [
        body.redirect_uri.is_some(),
        body.instance_id.is_some(),
        body.relay_login.is_some(),
    ];
    if named.iter().filter(|n| **n).count() != 1 {
        return Err(ApiError::invalid(
            "give exactly one of redirect_uri (a login: its host names the instance), instance_id (a refresh-token exchange) or relay_login (a login or refresh through the relay)",
        ));
    }
    let target = match relayed(&state, &body).await? {
        Relayed::No => match (&body.redirect_uri, &body.instance_id) {
            (Some(uri), _) => Target::Host(redirect_host(uri)?),
            (_, Some(id)) => Target::Instance(id.clone()),
            _ => unreachable!("exactly one was given"),
        },
        Relayed::Instance(id) => Target::Instance(id),
        Relayed::Refused(reason) => {
            let decision = Decision::refused(reason);
            tracing::info!(
                request_id = super::request_id(&req),
                user = %body.user_id,
                client_id = body.client_id.as_deref().unwrap_or(""),
                allow = false,
                reason,
                "login decision"
            );
            return Ok(HttpResponse::Ok().json(decision));
        }
    };
    let login = Login {
        user_id: body.user_id.clone(),
        // An email that is not a valid address cannot match an invitation.
        email: body.email.as_deref().and_then(|e| Email::parse(e).ok()),
        email_verified: body.email_verified,
        target,
        connection: body
            .connection
            .as_deref()
            .filter(|c| !c.is_empty() && c.len() <= 128)
            .map(printable),
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
        // The instance decided on: the one named, the host's, or the relay transaction's.
        instance = decision.instance_id.as_deref().unwrap_or(""),
        relayed = body.relay_login.is_some(),
        connection = login.connection.as_deref().unwrap_or(""),
        identities = body.identities(),
        allow = decision.allow,
        reason = decision.reason,
        "login decision"
    );
    Ok(HttpResponse::Ok().json(decision))
}

enum Relayed {
    /// Not a login through the relay.
    No,
    /// Through the relay, for the instance of its transaction.
    Instance(InstanceId),
    /// Through the relay, but its transaction cannot be trusted.
    Refused(&'static str),
}

/// A login through the relay's application names its instance by its transaction's handle,
/// used once; any other way of naming it is refused, and a handle through another
/// application means nothing.
async fn relayed(state: &AppState, body: &Body) -> Result<Relayed, ApiError> {
    let Some(relay) = &state.relay else {
        return Ok(match body.relay_login {
            Some(_) => Relayed::Refused("relay_off"),
            None => Relayed::No,
        });
    };
    let through = body.client_id.as_deref() == Some(relay.client_id());
    let answer = match (&body.relay_login, through) {
        (None, false) => return Ok(Relayed::No),
        (Some(_), false) => Relayed::Refused("relay_login_elsewhere"),
        (None, true) => Relayed::Refused("relay_login_missing"),
        (Some(handle), true) => match relay.decide(handle).await {
            Ok(Some(id)) => Relayed::Instance(id),
            Ok(None) => Relayed::Refused("relay_login_invalid"),
            Err(e) => {
                relay.count("decision", "error");
                return Err(ApiError::internal(anyhow::anyhow!(e)));
            }
        },
    };
    let outcome = match answer {
        Relayed::Instance(_) => "ok",
        _ => "refused",
    };
    relay.count("decision", outcome);
    Ok(answer)
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
