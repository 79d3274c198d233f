//! Login decisions: every case the post-login Action asks about, off without the Action's
//! secret, and redirect URIs that must never resolve to an instance.

use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::*;

#[sqlx::test]
async fn login_decisions_for_each_case(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    let admin = f.app.admin_token.clone();
    f.grant(
        &admin,
        "acme",
        json!({"user_id": "auth0|ann", "role": "admin"}),
    )
    .await;
    let (_, invite) = f
        .grant(&admin, "acme", json!({"email": "bob@example.com"}))
        .await;
    let uri = "https://www.acme.com/callback?x=1";
    let cases = [
        (login(OWNER, None, false, uri), true, "owner", Some("owner")),
        (
            login("auth0|ann", None, false, uri),
            true,
            "granted",
            Some("admin"),
        ),
        (
            login("auth0|eve", Some("eve@example.com"), true, uri),
            false,
            "not_granted",
            None,
        ),
        (
            login("auth0|bob", Some("bob@example.com"), false, uri),
            false,
            "email_not_verified",
            None,
        ),
        (
            login(OWNER, None, false, "https://nobody.example.org/cb"),
            false,
            "unknown_host",
            None,
        ),
        (
            login(OWNER, None, false, "https://127.0.0.1/cb"),
            false,
            "unknown_host",
            None,
        ),
        (
            login(OWNER, None, false, "https://WWW.ACME.COM:8443/cb"),
            true,
            "owner",
            Some("owner"),
        ),
    ];
    for (body, allow, reason, role) in cases {
        let (status, d) = f.decide(body.clone()).await;
        assert_eq!(status, 200, "{d}");
        assert_eq!(
            (
                d["allow"].as_bool(),
                d["reason"].as_str(),
                d["role"].as_str()
            ),
            (Some(allow), Some(reason), role),
            "{body}"
        );
        if reason != "unknown_host" {
            assert_eq!(d["instance_id"], "acme");
        }
    }

    // Accepting an invitation binds it, which instances see as a change.
    let (_, tag, _) = f.poll("", None).await;
    let (_, d) = f
        .decide(login("auth0|bob", Some("Bob@Example.com"), true, uri))
        .await;
    assert_eq!(
        (
            d["allow"].as_bool(),
            d["reason"].as_str(),
            d["role"].as_str()
        ),
        (Some(true), Some("invitation_accepted"), Some("member"))
    );
    let (status, _, delta) = f
        .poll(&format!("?since={}", tag.unwrap().trim_matches('"')), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(delta["updated"][0]["id"], invite["id"]);
    assert_eq!(delta["updated"][0]["user_id"], "auth0|bob");
    let (_, d) = f.decide(login("auth0|bob", None, false, uri)).await;
    assert_eq!(
        d["reason"], "granted",
        "bound: the email is no longer needed"
    );
    // Someone else with the same (now used) email does not get in.
    let (_, d) = f
        .decide(login("auth0|bob2", Some("bob@example.com"), true, uri))
        .await;
    assert_eq!(d["reason"], "not_granted");

    let res = f
        .as_bearer(&admin, Method::POST, "/v1/login-decisions")
        .json(&login(OWNER, None, false, uri))
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "forbidden").await;
    let res = f
        .as_bearer(&f.key, Method::POST, "/v1/login-decisions")
        .json(&login(OWNER, None, false, uri))
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "forbidden").await;
    let res = f
        .as_bearer(
            "wrong-secret-wrong-secret-wrong-secret",
            Method::POST,
            "/v1/login-decisions",
        )
        .json(&login(OWNER, None, false, uri))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
    f.app.hook(&event("instance.suspended", "acme")).await;
    let (_, d) = f.decide(login(OWNER, None, false, uri)).await;
    assert_eq!(
        (d["allow"].as_bool(), d["reason"].as_str()),
        (Some(false), Some("instance_suspended"))
    );
    f.app.hook(&event("instance.deleted", "acme")).await;
    let (_, d) = f.decide(login(OWNER, None, false, uri)).await;
    assert_eq!(
        d["reason"], "unknown_host",
        "a deleted instance's hosts are released"
    );

    let before = f.app.snapshot().await;
    for bad in [
        json!({"user_id": OWNER, "redirect_uri": "not a url"}),
        json!({"user_id": OWNER, "redirect_uri": "ftp://www.acme.com/"}),
        json!({"user_id": "nobody", "redirect_uri": uri}),
        json!({"redirect_uri": uri}),
        json!({"user_id": OWNER, "redirect_uri": uri, "surprise": true}),
    ] {
        let (status, body) = f.decide(bad.clone()).await;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    assert_eq!(f.app.snapshot().await, before);
}

#[sqlx::test]
async fn login_decisions_are_off_without_the_action_secret(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let res = app
        .admin(Method::POST, "/v1/login-decisions")
        .json(&login(OWNER, None, false, "https://www.acme.com/cb"))
        .send()
        .await
        .unwrap();
    assert!(
        assert_problem(res, 409, "login_decisions_disabled")
            .await
            .contains("FLEETGATE_ACTION_SECRET")
    );
}

/// Redirect URIs built to pass for an instance's host: none of them is let in.
#[sqlx::test]
async fn hostile_redirect_uris_never_resolve_to_an_instance(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    let before = f.app.snapshot().await;
    for uri in [
        "https://www.acme.com@evil.example.org/callback",
        "https://evil.example.org\\@www.acme.com/callback",
        "https://evil.example.org/?redirect=https://www.acme.com/callback",
        "https://evil.example.org/#@www.acme.com",
        "https://www.acme.com.evil.example.org/callback",
        "https://www.acme.com%2eevil.example.org/callback",
        "https://evilwww.acme.com/callback",
        "https://www.acme.com./callback",
        "https://*.apps.example.com/callback",
        "https://xn--www.acme.com/callback",
        "https://[::1]/callback",
        "https://127.0.0.1/callback",
        "https://www.аcme.com/callback",
    ] {
        let (status, d) = f.decide(login(OWNER, None, false, uri)).await;
        assert!(
            status == 422 || (status == 200 && d["allow"] == false && d["instance_id"].is_null()),
            "{uri}: {status} {d}"
        );
    }
    assert_eq!(f.app.snapshot().await, before);
}

/// The value of a metric line that starts with `prefix` (0 when absent).
fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

/// Asks replica `at` about `body` until the answer's reason is `reason` (a notification's
/// delay), failing after 10 s; answers how long it took.
async fn until_reason(at: &TestApp, body: &serde_json::Value, reason: &str) -> u128 {
    let started = std::time::Instant::now();
    loop {
        let (status, d) = decide_at(at, body).await;
        assert_eq!(status, 200, "{d}");
        if d["reason"] == reason {
            return started.elapsed().as_millis();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{body}: still {d} after 10 s, not {reason}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Decisions come from each replica's memory, kept current by notifications: what one
/// replica changes (a grant, an invitation, the status, a host, the owner) decides the next
/// login on another within the notification's delay, and none of those decisions read the
/// database for what the memory holds.
#[sqlx::test]
async fn decisions_on_one_replica_follow_changes_made_on_another(pool: PgPool) {
    let f = fleet(pool.clone(), &[]).await;
    let other = TestApp::spawn_with(
        pool,
        TestTenant::start().await,
        &[("FLEETGATE_ACTION_SECRET", ACTION_SECRET.to_owned())],
    )
    .await;
    let admin = f.app.admin_token.clone();
    let uri = "https://www.acme.com/callback";
    let ann = login("auth0|ann", None, false, uri);

    let (_, grant) = f
        .grant(
            &admin,
            "acme",
            json!({"user_id": "auth0|ann", "role": "admin"}),
        )
        .await;
    let granted = until_reason(&other, &ann, "granted").await;
    f.app
        .admin(
            Method::DELETE,
            &format!(
                "/v1/instances/acme/grants/{}",
                grant["id"].as_str().unwrap()
            ),
        )
        .send()
        .await
        .unwrap();
    let removed = until_reason(&other, &ann, "not_granted").await;
    println!("another replica saw a grant in {granted} ms, its removal in {removed} ms");

    // An invitation made there is accepted here, once.
    f.grant(&admin, "acme", json!({"email": "cy@example.com"}))
        .await;
    let cy = login("auth0|cy", Some("cy@example.com"), true, uri);
    until_reason(&other, &cy, "invitation_accepted").await;
    until_reason(&other, &cy, "granted").await;
    until_reason(&f.app, &cy, "granted").await;

    f.app.hook(&event("instance.suspended", "acme")).await;
    until_reason(&other, &ann, "instance_suspended").await;
    f.app.hook(&event("instance.resumed", "acme")).await;
    until_reason(&other, &ann, "not_granted").await;

    // A host moves to another instance; the owner changes.
    f.app
        .hook(&deployed("acme", OWNER, &["acme.apps.example.com"]))
        .await;
    f.app
        .hook(&deployed("beta", "auth0|beta-owner", &["www.acme.com"]))
        .await;
    let beta_owner = login("auth0|beta-owner", None, false, uri);
    until_reason(&other, &beta_owner, "owner").await;
    let (_, d) = f.decide(beta_owner.clone()).await;
    assert_eq!(
        (d["reason"].as_str(), d["instance_id"].as_str()),
        (Some("owner"), Some("beta"))
    );
    f.app
        .hook(&deployed("beta", "auth0|new-owner", &["www.acme.com"]))
        .await;
    until_reason(&other, &login("auth0|new-owner", None, false, uri), "owner").await;
    until_reason(&other, &beta_owner, "not_granted").await;

    let text = other.metrics().await;
    assert!(
        metric(&text, r#"fleetgate_login_facts_total{from="memory"}"#) > 0.0,
        "{text}"
    );
    assert!(
        metric(&text, r#"fleetgate_login_facts_total{from="reread"}"#) > 0.0,
        "grants read again after a change: {text}"
    );
    assert_eq!(
        metric(&text, r#"fleetgate_login_facts_total{from="database"}"#),
        0.0,
        "never the database while the memory is in step: {text}"
    );
}

/// A replica's memory is not the last word: an instance, or an instance key, another replica
/// made a moment ago — before its notification arrived here — is read from the database, not
/// refused. (Here the notifications are held back for good by disabling their triggers.)
#[sqlx::test]
async fn what_memory_has_not_heard_of_yet_is_read_from_the_database(pool: PgPool) {
    let f = fleet(pool.clone(), &[]).await;
    let (key, hash) = fleetgate::keys::generate();
    let mut tx = pool.begin().await.unwrap();
    for statement in [
        "ALTER TABLE instances DISABLE TRIGGER instances_version",
        "ALTER TABLE instance_keys DISABLE TRIGGER instance_keys_notify",
        "INSERT INTO instances (id, owner) VALUES ('ghost', 'auth0|ghost-owner')",
        "INSERT INTO domains (hostname, instance_id, kind) VALUES ('www.ghost.com', 'ghost', 'custom')",
    ] {
        sqlx::query(statement).execute(&mut *tx).await.unwrap();
    }
    sqlx::query(
        "INSERT INTO instance_keys (hash, instance_id, minted_by) VALUES ($1, 'ghost', 'test')",
    )
    .bind(&hash[..])
    .execute(&mut *tx)
    .await
    .unwrap();
    for statement in [
        "ALTER TABLE instances ENABLE TRIGGER instances_version",
        "ALTER TABLE instance_keys ENABLE TRIGGER instance_keys_notify",
    ] {
        sqlx::query(statement).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();

    let (status, d) = f
        .decide(login(
            "auth0|ghost-owner",
            None,
            false,
            "https://www.ghost.com/callback",
        ))
        .await;
    assert_eq!(
        (status, d["allow"].as_bool(), d["instance_id"].as_str()),
        (200, Some(true), Some("ghost")),
        "{d}"
    );
    let res = f
        .as_bearer(
            secrecy::ExposeSecret::expose_secret(&key),
            Method::GET,
            "/v1/instances/ghost/grants",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}
