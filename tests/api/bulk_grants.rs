//! Replacing an instance's whole set of grants in one `PUT`: one revision, one audit entry,
//! all or nothing.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

async fn put(f: &Fleet, body: Value) -> (u16, Value) {
    into_json(
        f.app
            .admin(Method::PUT, "/v1/instances/acme/grants")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// The instance's grants as (subject, role), sorted.
async fn grants_of_acme(f: &Fleet) -> Vec<(String, String)> {
    let (_, _, snap) = f.poll("", None).await;
    let mut all: Vec<_> = snap["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let who = g["user_id"].as_str().or(g["email"].as_str()).unwrap();
            (who.to_owned(), g["role"].as_str().unwrap().to_owned())
        })
        .collect();
    all.sort();
    all
}

#[sqlx::test]
async fn a_whole_set_replaces_the_grants_in_one_revision(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    let admin = f.app.admin_token.clone();
    for body in [
        json!({"user_id": "auth0|ann"}),
        json!({"user_id": "auth0|bob"}),
        json!({"email": "kim@corp.com"}),
    ] {
        assert_eq!(f.grant(&admin, "acme", body).await.0, 201);
    }
    let audited = f.app.audit_count("acme").await;
    // A poller parked at revision 3 is woken by the change.
    let parked = {
        let req = f.as_bearer(
            &f.key,
            Method::GET,
            "/v1/instances/acme/grants?since=3&wait=30",
        );
        tokio::spawn(async move { req.send().await.unwrap().json::<Value>().await.unwrap() })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let set = json!({"grants": [
        {"user_id": "auth0|ann", "role": "admin"},
        {"email": "KIM@corp.com"},
        {"user_id": "auth0|cy"},
    ]});
    let (status, done) = put(&f, set.clone()).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        done,
        json!({"revision": 4, "added": 1, "role_changed": 1, "removed": 1, "unchanged": 1})
    );
    assert_eq!(
        grants_of_acme(&f).await,
        [
            ("auth0|ann".into(), "admin".into()),
            ("auth0|cy".into(), "member".into()),
            ("kim@corp.com".into(), "member".into())
        ]
    );
    let delta = parked.await.unwrap();
    assert_eq!(
        (&delta["from"], &delta["revision"]),
        (&json!(3), &json!(4)),
        "{delta}"
    );
    assert_eq!(delta["added"][0]["user_id"], "auth0|cy");
    assert_eq!(delta["updated"][0]["role"], "admin");
    assert_eq!(delta["removed"].as_array().unwrap().len(), 1);
    assert_eq!(f.app.audit_count("acme").await, audited + 1);
    let (_, audit) = f.app.get_json("/v1/audit?instance_id=acme").await;
    let entry = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "grants.replaced")
        .unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(
        entry["after"]["removed"][0]["user_id"], "auth0|bob",
        "{entry}"
    );

    // The same set again (the invitation accepted meanwhile or not) changes nothing.
    let (status, again) = put(&f, set).await;
    assert_eq!(status, 200);
    assert_eq!(
        again,
        json!({"revision": 4, "added": 0, "role_changed": 0, "removed": 0, "unchanged": 3})
    );
    assert_eq!(f.app.audit_count("acme").await, audited + 1);

    // An empty set removes every grant (the owner keeps access).
    let (status, emptied) = put(&f, json!({"grants": []})).await;
    assert_eq!((status, &emptied["removed"]), (200, &json!(3)));
    assert!(grants_of_acme(&f).await.is_empty());
}

#[sqlx::test]
async fn one_bad_entry_refuses_the_whole_set(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    let admin = f.app.admin_token.clone();
    assert_eq!(
        f.grant(&admin, "acme", json!({"user_id": "auth0|ann"}))
            .await
            .0,
        201
    );
    let before = (
        f.app.snapshot().await,
        grants_of_acme(&f).await,
        f.poll("", None).await.1,
    );
    let ok = json!({"user_id": "auth0|zed"});
    for (entries, detail) in [
        (json!([ok, {"user_id": "nobody"}]), "grants[1]"),
        (
            json!([{"user_id": "auth0|x", "role": "owner"}]),
            "grants[0]: role 'owner'",
        ),
        (
            json!([ok, {"user_id": "auth0|x", "email": "x@y.com"}]),
            "grants[1]: give exactly one",
        ),
        (json!([{"email": "not-an-email"}]), "grants[0]"),
        (
            json!([ok, {"user_id": "auth0|zed", "role": "admin"}]),
            "grants[0] and grants[1] name the same user",
        ),
    ] {
        let res = f
            .app
            .admin(Method::PUT, "/v1/instances/acme/grants")
            .json(&json!({ "grants": entries }))
            .send()
            .await
            .unwrap();
        let text = assert_problem(res, 422, "validation_failed").await;
        assert!(text.contains(detail), "{text} should name {detail}");
    }
    for (body, status, code) in [
        (
            json!({"grants": [{"user": "auth0|x"}]}),
            422,
            "validation_failed",
        ),
        (json!({}), 422, "validation_failed"),
    ] {
        let res = f
            .app
            .admin(Method::PUT, "/v1/instances/acme/grants")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_problem(res, status, code).await;
    }
    let res = f
        .app
        .admin(Method::PUT, "/v1/instances/acme/grants")
        .body("{\"grants\": []}")
        .send()
        .await
        .unwrap();
    assert_problem(res, 415, "unsupported_media_type").await;
    let too_many = json!({"grants": (0..50_001).map(|n| json!({"user_id": format!("auth0|u{n}")})).collect::<Vec<_>>()});
    let res = f
        .app
        .admin(Method::PUT, "/v1/instances/acme/grants")
        .json(&too_many)
        .send()
        .await
        .unwrap();
    assert_problem(res, 422, "validation_failed").await;
    // The instance's own key reads grants but does not manage them (and is told so).
    let res = f
        .as_bearer(&f.key, Method::PUT, "/v1/instances/acme/grants")
        .json(&json!({"grants": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let after = (
        f.app.snapshot().await,
        grants_of_acme(&f).await,
        f.poll("", None).await.1,
    );
    assert_eq!(before, after, "nothing changed");
}
