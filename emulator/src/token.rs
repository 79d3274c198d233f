//! `POST /oauth/token` (client credentials here; the user grants in `login::exchange`) and
//! `GET /.well-known/jwks.json`.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, http::header, web};
use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Map, Value, json};

use super::{
    Emu,
    errors::{OAuthError, json_response},
    login,
};

/// Access tokens for APIs live a day, as Auth0's default.
pub const TOKEN_LIFETIME_SECS: i64 = 86_400;

pub async fn jwks(emu: web::Data<Emu>) -> HttpResponse {
    let tenant = emu.tenant.lock().expect("tenant lock");
    let keys: Vec<Value> = tenant.keys.iter().rev().map(|k| k.public_jwk()).collect();
    json_response(StatusCode::OK, &json!({ "keys": keys }))
}

/// The form or JSON body as string parameters.
fn params(req: &HttpRequest, body: &[u8]) -> Result<Map<String, Value>, OAuthError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let bad = || {
        OAuthError::new(
            400,
            "invalid_request",
            "The request body could not be parsed",
        )
    };
    if content_type.starts_with("application/json") {
        match serde_json::from_slice(body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(bad()),
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|_| bad())?;
        Ok(pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect())
    } else {
        Err(OAuthError::new(
            400,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded or application/json",
        ))
    }
}

/// `client_secret_basic` credentials, if the request carries them.
fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// `POST /oauth/token`. Every answer, tokens or an error, is `Cache-Control: no-store` and
/// `Pragma: no-cache` (RFC 6749 5.1), as Auth0's are.
pub async fn token(emu: web::Data<Emu>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let mut res = match grant(&emu, &req, &body).await {
        Ok(res) => res,
        Err(e) => actix_web::ResponseError::error_response(&e),
    };
    let headers = res.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    headers.insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    res
}

async fn grant(emu: &Emu, req: &HttpRequest, body: &[u8]) -> Result<HttpResponse, OAuthError> {
    let params = params(req, body)?;
    let param = |k: &str| params.get(k).and_then(Value::as_str).map(str::to_owned);
    let grant_type = param("grant_type").ok_or_else(|| {
        OAuthError::new(
            400,
            "invalid_request",
            "Missing required parameter: grant_type",
        )
    })?;
    match grant_type.as_str() {
        "client_credentials" => {}
        "authorization_code" | "refresh_token" => {
            return user_grant(emu, req, &grant_type, &params).await;
        }
        _ => {
            return Err(OAuthError::new(
                400,
                "unsupported_grant_type",
                format!("Unsupported grant type: {grant_type}"),
            ));
        }
    }
    let denied = || OAuthError::new(401, "access_denied", "Unauthorized");
    let (client_id, secret) = match (
        param("client_id"),
        param("client_secret"),
        basic_credentials(req),
    ) {
        (_, _, Some(basic)) => basic,
        (Some(id), Some(secret), None) => (id, secret),
        (None, _, None) => {
            return Err(OAuthError::new(
                400,
                "invalid_request",
                "Missing required parameter: client_id",
            ));
        }
        (Some(_), None, None) => return Err(denied()),
    };
    let tenant = emu.tenant.lock().expect("tenant lock");
    let client = tenant
        .client(&client_id)
        .filter(|c| c.get("client_secret").and_then(Value::as_str) == Some(secret.as_str()))
        .ok_or_else(denied)?;
    let allows_cc = client
        .get("grant_types")
        .and_then(Value::as_array)
        .is_some_and(|g| g.iter().any(|v| v == "client_credentials"));
    if !allows_cc {
        return Err(OAuthError::new(
            403,
            "unauthorized_client",
            "Grant type 'client_credentials' not allowed for the client.",
        ));
    }
    let audience = param("audience").ok_or_else(|| {
        OAuthError::new(
            403,
            "access_denied",
            "No audience parameter was provided, and no default audience has been configured",
        )
    })?;
    if !tenant.apis.contains(&audience) {
        return Err(OAuthError::new(
            403,
            "access_denied",
            format!("Service not found: {audience}"),
        ));
    }
    let grant = tenant.grants.iter().find(|g| g.client_id == client_id && g.audience == audience).ok_or_else(|| {
        OAuthError::new(
            403,
            "access_denied",
            format!(
                "Client is not authorized to access \"{audience}\". You need to create a \"client-grant\" associated to this API. See: https://auth0.com/docs/api/v2#!/Client_Grants/post_client_grants"
            ),
        )
    })?;
    let scope = grant.scope.join(" ");
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": tenant.issuer(),
        "sub": format!("{client_id}@clients"),
        "aud": audience,
        "iat": now,
        "exp": now + TOKEN_LIFETIME_SECS,
        "scope": scope,
        "gty": "client-credentials",
        "azp": client_id,
    });
    let key = tenant.signing_key();
    drop(tenant);
    let access_token = key.sign(&claims);
    Ok(json_response(
        StatusCode::OK,
        &json!({ "access_token": access_token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_SECS, "scope": scope }),
    ))
}

/// A user grant, from a browser (CORS: the application's callback origins and allowed
/// origins; any other origin is refused before the grant is looked at) or not.
async fn user_grant(
    emu: &Emu,
    req: &HttpRequest,
    grant_type: &str,
    params: &Map<String, Value>,
) -> Result<HttpResponse, OAuthError> {
    let origin = login::origin(req);
    if let Some(origin) = &origin {
        let tenant = emu.tenant.lock().expect("tenant lock");
        let client_id = params.get("client_id").and_then(Value::as_str);
        let allowed = client_id
            .and_then(|id| tenant.client(id))
            .is_some_and(|c| login::allows_origin(c, origin));
        if !allowed {
            return Err(OAuthError::new(
                403,
                "access_denied",
                format!("Origin {origin} is not allowed for this application"),
            ));
        }
    }
    let basic = basic_credentials(req);
    let answer = match grant_type {
        "authorization_code" => login::exchange::authorization_code(emu, params, basic),
        _ => login::exchange::refresh_token(emu, req, params, basic).await,
    };
    // The allowed origin may read the answer, errors included.
    let mut res = match answer {
        Ok(answer) => json_response(StatusCode::OK, &answer),
        Err(e) => actix_web::ResponseError::error_response(&e),
    };
    if let Some(origin) = &origin {
        login::allow_origin(&mut res, origin);
    }
    Ok(res)
}
