//! The `event` a post-login Action gets, with the fields Auth0 documents (docs/auth0.md):
//! `user`, `client`, `transaction` (with `protocol`, and `redirect_uri` except on refresh-token
//! exchanges), `request` (`query`, `body`, `ip`, `hostname`, `method`), `refresh_token` on
//! exchanges, `connection`, `tenant`, `authentication`, `stats`, `resource_server`.

use actix_web::HttpRequest;
use serde_json::{Map, Value, json};

use super::state::{Authorization, RefreshToken};
use crate::clients::Client;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// The authorization code flow, PKCE or not.
    AuthorizationCode,
    RefreshToken,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "oidc-basic-profile",
            Self::RefreshToken => "oauth2-refresh-token",
        }
    }
}

fn common(req: &HttpRequest, user: &Value, client: &Client, audience: Option<&str>) -> Value {
    let client_name = client.get("name").cloned().unwrap_or(Value::Null);
    // The connection of the user's (first) identity: a database's, or a social provider's.
    let identity = &user["identities"][0];
    let social = identity["isSocial"].as_bool().unwrap_or(false);
    let connection = json!({
        "id": format!("con_{}", identity["connection"].as_str().unwrap_or("emulator")),
        "name": identity["connection"],
        "strategy": identity["provider"],
    });
    let info = req.connection_info();
    json!({
        "user": user,
        "client": {
            "client_id": client.get("client_id"),
            "name": client_name,
            "metadata": client.get("client_metadata").cloned().unwrap_or(json!({})),
        },
        "request": {
            "ip": req.peer_addr().map(|a| a.ip().to_string()),
            "hostname": info.host(),
            "method": req.method().as_str(),
            "user_agent": req.headers().get("user-agent").and_then(|v| v.to_str().ok()),
            "language": "en",
            "query": {},
            "body": {},
        },
        "connection": connection,
        "tenant": { "id": "emulator" },
        "authentication": { "methods": [{ "name": if social { "federated" } else { "pwd" } }] },
        "stats": { "logins_count": user.get("logins_count").cloned().unwrap_or(json!(0)) },
        "resource_server": audience.map(|a| json!({ "identifier": a })),
    })
}

/// The event of a login through `/authorize`.
pub fn login(
    req: &HttpRequest,
    user: &Value,
    client: &Client,
    a: &Authorization,
    protocol: Protocol,
) -> Value {
    let mut event = common(req, user, client, a.audience.as_deref());
    event["transaction"] = json!({
        "protocol": protocol.name(),
        "redirect_uri": a.redirect_uri,
        "requested_scopes": a.scope.split(' ').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
        "response_mode": a.response_mode.name(),
        "response_type": ["code"],
        "state": a.state,
        "locale": "en",
    });
    event["request"]["query"] = Value::Object(a.query.clone());
    event
}

/// The address a token request is made for: `auth0-forwarded-for` when the client
/// authenticated with its secret and trusts that header ("Trust Token Endpoint IP Header",
/// `is_token_endpoint_ip_header_trusted`), else the connection's. A server that logs users in
/// (fleetgate's relay) names the user's address so attack protection sees users, not it.
fn token_request_ip(req: &HttpRequest, client: &Client) -> Option<String> {
    let trusted = client
        .get("is_token_endpoint_ip_header_trusted")
        .and_then(Value::as_bool)
        == Some(true)
        && client
            .get("token_endpoint_auth_method")
            .and_then(Value::as_str)
            .is_some_and(|m| m != "none");
    let forwarded = req
        .headers()
        .get("auth0-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok());
    match (trusted, forwarded) {
        (true, Some(ip)) => Some(ip.to_string()),
        _ => req.peer_addr().map(|a| a.ip().to_string()),
    }
}

/// The event of a refresh-token exchange: no redirect URI in the transaction; the token
/// request's body (without secrets) in `request.body`; the token in `refresh_token`.
pub fn refresh(
    req: &HttpRequest,
    user: &Value,
    client: &Client,
    rt: &RefreshToken,
    body: &Map<String, Value>,
) -> Value {
    let mut event = common(req, user, client, rt.grant.audience.as_deref());
    event["transaction"] = json!({
        "protocol": Protocol::RefreshToken.name(),
        "requested_scopes": rt.grant.scope.split(' ').filter(|s| !s.is_empty()).collect::<Vec<_>>(),
        "locale": "en",
    });
    let shown: Map<String, Value> = body
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "refresh_token" | "client_secret"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    event["request"]["body"] = Value::Object(shown);
    event["request"]["ip"] = json!(token_request_ip(req, client));
    event["refresh_token"] = json!({
        "id": rt.id,
        "client_id": rt.grant.client_id,
        "user_id": rt.grant.user_id,
        "created_at": rt.created_at,
        "metadata": rt.grant.refresh_metadata,
    });
    event
}
