//! Every documented answer's body matches its schema in `api-spec/openapi.yaml`: one run through
//! every route's success answers (and a problem of each kind that can be caused from outside),
//! each body validated by a JSON Schema validator against the schema the spec documents for that
//! route and status. A documented success answer the run does not reach fails the test, so a
//! new route must come with its answer here.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

use crate::{helpers::*, schema::Checker};

const ACTION_SECRET: &str = "action-secret-for-the-schema-test-0123456789";

#[sqlx::test]
async fn every_documented_answer_matches_its_schema(pool: PgPool) {
    let tenant = TestTenant::start().await;
    // Made before fleetgate spends the tenant's Management API budget.
    let other = tenant.create_application("bodies second").await;
    let mut vars = tenant.reconciler_vars().await;
    vars.push(("FLEETGATE_ACTION_SECRET", ACTION_SECRET.to_owned()));
    vars.push(("FLEETGATE_UI_CLIENT_ID", "status-console".to_owned()));
    let receiver = Receiver::start().await;
    vars.push(("FLEETGATE_EVENTS_URL", receiver.url.clone()));
    vars.push(("FLEETGATE_EVENTS_SECRET", EVENTS_SECRET.to_owned()));
    let spa = vars
        .iter()
        .find(|(k, _)| *k == "AUTH0_SPA_CLIENT_ID")
        .map(|(_, v)| v.clone())
        .unwrap();
    let app = TestApp::spawn_with(pool, tenant, &vars).await;
    let mut c = Checker::new();
    let admin = |m: Method, p: &str| app.admin(m, p);
    let as_bearer = |bearer: &str, m: Method, p: &str| {
        app.http
            .request(m, app.url(p))
            .bearer_auth(bearer.to_owned())
    };
    use Method as M;

    // Health and the status page's settings.
    c.check(M::GET, "/healthz", app.http.get(app.url("/healthz")))
        .await;
    c.check(M::GET, "/readyz", app.http.get(app.url("/readyz")))
        .await;
    c.check(
        M::GET,
        "/ui/config.json",
        app.http.get(app.url("/ui/config.json")),
    )
    .await;

    // The registry: a hook, then the admin API.
    let event = deployed(
        "acme",
        "auth0|owner-1",
        &["acme.apps.example.com", "www.acme.com"],
    );
    let body = event.to_string();
    let id = "msg_bodies_1";
    let (status, acme) = c
        .check(
            M::POST,
            "/v1/hooks/deploy",
            app.signed_hook(id, chrono::Utc::now().timestamp(), body),
        )
        .await;
    assert_eq!(status, 200, "{acme}");
    let key = acme["instance_key"].as_str().unwrap().to_owned();
    c.check(M::GET, "/v1/instances", admin(M::GET, "/v1/instances"))
        .await;
    let (status, _) = c
        .check(
            M::POST,
            "/v1/instances",
            admin(M::POST, "/v1/instances").json(&json!({"id": "beta", "owner": "auth0|owner-2", "domains": ["beta.apps.example.com"]})),
        )
        .await;
    assert_eq!(status, 201);
    c.check(
        M::GET,
        "/v1/instances/{id}",
        admin(M::GET, "/v1/instances/beta"),
    )
    .await;
    c.check(
        M::PATCH,
        "/v1/instances/{id}",
        admin(M::PATCH, "/v1/instances/beta").json(&json!({"status": "suspended"})),
    )
    .await;
    c.check(
        M::GET,
        "/v1/instances/{id}/domains",
        admin(M::GET, "/v1/instances/beta/domains"),
    )
    .await;
    c.check(
        M::POST,
        "/v1/instances/{id}/domains",
        admin(M::POST, "/v1/instances/beta/domains").json(&json!({"hostname": "www.beta.com"})),
    )
    .await;
    c.check(
        M::PUT,
        "/v1/instances/{id}/domains",
        admin(M::PUT, "/v1/instances/beta/domains")
            .json(&json!({"domains": ["beta.apps.example.com", "shop.beta.com"]})),
    )
    .await;
    c.check(
        M::DELETE,
        "/v1/instances/{id}/domains/{hostname}",
        admin(M::DELETE, "/v1/instances/beta/domains/shop.beta.com"),
    )
    .await;
    c.check(M::GET, "/v1/audit", admin(M::GET, "/v1/audit?limit=2"))
        .await;

    // The reconciler and the pool.
    c.check(
        M::GET,
        "/v1/reconcile/plan",
        admin(M::GET, "/v1/reconcile/plan"),
    )
    .await;
    let (status, run) = c
        .check(M::POST, "/v1/reconcile", admin(M::POST, "/v1/reconcile"))
        .await;
    assert_eq!(status, 200, "{run}");
    c.check(
        M::GET,
        "/v1/reconcile/runs",
        admin(M::GET, "/v1/reconcile/runs"),
    )
    .await;
    c.check(
        M::GET,
        "/v1/reconcile/status",
        admin(M::GET, "/v1/reconcile/status"),
    )
    .await;
    c.check(
        M::GET,
        "/v1/instances/{id}/sync",
        admin(M::GET, "/v1/instances/acme/sync"),
    )
    .await;
    c.check(
        M::GET,
        "/v1/instances/{id}/config",
        as_bearer(&key, M::GET, "/v1/instances/acme/config"),
    )
    .await;
    c.check(
        M::GET,
        "/v1/applications",
        admin(M::GET, "/v1/applications"),
    )
    .await;
    let (status, _) = c
        .check(
            M::POST,
            "/v1/applications",
            admin(M::POST, "/v1/applications").json(&json!({"client_id": other})),
        )
        .await;
    assert_eq!(status, 201);
    c.check(
        M::POST,
        "/v1/instances/{id}/move",
        admin(M::POST, "/v1/instances/beta/move").json(&json!({"client_id": spa})),
    )
    .await;
    c.check(
        M::DELETE,
        "/v1/applications/{client_id}",
        admin(M::DELETE, &format!("/v1/applications/{other}")),
    )
    .await;

    // Grants, keys and login decisions.
    let (status, grant) = c
        .check(
            M::POST,
            "/v1/instances/{id}/grants",
            admin(M::POST, "/v1/instances/acme/grants").json(&json!({"user_id": "auth0|ann"})),
        )
        .await;
    assert_eq!(status, 201, "{grant}");
    let grant_id = grant["id"].as_str().unwrap().to_owned();
    c.check(
        M::POST,
        "/v1/instances/{id}/grants",
        admin(M::POST, "/v1/instances/acme/grants")
            .json(&json!({"email": "bob@example.com", "role": "admin"})),
    )
    .await;
    c.check(
        M::PATCH,
        "/v1/instances/{id}/grants/{grant_id}",
        admin(M::PATCH, &format!("/v1/instances/acme/grants/{grant_id}"))
            .json(&json!({"role": "admin"})),
    )
    .await;
    let (_, snapshot) = c
        .check(
            M::GET,
            "/v1/instances/{id}/grants",
            as_bearer(&key, M::GET, "/v1/instances/acme/grants"),
        )
        .await;
    let revision = snapshot["revision"].as_i64().unwrap();
    c.check(
        M::PUT,
        "/v1/instances/{id}/grants",
        admin(M::PUT, "/v1/instances/acme/grants").json(&json!({"grants": [{"user_id": "auth0|ann", "role": "member"}, {"user_id": "auth0|cy"}]})),
    )
    .await;
    // The delta since the snapshot.
    c.check(
        M::GET,
        "/v1/instances/{id}/grants",
        as_bearer(
            &key,
            M::GET,
            &format!("/v1/instances/acme/grants?since={revision}"),
        ),
    )
    .await;
    c.check(
        M::GET,
        "/v1/users/{user_id}/grants",
        admin(M::GET, "/v1/users/auth0%7Cann/grants"),
    )
    .await;
    let (_, now) = c
        .check(
            M::GET,
            "/v1/instances/{id}/grants",
            as_bearer(&key, M::GET, "/v1/instances/acme/grants"),
        )
        .await;
    let cy = now["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["user_id"] == "auth0|cy")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    c.check(
        M::DELETE,
        "/v1/instances/{id}/grants/{grant_id}",
        admin(M::DELETE, &format!("/v1/instances/acme/grants/{cy}")),
    )
    .await;
    c.check(
        M::GET,
        "/v1/instances/{id}/keys",
        admin(M::GET, "/v1/instances/acme/keys"),
    )
    .await;
    c.check(
        M::POST,
        "/v1/instances/{id}/keys/rotate",
        admin(M::POST, "/v1/instances/acme/keys/rotate").json(&json!({})),
    )
    .await;
    for decision in [
        json!({"user_id": "auth0|ann", "redirect_uri": "https://www.acme.com/callback", "client_id": spa}),
        json!({"user_id": "auth0|nobody", "redirect_uri": "https://www.acme.com/callback", "client_id": spa}),
        json!({"user_id": "auth0|ann", "instance_id": "acme"}),
    ] {
        c.check(
            M::POST,
            "/v1/login-decisions",
            as_bearer(ACTION_SECRET, M::POST, "/v1/login-decisions").json(&decision),
        )
        .await;
    }
    c.check(
        M::DELETE,
        "/v1/instances/{id}",
        admin(M::DELETE, "/v1/instances/beta"),
    )
    .await;

    // Problems, each kind that can be caused from outside.
    let owner = {
        let mut claims = app.tenant.claims(&[]);
        claims["sub"] = "auth0|someone".into();
        app.tenant.sign(&claims)
    };
    c.check(
        M::GET,
        "/v1/instances",
        admin(M::GET, "/v1/instances?limit=0"),
    )
    .await; // 400
    c.check(
        M::GET,
        "/v1/instances",
        app.http.get(app.url("/v1/instances")),
    )
    .await; // 401
    c.check(
        M::GET,
        "/v1/instances",
        as_bearer(&owner, M::GET, "/v1/instances"),
    )
    .await; // 403
    c.check(
        M::GET,
        "/v1/instances/{id}",
        admin(M::GET, "/v1/instances/nope"),
    )
    .await; // 404
    c.check(
        M::POST,
        "/v1/instances",
        admin(M::POST, "/v1/instances").json(&json!({"id": "acme", "owner": "auth0|x"})),
    )
    .await; // 409
    c.check(
        M::POST,
        "/v1/instances",
        admin(M::POST, "/v1/instances")
            .body("{}")
            .header("content-type", "text/plain"),
    )
    .await; // 415
    c.check(
        M::POST,
        "/v1/instances",
        admin(M::POST, "/v1/instances").json(&json!({"id": "Not An Id", "owner": "auth0|x"})),
    )
    .await; // 422
    c.check(
        M::POST,
        "/v1/instances",
        admin(M::POST, "/v1/instances")
            .header("content-type", "application/json")
            .body(vec![b' '; 2 << 20]),
    )
    .await; // 413
    c.check(
        M::GET,
        "/v1/instances/{id}/grants",
        as_bearer(&key, M::GET, "/v1/instances/acme/grants?since=999"),
    )
    .await;

    // The access page's reads.
    c.check(
        M::GET,
        "/v1/me/instances",
        admin(M::GET, "/v1/me/instances"),
    )
    .await;
    c.check(
        M::GET,
        "/v1/instances/{id}/people",
        admin(M::GET, "/v1/instances/acme/people"),
    )
    .await;

    // The outbox (the grants above made events).
    receiver.until_acknowledged(1, 10).await;
    let (_, events) = c
        .check(M::GET, "/v1/events", admin(M::GET, "/v1/events?limit=2"))
        .await;
    let id = events["items"][0]["id"].as_str().unwrap().to_owned();
    c.check(
        M::POST,
        "/v1/events/{id}/redeliver",
        admin(M::POST, &format!("/v1/events/{id}/redeliver")),
    )
    .await;

    // The relay's token answers need a world of their own: tests/api/relay.rs checks them.
    let unreached: Vec<_> = c
        .documented_successes()
        .difference(&c.reached)
        .filter(|(_, path, _)| path != "/oauth/token")
        .cloned()
        .collect();
    assert!(
        c.failures.is_empty() && unreached.is_empty(),
        "answers that do not match their schema:\n{}\ndocumented success answers this test does not reach: {unreached:?}",
        c.failures.join("\n")
    );
    let problems: BTreeSet<&str> = c
        .reached
        .iter()
        .map(|(_, _, s)| s.as_str())
        .filter(|s| s.starts_with('4'))
        .collect();
    assert_eq!(
        problems,
        ["400", "401", "403", "404", "409", "413", "415", "422"].into(),
        "a problem of each kind was checked"
    );
}
