//! `POST /oauth/token` through the relay: a code is exchanged only with its own transaction's
//! redirect URI (and from its origin), a refresh token only for the instance it was handed
//! out at; the tenant gets the relay's credentials, its callback, the SPA's PKCE verifier and
//! the user's address, and its answer goes back as it is.

use std::net::IpAddr;

use chrono::Utc;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::{
    CODE_SECS, REFRESH_IDLE_SECS, Relay, RelayError,
    authorize::HANDLE_PARAM,
    handle::{hash, new_handle},
    params, site_of,
};
use crate::{db, domain::Hostname};

/// How long the Action has to ask about a refresh the relay sent on.
const REFRESH_DECISION_SECS: i64 = 60;

/// The token endpoint's answer.
#[derive(Debug)]
pub struct TokenAnswer {
    pub status: u16,
    pub body: Value,
    /// Which step it was, for the metrics: `code`, `refresh` or `other`.
    pub step: &'static str,
}

fn oauth_error(status: u16, error: &str, description: &str, step: &'static str) -> TokenAnswer {
    TokenAnswer {
        status,
        body: json!({"error": error, "error_description": description}),
        step,
    }
}

/// What a token request carries: a form (auth0-spa-js's default) or a JSON object of strings.
pub fn read_body(body: &[u8], json: bool) -> Result<Vec<(String, String)>, String> {
    if !json {
        return params::parse(body);
    }
    let value: serde_json::Map<String, Value> =
        serde_json::from_slice(body).map_err(|_| "the body is not a JSON object".to_owned())?;
    if value.len() > params::MAX_PARAMS {
        return Err(params::too_many());
    }
    value
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                _ => {
                    return Err(format!(
                        "'{}' must be a string",
                        crate::domain::printable(&k)
                    ));
                }
            };
            params::check(&k, &v)?;
            Ok((k, v))
        })
        .collect()
}

impl Relay {
    /// Answers one token request from an SPA at `origin` (its `Origin` header), made by the
    /// browser at `ip`.
    pub async fn token(
        &self,
        pairs: &[(String, String)],
        origin: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<TokenAnswer, RelayError> {
        let get = |k: &str| params::get(pairs, k);
        if get("client_id") != Some(self.client_id()) {
            return Ok(oauth_error(
                401,
                "invalid_client",
                "client_id must be the relay's application (what /config gives)",
                "other",
            ));
        }
        match get("grant_type") {
            Some("authorization_code") => self.code(pairs, origin, ip).await,
            Some("refresh_token") => self.refresh(pairs, origin, ip).await,
            _ => Ok(oauth_error(
                400,
                "unsupported_grant_type",
                "the relay exchanges authorization codes and refresh tokens only",
                "other",
            )),
        }
    }

    async fn code(
        &self,
        pairs: &[(String, String)],
        origin: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<TokenAnswer, RelayError> {
        let get = |k: &str| params::get(pairs, k);
        let refuse = |d: &str| oauth_error(403, "invalid_grant", d, "code");
        let (Some(code), Some(redirect_uri), Some(verifier)) =
            (get("code"), get("redirect_uri"), get("code_verifier"))
        else {
            return Ok(oauth_error(
                400,
                "invalid_request",
                "code, redirect_uri and code_verifier are required",
                "code",
            ));
        };
        // Taken (once) before anything else is checked: a code presented wrongly is spent.
        let Some(t) = db::relay::exchange(&self.pool, &hash(code), CODE_SECS).await? else {
            return Ok(refuse("Invalid authorization code"));
        };
        if redirect_uri != t.return_to {
            return Ok(refuse("Redirect URI mismatch."));
        }
        let own_origin = url::Url::parse(&t.return_to)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        if origin.is_some_and(|o| o != own_origin) {
            return Ok(refuse("This code was issued to another site"));
        }
        let site = match site_of(&t.return_to) {
            Some(site) if self.site_still_its(&t.instance_id, &site).await? => site,
            _ => {
                return Ok(refuse(
                    "The site this code was issued to cannot sign in now",
                ));
            }
        };
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", &self.settings.callback()),
        ];
        self.upstream(&form, ip, &t.instance_id, &site, "code")
            .await
    }

    async fn refresh(
        &self,
        pairs: &[(String, String)],
        origin: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<TokenAnswer, RelayError> {
        let get = |k: &str| params::get(pairs, k);
        let refuse = |d: &str| oauth_error(403, "invalid_grant", d, "refresh");
        let Some(token) = get("refresh_token") else {
            return Ok(oauth_error(
                400,
                "invalid_request",
                "Missing required parameter: refresh_token",
                "refresh",
            ));
        };
        let Some(bound) =
            db::relay::refresh_token(&self.pool, &hash(token), REFRESH_IDLE_SECS).await?
        else {
            return Ok(refuse("Unknown or invalid refresh token."));
        };
        let instance = bound.instance_id;
        // Good only while the site it was handed out on is still its instance's and active:
        // whoever serves a site next can read what the browsers keep there, and a request made
        // from a server carries whatever Origin it likes, or none.
        let site = match bound.host.as_deref().map(Hostname::parse) {
            Some(Ok(site)) if self.site_still_its(&instance, &site).await? => site,
            Some(_) => {
                return Ok(refuse(
                    "The site this refresh token was issued to cannot sign in now",
                ));
            }
            None => {
                return Ok(refuse(
                    "This refresh token was issued before the relay recorded its site; sign in again",
                ));
            }
        };
        if origin.is_some_and(|o| !self.origins(&site).any(|ours| ours == o)) {
            return Ok(refuse("This refresh token was issued to another site"));
        }
        // The Action learns the instance from a one-time handle only the relay writes.
        let handle = new_handle();
        db::relay::insert(
            &self.pool,
            &db::relay::NewTransaction {
                handle_hash: &hash(&handle),
                kind: "refresh",
                instance_id: &instance,
                return_to: "",
                state: None,
                response_mode: "query",
                expires_at: Utc::now() + chrono::Duration::seconds(REFRESH_DECISION_SECS),
            },
        )
        .await?;
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            (HANDLE_PARAM, handle.as_str()),
        ];
        for k in ["scope", "audience"] {
            if let Some(v) = get(k) {
                form.push((k, v));
            }
        }
        self.upstream(&form, ip, &instance, &site, "refresh").await
    }

    /// Sends the exchange to the tenant with the relay's credentials, and its answer back; a
    /// refresh token in a successful answer is recorded with `instance` and `site`.
    async fn upstream(
        &self,
        form: &[(&str, &str)],
        ip: Option<IpAddr>,
        instance: &str,
        site: &Hostname,
        step: &'static str,
    ) -> Result<TokenAnswer, RelayError> {
        let mut req = self
            .http
            .post(format!("{}/oauth/token", self.tenant))
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(params::encode(
                &[
                    ("client_id", self.client_id()),
                    ("client_secret", self.settings.client_secret.expose_secret()),
                ]
                .into_iter()
                .chain(form.iter().copied())
                .collect::<Vec<_>>(),
            ));
        if let Some(ip) = ip {
            req = req.header("auth0-forwarded-for", ip.to_string());
        }
        let res = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(step, error = %e.without_url(), "relay: the tenant's token endpoint could not be reached");
                return Ok(oauth_error(
                    502,
                    "temporarily_unavailable",
                    "the sign-in service could not be reached; try again",
                    step,
                ));
            }
        };
        let status = res.status().as_u16();
        let body: Value = match res.json().await {
            Ok(b) => b,
            Err(_) => {
                return Ok(oauth_error(
                    502,
                    "temporarily_unavailable",
                    "the sign-in service gave an answer that is not JSON",
                    step,
                ));
            }
        };
        if status != 200 {
            return Ok(TokenAnswer { status, body, step });
        }
        // Whatever led the tenant to bind these tokens (a link whose state and handle were
        // made to differ, an older Action), they go only to the transaction's own instance.
        if !bound_only_to(&body, &self.instance_claim, instance) {
            tracing::warn!(
                step,
                instance,
                "relay: the tenant's tokens are not bound to this exchange's instance; refused"
            );
            return Ok(oauth_error(
                403,
                "invalid_grant",
                "the tokens of this sign-in are not for this site",
                step,
            ));
        }
        if let Some(rt) = body.get("refresh_token").and_then(Value::as_str) {
            db::relay::bind_refresh_token(&self.pool, &hash(rt), instance, site.as_str()).await?;
        }
        Ok(TokenAnswer { status, body, step })
    }
}

/// Whether every JWT of the tenant's answer (its ID token, and its access token unless that is
/// opaque) binds it to `instance` through the Action's claim, and there is at least one. Read
/// without checking signatures: the answer came from the tenant on the relay's own connection.
pub fn bound_only_to(answer: &Value, claim: &str, instance: &str) -> bool {
    let mut bound = 0;
    for field in ["id_token", "access_token"] {
        let Some(token) = answer.get(field).and_then(Value::as_str) else {
            continue;
        };
        let Some(payload) = jwt_payload(token) else {
            continue;
        };
        match payload.get(claim).and_then(Value::as_str) {
            Some(bound_to) if bound_to == instance => bound += 1,
            _ => return false,
        }
    }
    bound > 0
}

fn jwt_payload(token: &str) -> Option<Value> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: Value) -> String {
        use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
        format!(
            "e30.{}.sig",
            URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes())
        )
    }

    #[test]
    fn only_tokens_bound_to_the_exchanges_instance_go_back() {
        const CLAIM: &str = "https://fleetgate.dev/instance";
        let bound = |to: &str| jwt(json!({ CLAIM: to }));
        let answer = |id: String, access: String| json!({"id_token": id, "access_token": access});
        assert!(bound_only_to(
            &answer(bound("acme"), bound("acme")),
            CLAIM,
            "acme"
        ));
        assert!(bound_only_to(
            &answer(bound("acme"), "opaque".into()),
            CLAIM,
            "acme"
        ));
        assert!(!bound_only_to(
            &answer(bound("acme"), bound("acme")),
            CLAIM,
            "beta"
        ));
        assert!(!bound_only_to(
            &answer(bound("acme"), bound("beta")),
            CLAIM,
            "acme"
        ));
        assert!(
            !bound_only_to(&answer(jwt(json!({})), bound("acme")), CLAIM, "acme"),
            "unbound"
        );
        assert!(
            !bound_only_to(&json!({"access_token": "opaque"}), CLAIM, "acme"),
            "nothing bound"
        );
    }

    #[test]
    fn bodies_are_forms_or_json_objects_of_strings() {
        let form = read_body(b"grant_type=refresh_token&refresh_token=x", false).unwrap();
        assert_eq!(params::get(&form, "refresh_token"), Some("x"));
        let json = read_body(br#"{"grant_type":"authorization_code","code":"c"}"#, true).unwrap();
        assert_eq!(params::get(&json, "code"), Some("c"));
        assert!(read_body(br#"{"code":["a","b"]}"#, true).is_err());
        assert!(read_body(b"code=a&code=b", false).is_err());
    }
}
