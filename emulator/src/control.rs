//! `/emulator/…`: what only the emulator has. Dev-user tokens, key rotation, faults, request
//! counts and the seeded credentials. Unauthenticated: the emulator listens on loopback only.

use actix_web::{HttpResponse, Scope, http::StatusCode, web};
use serde_json::{Value, json};

use super::{
    Emu,
    errors::{MgmtError, json_response},
    faults::Faults,
    keys::SigningKey,
    login::action::claim_allowed,
    token::TOKEN_LIFETIME_SECS,
    users::{DEFAULT_PASSWORD, User},
};

pub fn scope() -> Scope {
    web::scope("/emulator")
        .route("/tenant", web::get().to(tenant))
        .route("/users/token", web::post().to(user_token))
        .route("/users", web::post().to(create_user))
        .route("/users", web::get().to(list_users))
        .route("/keys/rotate", web::post().to(rotate_keys))
        .route("/faults", web::get().to(get_faults))
        .route("/faults", web::put().to(put_faults))
        .route("/stats", web::get().to(stats))
        .route("/stats", web::delete().to(reset_stats))
        .route("/clients/{client_id}/lists", web::get().to(client_lists))
}

/// An application's four allow-lists as they are now, without a Management API token (and so
/// without spending its rate limit): what `scripts/dev` prints to watch fleetgate's work.
async fn client_lists(
    emu: web::Data<Emu>,
    id: web::Path<String>,
) -> Result<HttpResponse, MgmtError> {
    let tenant = emu.tenant.lock().expect("tenant lock");
    let client = tenant
        .client(&id)
        .ok_or_else(MgmtError::inexistent_client)?;
    let fields = "client_id,name,callbacks,allowed_logout_urls,web_origins,allowed_origins";
    Ok(json_response(
        StatusCode::OK,
        &Value::Object(super::clients::project(client, Some(fields), true)),
    ))
}

/// The seeded applications and where things are: what `scripts/dev` wires fleetgate with.
async fn tenant(emu: web::Data<Emu>) -> HttpResponse {
    let described = emu.tenant.lock().expect("tenant lock").described();
    json_response(StatusCode::OK, &described)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UserTokenRequest {
    sub: String,
    audience: Option<String>,
    #[serde(default)]
    permissions: Vec<String>,
    scope: Option<String>,
    expires_in: Option<i64>,
    /// The application the token is issued to (its `azp`): a client of the tenant. Default:
    /// the seeded SPA, as at a login at an instance.
    client_id: Option<String>,
    /// Custom claims, as a post-login Action would set them (only those Auth0 allows).
    #[serde(default)]
    claims: serde_json::Map<String, Value>,
}

/// A user access token as Auth0 issues it for a custom API with RBAC permissions in the token.
async fn user_token(emu: web::Data<Emu>, body: web::Bytes) -> Result<HttpResponse, MgmtError> {
    let req: UserTokenRequest = serde_json::from_slice(&body)
        .map_err(|e| MgmtError::invalid_body(format!("Invalid request: {e}")))?;
    if req.sub.trim().is_empty() {
        return Err(MgmtError::invalid_body("sub must not be empty"));
    }
    let t = emu.tenant.lock().expect("tenant lock");
    let audience = req
        .audience
        .unwrap_or_else(|| t.seeded.api_audience.clone());
    if !t.apis.contains(&audience) {
        return Err(MgmtError::invalid_body(format!(
            "Service not found: {audience}"
        )));
    }
    let client_id = req
        .client_id
        .unwrap_or_else(|| t.seeded.spa_client_id.clone());
    if t.client(&client_id).is_none() {
        return Err(MgmtError::invalid_body(format!(
            "Client not found: {client_id}"
        )));
    }
    let scope = req.scope.unwrap_or_else(|| "openid profile email".into());
    let aud = if scope.split(' ').any(|s| s == "openid") {
        json!([audience, format!("{}/userinfo", t.base_url)])
    } else {
        json!(audience)
    };
    if let Some(refused) = req.claims.keys().find(|k| !claim_allowed(k)) {
        return Err(MgmtError::invalid_body(format!(
            "claim '{refused}' cannot be set: custom claims are namespaced with an http(s) URL that is not Auth0's, and restricted claims cannot be set"
        )));
    }
    let expires_in = req.expires_in.unwrap_or(TOKEN_LIFETIME_SECS);
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({
        "iss": t.issuer(), "sub": req.sub, "aud": aud, "iat": now, "exp": now + expires_in,
        "azp": client_id, "scope": scope, "permissions": req.permissions,
    });
    for (k, v) in req.claims {
        claims[k] = v;
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({ "access_token": t.signing_key().sign(&claims), "token_type": "Bearer", "expires_in": expires_in }),
    ))
}

/// A new signing key signs from now on; the previous one stays in the JWKS until the next rotation.
async fn rotate_keys(emu: web::Data<Emu>) -> Result<HttpResponse, MgmtError> {
    let key = web::block(SigningKey::generate)
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or_else(|| MgmtError::new(500, "key generation failed", None))?;
    let kids = emu.change(|t| {
        t.rotate(key);
        t.keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>()
    });
    Ok(json_response(
        StatusCode::OK,
        &json!({ "signing_kid": kids.last(), "published_kids": kids }),
    ))
}

async fn get_faults(emu: web::Data<Emu>) -> HttpResponse {
    json_response(
        StatusCode::OK,
        &serde_json::to_value(&*emu.faults.read().expect("faults lock")).expect("faults serialise"),
    )
}

async fn put_faults(emu: web::Data<Emu>, body: web::Bytes) -> Result<HttpResponse, MgmtError> {
    let faults: Faults = serde_json::from_slice(&body)
        .map_err(|e| MgmtError::invalid_body(format!("Invalid faults: {e}")))?;
    faults.check().map_err(MgmtError::invalid_body)?;
    *emu.fault_rng.lock().expect("fault rng lock") = faults.seeded_rng();
    *emu.faults.write().expect("faults lock") = faults.clone();
    Ok(json_response(
        StatusCode::OK,
        &serde_json::to_value(faults).expect("faults serialise"),
    ))
}

async fn stats(emu: web::Data<Emu>) -> HttpResponse {
    let stats = emu.stats.lock().expect("stats lock");
    json_response(
        StatusCode::OK,
        &Value::Object(stats.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
    )
}

async fn reset_stats(emu: web::Data<Emu>) -> HttpResponse {
    emu.stats.lock().expect("stats lock").clear();
    HttpResponse::NoContent().finish()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    email: String,
    password: Option<String>,
    #[serde(default)]
    email_verified: bool,
    name: Option<String>,
    /// Permissions on the seeded API (RBAC), put in access tokens for it.
    #[serde(default)]
    permissions: Vec<String>,
}

/// `POST /emulator/users`: a user of the database connection (password `password` unless
/// given), answered as the Management API shows users.
async fn create_user(emu: web::Data<Emu>, body: web::Bytes) -> Result<HttpResponse, MgmtError> {
    let new: NewUser = serde_json::from_slice(&body)
        .map_err(|e| MgmtError::invalid_body(format!("Invalid request: {e}")))?;
    let email = new.email.trim();
    if !crate::users::is_email(email) {
        return Err(MgmtError::invalid_body(format!(
            "Payload validation error: 'Object didn't pass validation for format email: {email}' on property email."
        )));
    }
    let password = new.password.as_deref().unwrap_or(DEFAULT_PASSWORD);
    if password.is_empty() {
        return Err(MgmtError::invalid_body(
            "PasswordStrengthError: Password is too weak",
        ));
    }
    emu.change(|t| {
        if t.user_by_email(crate::users::DATABASE_CONNECTION, email)
            .is_some()
        {
            return Err(MgmtError::new(
                409,
                "The user already exists.",
                Some("auth0_idp_error"),
            ));
        }
        let mut user = User::new(email, password, new.email_verified, new.name.as_deref());
        user.permissions = new.permissions;
        let profile = user.profile();
        t.users.push(user);
        Ok(json_response(StatusCode::CREATED, &profile))
    })
}

async fn list_users(emu: web::Data<Emu>) -> HttpResponse {
    let t = emu.tenant.lock().expect("tenant lock");
    let users: Vec<Value> = t.users.iter().map(User::profile).collect();
    json_response(StatusCode::OK, &Value::Array(users))
}
