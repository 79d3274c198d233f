//! `GET /authorize` as the relay reads it: what the SPA asked, whether its redirect URI is one
//! its instance logs in with (exactly, never a pattern), and the tenant's `/authorize` the
//! browser is sent on to. Pure: the registry's answer comes in as arguments.

use super::params;
use crate::domain::Hostname;

/// The parameter that names the relay's transaction to the Action (`event.request.query`),
/// beside `state`, which names it back to the relay. An SPA may not send it.
pub const HANDLE_PARAM: &str = "fleetgate_login";

/// The SPA's parameters the tenant gets as they are; custom ones for the Action go as `ext-…`
/// (Auth0's convention). Anything else (`request`, `request_uri`, `client_secret`, odd
/// spellings of the relay's own) is dropped. The relay sets `client_id`, `redirect_uri`,
/// `state` and `response_mode` itself, keeping the SPA's in the transaction.
const FORWARDED: [&str; 17] = [
    "response_type",
    "scope",
    "audience",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "login_hint",
    "max_age",
    "ui_locales",
    "screen_hint",
    "organization",
    "invitation",
    "connection",
    "acr_values",
    "display",
    "auth0Client",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
    /// Silent authentication in an iframe: the answer is posted to the SPA's origin.
    WebMessage,
}

impl ResponseMode {
    pub fn parse(raw: Option<&str>) -> Option<Self> {
        match raw.unwrap_or("query") {
            "query" => Some(Self::Query),
            "fragment" => Some(Self::Fragment),
            "form_post" => Some(Self::FormPost),
            "web_message" => Some(Self::WebMessage),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::Fragment => "fragment",
            Self::FormPost => "form_post",
            Self::WebMessage => "web_message",
        }
    }
}

/// What the SPA asked for, as far as it can be checked without the registry.
#[derive(Debug, Clone)]
pub struct Asked {
    pairs: Vec<(String, String)>,
    pub redirect_uri: String,
    /// The redirect URI's host: the instance it names, if any.
    pub host: Hostname,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
}

/// Reads the query. An `Err` is shown as an error page: nothing about where to redirect can be
/// trusted yet.
pub fn read(query: &[u8], relay_client: &str) -> Result<Asked, String> {
    let pairs = params::parse(query)?;
    let get = |k: &str| params::get(&pairs, k);
    let client_id = get("client_id").ok_or("Missing required parameter: client_id")?;
    if client_id != relay_client {
        return Err(format!(
            "Unknown client: {} (the relay logs in with its own application's client_id, which /v1/instances/{{id}}/config gives)",
            crate::domain::printable(client_id)
        ));
    }
    let raw = get("redirect_uri").ok_or("Missing required parameter: redirect_uri")?;
    let refused = |why: &str| format!("The redirect_uri '{}' {why}", crate::domain::printable(raw));
    let url = url::Url::parse(raw).map_err(|_| refused("is not a URL"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(refused("is not an http(s) URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refused("carries a user name or password"));
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => Hostname::parse(d).ok(),
        _ => None,
    }
    .ok_or_else(|| refused("does not name a site of any instance"))?;
    let response_mode = ResponseMode::parse(get("response_mode"))
        .ok_or("response_mode must be query, fragment, form_post or web_message")?;
    if get(HANDLE_PARAM).is_some() {
        return Err(format!("Parameter '{HANDLE_PARAM}' is the relay's own"));
    }
    Ok(Asked {
        redirect_uri: raw.to_owned(),
        host,
        response_mode,
        state: get("state").map(str::to_owned),
        pairs,
    })
}

/// Whether the redirect URI is one of the entries its instance logs in with: a callback, or
/// for silent authentication (`web_message`, where auth0-spa-js sends its page's origin and
/// nothing navigates there) a web origin. Compared as strings: exact, never a pattern.
pub fn allowed(asked: &Asked, callbacks: &[String], web_origins: &[String]) -> bool {
    let uri = asked.redirect_uri.as_str();
    callbacks.iter().any(|c| c == uri)
        || (asked.response_mode == ResponseMode::WebMessage && web_origins.iter().any(|o| o == uri))
}

/// What the relay requires of a login once its redirect URI is known to be good; an `Err` goes
/// back to the SPA as `(error, error_description)`. PKCE with S256 is required: a code that
/// leaks on its way to the SPA is then worth nothing without the SPA's verifier.
pub fn required(asked: &Asked) -> Result<(), (&'static str, String)> {
    let get = |k: &str| params::get(&asked.pairs, k);
    if get("response_type") != Some("code") {
        return Err((
            "unsupported_response_type",
            "the relay supports the authorization code flow only (response_type=code)".into(),
        ));
    }
    let challenge = get("code_challenge").unwrap_or("");
    let valid = (43..=128).contains(&challenge.len())
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !valid || get("code_challenge_method") != Some("S256") {
        return Err((
            "invalid_request",
            "the relay requires PKCE: code_challenge (43 to 128 characters) with code_challenge_method=S256".into(),
        ));
    }
    Ok(())
}

/// The tenant's `/authorize` for this login: the SPA's parameters (PKCE challenge, nonce,
/// scope, audience, prompt, login_hint, …) with the relay's client, callback and handle.
pub fn upstream(
    tenant: &str,
    asked: &Asked,
    relay_client: &str,
    relay_callback: &str,
    handle: &str,
) -> String {
    let mut pairs: Vec<(&str, &str)> = asked
        .pairs
        .iter()
        .filter(|(k, _)| FORWARDED.contains(&k.as_str()) || k.starts_with("ext-"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.extend([
        ("client_id", relay_client),
        ("redirect_uri", relay_callback),
        ("response_mode", "query"),
        ("state", handle),
        (HANDLE_PARAM, handle),
    ]);
    params::url_with(&format!("{tenant}/authorize"), &pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn query(extra: &[(&str, &str)]) -> Vec<u8> {
        let mut pairs = vec![
            ("client_id", "relay"),
            ("redirect_uri", "https://www.acme.com/callback"),
            ("response_type", "code"),
            ("state", "spa-state"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("scope", "openid offline_access"),
        ];
        for (k, v) in extra {
            pairs.retain(|(p, _)| p != k);
            pairs.push((k, v));
        }
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            s.append_pair(k, v);
        }
        s.finish().into_bytes()
    }

    #[test]
    fn a_login_is_read_and_sent_on_with_the_relays_client_callback_and_handle() {
        let asked = read(&query(&[]), "relay").unwrap();
        assert_eq!(asked.host.as_str(), "www.acme.com");
        assert_eq!(asked.state.as_deref(), Some("spa-state"));
        assert!(required(&asked).is_ok());
        let up = url::Url::parse(&upstream(
            "https://t.example",
            &asked,
            "relay",
            "https://login.example/callback",
            "H",
        ))
        .unwrap();
        let got: Vec<(String, String)> = up.query_pairs().into_owned().collect();
        let get = |k: &str| {
            got.iter()
                .filter(|(p, _)| p == k)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("redirect_uri"), ["https://login.example/callback"]);
        assert_eq!(get("state"), ["H"]);
        assert_eq!(get(HANDLE_PARAM), ["H"]);
        assert_eq!(get("response_mode"), ["query"]);
        assert_eq!(get("code_challenge"), [CHALLENGE]);
        assert_eq!(get("scope"), ["openid offline_access"]);
        assert_eq!(get("client_id"), ["relay"]);
    }

    #[test]
    fn only_known_parameters_go_on_to_the_tenant() {
        let asked = read(
            &query(&[
                ("request", "eyJ.x.y"),
                ("request_uri", "https://evil.com/r"),
                ("client_secret", "s"),
                ("Redirect_Uri", "https://evil.com/cb"),
                ("ext-campaign", "spring"),
                ("prompt", "none"),
            ]),
            "relay",
        )
        .unwrap();
        let up = upstream(
            "https://t.example",
            &asked,
            "relay",
            "https://l/callback",
            "H",
        );
        for dropped in [
            "request",
            "request_uri",
            "client_secret",
            "Redirect_Uri",
            "evil",
        ] {
            assert!(!up.contains(dropped), "{dropped} in {up}");
        }
        assert!(
            up.contains("ext-campaign=spring") && up.contains("prompt=none"),
            "{up}"
        );
    }

    #[test]
    fn what_cannot_be_trusted_is_an_error_page() {
        for (extra, why) in [
            (vec![("client_id", "spa")], "Unknown client"),
            (vec![("redirect_uri", "")], "Missing required parameter"),
            (vec![("redirect_uri", "javascript:alert(1)")], "http(s)"),
            (
                vec![("redirect_uri", "https://evil.com@www.acme.com/callback")],
                "user name",
            ),
            (
                vec![("redirect_uri", "https://127.0.0.1/callback")],
                "does not name",
            ),
            (vec![("response_mode", "jwt")], "response_mode"),
            (vec![(HANDLE_PARAM, "x")], "relay's own"),
        ] {
            let err = read(&query(&extra), "relay").unwrap_err();
            assert!(err.contains(why), "{extra:?}: {err}");
        }
        let twice = b"client_id=relay&client_id=relay&redirect_uri=https://www.acme.com/callback";
        assert!(read(twice, "relay").unwrap_err().contains("more than once"));
    }

    #[test]
    fn only_exact_entries_are_allowed_and_origins_only_for_silent_logins() {
        let callbacks = vec!["https://www.acme.com/callback".to_owned()];
        let origins = vec!["https://www.acme.com".to_owned()];
        let ok = |extra: &[(&str, &str)]| {
            allowed(&read(&query(extra), "relay").unwrap(), &callbacks, &origins)
        };
        assert!(ok(&[]));
        for uri in [
            "https://www.acme.com/callback/",
            "https://www.acme.com/callback?x=1",
            "https://www.acme.com:443/callback",
            "https://www.acme.com:8443/callback",
            "http://www.acme.com/callback",
            "https://www.acme.com/Callback",
            "https://www.acme.com",
        ] {
            assert!(!ok(&[("redirect_uri", uri)]), "{uri}");
        }
        assert!(ok(&[
            ("redirect_uri", "https://www.acme.com"),
            ("response_mode", "web_message")
        ]));
    }

    #[test]
    fn pkce_with_s256_and_the_code_flow_are_required() {
        for extra in [
            vec![("code_challenge", "")],
            vec![("code_challenge_method", "plain")],
            vec![("code_challenge", "short")],
            vec![("response_type", "token")],
        ] {
            assert!(
                required(&read(&query(&extra), "relay").unwrap()).is_err(),
                "{extra:?}"
            );
        }
    }
}
