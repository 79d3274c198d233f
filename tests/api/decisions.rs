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
