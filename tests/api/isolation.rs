//! Every route against every kind of caller that may not use it: the answer is 401, 403 or
//! 404, an instance-scoped 404 is word for word the one for an instance that does not exist,
//! and nothing changes.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

const ACTION_SECRET: &str = "isolation-action-secret-0123456789abcdef";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Admin,
    Owner,
    InstanceAdmin,
    Member,
    Stranger,
    OtherOwner,
    OtherInstanceAdmin,
    OwnKey,
    OtherKey,
    Action,
    Nobody,
}

const EVERYONE: [Who; 11] = [
    Who::Admin,
    Who::Owner,
    Who::InstanceAdmin,
    Who::Member,
    Who::Stranger,
    Who::OtherOwner,
    Who::OtherInstanceAdmin,
    Who::OwnKey,
    Who::OtherKey,
    Who::Action,
    Who::Nobody,
];

/// Who may call each route (on instance `acme`, as user `auth0|owner-1`).
fn allowed(method: &Method, path: &str) -> &'static [Who] {
    use Who::*;
    match (method.as_str(), path) {
        (_, "/healthz" | "/readyz" | "/metrics" | "/ui/" | "/ui/config.json" | "/ui/{file}") => {
            &EVERYONE
        }
        // Signed, not bearer: nobody gets in without a signature.
        (_, "/v1/hooks/deploy") => &[],
        ("GET", "/v1/instances/{id}") => &[Admin, Owner, InstanceAdmin],
        ("GET", "/v1/instances/{id}/config" | "/v1/instances/{id}/grants") => {
            &[Admin, Owner, InstanceAdmin, OwnKey]
        }
        (_, "/v1/instances/{id}/grants" | "/v1/instances/{id}/grants/{grant_id}") => {
            &[Admin, Owner, InstanceAdmin]
        }
        (_, "/v1/instances/{id}/keys" | "/v1/instances/{id}/keys/rotate") => &[Admin, Owner],
        ("GET", "/v1/users/{user_id}/grants") => &[Admin, Owner],
        // Every person has a list of their own (tests/api/people.rs: only theirs).
        ("GET", "/v1/me/instances") => &[
            Admin,
            Owner,
            InstanceAdmin,
            Member,
            Stranger,
            OtherOwner,
            OtherInstanceAdmin,
        ],
        ("GET", "/v1/instances/{id}/people") => &[Admin, Owner, InstanceAdmin],
        ("POST", "/v1/login-decisions") => &[Action],
        _ => &[Admin],
    }
}

fn body(method: &Method, path: &str) -> Option<Value> {
    Some(match (method.as_str(), path) {
        ("POST", "/v1/hooks/deploy") => deployed("acme", "auth0|eve", &["evil.example.com"]),
        ("POST", "/v1/instances") => json!({"id": "intruder", "owner": "auth0|eve"}),
        ("PATCH", "/v1/instances/{id}") => json!({"status": "suspended"}),
        ("POST", "/v1/instances/{id}/domains") => json!({"hostname": "evil.example.com"}),
        ("PUT", "/v1/instances/{id}/domains") => json!({"domains": ["evil.example.com"]}),
        ("POST", "/v1/applications") => json!({"client_id": "evilclient"}),
        ("POST", "/v1/instances/{id}/move") => json!({}),
        ("POST", "/v1/instances/{id}/grants") => json!({"user_id": "auth0|eve", "role": "admin"}),
        ("PATCH", "/v1/instances/{id}/grants/{grant_id}") => json!({"role": "admin"}),
        ("POST", "/v1/login-decisions") => {
            json!({"user_id": "auth0|eve", "redirect_uri": "https://www.acme.com/callback"})
        }
        _ => return None,
    })
}

/// Everything fleetgate holds, to prove that refused calls changed nothing.
async fn everything(pool: &PgPool) -> Value {
    sqlx::query_scalar(
        "SELECT json_build_object( \
           'instances', (SELECT coalesce(json_agg(i ORDER BY id), '[]') FROM instances i), \
           'domains', (SELECT coalesce(json_agg(d ORDER BY hostname), '[]') FROM domains d), \
           'grants', (SELECT coalesce(json_agg(g ORDER BY id), '[]') FROM grants g), \
           'revisions', (SELECT coalesce(json_agg(r ORDER BY instance_id), '[]') FROM grant_revisions r), \
           'keys', (SELECT count(*) FROM instance_keys), \
           'applications', (SELECT count(*) FROM applications), \
           'audit', (SELECT count(*) FROM audit_log), \
           'runs', (SELECT count(*) FROM reconcile_runs))",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[sqlx::test]
async fn no_caller_reaches_what_is_not_theirs(pool: PgPool) {
    let app = TestApp::spawn_with(
        pool,
        TestTenant::start().await,
        &[("FLEETGATE_ACTION_SECRET", ACTION_SECRET.to_owned())],
    )
    .await;
    let acme = app
        .deploy("acme", &["acme.apps.example.com", "www.acme.com"])
        .await;
    let (_, other) = app
        .hook(&deployed(
            "other",
            "auth0|owner-2",
            &["other.apps.example.com"],
        ))
        .await;
    let mut grant_ids = vec![];
    for (instance, user, role) in [
        ("acme", "auth0|ann", "admin"),
        ("acme", "auth0|max", "member"),
        ("other", "auth0|oscar", "admin"),
    ] {
        let (status, g) = into_json(
            app.admin(Method::POST, &format!("/v1/instances/{instance}/grants"))
                .json(&json!({"user_id": user, "role": role}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 201, "{g}");
        grant_ids.push(g["id"].as_str().unwrap().to_owned());
    }
    let user = |sub: &str| {
        let mut claims = app.tenant.claims(&[]);
        claims["sub"] = sub.into();
        Some(app.tenant.sign(&claims))
    };
    let bearer = |who: Who| match who {
        Who::Admin => Some(app.admin_token.clone()),
        Who::Owner => user("auth0|owner-1"),
        Who::InstanceAdmin => user("auth0|ann"),
        Who::Member => user("auth0|max"),
        Who::Stranger => user("auth0|eve"),
        Who::OtherOwner => user("auth0|owner-2"),
        Who::OtherInstanceAdmin => user("auth0|oscar"),
        Who::OwnKey => acme["instance_key"].as_str().map(str::to_owned),
        Who::OtherKey => other["instance_key"].as_str().map(str::to_owned),
        Who::Action => Some(ACTION_SECRET.to_owned()),
        Who::Nobody => None,
    };
    let concrete = |path: &str, instance: &str| {
        path.replace("{id}", instance)
            .replace("{hostname}", "www.acme.com")
            .replace("{grant_id}", &grant_ids[1])
            .replace("{client_id}", "someclient")
            .replace("{user_id}", "auth0%7Cowner-1")
    };

    let before = everything(&app.pool).await;
    let mut tried = 0;
    for (method, path, _) in fleetgate::http::route_table() {
        let method: Method = method.as_str().parse().unwrap();
        let may = allowed(&method, path);
        for who in EVERYONE.into_iter().filter(|w| !may.contains(w)) {
            let send = |url: String| {
                let mut req = app.http.request(method.clone(), app.url(&url));
                if let Some(b) = bearer(who) {
                    req = req.bearer_auth(b);
                }
                if let Some(b) = body(&method, path) {
                    req = req.json(&b);
                }
                req.send()
            };
            let res = send(concrete(path, "acme")).await.unwrap();
            let status = res.status().as_u16();
            let answer: Value = res.json().await.unwrap_or(Value::Null);
            assert!(
                matches!(status, 401 | 403 | 404),
                "{who:?} {method} {path}: {status} {answer}"
            );
            if status == 404 && path.contains("{id}") {
                // Exactly what an instance that does not exist gets.
                let ghost = send(concrete(path, "ghost")).await.unwrap();
                let ghost_status = ghost.status().as_u16();
                let ghost: Value = ghost.json().await.unwrap();
                assert_eq!(ghost_status, 404, "{who:?} {method} {path}: {ghost}");
                assert_eq!(
                    answer["detail"].as_str().unwrap().replace("acme", "ghost"),
                    ghost["detail"],
                    "{who:?} {method} {path}"
                );
            }
            tried += 1;
        }
    }
    assert_eq!(
        everything(&app.pool).await,
        before,
        "a refused call changed something"
    );
    assert!(tried > 150, "{tried} refused calls tried");
}

/// The caller is judged before anything else: without a credential, every route (the deploy
/// hook included, whose signature is missing) answers 401 whatever is wrong with the body or
/// the query, and nothing changes.
#[sqlx::test]
async fn without_credentials_every_route_is_401_before_its_input_is_read(pool: PgPool) {
    let app = TestApp::spawn_with(
        pool,
        TestTenant::start().await,
        &[
            ("FLEETGATE_ACTION_SECRET", ACTION_SECRET.to_owned()),
            // Every request here fails to authenticate, from one address.
            ("FLEETGATE_AUTH_FAILURES_PER_MINUTE", "100000".to_owned()),
        ],
    )
    .await;
    app.deploy("acme", &["acme.apps.example.com"]).await;
    let before = everything(&app.pool).await;
    let oversized = "x".repeat(fleetgate::http::framework::JSON_LIMIT + 1);
    let bad_inputs: [(&str, &str, String); 4] = [
        (
            "?wait=abc&since=-1&limit=zz&cursor=%ff",
            "application/json",
            "{}".into(),
        ),
        ("", "application/json", "{not json".into()),
        ("", "application/json", oversized),
        ("?unknown=1", "text/plain", "\u{0}\u{1}".into()),
    ];
    let mut tried = 0;
    for (method, path, _) in fleetgate::http::route_table() {
        if !path.starts_with("/v1/") {
            continue;
        }
        let path = path
            .replace("{id}", "acme")
            .replace("{hostname}", "acme.apps.example.com")
            .replace("{grant_id}", "not-a-uuid")
            .replace("{client_id}", "someclient")
            .replace("{user_id}", "auth0%7Cowner-1");
        for (query, content_type, body) in &bad_inputs {
            let res = app
                .http
                .request(
                    method.as_str().parse().unwrap(),
                    app.url(&format!("{path}{query}")),
                )
                .header("content-type", *content_type)
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert!(
                res.headers().contains_key("www-authenticate"),
                "{method} {path}{query}: no WWW-Authenticate"
            );
            let detail = assert_problem(res, 401, "unauthorized").await;
            assert!(!detail.is_empty(), "{method} {path}");
            tried += 1;
        }
    }
    assert!(tried >= 100, "{tried} requests tried");
    assert_eq!(
        everything(&app.pool).await,
        before,
        "a refused call changed something"
    );
}
