//! What the access page reads: a person's own instances, and an instance's people with when
//! each last logged in (recorded from login decisions in batches).

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

async fn get_as(f: &Fleet, bearer: &str, path: &str) -> (u16, Value) {
    into_json(f.as_bearer(bearer, Method::GET, path).send().await.unwrap()).await
}

#[sqlx::test]
async fn a_person_sees_the_instances_they_own_or_administer(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    f.app.deploy("globex", &["globex.apps.example.com"]).await;
    let admin = f.app.admin_token.clone();
    f.grant(
        &admin,
        "globex",
        json!({"user_id": "auth0|ann", "role": "admin"}),
    )
    .await;
    f.grant(
        &admin,
        "acme",
        json!({"user_id": "auth0|ann", "role": "member"}),
    )
    .await;

    let (status, mine) = get_as(&f, &f.user(OWNER), "/v1/me/instances").await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["operator"], false);
    let ids: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instance_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme", "globex"], "the deploy hook's owner owns both");
    assert_eq!(mine["items"][0]["role"], "owner");
    assert_eq!(
        mine["items"][0]["hosts"],
        json!(["acme.apps.example.com", "www.acme.com"])
    );
    // Without the reconciler fleetgate cannot tell whether a login is live.
    assert_eq!(mine["items"][0]["login"], Value::Null);

    // ann administers globex; being a member of acme is not managing it.
    let (_, anns) = get_as(&f, &f.user("auth0|ann"), "/v1/me/instances").await;
    assert_eq!(
        anns["items"],
        json!([{"instance_id": "globex", "status": "active", "role": "admin",
                "hosts": ["globex.apps.example.com"], "login": null}])
    );
    let (_, nobody) = get_as(&f, &f.user("auth0|nobody"), "/v1/me/instances").await;
    assert_eq!(nobody["items"], json!([]));
    let (_, ops) = get_as(&f, &admin, "/v1/me/instances").await;
    assert_eq!(ops["operator"], true);
    // An instance's key is not a person.
    let (status, _) = get_as(&f, &f.key, "/v1/me/instances").await;
    assert_eq!(status, 403);
    let res = f
        .app
        .http
        .get(f.app.url("/v1/me/instances"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // A deleted instance is no longer anyone's.
    f.app
        .admin(Method::DELETE, "/v1/instances/globex")
        .send()
        .await
        .unwrap();
    let (_, anns) = get_as(&f, &f.user("auth0|ann"), "/v1/me/instances").await;
    assert_eq!(anns["items"], json!([]));
}

#[sqlx::test]
async fn an_instances_people_show_who_last_logged_in_when(pool: PgPool) {
    let f = fleet(
        pool,
        &[("FLEETGATE_LAST_LOGINS_FLUSH_SECS", "1".to_owned())],
    )
    .await;
    let owner = f.user(OWNER);
    let (_, invite) = f
        .grant(
            &owner,
            "acme",
            json!({"email": "bob@example.com", "role": "admin"}),
        )
        .await;
    f.grant(&owner, "acme", json!({"user_id": "auth0|cy"}))
        .await;
    let uri = "https://www.acme.com/callback";
    for body in [
        login(OWNER, Some("owner@example.com"), true, uri),
        login("auth0|bob", Some("bob@example.com"), true, uri),
        // Refused logins are not logins.
        login("auth0|mallory", Some("m@example.com"), true, uri),
    ] {
        f.decide(body).await;
    }
    within(10, "the logins recorded", || async {
        let people = get_as(&f, &owner, "/v1/instances/acme/people").await.1;
        people["owner"]["last_login_at"].is_string()
            && people["grants"]
                .as_array()
                .is_some_and(|g| g.iter().any(|g| g["last_login_at"].is_string()))
    })
    .await;
    let (_, people) = get_as(&f, &owner, "/v1/instances/acme/people").await;
    assert_eq!(people["you"], "owner");
    assert_eq!(people["owner"]["user_id"], OWNER);
    assert_eq!(people["owner"]["email"], "owner@example.com");
    let grants = people["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 2, "{people}");
    let bob = grants.iter().find(|g| g["id"] == invite["id"]).unwrap();
    assert_eq!(
        (&bob["user_id"], &bob["email"], &bob["role"]),
        (
            &json!("auth0|bob"),
            &json!("bob@example.com"),
            &json!("admin")
        )
    );
    let cy = grants.iter().find(|g| g["user_id"] == "auth0|cy").unwrap();
    assert_eq!(cy["last_login_at"], Value::Null);
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM last_logins")
        .fetch_one(&f.app.pool)
        .await
        .unwrap();
    assert_eq!(recorded, 2, "mallory was refused");

    // bob administers acme now; cy, a member, is told it does not exist; operators see it.
    let (status, as_bob) = get_as(&f, &f.user("auth0|bob"), "/v1/instances/acme/people").await;
    assert_eq!((status, &as_bob["you"]), (200, &json!("admin")));
    let (status, _) = get_as(&f, &f.user("auth0|cy"), "/v1/instances/acme/people").await;
    assert_eq!(status, 404);
    let (_, as_ops) = get_as(&f, &f.app.admin_token, "/v1/instances/acme/people").await;
    assert_eq!(as_ops["you"], "operator");
}

/// The owner's access is implied: a grant naming the owner is refused, and a change of owner
/// takes away any grant the previous owner held (which would otherwise outlive their
/// ownership) and the new owner's (which would do nothing).
#[sqlx::test]
async fn an_owner_holds_no_grant_and_a_previous_owner_keeps_none(pool: PgPool) {
    let f = fleet(pool, &[]).await;
    let owner = f.user(OWNER);
    let (status, body) = f
        .grant(&owner, "acme", json!({"user_id": OWNER, "role": "admin"}))
        .await;
    assert_eq!(
        (status, &body["code"]),
        (409, &json!("owner_needs_no_grant")),
        "{body}"
    );
    let res = f
        .as_bearer(&f.app.admin_token, Method::PUT, "/v1/instances/acme/grants")
        .json(&json!({"grants": [{"user_id": "auth0|ann"}, {"user_id": OWNER}]}))
        .send()
        .await
        .unwrap();
    let detail = assert_problem(res, 409, "owner_needs_no_grant").await;
    assert!(detail.contains(OWNER), "{detail}");

    // ann administers acme, then becomes its owner; the previous owner had no grant of their
    // own to keep, and ann's admin grant goes (she owns it now).
    f.grant(
        &f.app.admin_token,
        "acme",
        json!({"user_id": "auth0|ann", "role": "admin"}),
    )
    .await;
    f.grant(&f.app.admin_token, "acme", json!({"user_id": "auth0|cy"}))
        .await;
    let moved = f
        .app
        .hook(&deployed(
            "acme",
            "auth0|ann",
            &["acme.apps.example.com", "www.acme.com"],
        ))
        .await;
    assert_eq!(moved.0, 200, "{}", moved.1);
    let (_, people) = get_as(&f, &f.user("auth0|ann"), "/v1/instances/acme/people").await;
    assert_eq!(people["owner"]["user_id"], "auth0|ann");
    let users: Vec<&str> = people["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["auth0|cy"], "{people}");
    let (status, _) = get_as(&f, &owner, "/v1/instances/acme/people").await;
    assert_eq!(status, 404, "the previous owner has no access left");

    // An instance's own key is told what it may do, not that its instance does not exist.
    let rotated = f
        .as_bearer(
            &f.user("auth0|ann"),
            Method::POST,
            "/v1/instances/acme/keys/rotate",
        )
        .send()
        .await
        .unwrap();
    let key: Value = rotated.json().await.unwrap();
    let (status, body) = get_as(
        &f,
        key["instance_key"].as_str().unwrap(),
        "/v1/instances/acme/people",
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("config and grants"),
        "{body}"
    );
}
