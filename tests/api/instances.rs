//! The admin REST API over instances, domains and the audit log.

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::helpers::*;

async fn send(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let req = app.admin(method, path);
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    into_json(req.send().await.unwrap()).await
}

#[sqlx::test]
async fn create_get_patch_delete(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    let body = json!({"id": "acme", "owner": "auth0|o1", "domains": ["acme.apps.example.com"]});
    let res = app
        .admin(Method::POST, "/v1/instances")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/v1/instances/acme");
    let (status, mut created) = into_json(res).await;
    assert_eq!(status, 201, "{created}");
    let key = created.as_object_mut().unwrap().remove("instance_key");
    assert!(key.is_some_and(|k| k.as_str().unwrap().starts_with("fgi_")));
    assert_eq!(hosts(&created), ["acme.apps.example.com"]);

    let (status, dup) = send(&app, Method::POST, "/v1/instances", Some(body)).await;
    assert_eq!(
        (status, dup["code"].as_str().unwrap()),
        (409, "instance_exists")
    );

    let (status, got) = app.get_json("/v1/instances/acme").await;
    assert_eq!((status, &got), (200, &created));

    let (status, patched) = send(
        &app,
        Method::PATCH,
        "/v1/instances/acme",
        Some(json!({"owner": "auth0|o2", "status": "suspended"})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (patched["owner"].as_str(), patched["status"].as_str()),
        (Some("auth0|o2"), Some("suspended"))
    );

    let (status, empty) = send(&app, Method::PATCH, "/v1/instances/acme", Some(json!({}))).await;
    assert_eq!(
        (status, empty["code"].as_str().unwrap()),
        (422, "validation_failed")
    );
    let (status, bad) = send(
        &app,
        Method::PATCH,
        "/v1/instances/acme",
        Some(json!({"status": "gone"})),
    )
    .await;
    assert_eq!(status, 422, "{bad}");

    let (status, _) = send(&app, Method::DELETE, "/v1/instances/acme", None).await;
    assert_eq!(status, 204);
    let (_, deleted) = app.get_json("/v1/instances/acme").await;
    assert_eq!(deleted["status"], "deleted");
    assert!(hosts(&deleted).is_empty());
    let (status, again) = send(&app, Method::DELETE, "/v1/instances/acme", None).await;
    assert_eq!(status, 204, "deleting twice is fine: {again}");
    let (status, revive) = send(
        &app,
        Method::PATCH,
        "/v1/instances/acme",
        Some(json!({"status": "active"})),
    )
    .await;
    assert_eq!(
        (status, revive["code"].as_str().unwrap()),
        (409, "invalid_transition")
    );

    let (status, missing) = app.get_json("/v1/instances/nobody").await;
    assert_eq!(
        (status, missing["code"].as_str().unwrap()),
        (404, "not_found")
    );
    let (status, bad_id) = app.get_json("/v1/instances/Not_An_Id").await;
    assert_eq!(status, 404, "{bad_id}");

    // Audit: created, updated, deleted — with the admin's sub.
    let (_, audit) = app.get_json("/v1/audit?instance_id=acme").await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["instance.deleted", "instance.updated", "instance.created"]
    );
    assert_eq!(audit["items"][0]["actor"], "admin:auth0|admin-1");
    assert_eq!(audit["items"][1]["before"]["owner"], "auth0|o1");
    assert_eq!(audit["items"][1]["after"]["owner"], "auth0|o2");
    assert!(audit["items"][0]["request_id"].is_string());
}

#[sqlx::test]
async fn list_pages_with_a_cursor_and_filters(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    for i in 0..7 {
        app.deploy(&format!("inst-{i}"), &[&format!("i{i}.apps.example.com")])
            .await;
    }
    app.hook(&event("instance.suspended", "inst-3")).await;

    let mut seen = Vec::new();
    let mut path = "/v1/instances?limit=3".to_owned();
    loop {
        let (status, page) = app.get_json(&path).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/instances?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        (0..7).map(|i| format!("inst-{i}")).collect::<Vec<_>>()
    );

    let (_, suspended) = app.get_json("/v1/instances?status=suspended").await;
    assert_eq!(suspended["items"].as_array().unwrap().len(), 1);
    assert_eq!(suspended["items"][0]["id"], "inst-3");
    let (_, by_host) = app.get_json("/v1/instances?host=I5.Apps.Example.com").await;
    assert_eq!(by_host["items"][0]["id"], "inst-5");
    assert_eq!(by_host["items"].as_array().unwrap().len(), 1);

    for bad in [
        "?limit=0",
        "?limit=201",
        "?status=gone",
        "?host=a.com:80",
        "?cursor=!!",
        "?colour=red",
        "?limit=x",
    ] {
        let res = app
            .admin(Method::GET, &format!("/v1/instances{bad}"))
            .send()
            .await
            .unwrap();
        assert_problem(res, 400, "invalid_query").await;
    }
}

#[sqlx::test]
async fn domain_sub_resources(pool: PgPool) {
    let app = TestApp::spawn(pool).await;
    app.deploy("acme", &["acme.apps.example.com"]).await;
    app.deploy("bravo", &["www.bravo.com"]).await;

    let (status, added) = send(
        &app,
        Method::POST,
        "/v1/instances/acme/domains",
        Some(json!({"hostname": "Shop.Acme.com"})),
    )
    .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(hosts(&added), ["acme.apps.example.com", "shop.acme.com"]);
    let (status, dup) = send(
        &app,
        Method::POST,
        "/v1/instances/acme/domains",
        Some(json!({"hostname": "shop.acme.com"})),
    )
    .await;
    assert_eq!(
        (status, dup["code"].as_str().unwrap()),
        (409, "domain_exists")
    );
    let (status, taken) = send(
        &app,
        Method::POST,
        "/v1/instances/acme/domains",
        Some(json!({"hostname": "www.bravo.com"})),
    )
    .await;
    assert_eq!(
        (status, taken["code"].as_str().unwrap()),
        (409, "host_taken")
    );

    let (status, list) = app.get_json("/v1/instances/acme/domains").await;
    assert_eq!(status, 200);
    assert_eq!(list["domains"].as_array().unwrap().len(), 2);

    let (status, replaced) = send(
        &app,
        Method::PUT,
        "/v1/instances/acme/domains",
        Some(json!({"domains": ["a.acme.com", "b.acme.com"]})),
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(hosts(&replaced), ["a.acme.com", "b.acme.com"]);

    let (status, _) = send(
        &app,
        Method::DELETE,
        "/v1/instances/acme/domains/A.acme.com",
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, gone) = send(
        &app,
        Method::DELETE,
        "/v1/instances/acme/domains/a.acme.com",
        None,
    )
    .await;
    assert_eq!((status, gone["code"].as_str().unwrap()), (404, "not_found"));
    let (_, now) = app.get_json("/v1/instances/acme").await;
    assert_eq!(hosts(&now), ["b.acme.com"]);

    let before = app.snapshot().await;
    let (status, bad) = send(
        &app,
        Method::PUT,
        "/v1/instances/acme/domains",
        Some(json!({"domains": ["ok.acme.com", "bad host.com"]})),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        bad["detail"]
            .as_str()
            .unwrap()
            .contains("host 'bad host.com' must not contain whitespace"),
        "{bad}"
    );
    assert_eq!(app.snapshot().await, before);

    send(&app, Method::DELETE, "/v1/instances/acme", None).await;
    let (status, deleted) = send(
        &app,
        Method::POST,
        "/v1/instances/acme/domains",
        Some(json!({"hostname": "c.acme.com"})),
    )
    .await;
    assert_eq!(
        (status, deleted["code"].as_str().unwrap()),
        (409, "instance_deleted")
    );

    let (_, audit) = app.get_json("/v1/audit?instance_id=acme&limit=2").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2);
    let cursor = audit["next_cursor"].as_str().unwrap();
    let (_, older) = app
        .get_json(&format!(
            "/v1/audit?instance_id=acme&limit=50&cursor={cursor}"
        ))
        .await;
    let actions: Vec<&str> = older["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "instance.domains_replaced",
            "instance.domain_added",
            "instance.deployed"
        ]
    );
}
