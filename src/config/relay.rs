//! How instances log in (`FLEETGATE_LOGIN_MODE`) and the login relay's settings.

use secrecy::SecretString;

use super::{ConfigError, Result, Vars, parse_auth0_domain};

/// Which instances log in through fleetgate's relay instead of straight at the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMode {
    /// Every instance logs in at the tenant, through the allow-lists the reconciler keeps.
    Direct,
    /// Every instance logs in through the relay: the instances' entries are in no allow-list,
    /// and a deploy changes nothing in the tenant.
    Relay,
    /// At the tenant while the pool has room for the instance and its entries are live; through
    /// the relay otherwise (right after its deploy, and for good when it fits in no
    /// application): a full pool no longer fails passes.
    Overflow,
}

impl LoginMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Relay => "relay",
            Self::Overflow => "overflow",
        }
    }
}

#[derive(Debug, Clone)]
pub struct RelaySettings {
    /// The relay's public origin (`https://login.platform.example`), no trailing slash.
    pub url: String,
    /// The relay's own (confidential) application.
    pub client_id: String,
    pub client_secret: SecretString,
    /// A header the platform's proxy sets to the browser's address (overwriting whatever the
    /// browser sent), told to the tenant as `auth0-forwarded-for`. Without it, the address of
    /// the connection.
    pub client_ip_header: Option<String>,
}

impl RelaySettings {
    /// The relay's callback: the one entry of its application's callbacks.
    pub fn callback(&self) -> String {
        format!("{}/callback", self.url)
    }

    /// Where the tenant's logout returns to: the one entry of its allowed logout URLs.
    pub fn logged_out(&self) -> String {
        format!("{}/logged-out", self.url)
    }
}

/// `FLEETGATE_LOGIN_MODE` and, for `relay` and `overflow`, the relay's settings. `others` are the clients the
/// relay's application must not be (the instances' SPA application, fleetgate's own).
pub(super) fn relay_settings(
    vars: &Vars,
    others: &[Option<String>],
    reconciles: bool,
) -> Result<(LoginMode, Option<RelaySettings>)> {
    let mode = vars.parsed("FLEETGATE_LOGIN_MODE", LoginMode::Direct, |s| match s {
        "direct" => Ok(LoginMode::Direct),
        "relay" => Ok(LoginMode::Relay),
        "overflow" => Ok(LoginMode::Overflow),
        _ => Err("must be direct, relay or overflow"),
    })?;
    let url = vars.optional("FLEETGATE_RELAY_URL");
    if mode == LoginMode::Direct {
        return Ok((mode, None));
    }
    if !reconciles {
        return Err(ConfigError {
            var: "FLEETGATE_LOGIN_MODE",
            message: "relay and overflow need the reconciler's credentials (AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET, AUTH0_SPA_CLIENT_ID): it keeps the relay's application".into(),
        });
    }
    let url = url.ok_or(ConfigError {
        var: "FLEETGATE_RELAY_URL",
        message: "is required when FLEETGATE_LOGIN_MODE is relay or overflow".into(),
    })?;
    let url = parse_auth0_domain(&url).map_err(|message| ConfigError {
        var: "FLEETGATE_RELAY_URL",
        message: message.replace(
            "a tenant host such as acme.eu.auth0.com",
            "the relay's public host, e.g. login.platform.example",
        ),
    })?;
    if Some(url.as_str()) == vars.optional("AUTH0_DOMAIN").as_deref() {
        return Err(ConfigError {
            var: "FLEETGATE_RELAY_URL",
            message: "must be fleetgate's own public origin, not the tenant's".into(),
        });
    }
    let required = |var: &'static str| {
        vars.optional(var).ok_or(ConfigError {
            var,
            message: "is required when FLEETGATE_LOGIN_MODE is relay or overflow".into(),
        })
    };
    let client_id = required("FLEETGATE_RELAY_CLIENT_ID")?;
    if others.iter().flatten().any(|c| *c == client_id) {
        return Err(ConfigError {
            var: "FLEETGATE_RELAY_CLIENT_ID",
            message: "must be an application of the relay's own, not the instances' SPA application or one of fleetgate's".into(),
        });
    }
    let client_secret = SecretString::from(required("FLEETGATE_RELAY_CLIENT_SECRET")?);
    let client_ip_header = match vars.optional("FLEETGATE_RELAY_CLIENT_IP_HEADER") {
        None => None,
        Some(h) => Some(
            actix_web::http::header::HeaderName::try_from(h.as_str())
                .map_err(|_| ConfigError {
                    var: "FLEETGATE_RELAY_CLIENT_IP_HEADER",
                    message: "must be a header name, e.g. x-real-ip".into(),
                })?
                .as_str()
                .to_owned(),
        ),
    };
    Ok((
        mode,
        Some(RelaySettings {
            url,
            client_id,
            client_secret,
            client_ip_header,
        }),
    ))
}
