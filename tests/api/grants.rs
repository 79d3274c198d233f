//! Grants: managing them, who may, and instance keys.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use sqlx::PgPool;

use crate::helpers::*;

#[sqlx::test]
async fn grants_are_added_changed_removed_and_audited(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    let admin = f.app.admin_token.clone();
    let (status, ann) = f
        .grant(&admin, "acme", json!({"user_id": "auth0|ann"}))
        .await;
    assert_eq!(status, 201, "{ann}");
    assert_eq!(
        ann["role"], "member",
        "the first configured role is the default"
    );
    let (status, inv) = f
        .grant(
            &admin,
            "acme",
            json!({"email": "Bob@Example.COM", "role": "admin"}),
        )
        .await;
    assert_eq!(status, 201, "{inv}");
    assert_eq!(
        (inv["email"].as_str(), inv["user_id"].as_str()),
        (Some("bob@example.com"), None)
    );

    let (status, dup) = f
        .grant(&admin, "acme", json!({"user_id": "auth0|ann"}))
        .await;
    assert_eq!((status, dup["code"].as_str()), (409, Some("grant_exists")));
    let (status, dup) = f
        .grant(&admin, "acme", json!({"email": "bob@example.com"}))
        .await;
    assert_eq!((status, dup["code"].as_str()), (409, Some("grant_exists")));
    for bad in [
        json!({"user_id": "auth0|x", "role": "owner"}),
        json!({"user_id": "auth0|x", "email": "x@example.com"}),
        json!({}),
        json!({"user_id": "not-a-user-id"}),
        json!({"email": "x@localhost"}),
        json!({"user_id": "auth0|x", "extra": 1}),
    ] {
        let (status, body) = f.grant(&admin, "acme", bad.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("validation_failed")),
            "{bad}: {body}"
        );
    }
    let (status, _) = f.grant(&admin, "nope", json!({"user_id": "auth0|x"})).await;
    assert_eq!(status, 404);

    let path = format!("/v1/instances/acme/grants/{}", ann["id"].as_str().unwrap());
    let (status, patched) = into_json(
        f.app
            .admin(Method::PATCH, &path)
            .json(&json!({"role": "admin"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, patched["role"].as_str()), (200, Some("admin")));
    let res = f.app.admin(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let res = f.app.admin(Method::DELETE, &path).send().await.unwrap();
    assert_problem(res, 404, "not_found").await;
    let res = f
        .app
        .admin(Method::DELETE, "/v1/instances/acme/grants/not-a-uuid")
        .send()
        .await
        .unwrap();
    assert_problem(res, 404, "not_found").await;

    let (_, snap) = f.app.get_json("/v1/instances/acme/grants").await;
    assert_eq!(snap["revision"], 4, "four changes, four revisions: {snap}");
    assert_eq!(snap["owner"], OWNER);
    assert_eq!(snap["grants"].as_array().unwrap().len(), 1);
    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE target_id = 'acme' AND action LIKE 'grant.%' ORDER BY id",
    )
    .fetch_all(&f.app.pool)
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "grant.added",
            "grant.added",
            "grant.role_changed",
            "grant.removed"
        ]
    );

    let (status, mine) = into_json(
        f.as_bearer(
            &f.user("auth0|owner-1"),
            Method::GET,
            "/v1/users/auth0%7Cowner-1/grants",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(
        mine["items"],
        json!([{"instance_id": "acme", "status": "active", "role": "owner", "grant_id": null}])
    );
    let res = f
        .as_bearer(
            &f.user("auth0|ann"),
            Method::GET,
            "/v1/users/auth0%7Cowner-1/grants",
        )
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "forbidden").await;
}

#[sqlx::test]
async fn owners_and_instance_admins_manage_their_instance_only(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    let other = f
        .app
        .hook(&deployed(
            "other",
            "auth0|owner-2",
            &["other.apps.example.com"],
        ))
        .await
        .1;
    let other_key = other["instance_key"].as_str().unwrap().to_owned();
    let owner = f.user(OWNER);
    let (status, body) = f
        .grant(
            &owner,
            "acme",
            json!({"user_id": "auth0|ann", "role": "admin"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = f
        .grant(&owner, "acme", json!({"user_id": "auth0|max"}))
        .await;
    assert_eq!(status, 201, "{body}");
    // An instance admin manages grants and reads the instance.
    let ann = f.user("auth0|ann");
    let (status, body) = f
        .grant(&ann, "acme", json!({"email": "new@example.com"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let res = f
        .as_bearer(&ann, Method::GET, "/v1/instances/acme")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let actor: String = sqlx::query_scalar(
        "SELECT actor FROM audit_log WHERE action = 'grant.added' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&f.app.pool)
    .await
    .unwrap();
    assert_eq!(actor, "instance-admin:auth0|ann");

    let before = f.app.snapshot().await;
    let grants_before: i64 = sqlx::query_scalar("SELECT count(*) FROM grants")
        .fetch_one(&f.app.pool)
        .await
        .unwrap();
    // Everyone else learns nothing: the same 404 as for an instance that does not exist.
    let nobody = f.app.get_json("/v1/instances/ghost/grants").await.1["detail"].clone();
    for (who, bearer) in [
        ("a member", f.user("auth0|max")),
        ("a stranger", f.user("auth0|eve")),
        ("another owner", f.user("auth0|owner-2")),
        ("another instance's key", other_key.clone()),
    ] {
        for (method, path) in [
            (Method::GET, "/v1/instances/acme"),
            (Method::GET, "/v1/instances/acme/grants"),
            (Method::GET, "/v1/instances/acme/config"),
            (Method::POST, "/v1/instances/acme/keys/rotate"),
        ] {
            let res = f
                .as_bearer(&bearer, method.clone(), path)
                .send()
                .await
                .unwrap();
            let detail = assert_problem(res, 404, "not_found").await;
            assert_eq!(
                detail.replace("acme", "ghost"),
                nobody.as_str().unwrap(),
                "{who} {method} {path}"
            );
        }
        let (status, _) = f
            .grant(
                &bearer,
                "acme",
                json!({"user_id": "auth0|eve", "role": "admin"}),
            )
            .await;
        assert_eq!(status, 404, "{who}");
    }
    // The instance's own key reads but does not manage (and is told so); admin routes are
    // closed to it.
    let (status, _) = f
        .grant(&f.key, "acme", json!({"user_id": "auth0|eve"}))
        .await;
    assert_eq!(status, 403);
    for bearer in [f.key.clone(), ACTION_SECRET.to_owned(), owner.clone()] {
        let res = f
            .as_bearer(&bearer, Method::GET, "/v1/instances")
            .send()
            .await
            .unwrap();
        assert_problem(res, 403, "forbidden").await;
    }
    let res = f
        .as_bearer(ACTION_SECRET, Method::GET, "/v1/instances/acme/grants")
        .send()
        .await
        .unwrap();
    assert_problem(res, 403, "forbidden").await;
    let res = f
        .app
        .http
        .get(f.app.url("/v1/instances/acme/grants"))
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
    let res = f
        .as_bearer("fgi_not-a-key", Method::GET, "/v1/instances/acme/grants")
        .send()
        .await
        .unwrap();
    assert_problem(res, 401, "unauthorized").await;
    assert_eq!(f.app.snapshot().await, before);
    let grants_after: i64 = sqlx::query_scalar("SELECT count(*) FROM grants")
        .fetch_one(&f.app.pool)
        .await
        .unwrap();
    assert_eq!(grants_before, grants_after);
}

#[sqlx::test]
async fn instance_keys_are_issued_once_rotated_with_grace_and_revoked_on_delete(pool: PgPool) {
    let f = fleet(pool, &[("FLEETGATE_KEY_ROTATION_GRACE_SECS", "2".into())]).await;
    let hashes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT hash FROM instance_keys")
        .fetch_all(&f.app.pool)
        .await
        .unwrap();
    assert_eq!(hashes.len(), 1);
    assert!(
        !hashes[0].windows(4).any(|w| w == b"fgi_"),
        "only a hash is stored"
    );
    // A second deploy issues no new key.
    let again = f.app.deploy("acme", &["acme.apps.example.com"]).await;
    assert!(again.get("instance_key").is_none());
    assert_eq!(f.poll("", None).await.0, 200);

    let (status, rotated) = into_json(
        f.app
            .admin(Method::POST, "/v1/instances/acme/keys/rotate")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{rotated}");
    let new = rotated["instance_key"].as_str().unwrap().to_owned();
    assert_ne!(new, f.key);
    let read = |key: String| {
        let f = &f;
        async move {
            f.as_bearer(&key, Method::GET, "/v1/instances/acme/grants")
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(read(new.clone()).await, 200);
    assert_eq!(
        read(f.key.clone()).await,
        200,
        "the old key works during the grace period"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(read(f.key.clone()).await, 401, "and not after it");
    assert_eq!(read(new.clone()).await, 200);

    let (status, _) = f.app.hook(&event("instance.deleted", "acme")).await;
    assert_eq!(status, 200);
    assert_eq!(
        read(new.clone()).await,
        401,
        "a deleted instance's keys stop working"
    );
    let back = f.app.deploy("acme", &["acme.apps.example.com"]).await;
    let fresh = back["instance_key"]
        .as_str()
        .expect("a redeploy after deletion issues a key")
        .to_owned();
    assert_eq!(read(fresh).await, 200);
}
