//! `GET /authorize` and the login form it shows (`POST /u/login`): the authorization code
//! flow as Auth0 runs it. The application and its redirect URI are checked first, and a
//! failure there is an error page that never redirects; every later failure goes back to the
//! application's redirect URI. A session cookie lets later logins skip the form.

use std::time::Instant;

use actix_web::{
    HttpRequest, HttpResponse,
    cookie::{Cookie, SameSite},
    http::header,
    web,
};
use serde_json::{Map, Value, json};

use super::{
    SESSION_COOKIE,
    event::{self, Protocol},
    pages::{LoginPage, USERS_LISTED, error_page, login_form, query_string, respond},
    state::{Authorization, Challenge, Grant, ResponseMode, Session, random_id},
};
use crate::{
    Emu,
    clients::Client,
    matching::{callback_matches, origin_matches, origin_of},
    users::{DATABASE_CONNECTION, GOOGLE_CONNECTION},
};

/// The entries of one of a client's URL lists.
pub fn entries<'a>(client: &'a Client, field: &str) -> impl Iterator<Item = &'a str> {
    client
        .get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// The query's parameters; what is wrong with it otherwise.
fn query(req: &HttpRequest) -> Result<Map<String, Value>, String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|_| "The query string cannot be read".to_owned())?;
    let mut map = Map::new();
    for (k, v) in pairs {
        if map.insert(k.clone(), Value::String(v)).is_some() {
            return Err(format!("Parameter '{k}' is given more than once"));
        }
    }
    Ok(map)
}

fn text<'a>(q: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    q.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

pub async fn authorize(emu: web::Data<Emu>, req: HttpRequest) -> HttpResponse {
    let q = match query(&req) {
        Ok(q) => q,
        Err(why) => return error_page("invalid_request", &why),
    };
    // What decides whether Auth0 may redirect at all.
    let mut authorization = {
        let tenant = emu.tenant.lock().expect("tenant lock");
        let Some(client_id) = text(&q, "client_id") else {
            return error_page("invalid_request", "Missing required parameter: client_id");
        };
        let Some(client) = tenant.client(client_id) else {
            return error_page("invalid_request", &format!("Unknown client: {client_id}"));
        };
        let Some(redirect_uri) = text(&q, "redirect_uri") else {
            return error_page(
                "invalid_request",
                "Missing required parameter: redirect_uri",
            );
        };
        if !entries(client, "callbacks").any(|e| callback_matches(e, redirect_uri)) {
            return error_page(
                "Callback URL mismatch",
                &format!(
                    "The provided redirect_uri is not in the list of allowed callback URLs. Please go to the Application Settings page and make sure you are sending a valid callback url from your application: {redirect_uri}"
                ),
            );
        }
        let Some(response_mode) = ResponseMode::parse(text(&q, "response_mode")) else {
            return error_page(
                "invalid_request",
                "response_mode must be query, fragment, form_post or web_message",
            );
        };
        if response_mode == ResponseMode::WebMessage {
            let origin = origin_of(redirect_uri).unwrap_or_default();
            if !entries(client, "web_origins").any(|e| origin_matches(e, &origin)) {
                return error_page(
                    "invalid_request",
                    &format!(
                        "The specified redirect_uri '{redirect_uri}' does not have a registered origin (Allowed Web Origins)."
                    ),
                );
            }
        }
        Authorization {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            response_mode,
            scope: text(&q, "scope").unwrap_or("openid").to_owned(),
            state: text(&q, "state").map(str::to_owned),
            nonce: text(&q, "nonce").map(str::to_owned),
            audience: text(&q, "audience").map(str::to_owned),
            challenge: None,
            wants_auth_time: false,
            query: q.clone(),
        }
    };
    // From here on, failures go back to the application.
    if text(&q, "response_type") != Some("code") {
        return fail(
            &authorization,
            "unsupported_response_type",
            "Unsupported response type: the emulator supports the authorization code flow (response_type=code)",
        );
    }
    match challenge(&q) {
        Ok(c) => authorization.challenge = c,
        Err(description) => return fail(&authorization, "invalid_request", &description),
    }
    if let Some(audience) = &authorization.audience {
        let known = emu
            .tenant
            .lock()
            .expect("tenant lock")
            .apis
            .contains(audience);
        if !known {
            return fail(
                &authorization,
                "access_denied",
                &format!("Service not found: {audience}"),
            );
        }
    }
    // `connection` names the one to log in with: the database's form, or the social
    // provider's page (the emulator's stand-in for it).
    let connection = text(&q, "connection");
    if let Some(other) =
        connection.filter(|c| ![DATABASE_CONNECTION, GOOGLE_CONNECTION].contains(c))
    {
        return fail(
            &authorization,
            "invalid_request",
            &format!("the connection was not found: {other}"),
        );
    }
    let prompt = text(&q, "prompt").unwrap_or("");
    let max_age = match text(&q, "max_age").map(str::parse::<i64>) {
        None => None,
        Some(Ok(seconds)) if seconds >= 0 => Some(seconds),
        Some(_) => {
            return fail(
                &authorization,
                "invalid_request",
                "max_age must be a whole number of seconds, 0 or more",
            );
        }
    };
    authorization.wants_auth_time = max_age.is_some() || prompt == "login";
    let session = req.cookie(SESSION_COOKIE).and_then(|c| {
        let session = emu
            .login
            .lock()
            .expect("login lock")
            .session(c.value())?
            .clone();
        let exists = emu
            .tenant
            .lock()
            .expect("tenant lock")
            .user(&session.user_id)
            .is_some();
        exists.then_some(session)
    });
    // OIDC Core 3.1.2.1: a session older than max_age logs in again; max_age=0 is prompt=login.
    let now = chrono::Utc::now().timestamp();
    let fresh = |s: &Session| match max_age {
        None => true,
        Some(0) => false,
        Some(max) => now - s.auth_time <= max,
    };
    match (session.filter(|s| fresh(s)), prompt) {
        (Some(session), p) if p != "login" => complete(&emu, &req, &authorization, &session).await,
        (None, "none") => fail(&authorization, "login_required", "Login required"),
        _ => {
            let hint = text(&q, "login_hint").unwrap_or("").to_owned();
            // The form is bound to this browser: its CSRF cookie, kept if it has one.
            let browser = browser_of(&req).unwrap_or_else(random_id);
            let txn = emu.login.lock().expect("login lock").pend(
                authorization.clone(),
                &browser,
                Instant::now(),
            );
            let mut form = match connection {
                Some(GOOGLE_CONNECTION) => {
                    super::social::page(&emu, &authorization, &txn, &hint, None)
                }
                _ => form_page(&emu, &authorization, &txn, &hint, None),
            };
            let cookie = Cookie::build(CSRF_COOKIE, browser)
                .path("/u/")
                .http_only(true)
                .same_site(SameSite::Lax)
                .finish();
            let _ = form.add_cookie(&cookie);
            form
        }
    }
}

/// The login form of transaction `txn`: it names the application and the site the login
/// returns to (the redirect URI's host: the instance), and lists the tenant's users, each a
/// link that starts the same login with their email filled in (passwords are not kept).
fn form_page(
    emu: &Emu,
    authorization: &Authorization,
    txn: &str,
    hint: &str,
    error: Option<&str>,
) -> HttpResponse {
    let tenant = emu.tenant.lock().expect("tenant lock");
    let (application, site) = named(&tenant, authorization);
    let database = || {
        tenant
            .users
            .iter()
            .filter(|u| u.connection() == DATABASE_CONNECTION)
    };
    let users: Vec<(String, String)> = database()
        .take(USERS_LISTED)
        .map(|u| {
            let mut query = authorization.query.clone();
            query.insert("login_hint".into(), json!(u.email));
            (
                u.email.clone(),
                format!("/authorize?{}", query_string(&query)),
            )
        })
        .collect();
    let mut social = authorization.query.clone();
    social.insert("connection".into(), json!(GOOGLE_CONNECTION));
    login_form(&LoginPage {
        txn,
        application: &application,
        site: &site,
        hint,
        error,
        users: &users,
        unlisted: database().count().saturating_sub(users.len()),
        social: &format!("/authorize?{}", query_string(&social)),
    })
}

/// What a login page names: the application (as Universal Login names it) and the site the
/// login returns to (the redirect URI's host: the instance).
pub(super) fn named(
    tenant: &crate::state::Tenant,
    authorization: &Authorization,
) -> (String, String) {
    let application = tenant
        .client(&authorization.client_id)
        .and_then(|c| c.get("name").and_then(Value::as_str))
        .unwrap_or(&authorization.client_id)
        .to_owned();
    let site = url::Url::parse(&authorization.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    (application, site)
}

/// The cookie binding a login form to the browser it was shown to. `SameSite=Lax`: a form
/// posted to `/u/login` from another site arrives without it.
const CSRF_COOKIE: &str = "_csrf";

/// The browser's CSRF cookie, when it has a well-formed one.
pub(super) fn browser_of(req: &HttpRequest) -> Option<String> {
    let value = req.cookie(CSRF_COOKIE)?.value().to_owned();
    let well_formed = (16..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then_some(value)
}

/// Whether a form post comes from the emulator's own pages: no `Origin` (a browser that sends
/// none, a tool), or the origin the request was made to.
fn same_origin(req: &HttpRequest) -> bool {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return true;
    };
    let info = req.connection_info();
    origin.to_str().ok() == Some(format!("{}://{}", info.scheme(), info.host()).as_str())
}

/// The PKCE challenge, if one was sent.
fn challenge(q: &Map<String, Value>) -> Result<Option<Challenge>, String> {
    let Some(challenge) = text(q, "code_challenge") else {
        return Ok(None);
    };
    let valid = (43..=128).contains(&challenge.len())
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !valid {
        return Err("code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~]".into());
    }
    match text(q, "code_challenge_method").unwrap_or("plain") {
        "S256" => Ok(Some(Challenge::S256(challenge.to_owned()))),
        "plain" => Ok(Some(Challenge::Plain(challenge.to_owned()))),
        other => Err(format!(
            "Unsupported code_challenge_method: {other} (S256 or plain)"
        )),
    }
}

/// An error for the application, at its redirect URI.
fn fail(a: &Authorization, error: &str, description: &str) -> HttpResponse {
    let mut params = Map::new();
    params.insert("error".into(), json!(error));
    params.insert("error_description".into(), json!(description));
    if let Some(state) = &a.state {
        params.insert("state".into(), json!(state));
    }
    respond(a.response_mode, &a.redirect_uri, &params)
}

#[derive(serde::Deserialize)]
pub struct LoginForm {
    txn: String,
    username: String,
    password: String,
}

/// `POST /u/login`: the login form. A wrong email or password shows the form again.
pub async fn login(
    emu: web::Data<Emu>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let authorization = match pending_of(&emu, &req, &form.txn) {
        Ok(a) => a,
        Err(page) => return *page,
    };
    let user_id = emu
        .tenant
        .lock()
        .expect("tenant lock")
        .user_by_email(DATABASE_CONNECTION, form.username.trim())
        .filter(|u| u.password_is(&form.password))
        .map(|u| u.user_id.clone());
    let Some(user_id) = user_id else {
        return form_page(
            &emu,
            &authorization,
            &form.txn,
            &form.username,
            Some("Wrong email or password."),
        );
    };
    logged_in(&emu, &req, &authorization, &form.txn, &user_id).await
}

/// The login `txn` pending in this browser, when the form was posted from the emulator's own
/// page; else the error page to answer.
pub(super) fn pending_of(
    emu: &Emu,
    req: &HttpRequest,
    txn: &str,
) -> Result<Authorization, Box<HttpResponse>> {
    if !same_origin(req) {
        return Err(Box::new(error_page(
            "invalid_request",
            "This login form was posted from another site; start again from the application",
        )));
    }
    let browser = browser_of(req);
    emu.login
        .lock()
        .expect("login lock")
        .pending(txn, browser.as_deref())
        .cloned()
        .ok_or_else(|| {
            Box::new(error_page(
                "invalid_request",
                "This login has expired, was already completed, or was started in another browser; start again from the application",
            ))
        })
}

/// `user_id` has proven who they are for login `txn`: a session (its cookie), then the
/// Action and the application's answer.
pub(super) async fn logged_in(
    emu: &Emu,
    req: &HttpRequest,
    authorization: &Authorization,
    txn: &str,
    user_id: &str,
) -> HttpResponse {
    let (cookie_value, session) = {
        let mut login = emu.login.lock().expect("login lock");
        login.finish_pending(txn);
        login.start_session(user_id)
    };
    let mut answer = complete(emu, req, authorization, &session).await;
    let secure = emu
        .tenant
        .lock()
        .expect("tenant lock")
        .base_url
        .starts_with("https:");
    let mut cookie = Cookie::build(SESSION_COOKIE, cookie_value)
        .path("/")
        .http_only(true)
        .finish();
    if secure {
        cookie.set_secure(true);
        cookie.set_same_site(SameSite::None);
    } else {
        cookie.set_same_site(SameSite::Lax);
    }
    let _ = answer.add_cookie(&cookie);
    answer
}

/// The user is logged in: run the Action, then send the application a code, or its denial.
async fn complete(
    emu: &Emu,
    req: &HttpRequest,
    authorization: &Authorization,
    session: &Session,
) -> HttpResponse {
    let user_id = session.user_id.as_str();
    let (profile, client) = {
        let mut tenant = emu.tenant.lock().expect("tenant lock");
        if let Some(user) = tenant.users.iter_mut().find(|u| u.user_id == user_id) {
            user.logged_in();
        }
        let profile = tenant.user(user_id).map(|u| u.profile());
        let client = tenant.client(&authorization.client_id).cloned();
        (profile, client)
    };
    let (Some(profile), Some(client)) = (profile, client) else {
        return fail(
            authorization,
            "access_denied",
            "The user or the application no longer exists",
        );
    };
    let outcome = match &emu.action {
        None => Default::default(),
        Some(action) => {
            let event = event::login(
                req,
                &profile,
                &client,
                authorization,
                Protocol::AuthorizationCode,
            );
            action.run(event).await
        }
    };
    if let Some(reason) = outcome.denied {
        return fail(authorization, "access_denied", &reason);
    }
    let grant = Grant {
        user_id: user_id.to_owned(),
        sid: session.sid.clone(),
        auth_time: authorization.wants_auth_time.then_some(session.auth_time),
        client_id: authorization.client_id.clone(),
        scope: authorization.scope.clone(),
        audience: authorization.audience.clone(),
        access_claims: outcome.access_claims,
        id_claims: outcome.id_claims,
        refresh_metadata: outcome.metadata,
    };
    let code =
        emu.login
            .lock()
            .expect("login lock")
            .issue_code(authorization, grant, Instant::now());
    let mut params = Map::new();
    params.insert("code".into(), json!(code));
    if let Some(state) = &authorization.state {
        params.insert("state".into(), json!(state));
    }
    respond(
        authorization.response_mode,
        &authorization.redirect_uri,
        &params,
    )
}
