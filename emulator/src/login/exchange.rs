//! `POST /oauth/token` for users: the `authorization_code` grant (a code works once, with its
//! PKCE verifier and the same `redirect_uri`) and the `refresh_token` grant (rotation: each
//! exchange answers a new refresh token; using one that was exchanged before revokes its
//! family). Both answer Auth0's fields and errors.

use std::time::Instant;

use actix_web::HttpRequest;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{
    event,
    state::{Challenge, Grant, RefreshRefused},
};
use crate::{Emu, clients::Client, errors::OAuthError, state::Tenant};

/// Access tokens for users live as long as Auth0's default for an API.
const ACCESS_LIFETIME_SECS: i64 = 86_400;
/// ID tokens live as long as the application's `jwt_configuration.lifetime_in_seconds`.
const DEFAULT_ID_LIFETIME_SECS: i64 = 36_000;

fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::new(403, "invalid_grant", description)
}

fn has_scope(scope: &str, wanted: &str) -> bool {
    scope.split(' ').any(|s| s == wanted)
}

fn allows(client: &Client, grant_type: &str) -> bool {
    client
        .get("grant_types")
        .and_then(Value::as_array)
        .is_some_and(|g| g.iter().any(|v| v == grant_type))
}

/// The client of a user grant, authenticated as its `token_endpoint_auth_method` asks: public
/// clients by id alone, others by their secret.
fn client<'a>(
    tenant: &'a Tenant,
    params: &Map<String, Value>,
    basic: Option<(String, String)>,
    grant_type: &str,
) -> Result<&'a Client, OAuthError> {
    let param = |k: &str| params.get(k).and_then(Value::as_str);
    let (id, secret) = match (basic, param("client_id")) {
        (Some((id, secret)), _) => (id, Some(secret)),
        (None, Some(id)) => (id.to_owned(), param("client_secret").map(str::to_owned)),
        (None, None) => {
            return Err(OAuthError::new(
                400,
                "invalid_request",
                "Missing required parameter: client_id",
            ));
        }
    };
    let denied = || OAuthError::new(401, "access_denied", "Unauthorized");
    let client = tenant.client(&id).ok_or_else(denied)?;
    let public = client
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
        == Some("none");
    if !public {
        let stored = client
            .get("client_secret")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let given = secret.unwrap_or_default();
        if !bool::from(stored.as_bytes().ct_eq(given.as_bytes())) {
            return Err(denied());
        }
    }
    if !allows(client, grant_type) {
        return Err(OAuthError::new(
            403,
            "unauthorized_client",
            format!("Grant type '{grant_type}' not allowed for the client."),
        ));
    }
    Ok(client)
}

fn verifier_matches(challenge: &Challenge, verifier: &str) -> bool {
    let expected = match challenge {
        Challenge::S256(c) => (
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
            c,
        ),
        Challenge::Plain(c) => (verifier.to_owned(), c),
    };
    bool::from(expected.0.as_bytes().ct_eq(expected.1.as_bytes()))
}

/// `grant_type=authorization_code`.
pub fn authorization_code(
    emu: &Emu,
    params: &Map<String, Value>,
    basic: Option<(String, String)>,
) -> Result<Value, OAuthError> {
    let param = |k: &str| params.get(k).and_then(Value::as_str);
    let code = param("code").ok_or_else(|| {
        OAuthError::new(400, "invalid_request", "Missing required parameter: code")
    })?;
    let tenant = emu.tenant.lock().expect("tenant lock");
    let client = client(&tenant, params, basic, "authorization_code")?;
    let client_id = client
        .get("client_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let public = client
        .get("token_endpoint_auth_method")
        .and_then(Value::as_str)
        == Some("none");
    let code = emu
        .login
        .lock()
        .expect("login lock")
        .take_code(code, Instant::now())
        .filter(|c| c.grant.client_id == client_id)
        .ok_or_else(|| invalid_grant("Invalid authorization code"))?;
    if param("redirect_uri") != Some(code.redirect_uri.as_str()) {
        return Err(invalid_grant("Redirect URI mismatch."));
    }
    match (&code.challenge, param("code_verifier")) {
        (Some(challenge), Some(verifier)) if verifier_matches(challenge, verifier) => {}
        (Some(_), _) => return Err(invalid_grant("Failed to verify code verifier")),
        (None, _) if public => {
            return Err(invalid_grant(
                "Authorization code flow without PKCE is not allowed for public clients",
            ));
        }
        (None, _) => {}
    }
    let refresh = (has_scope(&code.grant.scope, "offline_access")
        && allows(client, "refresh_token"))
    .then(|| {
        emu.login
            .lock()
            .expect("login lock")
            .issue_refresh(code.grant.clone(), None)
    });
    let unsigned = tokens(&tenant, client, &code.grant, code.nonce.as_deref(), refresh);
    drop(tenant);
    Ok(unsigned.sign())
}

/// `grant_type=refresh_token`: the Action runs again (protocol `oauth2-refresh-token`).
pub async fn refresh_token(
    emu: &Emu,
    req: &HttpRequest,
    params: &Map<String, Value>,
    basic: Option<(String, String)>,
) -> Result<Value, OAuthError> {
    let token = params
        .get("refresh_token")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            OAuthError::new(
                400,
                "invalid_request",
                "Missing required parameter: refresh_token",
            )
        })?;
    let (client, user) = {
        let tenant = emu.tenant.lock().expect("tenant lock");
        let client = client(&tenant, params, basic, "refresh_token")?.clone();
        let rt = emu.login.lock().expect("login lock").refresh_token(token);
        let rt = match rt {
            Ok(rt)
                if Some(rt.grant.client_id.as_str())
                    == client.get("client_id").and_then(Value::as_str) =>
            {
                rt
            }
            Ok(_) | Err(RefreshRefused::Unknown) => {
                return Err(invalid_grant("Unknown or invalid refresh token."));
            }
            Err(RefreshRefused::Reused) => {
                tracing::warn!("a rotated refresh token was used again: its family is revoked");
                return Err(invalid_grant("Unknown or invalid refresh token."));
            }
        };
        let user = tenant.user(&rt.grant.user_id).map(|u| u.profile());
        (client, user.map(|u| (u, rt)))
    };
    let Some((profile, rt)) = user else {
        return Err(invalid_grant("Unknown or invalid refresh token."));
    };
    let outcome = match &emu.action {
        None => Default::default(),
        Some(action) => {
            action
                .run(event::refresh(req, &profile, &client, &rt, params))
                .await
        }
    };
    if let Some(reason) = outcome.denied {
        return Err(OAuthError::new(403, "access_denied", reason));
    }
    let mut metadata = rt.grant.refresh_metadata.clone();
    metadata.extend(outcome.metadata);
    let grant = Grant {
        access_claims: outcome.access_claims,
        id_claims: outcome.id_claims,
        refresh_metadata: metadata,
        ..rt.grant.clone()
    };
    let next = {
        let mut login = emu.login.lock().expect("login lock");
        // Exchanged meanwhile by a concurrent request: that one is the reuse.
        login
            .refresh_token(token)
            .map_err(|_| invalid_grant("Unknown or invalid refresh token."))?;
        login.rotate(token);
        login.issue_refresh(grant.clone(), Some(rt.family.clone()))
    };
    let unsigned = tokens(
        &emu.tenant.lock().expect("tenant lock"),
        &client,
        &grant,
        None,
        Some(next),
    );
    Ok(unsigned.sign())
}

/// The answer of a successful user grant.
fn tokens(
    tenant: &Tenant,
    client: &Client,
    grant: &Grant,
    nonce: Option<&str>,
    refresh_token: Option<String>,
) -> Unsigned {
    let now = chrono::Utc::now().timestamp();
    let userinfo = format!("{}/userinfo", tenant.base_url);
    let openid = has_scope(&grant.scope, "openid");
    let aud = match (&grant.audience, openid) {
        (Some(api), true) => json!([api, userinfo]),
        (Some(api), false) => json!(api),
        (None, _) => json!(userinfo),
    };
    let mut access = json!({
        "iss": tenant.issuer(), "sub": grant.user_id, "aud": aud, "iat": now,
        "exp": now + ACCESS_LIFETIME_SECS, "azp": grant.client_id, "scope": grant.scope,
    });
    // RBAC: the user's permissions on the seeded API (fleetgate's), for that audience only.
    if grant.audience.as_deref() == Some(tenant.seeded.api_audience.as_str()) {
        let permissions = tenant.user(&grant.user_id).map(|u| u.permissions.clone());
        access["permissions"] = json!(permissions.unwrap_or_default());
    }
    extend(&mut access, &grant.access_claims);
    let mut answer = json!({
        "scope": grant.scope,
        "expires_in": ACCESS_LIFETIME_SECS,
        "token_type": "Bearer",
    });
    let mut id = None;
    if openid {
        let lifetime = client
            .get("jwt_configuration")
            .and_then(|j| j.get("lifetime_in_seconds"))
            .and_then(Value::as_i64)
            .unwrap_or(DEFAULT_ID_LIFETIME_SECS);
        let mut claims = json!({
            "iss": tenant.issuer(), "sub": grant.user_id, "aud": grant.client_id, "iat": now,
            "exp": now + lifetime, "sid": grant.sid,
        });
        if let Some(user) = tenant.user(&grant.user_id) {
            extend(&mut claims, &user.claims(&grant.scope));
        }
        if let Some(auth_time) = grant.auth_time {
            claims["auth_time"] = json!(auth_time);
        }
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        extend(&mut claims, &grant.id_claims);
        id = Some(claims);
    }
    if let Some(rt) = refresh_token {
        answer["refresh_token"] = json!(rt);
    }
    Unsigned {
        key: tenant.signing_key(),
        answer,
        access,
        id,
    }
}

/// A grant's answer before its tokens are signed: signed once the tenant's lock is let go.
struct Unsigned {
    key: std::sync::Arc<crate::keys::SigningKey>,
    answer: Value,
    access: Value,
    id: Option<Value>,
}

impl Unsigned {
    fn sign(self) -> Value {
        let mut answer = self.answer;
        answer["access_token"] = json!(self.key.sign(&self.access));
        if let Some(id) = &self.id {
            answer["id_token"] = json!(self.key.sign(id));
        }
        answer
    }
}

fn extend(claims: &mut Value, extra: &Map<String, Value>) {
    if let Value::Object(map) = claims {
        for (k, v) in extra {
            map.insert(k.clone(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_verifiers_are_checked() {
        // RFC 7636, appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let s256 = Challenge::S256("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into());
        assert!(verifier_matches(&s256, verifier));
        assert!(!verifier_matches(
            &s256,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj"
        ));
        assert!(verifier_matches(
            &Challenge::Plain(verifier.into()),
            verifier
        ));
        assert!(!verifier_matches(
            &Challenge::Plain(verifier.into()),
            "other"
        ));
    }
}
