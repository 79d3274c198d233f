//! Settings from the environment, validated once at start-up.
//!
//! Every problem names the variable it came from. Secrets are held in
//! [`SecretString`] so that `Debug` output and logs never show them.

use std::{net::SocketAddr, time::Duration};

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

mod events;
mod features;
mod relay;

pub use events::{DEFAULT_RETRY_SCHEDULE, EventsSettings};
pub use features::{DEFAULT_GRANT_ROLES, DEFAULT_RECONCILE_CRON, TEMPLATE_VARS};
use features::{grants_settings, reconciler_settings};
pub use relay::{LoginMode, RelaySettings};

use crate::domain::{Hostname, Templates};

#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: SecretString,
    pub db_max_connections: u32,
    pub listen: SocketAddr,
    /// Where `/metrics` is served: its own address, or (None) the API's.
    pub metrics_listen: Option<SocketAddr>,
    /// Failed authentications an address may make at once, and then per minute.
    pub auth_failures_per_minute: std::num::NonZeroU32,
    pub auth0: Auth0Settings,
    pub platform_domain: Option<Hostname>,
    pub webhook_secret: SecretString,
    pub log_format: LogFormat,
    /// Present when the M2M credentials are configured; without them nothing is reconciled.
    pub reconciler: Option<ReconcilerSettings>,
    pub grants: GrantsSettings,
    /// How instances log in: straight at the tenant, or through the relay.
    pub login_mode: LoginMode,
    /// Present in `relay` mode.
    pub relay: Option<RelaySettings>,
    /// Outbound events (`FLEETGATE_EVENTS_URL`); None: no event is recorded.
    pub events: Option<EventsSettings>,
}

#[derive(Debug, Clone)]
pub struct GrantsSettings {
    /// The roles a grant may name (`owner` is implied for the owner and cannot be granted).
    pub roles: Vec<String>,
    /// Changes kept per instance for `?since=`; older ones answer 410.
    pub changes_kept: i64,
    /// How long a rotated-out instance key keeps working.
    pub key_grace: Duration,
    /// The bearer the Auth0 post-login Action presents; without it login decisions are off.
    pub action_secret: Option<SecretString>,
    /// The Auth0 application of fleetgate's status page (`/ui/`): its logins are bound to no
    /// instance.
    pub ui_client_id: Option<String>,
    /// Long-polls one caller (an instance, a user) may have waiting at once on a replica.
    pub max_parked_per_caller: usize,
    /// How often the last logins login decisions saw are written (one statement each time).
    pub last_logins_flush: Duration,
}

#[derive(Debug, Clone)]
pub struct ReconcilerSettings {
    /// The M2M application fleetgate calls the Management API as.
    pub client_id: String,
    pub client_secret: SecretString,
    /// The application whose allow-lists fleetgate manages.
    pub spa_client_id: String,
    pub templates: Templates,
    pub wildcard: bool,
    /// Six-field cron expression (with seconds) of the periodic full pass.
    pub cron: String,
    /// Create another application when none in the pool has room.
    pub auto_create_applications: bool,
    /// Entries per list (Auth0's cap is 100).
    pub cap: usize,
    /// Move an instance that outgrew its application to one with room, without an admin.
    pub auto_move: bool,
    /// fleetgate's own applications ([`Auth0Settings::admin_clients`]), which the pool never
    /// holds.
    pub reserved_clients: Vec<String>,
    /// Applications another deployment marked that this one takes over deliberately.
    pub take_over: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Auth0Settings {
    /// `https://tenant.eu.auth0.com` or, for a local emulator, `http://127.0.0.1:PORT`; no trailing slash.
    pub base_url: String,
    /// The `iss` of the tenant's tokens: `{base_url}/`, or the tenant's custom domain
    /// (`AUTH0_ISSUER`, e.g. `https://login.example.com/`) when its logins run there.
    pub issuer: String,
    /// fleetgate's own API identifier: the audience of admin tokens.
    pub audience: String,
    /// The API identifier instances' APIs accept (what `/config` tells instances). Tokens for
    /// it are never accepted by fleetgate.
    pub instance_audience: String,
    /// The prefix of the claims the post-login Action sets (`{namespace}instance`); a token
    /// carrying the instance claim was minted at an instance and is refused by fleetgate.
    pub claim_namespace: String,
    /// How long fetched signing keys are trusted before they are fetched again.
    pub jwks_cache: Duration,
    /// The applications whose tokens fleetgate's API accepts (`azp`, or `client_id`): the
    /// status page's (`FLEETGATE_UI_CLIENT_ID`) and `FLEETGATE_ADMIN_CLIENTS` (default: the
    /// M2M application). Never an application instances log in through: a token from one is
    /// refused whatever it carries.
    pub admin_clients: Vec<String>,
}

impl Auth0Settings {
    /// The `iss` claim of tokens from this tenant (with its trailing slash).
    pub fn issuer(&self) -> String {
        self.issuer.clone()
    }

    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.base_url)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

pub(super) type Result<T> = std::result::Result<T, ConfigError>;

impl Settings {
    /// Reads the process environment (after an optional `.env`, which `main` loads).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get`, so tests can supply their own environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let vars = Vars(&get);
        let admin_clients = admin_clients(&vars)?;
        let base_url =
            parse_auth0_domain(&vars.required("AUTH0_DOMAIN")?).map_err(|message| ConfigError {
                var: "AUTH0_DOMAIN",
                message,
            })?;
        let issuer = match vars.optional("AUTH0_ISSUER") {
            None => format!("{base_url}/"),
            Some(raw) => parse_auth0_domain(&raw)
                .map(|url| format!("{url}/"))
                .map_err(|message| ConfigError {
                    var: "AUTH0_ISSUER",
                    message,
                })?,
        };
        let mut others: Vec<Option<String>> = admin_clients.iter().cloned().map(Some).collect();
        others.push(vars.optional("AUTH0_SPA_CLIENT_ID"));
        others.push(vars.optional("AUTH0_CLIENT_ID"));
        let reconciles = vars.optional("AUTH0_CLIENT_ID").is_some();
        let (login_mode, relay) = relay::relay_settings(&vars, &others, reconciles)?;
        // The relay's application is fleetgate's own: the pool never holds it.
        let reserved: Vec<String> = admin_clients
            .iter()
            .cloned()
            .chain(relay.as_ref().map(|r| r.client_id.clone()))
            .collect();
        Ok(Self {
            database_url: SecretString::from(vars.required("DATABASE_URL")?),
            db_max_connections: vars.parsed("FLEETGATE_DB_MAX_CONNECTIONS", 10, |s| {
                s.parse::<u32>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or("must be a whole number from 1 to 1000")
            })?,
            listen: vars.parsed(
                "FLEETGATE_LISTEN",
                SocketAddr::from(([127, 0, 0, 1], 8080)),
                |s| {
                    s.parse().map_err(
                        |_| "must be an address and port, e.g. 127.0.0.1:8080 or 0.0.0.0:8080",
                    )
                },
            )?,
            metrics_listen: match vars.optional("FLEETGATE_METRICS_LISTEN") {
                None => None,
                Some(s) => Some(s.parse().map_err(|_| ConfigError {
                    var: "FLEETGATE_METRICS_LISTEN",
                    message: "must be an address and port, e.g. 127.0.0.1:9090".into(),
                })?),
            },
            auth_failures_per_minute: vars.parsed(
                "FLEETGATE_AUTH_FAILURES_PER_MINUTE",
                std::num::NonZeroU32::new(60).expect("not zero"),
                |s| {
                    s.parse::<u32>()
                        .ok()
                        .filter(|n| (1..=1_000_000).contains(n))
                        .and_then(std::num::NonZeroU32::new)
                        .ok_or("must be a whole number from 1 to 1000000")
                },
            )?,
            auth0: Auth0Settings {
                base_url,
                issuer,
                audience: vars.required("AUTH0_AUDIENCE")?,
                instance_audience: {
                    let instance = vars.required("FLEETGATE_INSTANCE_AUDIENCE")?;
                    if Some(instance.as_str()) == vars.optional("AUTH0_AUDIENCE").as_deref() {
                        return Err(ConfigError {
                            var: "FLEETGATE_INSTANCE_AUDIENCE",
                            message: "must differ from AUTH0_AUDIENCE: tokens users get at instances must not work on fleetgate's API".into(),
                        });
                    }
                    instance
                },
                claim_namespace: vars.parsed(
                    "FLEETGATE_CLAIM_NAMESPACE",
                    DEFAULT_CLAIM_NAMESPACE.to_owned(),
                    parse_claim_namespace,
                )?,
                jwks_cache: vars.parsed(
                    "FLEETGATE_JWKS_CACHE_SECS",
                    Duration::from_secs(600),
                    seconds_within(10..=86_400, "must be a number of seconds from 10 to 86400"),
                )?,
                admin_clients: admin_clients.clone(),
            },
            platform_domain: match vars.optional("FLEETGATE_PLATFORM_DOMAIN") {
                None => None,
                Some(s) => Some(Hostname::parse(&s).map_err(|e| ConfigError {
                    var: "FLEETGATE_PLATFORM_DOMAIN",
                    message: e.to_string(),
                })?),
            },
            webhook_secret: {
                let raw = vars.required("FLEETGATE_WEBHOOK_SECRET")?;
                check_webhook_secret(&raw).map_err(|message| ConfigError {
                    var: "FLEETGATE_WEBHOOK_SECRET",
                    message: message.into(),
                })?;
                SecretString::from(raw)
            },
            reconciler: reconciler_settings(&vars, &reserved)?,
            grants: grants_settings(&vars)?,
            log_format: vars.parsed("FLEETGATE_LOG_FORMAT", LogFormat::Text, |s| match s {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                _ => Err("must be text or json"),
            })?,
            login_mode,
            relay,
            events: events::events_settings(&vars)?,
        })
    }

    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }
}

pub(super) fn boolean(s: &str) -> std::result::Result<bool, &'static str> {
    match s {
        "true" | "on" | "1" => Ok(true),
        "false" | "off" | "0" => Ok(false),
        _ => Err("must be true or false"),
    }
}

pub(super) struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    pub(super) fn optional(&self, var: &str) -> Option<String> {
        (self.0)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn required(&self, var: &'static str) -> Result<String> {
        self.optional(var).ok_or(ConfigError {
            var,
            message: "is required but not set".into(),
        })
    }

    pub(super) fn parsed<T>(
        &self,
        var: &'static str,
        default: T,
        parse: impl Fn(&str) -> std::result::Result<T, &'static str>,
    ) -> Result<T> {
        match self.optional(var) {
            None => Ok(default),
            Some(raw) => parse(&raw).map_err(|rule| ConfigError {
                var,
                message: rule.into(),
            }),
        }
    }
}

/// A setting in whole seconds within `range`; `rule` says what is allowed when it is not.
pub(super) fn seconds_within(
    range: std::ops::RangeInclusive<u64>,
    rule: &'static str,
) -> impl Fn(&str) -> std::result::Result<Duration, &'static str> {
    move |s| {
        s.parse::<u64>()
            .ok()
            .filter(|n| range.contains(n))
            .map(Duration::from_secs)
            .ok_or(rule)
    }
}

/// The post-login Action's default `CLAIM_NAMESPACE`.
pub const DEFAULT_CLAIM_NAMESPACE: &str = "https://fleetgate.dev/";

/// An http(s) URL, with a trailing slash added as the Action adds one.
fn parse_claim_namespace(raw: &str) -> std::result::Result<String, &'static str> {
    let url = url::Url::parse(raw).map_err(|_| "must be a URL, e.g. https://fleetgate.dev/")?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be an http or https URL, e.g. https://fleetgate.dev/");
    }
    Ok(if raw.ends_with('/') {
        raw.to_owned()
    } else {
        format!("{raw}/")
    })
}

/// `acme.eu.auth0.com` means `https://acme.eu.auth0.com`; a full `http(s)://…` base URL is taken as
/// it is, but plain http only for a loopback address (a local emulator).
pub(super) fn parse_auth0_domain(raw: &str) -> std::result::Result<String, String> {
    if !raw.contains("://") {
        let host = Hostname::parse(raw)
            .map_err(|e| format!("{e}; give a tenant host such as acme.eu.auth0.com"))?;
        return Ok(format!("https://{host}"));
    }
    let url = reqwest::Url::parse(raw).map_err(|e| format!("is not a valid URL ({e})"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(
                "may use plain http only for a loopback address (a local emulator); use https"
                    .into(),
            );
        }
        other => return Err(format!("has unsupported scheme '{other}'")),
    }
    if url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return Err(
            "must be a base URL with no path, query, fragment or user, e.g. http://127.0.0.1:4010"
                .into(),
        );
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// fleetgate's own applications: the status page's, and `FLEETGATE_ADMIN_CLIENTS` (else the
/// M2M application's). None may be the instances' SPA application: its logins belong to
/// instances.
fn admin_clients(vars: &Vars) -> Result<Vec<String>> {
    let spa = vars.optional("AUTH0_SPA_CLIENT_ID");
    let ui = vars.optional("FLEETGATE_UI_CLIENT_ID");
    if ui.is_some() && ui == spa {
        return Err(ConfigError {
            var: "FLEETGATE_UI_CLIENT_ID",
            message: "must differ from AUTH0_SPA_CLIENT_ID: the status page needs an application of its own, not the one instances log in through".into(),
        });
    }
    let named: Vec<String> = match vars.optional("FLEETGATE_ADMIN_CLIENTS") {
        Some(list) => list
            .split(',')
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect(),
        None => vars.optional("AUTH0_CLIENT_ID").into_iter().collect(),
    };
    if let Some(spa) = spa.as_ref().filter(|spa| named.contains(spa)) {
        return Err(ConfigError {
            var: "FLEETGATE_ADMIN_CLIENTS",
            message: format!(
                "must not name AUTH0_SPA_CLIENT_ID ({spa}): tokens from logins at instances must never work on fleetgate's API"
            ),
        });
    }
    let mut clients: Vec<String> = Vec::new();
    for client in ui.into_iter().chain(named) {
        if !clients.contains(&client) {
            clients.push(client);
        }
    }
    Ok(clients)
}

/// A Standard Webhooks secret: `whsec_` followed by base64 of 24 to 64 random bytes.
pub(super) fn check_webhook_secret(raw: &str) -> std::result::Result<(), &'static str> {
    let b64 = raw
        .strip_prefix("whsec_")
        .ok_or("must start with whsec_ (a Standard Webhooks secret)")?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "must be whsec_ followed by standard base64")?;
    if !(24..=64).contains(&key.len()) {
        return Err("must encode between 24 and 64 bytes of key");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
