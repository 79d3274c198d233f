//! OpenID Connect discovery and `/userinfo`.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, http::header, web};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Value, json};

use crate::{Emu, errors::json_response};

/// `GET /.well-known/openid-configuration`: what libraries that take an issuer URL read.
pub async fn discovery(emu: web::Data<Emu>) -> HttpResponse {
    let t = emu.tenant.lock().expect("tenant lock");
    let base = &t.base_url;
    json_response(
        StatusCode::OK,
        &json!({
            "issuer": t.issuer(),
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/oauth/token"),
            "userinfo_endpoint": format!("{base}/userinfo"),
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "end_session_endpoint": format!("{base}/oidc/logout"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment", "form_post", "web_message"],
            "code_challenge_methods_supported": ["S256", "plain"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "claims_supported": ["aud", "auth_time", "email", "email_verified", "exp", "iat", "iss", "name", "nickname", "nonce", "picture", "sid", "sub", "updated_at"],
            "request_uri_parameter_supported": false,
        }),
    )
}

/// `GET /userinfo`: the profile of the user an access token (with the userinfo audience) is for.
pub async fn userinfo(emu: web::Data<Emu>, req: HttpRequest) -> HttpResponse {
    let refused = |why: &str| {
        HttpResponse::Unauthorized()
            .insert_header((
                header::WWW_AUTHENTICATE,
                format!("Bearer error=\"invalid_token\", error_description=\"{why}\""),
            ))
            .body("Unauthorized")
    };
    let Some(token) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return refused("Missing access token");
    };
    let t = emu.tenant.lock().expect("tenant lock");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[t.issuer()]);
    validation.set_audience(&[format!("{}/userinfo", t.base_url)]);
    let kid = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid);
    let Some(key) = t.keys.iter().find(|k| Some(&k.kid) == kid.as_ref()) else {
        return refused("Invalid token");
    };
    let Ok(data) = jsonwebtoken::decode::<Value>(token, key.decoding(), &validation) else {
        return refused("Invalid token");
    };
    let sub = data.claims["sub"].as_str().unwrap_or_default();
    match t.user(sub) {
        None => refused("Invalid token"),
        Some(u) => {
            // What the token's scope gives, as for the ID token.
            let mut claims = u.claims(data.claims["scope"].as_str().unwrap_or_default());
            claims.insert("sub".into(), json!(u.user_id));
            json_response(StatusCode::OK, &Value::Object(claims))
        }
    }
}
