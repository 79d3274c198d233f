//! Settings from the environment, validated once at start-up.
//!
//! Every problem names the variable it came from. Secrets are held in
//! [`SecretString`] so that `Debug` output and logs never show them.

use std::{net::SocketAddr, time::Duration};

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::{Field, Hostname, Templates};

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
}

#[derive(Debug, Clone)]
pub struct Auth0Settings {
    /// `https://tenant.eu.auth0.com` or, for a local emulator, `http://127.0.0.1:PORT`; no trailing slash.
    pub base_url: String,
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
}

impl Auth0Settings {
    /// The `iss` claim of tokens from this tenant (with its trailing slash).
    pub fn issuer(&self) -> String {
        format!("{}/", self.base_url)
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

type Result<T> = std::result::Result<T, ConfigError>;

impl Settings {
    /// Reads the process environment (after an optional `.env`, which `main` loads).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get`, so tests can supply their own environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let vars = Vars(&get);
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
                base_url: parse_auth0_domain(&vars.required("AUTH0_DOMAIN")?).map_err(
                    |message| ConfigError {
                        var: "AUTH0_DOMAIN",
                        message,
                    },
                )?,
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
                    |s| {
                        s.parse::<u64>()
                            .ok()
                            .filter(|n| (10..=86_400).contains(n))
                            .map(Duration::from_secs)
                            .ok_or("must be a number of seconds from 10 to 86400")
                    },
                )?,
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
            reconciler: reconciler_settings(&vars)?,
            grants: grants_settings(&vars)?,
            log_format: vars.parsed("FLEETGATE_LOG_FORMAT", LogFormat::Text, |s| match s {
                "text" => Ok(LogFormat::Text),
                "json" => Ok(LogFormat::Json),
                _ => Err("must be text or json"),
            })?,
        })
    }

    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }
}

/// The variables naming each field's templates, and their defaults (docs/design.md).
pub const TEMPLATE_VARS: [(Field, &str, &str); 4] = [
    (
        Field::Callbacks,
        "FLEETGATE_TEMPLATE_CALLBACKS",
        "https://{host}/callback",
    ),
    (
        Field::AllowedLogoutUrls,
        "FLEETGATE_TEMPLATE_LOGOUT_URLS",
        "https://{host}/",
    ),
    (
        Field::WebOrigins,
        "FLEETGATE_TEMPLATE_WEB_ORIGINS",
        "https://{host}",
    ),
    (
        Field::AllowedOrigins,
        "FLEETGATE_TEMPLATE_ALLOWED_ORIGINS",
        "https://{host}",
    ),
];

pub const DEFAULT_RECONCILE_CRON: &str = "0 */5 * * * *";

fn reconciler_settings(vars: &Vars) -> Result<Option<ReconcilerSettings>> {
    let creds = [
        "AUTH0_CLIENT_ID",
        "AUTH0_CLIENT_SECRET",
        "AUTH0_SPA_CLIENT_ID",
    ]
    .map(|v| (v, vars.optional(v)));
    if creds.iter().all(|(_, v)| v.is_none()) {
        return Ok(None);
    }
    if let Some((var, _)) = creds.iter().find(|(_, v)| v.is_none()) {
        return Err(ConfigError {
            var,
            message: "is required when any of AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET, AUTH0_SPA_CLIENT_ID is set".into(),
        });
    }
    let [
        (_, Some(client_id)),
        (_, Some(secret)),
        (_, Some(spa_client_id)),
    ] = creds
    else {
        unreachable!("checked above")
    };
    let mut raw = Vec::new();
    for (field, var, default) in TEMPLATE_VARS {
        let value = vars.optional(var).unwrap_or_else(|| default.to_owned());
        Templates::parse(|f| if f == field { value.as_str() } else { "" }).map_err(|e| {
            ConfigError {
                var,
                message: e.to_string(),
            }
        })?;
        raw.push((field, value));
    }
    let templates = Templates::parse(|f| {
        raw.iter()
            .find(|(g, _)| *g == f)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    })
    .expect("each field was checked");
    let wildcard = vars.parsed("FLEETGATE_WILDCARD", true, boolean)?;
    let auto_create_applications =
        vars.parsed("FLEETGATE_AUTO_CREATE_APPLICATIONS", false, boolean)?;
    let auto_move = vars.parsed("FLEETGATE_AUTO_MOVE", false, boolean)?;
    let cap = vars.parsed("FLEETGATE_ALLOWLIST_CAP", 100, |s| {
        s.parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or("must be a whole number from 1 to 100")
    })?;
    let cron = vars
        .optional("FLEETGATE_RECONCILE_CRON")
        .unwrap_or_else(|| DEFAULT_RECONCILE_CRON.to_owned());
    tokio_cron_scheduler::Job::new_async(cron.as_str(), |_, _| Box::pin(async {})).map_err(
        |_| ConfigError {
            var: "FLEETGATE_RECONCILE_CRON",
            message: "must be a six-field cron expression with seconds, e.g. 0 */5 * * * *".into(),
        },
    )?;
    Ok(Some(ReconcilerSettings {
        client_id,
        client_secret: SecretString::from(secret),
        spa_client_id,
        templates,
        wildcard,
        cron,
        auto_create_applications,
        cap,
        auto_move,
    }))
}

pub const DEFAULT_GRANT_ROLES: &str = "member,admin";

fn grants_settings(vars: &Vars) -> Result<GrantsSettings> {
    let roles = vars.parsed(
        "FLEETGATE_GRANT_ROLES",
        DEFAULT_GRANT_ROLES.split(',').map(str::to_owned).collect(),
        |s| {
            let roles: Vec<String> = s.split(',').map(|r| r.trim().to_owned()).collect();
            let valid = |r: &String| {
                (1..=32).contains(&r.len())
                    && r.starts_with(|c: char| c.is_ascii_lowercase())
                    && r.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                    })
            };
            if !roles.iter().all(valid) {
                return Err("must be a comma-separated list of role names (a-z, 0-9, _ and -, starting with a letter, at most 32 characters)");
            }
            if roles.iter().any(|r| r == "owner") {
                return Err("must not name 'owner': the owner's access is implied");
            }
            Ok(roles)
        },
    )?;
    let changes_kept = vars.parsed("FLEETGATE_GRANT_CHANGES_KEPT", 1000, |s| {
        s.parse::<i64>()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or("must be a whole number from 1 to 1000000")
    })?;
    let key_grace = vars.parsed(
        "FLEETGATE_KEY_ROTATION_GRACE_SECS",
        Duration::from_secs(86_400),
        |s| {
            s.parse::<u64>()
                .ok()
                .filter(|n| *n <= 30 * 86_400)
                .map(Duration::from_secs)
                .ok_or("must be a number of seconds from 0 to 2592000 (30 days)")
        },
    )?;
    let action_secret = match vars.optional("FLEETGATE_ACTION_SECRET") {
        None => None,
        Some(s) if s.len() < 32 => {
            return Err(ConfigError {
                var: "FLEETGATE_ACTION_SECRET",
                message: "must be at least 32 characters (e.g. openssl rand -hex 32)".into(),
            });
        }
        Some(s) => Some(SecretString::from(s)),
    };
    let max_parked_per_caller = vars.parsed("FLEETGATE_MAX_PARKED_POLLS_PER_CALLER", 4, |s| {
        s.parse::<usize>()
            .ok()
            .filter(|n| (1..=100_000).contains(n))
            .ok_or("must be a whole number from 1 to 100000")
    })?;
    let ui_client_id = vars.optional("FLEETGATE_UI_CLIENT_ID");
    Ok(GrantsSettings {
        ui_client_id,
        roles,
        changes_kept,
        key_grace,
        action_secret,
        max_parked_per_caller,
    })
}

fn boolean(s: &str) -> std::result::Result<bool, &'static str> {
    match s {
        "true" | "on" | "1" => Ok(true),
        "false" | "off" | "0" => Ok(false),
        _ => Err("must be true or false"),
    }
}

struct Vars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Vars<'_> {
    fn optional(&self, var: &str) -> Option<String> {
        (self.0)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, var: &'static str) -> Result<String> {
        self.optional(var).ok_or(ConfigError {
            var,
            message: "is required but not set".into(),
        })
    }

    fn parsed<T>(
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
fn parse_auth0_domain(raw: &str) -> std::result::Result<String, String> {
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

/// A Standard Webhooks secret: `whsec_` followed by base64 of 24 to 64 random bytes.
fn check_webhook_secret(raw: &str) -> std::result::Result<(), &'static str> {
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
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

    fn env(pairs: &[(&str, &str)]) -> Result<Settings> {
        let mut map: HashMap<String, String> = [
            (
                "DATABASE_URL",
                "postgres://postgres:hunter2@localhost/fleetgate",
            ),
            ("AUTH0_DOMAIN", "acme.eu.auth0.com"),
            ("AUTH0_AUDIENCE", "https://fleetgate.example.com/api"),
            (
                "FLEETGATE_INSTANCE_AUDIENCE",
                "https://instances.fleetgate.example.com/api",
            ),
            ("FLEETGATE_WEBHOOK_SECRET", SECRET),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in pairs {
            map.insert((*k).to_owned(), (*v).to_owned());
        }
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    fn err_var(pairs: &[(&str, &str)]) -> &'static str {
        env(pairs).unwrap_err().var
    }

    #[test]
    fn defaults_and_derived_urls() {
        let s = env(&[]).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.auth0.base_url, "https://acme.eu.auth0.com");
        assert_eq!(s.auth0.issuer(), "https://acme.eu.auth0.com/");
        assert_eq!(
            s.auth0.jwks_url(),
            "https://acme.eu.auth0.com/.well-known/jwks.json"
        );
        assert_eq!(s.platform_domain, None);
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.auth0.claim_namespace, DEFAULT_CLAIM_NAMESPACE);
    }

    #[test]
    fn instances_have_an_audience_of_their_own() {
        assert_eq!(
            err_var(&[(
                "FLEETGATE_INSTANCE_AUDIENCE",
                "https://fleetgate.example.com/api"
            )]),
            "FLEETGATE_INSTANCE_AUDIENCE"
        );
        let mut map = vec![("FLEETGATE_CLAIM_NAMESPACE", "https://claims.example.com")];
        assert_eq!(
            env(&map).unwrap().auth0.claim_namespace,
            "https://claims.example.com/"
        );
        map[0].1 = "fleetgate";
        assert_eq!(err_var(&map), "FLEETGATE_CLAIM_NAMESPACE");
    }

    #[test]
    fn emulator_base_url_is_accepted_on_loopback_only() {
        assert_eq!(
            env(&[("AUTH0_DOMAIN", "http://127.0.0.1:4010/")])
                .unwrap()
                .auth0
                .base_url,
            "http://127.0.0.1:4010"
        );
        assert_eq!(
            err_var(&[("AUTH0_DOMAIN", "http://evil.example.com")]),
            "AUTH0_DOMAIN"
        );
        assert_eq!(
            err_var(&[("AUTH0_DOMAIN", "https://acme.auth0.com/path")]),
            "AUTH0_DOMAIN"
        );
        assert_eq!(err_var(&[("AUTH0_DOMAIN", "acme")]), "AUTH0_DOMAIN");
    }

    #[test]
    fn each_bad_value_names_its_variable() {
        assert_eq!(err_var(&[("DATABASE_URL", "")]), "DATABASE_URL");
        assert_eq!(err_var(&[("AUTH0_AUDIENCE", " ")]), "AUTH0_AUDIENCE");
        assert_eq!(err_var(&[("FLEETGATE_LISTEN", "8080")]), "FLEETGATE_LISTEN");
        assert_eq!(
            err_var(&[("FLEETGATE_PLATFORM_DOMAIN", "*.apps.example.com")]),
            "FLEETGATE_PLATFORM_DOMAIN"
        );
        assert_eq!(
            err_var(&[(
                "FLEETGATE_WEBHOOK_SECRET",
                "C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
            )]),
            "FLEETGATE_WEBHOOK_SECRET"
        );
        assert_eq!(
            err_var(&[("FLEETGATE_WEBHOOK_SECRET", "whsec_c2hvcnQ=")]),
            "FLEETGATE_WEBHOOK_SECRET"
        );
        assert_eq!(
            err_var(&[("FLEETGATE_LOG_FORMAT", "xml")]),
            "FLEETGATE_LOG_FORMAT"
        );
        assert_eq!(
            err_var(&[("FLEETGATE_DB_MAX_CONNECTIONS", "0")]),
            "FLEETGATE_DB_MAX_CONNECTIONS"
        );
        assert_eq!(
            err_var(&[("FLEETGATE_JWKS_CACHE_SECS", "1")]),
            "FLEETGATE_JWKS_CACHE_SECS"
        );
    }

    #[test]
    fn the_reconciler_needs_all_three_credentials() {
        assert!(env(&[]).unwrap().reconciler.is_none());
        let all = [
            ("AUTH0_CLIENT_ID", "m2m"),
            ("AUTH0_CLIENT_SECRET", "s3cr3t-value"),
            ("AUTH0_SPA_CLIENT_ID", "spa"),
        ];
        let r = env(&all).unwrap().reconciler.unwrap();
        assert!(r.wildcard);
        assert_eq!(r.cron, DEFAULT_RECONCILE_CRON);
        assert_eq!(r.templates, Templates::defaults());
        assert_eq!(err_var(&all[..2]), "AUTH0_SPA_CLIENT_ID");
        assert_eq!(err_var(&[all[0], all[2]]), "AUTH0_CLIENT_SECRET");
        let with = |extra: (&'static str, &'static str)| {
            let mut v = all.to_vec();
            v.push(extra);
            err_var(&v)
        };
        assert_eq!(
            with(("FLEETGATE_TEMPLATE_WEB_ORIGINS", "https://{host}/path")),
            "FLEETGATE_TEMPLATE_WEB_ORIGINS"
        );
        assert_eq!(
            with(("FLEETGATE_TEMPLATE_CALLBACKS", "https://example.com/cb")),
            "FLEETGATE_TEMPLATE_CALLBACKS"
        );
        assert_eq!(with(("FLEETGATE_WILDCARD", "maybe")), "FLEETGATE_WILDCARD");
        assert_eq!(
            with(("FLEETGATE_AUTO_CREATE_APPLICATIONS", "yes please")),
            "FLEETGATE_AUTO_CREATE_APPLICATIONS"
        );
        assert_eq!(
            with(("FLEETGATE_ALLOWLIST_CAP", "101")),
            "FLEETGATE_ALLOWLIST_CAP"
        );
        assert!(!r.auto_create_applications);
        assert_eq!(r.cap, 100);
        assert_eq!(
            with(("FLEETGATE_RECONCILE_CRON", "*/5 * * * *")),
            "FLEETGATE_RECONCILE_CRON"
        );
        let shown = format!("{:?}", env(&all).unwrap());
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
    }

    #[test]
    fn secrets_never_print() {
        let s = env(&[]).unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("C2FVsBQIhrscChlQIMV"), "{shown}");
        let e = env(&[("FLEETGATE_WEBHOOK_SECRET", "whsec_!!notbase64secretvalue")]).unwrap_err();
        assert!(!e.to_string().contains("notbase64secretvalue"));
    }

    #[test]
    fn grants_settings_have_defaults_and_rules() {
        let g = env(&[]).unwrap().grants;
        assert_eq!(g.roles, ["member", "admin"]);
        assert_eq!(g.changes_kept, 1000);
        assert_eq!(g.key_grace, Duration::from_secs(86_400));
        assert!(g.action_secret.is_none());
        let g = env(&[
            ("FLEETGATE_GRANT_ROLES", "viewer, editor,admin"),
            ("FLEETGATE_ACTION_SECRET", &"k".repeat(40)),
        ])
        .unwrap()
        .grants;
        assert_eq!(g.roles, ["viewer", "editor", "admin"]);
        assert!(!format!("{g:?}").contains(&"k".repeat(40)));
        for (var, value) in [
            ("FLEETGATE_GRANT_ROLES", "member,owner"),
            ("FLEETGATE_GRANT_ROLES", "Member"),
            ("FLEETGATE_GRANT_ROLES", "member,,admin"),
            ("FLEETGATE_GRANT_CHANGES_KEPT", "0"),
            ("FLEETGATE_KEY_ROTATION_GRACE_SECS", "-1"),
            ("FLEETGATE_ACTION_SECRET", "short"),
        ] {
            assert_eq!(err_var(&[(var, value)]), var, "{value}");
        }
    }
}
