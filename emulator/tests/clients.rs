//! `/api/v2/clients`: status codes, bodies, array replacement vs metadata merge, validation.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn crud_with_auth0_status_codes_and_bodies() {
    let emu = TestEmulator::start(config()).await;
    let t = emu.management_token().await;
    let created = emu
        .create_client(
            &t,
            json!({"name": "shard 2", "app_type": "spa", "token_endpoint_auth_method": "none"}),
        )
        .await;
    let id = created["client_id"].as_str().unwrap();
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(
        created["client_secret"].is_string(),
        "even a SPA gets a secret"
    );
    assert_eq!(
        created["grant_types"],
        json!(["authorization_code", "implicit", "refresh_token"])
    );
    assert_eq!(created["is_first_party"], true);
    assert!(
        created.get("callbacks").is_none(),
        "URL fields are absent until set"
    );

    let (s, got) = emu
        .call(Method::GET, &format!("/api/v2/clients/{id}"), &t, None)
        .await;
    assert_eq!((s, &got), (200, &created));
    let (s, only) = emu
        .call(
            Method::GET,
            &format!("/api/v2/clients/{id}?fields=client_id,name&include_fields=true"),
            &t,
            None,
        )
        .await;
    assert_eq!(
        (s, only),
        (200, json!({"client_id": id, "name": "shard 2"}))
    );
    let (_, without) = emu
        .call(
            Method::GET,
            &format!("/api/v2/clients/{id}?fields=client_secret&include_fields=false"),
            &t,
            None,
        )
        .await;
    assert!(without.get("client_secret").is_none() && without.get("name").is_some());

    let (s, all) = emu.call(Method::GET, "/api/v2/clients", &t, None).await;
    assert_eq!(s, 200);
    assert_eq!(
        all.as_array().unwrap().len(),
        3,
        "a bare array: two seeded clients and ours"
    );
    let (_, page) = emu
        .call(
            Method::GET,
            "/api/v2/clients?page=1&per_page=2&include_totals=true",
            &t,
            None,
        )
        .await;
    assert_eq!(
        (
            page["total"].as_u64(),
            page["start"].as_u64(),
            page["limit"].as_u64()
        ),
        (Some(3), Some(2), Some(2))
    );
    assert_eq!(page["clients"].as_array().unwrap().len(), 1);
    let got = emu
        .call(Method::GET, "/api/v2/clients?per_page=101", &t, None)
        .await;
    assert_mgmt_error(&got, 400, Some("invalid_query_string"), "per_page");

    let (s, _) = emu
        .call(Method::DELETE, &format!("/api/v2/clients/{id}"), &t, None)
        .await;
    assert_eq!(s, 204);
    let (s, _) = emu
        .call(Method::DELETE, &format!("/api/v2/clients/{id}"), &t, None)
        .await;
    assert_eq!(s, 204, "deleting again answers 204 again");
    let got = emu
        .call(Method::GET, &format!("/api/v2/clients/{id}"), &t, None)
        .await;
    assert_mgmt_error(
        &got,
        404,
        Some("inexistent_client"),
        "The client does not exist",
    );
    let got = emu
        .call(
            Method::PATCH,
            &format!("/api/v2/clients/{id}"),
            &t,
            Some(json!({"callbacks": []})),
        )
        .await;
    assert_mgmt_error(
        &got,
        404,
        Some("inexistent_client"),
        "The client does not exist",
    );
}

#[tokio::test]
async fn patch_replaces_arrays_whole_and_merges_metadata() {
    let emu = TestEmulator::start(config()).await;
    let t = emu.management_token().await;
    let spa = emu.tenant["spa_client_id"].as_str().unwrap();
    let path = format!("/api/v2/clients/{spa}");
    let (s, c) = emu.call(Method::PATCH, &path, &t, Some(json!({"callbacks": ["https://a.com/cb", "https://b.com/cb"], "client_metadata": {"a": "1", "b": "2"}}))).await;
    assert_eq!(s, 200, "{c}");
    let (_, c) = emu.call(Method::PATCH, &path, &t, Some(json!({"callbacks": ["https://c.com/cb"], "client_metadata": {"a": null, "c": "3"}}))).await;
    assert_eq!(
        c["callbacks"],
        json!(["https://c.com/cb"]),
        "the array sent replaces the stored one"
    );
    assert_eq!(
        c["client_metadata"],
        json!({"b": "2", "c": "3"}),
        "metadata merges key by key, null deletes"
    );
    let (_, c) = emu
        .call(Method::PATCH, &path, &t, Some(json!({"callbacks": []})))
        .await;
    assert_eq!(c["callbacks"], json!([]), "cleared lists come back as []");
    let (_, c) = emu
        .call(
            Method::PATCH,
            &path,
            &t,
            Some(json!({"initiate_login_uri": "https://a.com/login"})),
        )
        .await;
    assert_eq!(c["initiate_login_uri"], "https://a.com/login");
    let (_, c) = emu
        .call(
            Method::PATCH,
            &path,
            &t,
            Some(json!({"initiate_login_uri": ""})),
        )
        .await;
    assert!(c.get("initiate_login_uri").is_none(), "\"\" removes it");
    // The emulator's own view of the lists needs no token and shows nothing else.
    let (s, lists) = emu
        .call(
            Method::GET,
            &format!("/emulator/clients/{spa}/lists"),
            "",
            None,
        )
        .await;
    assert_eq!(s, 200, "{lists}");
    assert_eq!(lists["callbacks"], json!([]));
    assert_eq!(lists["client_id"], spa);
    assert!(
        lists.get("client_secret").is_none() && lists.get("client_metadata").is_none(),
        "{lists}"
    );
    let (s, _) = emu
        .call(Method::GET, "/emulator/clients/nope/lists", "", None)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn validation_rules_and_messages() {
    let emu = TestEmulator::start(config()).await;
    let t = emu.management_token().await;
    let spa = emu.tenant["spa_client_id"].as_str().unwrap();
    let path = format!("/api/v2/clients/{spa}");
    let ok = |body: Value| {
        let (emu, t, path) = (&emu, &t, &path);
        async move {
            let (s, c) = emu.call(Method::PATCH, path, t, Some(body.clone())).await;
            assert_eq!(s, 200, "{body}: {c}");
        }
    };
    ok(json!({"callbacks": ["https://*.apps.example.com/callback", "http://localhost:3000/callback"]})).await;
    ok(json!({"web_origins": ["https://pr-*-x.example.com"]})).await;
    ok(json!({"callbacks": ["https://{organization_name}.example.com/callback"]})).await;
    ok(json!({"allowed_origins": ["https://{organization_name}.example.com"]})).await;
    ok(json!({"callbacks": (0..100).map(|i| format!("https://h{i}.example.com/callback")).collect::<Vec<_>>()})).await;

    let bad: Vec<(Value, &str)> = vec![
        (
            json!({"callbacks": ["https://*.com/cb"]}),
            "Object didn't pass validation for format callback-url: https://*.com/cb' on property callbacks[0]",
        ),
        (
            json!({"callbacks": ["https://a.*.example.com/cb"]}),
            "format callback-url",
        ),
        (
            json!({"allowed_logout_urls": ["https://*.*.example.com"]}),
            "format url-with-placeholders",
        ),
        (
            json!({"web_origins": ["https://a.com", "https://a.com/*"]}),
            "web_origins[1]",
        ),
        (
            json!({"web_origins": ["https://{organization_name}.example.com"]}),
            "format url-with-placeholders",
        ),
        (
            json!({"callbacks": ["https://{organization_name}.*.example.com"]}),
            "format callback-url",
        ),
        (
            json!({"callbacks": (0..101).map(|i| format!("https://h{i}.example.com/cb")).collect::<Vec<_>>()}),
            "Payload validation error: 'Array is too long (101), maximum 100' on property callbacks.",
        ),
        (
            json!({"callbacks": "https://a.com/cb"}),
            "Payload validation error: 'Expected type array but found type string' on property callbacks.",
        ),
        (
            json!({"callbacks": [42]}),
            "Expected type string but found type integer' on property callbacks[0]",
        ),
        (
            json!({"oidc_conformant": "yes"}),
            "Expected type boolean but found type string",
        ),
        (
            json!({"colour": "red"}),
            "Payload validation error: 'Additional properties not allowed: colour'.",
        ),
        (json!({"app_type": "toaster"}), "No enum match"),
        (json!({"name": ""}), "too short"),
    ];
    for (body, needle) in bad {
        let got = emu.call(Method::PATCH, &path, &t, Some(body.clone())).await;
        assert_mgmt_error(&got, 400, Some("invalid_body"), needle);
    }
    let got = emu
        .call(
            Method::POST,
            "/api/v2/clients",
            &t,
            Some(json!({"app_type": "spa"})),
        )
        .await;
    assert_mgmt_error(
        &got,
        400,
        Some("invalid_body"),
        "Missing required property: name",
    );
    let res = emu
        .http
        .patch(emu.url(&path))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // Nothing invalid was stored.
    let (_, c) = emu.call(Method::GET, &path, &t, None).await;
    assert_eq!(c["callbacks"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn the_application_cap_is_enforced() {
    let emu = TestEmulator::start(fleetgate_emulator::EmulatorConfig {
        max_clients: 3,
        ..config()
    })
    .await;
    let t = emu.management_token().await;
    emu.create_client(&t, json!({"name": "third"})).await;
    let got = emu
        .call(
            Method::POST,
            "/api/v2/clients",
            &t,
            Some(json!({"name": "fourth"})),
        )
        .await;
    assert_mgmt_error(
        &got,
        403,
        Some("too_many_entities"),
        "limit of 3 applications",
    );
}

#[tokio::test]
async fn state_survives_a_restart_through_the_state_file() {
    let dir = std::env::temp_dir().join(format!("fleetgate-emu-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tenant.json");
    let cfg = fleetgate_emulator::EmulatorConfig {
        state_file: Some(file.clone()),
        signing_key_pem: None,
        ..config()
    };
    let jwks = |emu: &TestEmulator| {
        let req = emu.http.get(emu.url("/.well-known/jwks.json"));
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let (id, m2m, keys) = {
        let emu = TestEmulator::start(cfg.clone()).await;
        let t = emu.management_token().await;
        let c = emu
            .create_client(
                &t,
                json!({"name": "kept", "callbacks": ["https://a.com/cb"]}),
            )
            .await;
        (
            c["client_id"].as_str().unwrap().to_owned(),
            emu.m2m(),
            jwks(&emu).await,
        )
    };
    // Another port (another issuer), same tenant.
    let emu = TestEmulator::start(cfg).await;
    assert_eq!(emu.m2m(), m2m, "seeded credentials are kept");
    assert_eq!(jwks(&emu).await, keys, "signing keys are kept");
    let token = emu.management_token().await;
    let (s, c) = emu
        .call(Method::GET, &format!("/api/v2/clients/{id}"), &token, None)
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["callbacks"], json!(["https://a.com/cb"]));
    std::fs::remove_dir_all(dir).unwrap();
}
