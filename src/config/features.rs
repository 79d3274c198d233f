//! The settings of the reconciler and of grants.

use std::time::Duration;

use secrecy::SecretString;

use super::{
    ConfigError, GrantsSettings, ReconcilerSettings, Result, Vars, boolean, seconds_within,
};
use crate::domain::{Field, Templates};

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

pub(super) fn reconciler_settings(
    vars: &Vars,
    reserved_clients: &[String],
) -> Result<Option<ReconcilerSettings>> {
    // Every setting is checked whether or not the reconciler runs: a bad value stops the first
    // start, not the one after credentials are added.
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
    let take_over: Vec<String> = vars
        .optional("FLEETGATE_TAKE_OVER_APPLICATIONS")
        .unwrap_or_default()
        .split(',')
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
        .collect();
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
        reserved_clients: reserved_clients.to_vec(),
        take_over,
    }))
}

pub const DEFAULT_GRANT_ROLES: &str = "member,admin";

pub(super) fn grants_settings(vars: &Vars) -> Result<GrantsSettings> {
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
        seconds_within(
            0..=30 * 86_400,
            "must be a number of seconds from 0 to 2592000 (30 days)",
        ),
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
    let last_logins_flush = vars.parsed(
        "FLEETGATE_LAST_LOGINS_FLUSH_SECS",
        Duration::from_secs(15),
        seconds_within(1..=300, "must be a number of seconds from 1 to 300"),
    )?;
    Ok(GrantsSettings {
        ui_client_id,
        last_logins_flush,
        roles,
        changes_kept,
        key_grace,
        action_secret,
        max_parked_per_caller,
    })
}
