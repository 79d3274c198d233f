//! Settings read from a made-up environment.

use super::*;
use crate::domain::Templates;
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

#[test]
fn reconciler_settings_are_checked_while_the_reconciler_is_off() {
    assert!(env(&[]).unwrap().reconciler.is_none());
    for (var, bad) in [
        ("FLEETGATE_ALLOWLIST_CAP", "101"),
        ("FLEETGATE_WILDCARD", "maybe"),
        ("FLEETGATE_AUTO_MOVE", "sometimes"),
        ("FLEETGATE_RECONCILE_CRON", "*/5 * * * *"),
        ("FLEETGATE_TEMPLATE_CALLBACKS", "https://example.com/cb"),
    ] {
        assert_eq!(err_var(&[(var, bad)]), var);
    }
}

#[test]
fn fleetgates_own_applications_are_never_the_instances_spa() {
    let reconciler = [
        ("AUTH0_CLIENT_ID", "m2m"),
        ("AUTH0_CLIENT_SECRET", "s3cr3t-value"),
        ("AUTH0_SPA_CLIENT_ID", "spa"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v = reconciler.to_vec();
        v.extend_from_slice(extra);
        v
    };
    // Default: the M2M application, and the status page's when set.
    assert_eq!(env(&reconciler).unwrap().auth0.admin_clients, ["m2m"]);
    let s = env(&with(&[("FLEETGATE_UI_CLIENT_ID", "console")])).unwrap();
    assert_eq!(s.auth0.admin_clients, ["console", "m2m"]);
    assert_eq!(s.reconciler.unwrap().reserved_clients, ["console", "m2m"]);
    // Named: those, and the status page's whatever the list says.
    let s = env(&with(&[
        ("FLEETGATE_UI_CLIENT_ID", "console"),
        ("FLEETGATE_ADMIN_CLIENTS", " tool-a, tool-b,,console "),
    ]))
    .unwrap();
    assert_eq!(s.auth0.admin_clients, ["console", "tool-a", "tool-b"]);
    assert!(env(&[]).unwrap().auth0.admin_clients.is_empty());
    assert_eq!(
        err_var(&with(&[("FLEETGATE_UI_CLIENT_ID", "spa")])),
        "FLEETGATE_UI_CLIENT_ID"
    );
    assert_eq!(
        err_var(&with(&[("FLEETGATE_ADMIN_CLIENTS", "tool,spa")])),
        "FLEETGATE_ADMIN_CLIENTS"
    );
}

#[test]
fn a_custom_domain_issuer_is_taken_and_checked() {
    let s = env(&[("AUTH0_ISSUER", "https://login.acme.com/")]).unwrap();
    assert_eq!(s.auth0.issuer(), "https://login.acme.com/");
    assert_eq!(
        s.auth0.jwks_url(),
        "https://acme.eu.auth0.com/.well-known/jwks.json",
        "keys are fetched from the tenant"
    );
    assert_eq!(
        env(&[("AUTH0_ISSUER", "login.acme.com")])
            .unwrap()
            .auth0
            .issuer(),
        "https://login.acme.com/"
    );
    assert_eq!(
        err_var(&[("AUTH0_ISSUER", "http://login.acme.com/")]),
        "AUTH0_ISSUER"
    );
}

#[test]
fn relay_mode_needs_the_relay_its_own_application_and_the_reconciler() {
    let reconciler = [
        ("AUTH0_CLIENT_ID", "m2m"),
        ("AUTH0_CLIENT_SECRET", "m2m-secret"),
        ("AUTH0_SPA_CLIENT_ID", "spa"),
    ];
    let relay = [
        ("FLEETGATE_LOGIN_MODE", "relay"),
        ("FLEETGATE_RELAY_URL", "login.platform.example"),
        ("FLEETGATE_RELAY_CLIENT_ID", "relay"),
        ("FLEETGATE_RELAY_CLIENT_SECRET", "relay-secret"),
    ];
    let all: Vec<(&str, &str)> = reconciler.iter().chain(&relay).copied().collect();
    let s = env(&all).unwrap();
    let r = s.relay.expect("relay settings");
    assert_eq!(s.login_mode, LoginMode::Relay);
    assert_eq!(r.callback(), "https://login.platform.example/callback");
    assert_eq!(r.logged_out(), "https://login.platform.example/logged-out");
    assert!(
        s.reconciler
            .unwrap()
            .reserved_clients
            .contains(&"relay".to_owned()),
        "the pool never holds the relay's application"
    );
    assert!(!format!("{:?}", r.client_secret).contains("relay-secret"));
    assert_eq!(
        err_var(&relay),
        "FLEETGATE_LOGIN_MODE",
        "without the reconciler"
    );
    for (var, value) in [
        ("FLEETGATE_LOGIN_MODE", "sometimes"),
        ("FLEETGATE_RELAY_URL", "http://login.platform.example"),
        ("FLEETGATE_RELAY_CLIENT_ID", "spa"),
        ("FLEETGATE_RELAY_CLIENT_ID", "m2m"),
        ("FLEETGATE_RELAY_CLIENT_IP_HEADER", "not a header"),
    ] {
        let mut bad = all.clone();
        bad.push((var, value));
        assert_eq!(err_var(&bad), var, "{var}={value}");
    }
    for (missing, _) in relay.iter().skip(1) {
        let without: Vec<(&str, &str)> =
            all.iter().filter(|(k, _)| k != missing).copied().collect();
        assert_eq!(err_var(&without), *missing);
    }
    assert!(env(&[]).unwrap().relay.is_none(), "direct by default");
}

#[test]
fn outbound_events_need_a_secret_of_their_own() {
    let url = (
        "FLEETGATE_EVENTS_URL",
        "https://platform.example/hooks/fleetgate",
    );
    let other = "whsec_c2VjcmV0LWZvci1ldmVudHMtMDEyMzQ1Njc4OQ==";
    assert!(env(&[]).unwrap().events.is_none());
    assert_eq!(err_var(&[url]), "FLEETGATE_EVENTS_SECRET");
    assert_eq!(
        err_var(&[url, ("FLEETGATE_EVENTS_SECRET", SECRET)]),
        "FLEETGATE_EVENTS_SECRET",
        "the deploy hook's secret is refused"
    );
    assert_eq!(
        err_var(&[url, ("FLEETGATE_EVENTS_SECRET", "not-a-secret")]),
        "FLEETGATE_EVENTS_SECRET"
    );
    for bad in [
        "ftp://x.example/",
        "not a url",
        "https://user:pw@x.example/",
    ] {
        assert_eq!(
            err_var(&[
                ("FLEETGATE_EVENTS_URL", bad),
                ("FLEETGATE_EVENTS_SECRET", other)
            ]),
            "FLEETGATE_EVENTS_URL",
            "{bad}"
        );
    }
    let s = env(&[url, ("FLEETGATE_EVENTS_SECRET", other)]).unwrap();
    let events = s.events.unwrap();
    assert_eq!(events.retry_schedule.len(), 7);
    assert_eq!(events.timeout, Duration::from_secs(15));
    assert!(!events.in_clear());
    assert_eq!(
        err_var(&[
            url,
            ("FLEETGATE_EVENTS_SECRET", other),
            ("FLEETGATE_EVENTS_RETRY_SCHEDULE", "soon")
        ]),
        "FLEETGATE_EVENTS_RETRY_SCHEDULE"
    );
    let plain = env(&[
        ("FLEETGATE_EVENTS_URL", "http://receiver.internal/events"),
        ("FLEETGATE_EVENTS_SECRET", other),
    ])
    .unwrap();
    assert!(plain.events.unwrap().in_clear());
}
